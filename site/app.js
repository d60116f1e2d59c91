// Wires the page: pick an image (drop, picker, paste) -> prepare -> classify -> render.
// Each new image supersedes the one in flight, so any number of images in a row works.

import { ApiError, classify } from "./api.js";
import { prepareImage } from "./image.js";

const config = window.APP_CONFIG;
const $ = (id) => document.getElementById(id);
const ui = {
  dropzone: $("dropzone"),
  empty: $("dropzone-empty"),
  figure: $("preview-figure"),
  preview: $("preview"),
  caption: $("preview-caption"),
  choose: $("choose"),
  fileInput: $("file-input"),
  card: $("results-card"),
  idle: $("idle"),
  busy: $("busy"),
  error: $("error"),
  errorTitle: $("error-title"),
  errorMessage: $("error-message"),
  errorDetail: $("error-detail"),
  retry: $("retry"),
  results: $("results"),
  review: $("review-badge"),
  predictions: $("predictions"),
  modelName: $("model-name"),
  modelVersion: $("model-version"),
  latency: $("latency"),
  untrained: $("untrained-banner"),
  announcer: $("announcer"),
  footer: $("footer"),
};

let generation = 0; // which image is current; stale work checks it and stops
let inFlight = null; // AbortController of the current request
let upload = null; // { blob, type } of the current image, kept for "Try again"
let previewUrl = "";

function show(view) {
  for (const name of ["idle", "busy", "error", "results"]) ui[name].hidden = name !== view;
  ui.card.setAttribute("aria-busy", String(view === "busy"));
  ui.dropzone.classList.toggle("is-busy", view === "busy");
}

function announce(text) {
  // Clearing first makes screen readers repeat an identical message for a new image.
  ui.announcer.textContent = "";
  requestAnimationFrame(() => {
    ui.announcer.textContent = text;
  });
}

function percent(probability) {
  const value = probability * 100;
  if (value > 0 && value < 0.1) return "<0.1%";
  return `${value.toFixed(1)}%`;
}

function formatLatency(ms) {
  return ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(2)} s`;
}

function showPreview(file, prepared) {
  if (previewUrl) URL.revokeObjectURL(previewUrl);
  previewUrl = "";
  ui.empty.hidden = true;
  ui.figure.hidden = false;
  ui.dropzone.dataset.state = "preview";
  ui.choose.textContent = "Choose another image";
  const name = file.name || "pasted image";
  ui.figure.classList.toggle("is-file", !prepared.decoded);
  if (prepared.decoded) {
    previewUrl = URL.createObjectURL(prepared.blob);
    ui.preview.src = previewUrl;
    ui.preview.alt = `Preview of ${name}`;
    ui.preview.hidden = false;
    const scaled = prepared.scaled ? ", scaled down" : "";
    ui.caption.textContent = `${name} · ${prepared.width}×${prepared.height}${scaled}`;
  } else {
    ui.preview.removeAttribute("src");
    ui.preview.alt = "";
    ui.preview.hidden = true;
    ui.caption.textContent = `${name} · no preview: this browser cannot display this file`;
  }
}

function renderPredictions(result) {
  const items = result.predictions.map((prediction, rank) => {
    const item = document.createElement("li");
    item.className = rank === 0 ? "prediction is-top" : "prediction";
    const row = document.createElement("div");
    row.className = "prediction-row";
    const label = document.createElement("span");
    label.className = "prediction-label";
    label.textContent = prediction.label;
    const value = document.createElement("span");
    value.className = "prediction-value";
    value.textContent = percent(prediction.probability);
    row.append(label, value);
    const bar = document.createElement("div");
    bar.className = "bar";
    bar.setAttribute("aria-hidden", "true");
    const fill = document.createElement("span");
    fill.className = "bar-fill";
    fill.style.setProperty("--value", String(Math.min(1, Math.max(0, prediction.probability))));
    bar.append(fill);
    item.append(row, bar);
    return item;
  });
  ui.predictions.replaceChildren(...items);

  const model = result.model || {};
  ui.modelName.textContent = model.weights ? `${model.name} · ${model.weights}` : model.name || "unknown";
  ui.modelVersion.textContent = model.version || "unknown";
  ui.latency.textContent = formatLatency(result.latencyMs);
  ui.review.hidden = !result.needs_review;
  ui.untrained.hidden = model.weights !== "random";
  show("results");

  const top = result.predictions[0];
  const review = result.needs_review ? " Needs review." : "";
  const untrained = model.weights === "random" ? " Untrained model: labels are noise." : "";
  announce(top ? `Top label: ${top.label}, ${percent(top.probability)}.${review}${untrained}` : "No labels.");
}

function renderError(error) {
  const apiError = error instanceof ApiError ? error : new ApiError("Something went wrong. Try again.", { retryable: true });
  let message = apiError.message;
  if (apiError.retryable && apiError.retryAfter > 0) {
    message += ` (The service suggests waiting ${apiError.retryAfter} s.)`;
  }
  ui.errorTitle.textContent = apiError.retryable
    ? "The service is not answering right now"
    : "This image could not be classified";
  ui.errorMessage.textContent = message;
  ui.error.dataset.code = apiError.code || String(apiError.status || "");
  // The request id finds the matching log line when someone reports the problem.
  ui.errorDetail.textContent = apiError.requestId ? `Request id ${apiError.requestId}` : "";
  ui.errorDetail.hidden = !apiError.requestId;
  ui.retry.hidden = !(apiError.retryable && upload);
  show("error");
}

async function send() {
  inFlight?.abort();
  const controller = new AbortController();
  inFlight = controller;
  show("busy");
  try {
    const result = await classify(config.apiUrl, upload.blob, upload.type, controller.signal);
    if (!controller.signal.aborted) renderPredictions(result);
  } catch (error) {
    if (!controller.signal.aborted) renderError(error);
  } finally {
    if (inFlight === controller) inFlight = null;
  }
}

async function handleFile(file) {
  if (!file) return;
  const mine = ++generation;
  inFlight?.abort();
  upload = null;
  show("busy");
  try {
    const prepared = await prepareImage(file);
    if (mine !== generation) return;
    showPreview(file, prepared);
    upload = { blob: prepared.blob, type: prepared.type };
  } catch {
    if (mine === generation) {
      renderError(new ApiError("This file could not be read. Try another image."));
    }
    return;
  }
  await send();
}

function firstFile(list) {
  return list && list.length ? list[0] : null;
}

function wireInputs() {
  ui.choose.addEventListener("click", () => ui.fileInput.click());
  ui.fileInput.addEventListener("change", () => {
    handleFile(firstFile(ui.fileInput.files));
    ui.fileInput.value = ""; // picking the same file again still fires "change"
  });
  ui.retry.addEventListener("click", () => {
    ui.card.focus({ preventScroll: true }); // the button disappears; keep focus nearby
    send();
  });

  // The whole window accepts a drop, so nobody has to aim at the box.
  let depth = 0;
  const hasFiles = (event) => Array.from(event.dataTransfer?.types || []).includes("Files");
  window.addEventListener("dragenter", (event) => {
    if (!hasFiles(event)) return;
    depth += 1;
    ui.dropzone.classList.add("is-dragging");
  });
  window.addEventListener("dragleave", () => {
    depth = Math.max(0, depth - 1);
    if (depth === 0) ui.dropzone.classList.remove("is-dragging");
  });
  window.addEventListener("dragover", (event) => {
    if (!hasFiles(event)) return;
    event.preventDefault();
    event.dataTransfer.dropEffect = "copy";
  });
  window.addEventListener("drop", (event) => {
    if (!hasFiles(event)) return;
    event.preventDefault();
    depth = 0;
    ui.dropzone.classList.remove("is-dragging");
    handleFile(firstFile(event.dataTransfer.files));
  });

  document.addEventListener("paste", (event) => {
    const file = Array.from(event.clipboardData?.files || []).find((f) => f.type.startsWith("image/"));
    if (!file) return;
    event.preventDefault();
    handleFile(file);
  });
}

function start() {
  if (!config || !config.apiUrl) {
    ui.choose.disabled = true;
    renderError(new ApiError("This page has no API address: config.js did not load. Reload the page, or redeploy the site."));
    return;
  }
  const version = config.modelVersion ? ` · model ${config.modelVersion}` : "";
  ui.footer.textContent = `Environment ${config.environment}${version} · API ${config.apiUrl}`;
  wireInputs();
}

start();
