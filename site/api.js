// The one call the UI makes: POST the image to `${apiUrl}/predict`. Every failure becomes
// a Problem with the API's code and facts; messages.js words it for the visitor, and the
// API's own message is kept for the console.

import { Problem } from "./messages.js";

const TIMEOUT_MS = 35_000;

async function readJson(response) {
  try {
    return await response.json();
  } catch {
    return null;
  }
}

/** The /predict URL, absolute even when apiUrl is relative (e.g. "/api"). */
export function endpoint(apiUrl) {
  return new URL(`${apiUrl.replace(/\/+$/, "")}/predict`, window.location.href).href;
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
      headers: { "content-type": contentType },
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
  const error = (data && data.error) || {};
  throw new Problem(error.code || (response.ok ? "bad_model_response" : ""), {
    status: response.status,
    retryAfter: Number.parseInt(response.headers.get("retry-after") || "0", 10) || 0,
    requestId: (data && data.request_id) || response.headers.get("x-request-id") || "",
    // API Gateway's own answers are {"message": ...}; ours are {"error": {...}}.
    serverMessage: error.message || (data && data.message) || `HTTP ${response.status}`,
    size: body.size,
  });
}
