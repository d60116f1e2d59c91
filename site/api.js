// The calls the UI makes: POST the image to `${apiUrl}/predict`, and feedback on an answer
// to `${apiUrl}/feedback` (with the model's labels from `${apiUrl}/labels`, on demand).
// Every failure becomes a Problem with the API's code and facts; messages.js words it for
// the visitor, and the API's own message is kept for the console.

import { Problem } from "./messages.js";

const TIMEOUT_MS = 35_000;
const FEEDBACK_TIMEOUT_MS = 15_000;
const CLIENT_ID_KEY = "image-classifier:client-id";
const CLIENT_ID = /^[A-Za-z0-9_-]{22}$/;
let clientIdCache = "";
const labelsByVersion = new Map(); // model version -> Promise<string[]>

/**
 * This browser's random id, kept in localStorage: the API sends the same id to the same
 * model variant, so one visitor sees one model. Nothing else is in it; without storage
 * (a private window), it lasts as long as the page.
 */
export function clientId() {
  if (clientIdCache) return clientIdCache;
  try {
    const stored = window.localStorage.getItem(CLIENT_ID_KEY);
    if (stored && CLIENT_ID.test(stored)) clientIdCache = stored;
  } catch {
    // Storage refused: a new id for this page.
  }
  if (!clientIdCache) {
    const bytes = crypto.getRandomValues(new Uint8Array(16));
    // 16 random bytes in base64url: 22 characters.
    clientIdCache = btoa(String.fromCharCode(...bytes)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
    try {
      window.localStorage.setItem(CLIENT_ID_KEY, clientIdCache);
    } catch {
      // Kept for this page only.
    }
  }
  return clientIdCache;
}

async function readJson(response) {
  try {
    return await response.json();
  } catch {
    return null;
  }
}

function route(apiUrl, path) {
  return new URL(`${apiUrl.replace(/\/+$/, "")}/${path}`, window.location.href).href;
}

/** The /predict URL, absolute even when apiUrl is relative (e.g. "/api"). */
export function endpoint(apiUrl) {
  return route(apiUrl, "predict");
}

function problemOf(response, data, extra = {}) {
  const error = (data && data.error) || {};
  return new Problem(error.code || "", {
    status: response.status,
    retryAfter: Number.parseInt(response.headers.get("retry-after") || "0", 10) || 0,
    requestId: (data && data.request_id) || response.headers.get("x-request-id") || "",
    // API Gateway's own answers are {"message": ...}; ours are {"error": {...}}.
    serverMessage: error.message || (data && data.message) || `HTTP ${response.status}`,
    // A 413's limit, from the server that applies it (absent from API Gateway's own 413).
    limitBytes: Number(error.limit_bytes) || 0,
    ...extra,
  });
}

/** A small JSON call: the answer's JSON, or a Problem. */
async function callJson(url, init) {
  const timeout = new AbortController();
  const timer = setTimeout(() => timeout.abort(), FEEDBACK_TIMEOUT_MS);
  let response;
  try {
    response = await fetch(url, { ...init, signal: timeout.signal, credentials: "omit" });
  } catch (error) {
    throw new Problem(timeout.signal.aborted ? "timeout" : "network", { serverMessage: String(error) });
  } finally {
    clearTimeout(timer);
  }
  const data = await readJson(response);
  if (response.ok && data) return data;
  throw problemOf(response, data);
}

/**
 * Tell the API whether an answer was right: `{request_id, verdict: "correct" | "wrong",
 * label?}`. A second verdict on the same answer replaces the first.
 */
export function sendFeedback(apiUrl, document) {
  return callJson(route(apiUrl, "feedback"), {
    method: "POST",
    body: JSON.stringify(document),
    headers: { "content-type": "application/json" },
  });
}

/** A model version's labels, fetched once per page (and kept by the browser's cache). */
export function modelLabels(apiUrl, version) {
  if (!labelsByVersion.has(version)) {
    const url = route(apiUrl, `labels?version=${encodeURIComponent(version)}`);
    const labels = callJson(url, { method: "GET" }).then((data) => {
      if (!Array.isArray(data.labels)) throw new Problem("bad_model_response", { serverMessage: "no labels" });
      return data.labels;
    });
    labels.catch(() => labelsByVersion.delete(version)); // a later try asks again
    labelsByVersion.set(version, labels);
  }
  return labelsByVersion.get(version);
}

/**
 * @param {string} apiUrl base URL without a trailing slash
 * @param {Blob} body the image bytes
 * @param {string} contentType
 * @param {AbortSignal} signal aborts when the visitor picks another image
 * @returns {Promise<{body: object, latencyMs: number}>} body is the API's JSON as sent
 */
export async function classify(apiUrl, body, contentType, signal) {
  const timeout = new AbortController();
  const timer = setTimeout(() => timeout.abort(), TIMEOUT_MS);
  const abort = () => timeout.abort();
  signal.addEventListener("abort", abort, { once: true });
  const started = performance.now();
  let response;
  try {
    response = await fetch(endpoint(apiUrl), {
      method: "POST",
      body,
      headers: { "content-type": contentType, "x-client-id": clientId() },
      signal: timeout.signal,
      mode: "cors",
      credentials: "omit",
    });
  } catch (error) {
    if (signal.aborted) throw error;
    throw new Problem(timeout.signal.aborted ? "timeout" : "network", { serverMessage: String(error) });
  } finally {
    clearTimeout(timer);
    signal.removeEventListener("abort", abort);
  }

  const data = await readJson(response);
  const latencyMs = performance.now() - started;
  if (response.ok && data && Array.isArray(data.predictions) && data.predictions.length) {
    return { body: data, latencyMs };
  }
  const problem = problemOf(response, data, { size: body.size });
  if (response.ok && !problem.code) problem.code = "bad_model_response";
  throw problem;
}
