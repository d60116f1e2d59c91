// Wires the page: pick an image (drop, picker, camera, paste, sample) -> check and prepare
// -> classify -> render, remember it for this visit. Whatever comes (an answer, an error,
// a slow start) ends in view, on a phone too. Each new image supersedes the one in
// flight, so any number of images in a row works; only the last one is answered.

import { classify, endpoint } from "./api.js";
import { createFeedback } from "./feedback.js";
import { prepareFile, prepareImageElement } from "./image.js";
import { describe, Problem } from "./messages.js";
import { curlSnippet, pythonSnippet } from "./snippets.js";

const config = window.APP_CONFIG;
const HISTORY_SIZE = 8;
// While waiting, a counter of seconds; after SLOW_MS one calm line about cold starts (the
// wait may just as well be a slow upload, so it says "if").
const COUNT_FROM_MS = 1000;
const SLOW_MS = 4000;
const SLOW_TEXT = "If the classifier has been idle, starting it takes up to half a minute.";
const COPIED_MS = 2000;

const $ = (id) => document.getElementById(id);
const ui = {
  dropzone: $("dropzone"),
  empty: $("dropzone-empty"),
  figure: $("preview-figure"),
  frame: $("preview-frame"),
  preview: $("preview"),
  caption: $("preview-caption"),
  choose: $("choose"),
  takePhoto: $("take-photo"),
  useCamera: $("use-camera"),
  busyMain: $("stage-busy-main"),
  busySlowStage: $("stage-busy-slow"),
  busySlow: $("busy-slow"),
  fileInput: $("file-input"),
  cameraInput: $("camera-input"),
  samples: document.querySelectorAll("[data-sample]"),
  card: $("results-card"),
  heading: $("results-heading"),
  idle: $("idle"),
  busy: $("busy"),
  busyText: $("busy-text"),
  skeleton: $("skeleton"),
  error: $("error"),
  errorTitle: $("error-title"),
  answerThumb: $("answer-thumb"),
  answerName: $("answer-name"),
  tryAnother: $("try-another"),
  inputHeading: $("input-heading"),
  errorMessage: $("error-message"),
  errorDetail: $("error-detail"),
  retry: $("retry"),
  errorAnother: $("error-another"),
  results: $("results"),
  untrainedNote: $("untrained-note"),
  smallNote: $("small-note"),
  review: $("review-badge"),
  predictions: $("predictions"),
  modelName: $("model-name"),
  modelVersion: $("model-version"),
  latency: $("latency"),
  copyJson: $("copy-json"),
  downloadJson: $("download-json"),
  historyEmpty: $("history-empty"),
  history: $("history"),
  historyClear: $("history-clear"),
  knows: $("knows"),
  code: $("code"),
  snippetCurl: $("snippet-curl"),
  snippetPython: $("snippet-python"),
  copyCurl: $("copy-curl"),
  copyPython: $("copy-python"),
  announcer: $("announcer"),
};

let generation = 0; // which image is current; stale work checks it and stops
let inFlight = null; // AbortController of the current request
let busyTimer = 0;
let current = null; // the image on screen: {name, prepared, url, result?, feedback?}
let feedback = null; // "Is this right?" under the answer (feedback.js)
let camera = null; // camera.js, loaded the first time the camera is asked for
const history = []; // this visit's answered images, newest first; never stored anywhere

const count = (value) => value.toLocaleString("en-US");
const reducedMotion = () => window.matchMedia("(prefers-reduced-motion: reduce)").matches;

function percent(probability) {
  const value = probability * 100;
  if (value > 0 && value < 0.1) return "<0.1%";
  return `${value.toFixed(1)}%`;
}

function formatLatency(ms) {
  return ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(2)} s`;
}

// The torchvision architectures the model tools are tested with (model/weights.py), as
// people write them; any other name (a custom one) is shown as given.
const ARCHITECTURES = {
  mobilenet_v2: "MobileNetV2",
  mobilenet_v3_large: "MobileNetV3 Large",
  resnet18: "ResNet-18",
  resnet50: "ResNet-50",
  efficientnet_b0: "EfficientNet-B0",
  convnext_tiny: "ConvNeXt Tiny",
};

function describeModel(model) {
  // hasOwn: a custom model may well be called "constructor".
  const name = Object.hasOwn(ARCHITECTURES, model.name ?? "") ? ARCHITECTURES[model.name] : String(model.name || "Unknown model");
  const weights = model.weights || "";
  let text = name;
  if (weights === "random") text = `${name}, untrained (random weights)`;
  else if (weights.startsWith("IMAGENET")) text = `${name}, trained on ImageNet`;
  else if (weights.startsWith("file:")) text = `${name}, custom weights`;
  else if (weights) text = `${name}, ${weights}`;
  // Archives from before custom labels carry neither key: ImageNet's 1,000 classes.
  if (model.label_set !== "custom") return text;
  const classes = Number(model.num_classes);
  if (!(classes > 0)) return `${text}, custom classes`;
  return `${text}; knows ${count(classes)} ${classes === 1 ? "class" : "classes"}`;
}

function announce(text) {
  // Clearing first makes screen readers repeat an identical message for a new image.
  ui.announcer.textContent = "";
  requestAnimationFrame(() => {
    ui.announcer.textContent = text;
  });
}

function show(view) {
  for (const name of ["idle", "busy", "error", "results"]) ui[name].hidden = name !== view;
  ui.card.classList.remove("is-fitted");
  ui.skeleton.hidden = view !== "idle" && view !== "busy";
  ui.card.setAttribute("aria-busy", String(view === "busy"));
  ui.dropzone.classList.toggle("is-busy", view === "busy");
  clearInterval(busyTimer);
}

/** The same words in the card and on the photo's overlay (in view on a phone). */
function busyText(main, slow) {
  ui.busyText.textContent = ui.busyMain.textContent = main;
  ui.busySlow.textContent = ui.busySlowStage.textContent = slow;
  ui.busySlow.hidden = ui.busySlowStage.hidden = !slow;
}

function startBusy(name) {
  show("busy");
  busyText("Classifying…", "");
  announce(`Classifying ${name}…`);
  const started = performance.now();
  let slow = false;
  busyTimer = setInterval(() => {
    const elapsed = performance.now() - started;
    if (elapsed < COUNT_FROM_MS) return;
    const slowNow = !slow && elapsed >= SLOW_MS;
    if (slowNow) {
      slow = true;
      announce(`Still classifying. ${SLOW_TEXT}`);
    }
    busyText(`Classifying… ${Math.floor(elapsed / 1000)} s`, slow ? SLOW_TEXT : "");
    // The grown overlay can end below a short screen (a phone on its side, under a banner).
    const overlay = ui.busyMain.closest(".stage-busy");
    if (slowNow && !inView(overlay)) overlay.scrollIntoView({ block: "nearest", behavior: scrollBehavior() });
  }, 250);
}

const scrollBehavior = () => (reducedMotion() ? "auto" : "smooth");

function inView(element) {
  const box = element.getBoundingClientRect();
  return box.height > 0 && box.top >= 0 && box.bottom <= window.innerHeight;
}

/**
 * Bring the results card to the top of the screen when `target` is not in view (a phone,
 * where the card is below the photo; a page scrolled to an earlier answer), and move focus
 * there when it had to move, so the next Tab continues from what is on screen.
 */
function reveal(target, focus) {
  if (inView(target)) return false;
  ui.card.scrollIntoView({ block: "start", behavior: scrollBehavior() });
  focus?.focus({ preventScroll: true });
  return true;
}

/**
 * The card keeps room for a whole answer; under an error that room is only empty card (a
 * phone's screen of it). Drop the room and bring the card's end to the bottom of the screen,
 * the photo above it, when that keeps the error's title in view and all that the room held
 * up below the screen (so nothing visible moves); otherwise keep it. Jumps, not smooth: the
 * scroll and the smaller card must reach the screen in one frame.
 */
function fitError() {
  const scrolled = window.scrollY;
  ui.card.classList.add("is-fitted");
  const card = ui.card.getBoundingClientRect();
  const title = ui.errorTitle.getBoundingClientRect();
  const by = card.bottom - window.innerHeight;
  if (card.bottom - title.top <= window.innerHeight && scrolled + by >= 0) {
    window.scrollTo({ top: scrolled + by, behavior: "instant" });
    if (Math.abs(ui.card.getBoundingClientRect().bottom - window.innerHeight) < 1) return true;
  }
  ui.card.classList.remove("is-fitted");
  window.scrollTo({ top: scrolled, behavior: "instant" });
  return false;
}

function showPreview(entry) {
  const { prepared } = entry;
  ui.empty.hidden = true;
  ui.figure.hidden = false;
  ui.dropzone.dataset.state = "preview";
  ui.preview.src = entry.url;
  ui.preview.alt = `${entry.name}, as sent to the model`;
  // CSS sizes the frame from these, so the box is final before the image decodes.
  const frame = ui.frame.style;
  frame.setProperty("--aspect", String(prepared.width / prepared.height));
  frame.setProperty("--natural-width", `${prepared.width}px`);
  frame.setProperty("--crop-x", `${prepared.crop.x * 100}%`);
  frame.setProperty("--crop-y", `${prepared.crop.y * 100}%`);
  frame.setProperty("--crop-w", `${prepared.crop.w * 100}%`);
  frame.setProperty("--crop-h", `${prepared.crop.h * 100}%`);
  ui.frame.classList.toggle("is-small", prepared.small);
  const { source } = prepared;
  let caption = `${entry.name} · ${count(source.width)}×${count(source.height)} px`;
  if (prepared.trimmed) caption += `, sent as its middle ${count(prepared.width)}×${count(prepared.height)}`;
  else if (prepared.scaled) caption += `, sent as ${count(prepared.width)}×${count(prepared.height)}`;
  ui.caption.textContent = caption;
}

function clearPreview(name) {
  ui.figure.hidden = true;
  ui.empty.hidden = false;
  ui.dropzone.dataset.state = "empty";
  ui.preview.removeAttribute("src");
  ui.caption.textContent = name ? `${name} · not classified` : "";
}

function setCurrent(entry) {
  if (current && current !== entry && !history.includes(current)) URL.revokeObjectURL(current.url);
  current = entry;
  if (entry) showPreview(entry);
  markCurrent();
}

function renderPredictions(predictions) {
  const items = predictions.map((prediction, rank) => {
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
}

function renderResult(entry, { keepFocus = false } = {}) {
  const { body, latencyMs } = entry.result;
  const model = body.model || {};
  const untrained = model.weights === "random";
  renderPredictions(body.predictions);
  ui.modelName.textContent = describeModel(model);
  ui.modelVersion.textContent = model.version || "unknown";
  ui.latency.textContent = formatLatency(latencyMs);
  ui.review.hidden = !body.needs_review;
  ui.untrainedNote.hidden = !untrained;
  ui.answerThumb.src = entry.url;
  ui.answerName.textContent = entry.name;
  const { source, small } = entry.prepared;
  ui.smallNote.hidden = !small;
  ui.smallNote.textContent = small
    ? `Small image (${count(source.width)}×${count(source.height)} px): the model scales its short side up to 224 px, so it has little detail to go on.`
    : "";
  show("results");
  feedback?.show(entry);

  const top = body.predictions[0];
  const review = body.needs_review ? " Needs review." : "";
  const noise = untrained ? " Untrained model: the labels are random." : "";
  announce(`${entry.name}: top label ${top.label}, ${percent(top.probability)}.${review}${noise}`);
  const label = ui.predictions.querySelector(".prediction-row");
  if (label) reveal(label, keepFocus ? null : ui.heading);
}

function renderError(problem) {
  const text = describe(problem);
  if (problem instanceof Problem && problem.facts.serverMessage) {
    // The operator's view: the API's own words and the id that finds its log line.
    const { status, requestId, serverMessage } = problem.facts;
    console.error(`classification failed: ${problem.code || "error"} (HTTP ${status ?? "-"}, request id ${requestId || "-"}): ${serverMessage}`);
  } else if (!(problem instanceof Problem)) {
    console.error(problem);
  }
  ui.errorTitle.textContent = text.title;
  ui.errorMessage.textContent = text.message;
  ui.errorDetail.textContent = text.reference ? `Reference: ${text.reference} (it finds this request in the classifier’s logs)` : "";
  ui.errorDetail.hidden = !text.reference;
  ui.retry.hidden = !(text.retry && current && !current.result);
  show("error");
  announce(`${text.title}. ${text.message}`);
  // The title is what must be seen; focus goes to it, so the next Tab reaches "Try again",
  // then "Try another image" (the way back to the inputs, far above the card on a phone).
  if (!fitError()) reveal(ui.errorTitle);
  ui.errorTitle.focus({ preventScroll: true });
}

function remember(entry) {
  history.unshift(entry);
  for (const dropped of history.splice(HISTORY_SIZE)) {
    if (dropped !== current) URL.revokeObjectURL(dropped.url);
  }
  renderHistory();
}

function renderHistory() {
  const items = history.map((entry) => {
    const top = entry.result.body.predictions[0];
    const button = document.createElement("button");
    button.type = "button";
    button.className = "history-item";
    const thumb = document.createElement("img");
    thumb.src = entry.url;
    thumb.alt = "";
    const label = document.createElement("span");
    label.className = "history-label";
    label.textContent = top.label;
    const detail = document.createElement("span");
    detail.className = "history-detail";
    detail.textContent = `${percent(top.probability)} · ${entry.name}`;
    const showing = document.createElement("span");
    showing.className = "history-showing";
    showing.textContent = "Showing";
    // Cut off with an ellipsis: the whole name (and label) on hover.
    button.title = `${top.label} (${percent(top.probability)}), ${entry.name}`;
    button.append(thumb, label, detail, showing);
    button.addEventListener("click", () => showAgain(entry));
    const item = document.createElement("li");
    item.append(button);
    return item;
  });
  ui.history.replaceChildren(...items);
  ui.history.hidden = !history.length;
  ui.historyEmpty.hidden = Boolean(history.length);
  ui.historyClear.hidden = !history.length;
  markCurrent();
}

function clearHistory() {
  for (const entry of history.splice(0)) {
    if (entry !== current) URL.revokeObjectURL(entry.url);
  }
  renderHistory();
  // The button is gone: focus stays in the same card.
  ui.historyEmpty.setAttribute("tabindex", "-1");
  ui.historyEmpty.focus();
  announce("This visit’s images are cleared.");
}

/** Which entry is on screen; updated in place so a focused entry keeps its focus. */
function markCurrent() {
  ui.history.querySelectorAll("button").forEach((button, index) => {
    if (history[index] === current) button.setAttribute("aria-current", "true");
    else button.removeAttribute("aria-current");
  });
}

function showAgain(entry) {
  generation += 1;
  inFlight?.abort();
  setCurrent(entry);
  // Focus stays on the entry, so the next one is a Tab away: comparing answers.
  renderResult(entry, { keepFocus: true });
}

async function send(entry) {
  inFlight?.abort();
  const controller = new AbortController();
  inFlight = controller;
  try {
    const result = await classify(config.apiUrl, entry.prepared.blob, entry.prepared.type, controller.signal);
    if (controller.signal.aborted) return;
    entry.result = result;
    remember(entry);
    renderResult(entry);
  } catch (error) {
    if (controller.signal.aborted) return;
    if (error instanceof Problem) Object.assign(error.facts, { name: entry.name, originalSize: entry.originalSize });
    renderError(error);
  } finally {
    if (inFlight === controller) inFlight = null;
  }
}

/** Nothing to classify: the previous image leaves the stage (its answer stays in history). */
function refuse(name, problem) {
  setCurrent(null);
  clearPreview(name);
  renderError(problem);
}

/** Prepare an image (check, decode, encode) and classify it, unless another one came. */
async function take(name, prepare, originalSize = 0) {
  const mine = ++generation;
  inFlight?.abort();
  camera?.close({ focus: false });
  startBusy(name);
  let prepared;
  try {
    prepared = await prepare();
  } catch (problem) {
    if (problem instanceof Problem) Object.assign(problem.facts, { name: problem.facts.name ?? name, originalSize });
    if (mine === generation) refuse(name, problem);
    return;
  }
  if (mine !== generation) return;
  const entry = { name, prepared, originalSize, url: URL.createObjectURL(prepared.blob) };
  setCurrent(entry);
  await send(entry);
}

function takeFile(file, name) {
  if (file) take(name || file.name || "Pasted image", () => prepareFile(file), file.size);
}

function takeSample(button) {
  const name = `${button.textContent.trim()} (sample)`;
  take(name, async () => {
    // An <img>, not fetch(): the CSP lets this page fetch only from the API.
    const image = new Image();
    image.src = `samples/${button.dataset.sample}.jpg`;
    try {
      await image.decode();
    } catch {
      throw new Problem("network", { serverMessage: `sample ${image.src} did not load` });
    }
    return prepareImageElement(image);
  });
}

/** The first file that says it is an image, else the first file (which is then refused). */
function pick(files) {
  const list = Array.from(files || []);
  return list.find((file) => file.type.startsWith("image/")) || list[0] || null;
}

/** Copy, and say so on the button itself for a moment (and to screen readers). */
async function copy(button, text, what) {
  const label = button.querySelector(".copy-label");
  label.dataset.text ||= label.textContent;
  try {
    await navigator.clipboard.writeText(text);
    label.textContent = "Copied";
    announce(`Copied ${what}.`);
  } catch {
    label.textContent = "Not copied";
    announce("This browser did not allow copying. Select the text and copy it instead.");
  }
  clearTimeout(Number(button.dataset.timer));
  button.dataset.timer = String(setTimeout(() => (label.textContent = label.dataset.text), COPIED_MS));
}

/** Back to the inputs (far above the answer on a phone), focus on the first of them. */
function tryAnother() {
  ui.inputHeading.closest("section").scrollIntoView({ block: "start", behavior: scrollBehavior() });
  ui.choose.focus({ preventScroll: true });
}

async function openCamera() {
  camera ||= await import("./camera.js");
  camera.open({
    onPhoto(file) {
      takeFile(file, file.name);
    },
    onProblem(problem) {
      // What the stage shows stays; the card says why there is no camera.
      generation += 1;
      inFlight?.abort();
      renderError(problem);
    },
    onClose() {
      ui.useCamera.focus();
    },
  });
}

function downloadJson() {
  const json = `${JSON.stringify(current.result.body, null, 2)}\n`;
  const link = document.createElement("a");
  link.href = URL.createObjectURL(new Blob([json], { type: "application/json" }));
  const stem = current.name.replace(/\.[^.]*$/, "").replace(/[^\w-]+/g, "-").replace(/^-|-$/g, "");
  link.download = `${stem || "image"}-labels.json`;
  link.click();
  // The download has started from the click; the URL only has to outlive this task.
  setTimeout(() => URL.revokeObjectURL(link.href));
}

function wireInputs() {
  ui.choose.addEventListener("click", () => ui.fileInput.click());
  ui.takePhoto.addEventListener("click", () => ui.cameraInput.click());
  ui.dropzone.addEventListener("click", () => {
    if (ui.dropzone.dataset.state === "empty") ui.fileInput.click();
  });
  for (const input of [ui.fileInput, ui.cameraInput]) {
    input.addEventListener("change", () => {
      takeFile(pick(input.files));
      input.value = ""; // picking the same file again still fires "change"
    });
  }
  for (const button of ui.samples) button.addEventListener("click", () => takeSample(button));
  ui.retry.addEventListener("click", () => {
    // The button disappears: keep focus on a visible landmark next to what comes.
    ui.heading.focus();
    startBusy(current.name);
    send(current);
  });
  ui.copyJson.addEventListener("click", () => copy(ui.copyJson, `${JSON.stringify(current.result.body, null, 2)}\n`, "the result as JSON"));
  ui.downloadJson.addEventListener("click", downloadJson);
  ui.tryAnother.addEventListener("click", tryAnother);
  ui.errorAnother.addEventListener("click", tryAnother);
  ui.historyClear.addEventListener("click", clearHistory);
  ui.useCamera.addEventListener("click", openCamera);
  ui.knows.addEventListener("toggle", async () => {
    if (!ui.knows.open) return;
    const { showModelLabels } = await import("./knows.js");
    showModelLabels(config.apiUrl, config.modelVersion);
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
    takeFile(pick(event.dataTransfer.files));
  });

  document.addEventListener("paste", (event) => {
    if (event.target instanceof Element && event.target.closest("input, textarea, [contenteditable]")) return;
    event.preventDefault();
    const file = pick(event.clipboardData?.files);
    if (file) {
      takeFile(file);
    } else {
      generation += 1;
      inFlight?.abort();
      refuse("", new Problem("no_image_pasted"));
    }
  });
}

function start() {
  if (!config || !config.apiUrl) {
    // The visitor can do nothing about it; the operator finds the cause here.
    console.error(
      "window.APP_CONFIG.apiUrl is missing: config.js did not load. It is generated per " +
        "deployment (SiteConfigFile in the stack, or python -m local); redeploy the site.",
    );
    // boot.js already showed the notice and dimmed the drop zone, before the first paint.
    ui.dropzone.dataset.state = "unavailable";
    ui.code.hidden = true;
    ui.knows.closest("section").hidden = true;
    for (const control of [ui.choose, ui.takePhoto, ui.useCamera, ...ui.samples]) control.disabled = true;
    return;
  }
  console.info(`Image classifier: environment ${config.environment}, API ${config.apiUrl}, model ${config.modelVersion}`);
  const url = endpoint(config.apiUrl);
  ui.snippetCurl.textContent = curlSnippet(url);
  ui.snippetPython.textContent = pythonSnippet(url);
  ui.copyCurl.addEventListener("click", () => copy(ui.copyCurl, ui.snippetCurl.textContent, "the curl command"));
  ui.copyPython.addEventListener("click", () => copy(ui.copyPython, ui.snippetPython.textContent, "the Python code"));
  feedback = createFeedback(config.apiUrl, announce);
  wireInputs();
}

start();
