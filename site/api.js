// The one call the UI makes: POST the image to `${apiUrl}/predict`. Every failure
// becomes an ApiError carrying a sentence a person can act on.

const TIMEOUT_MS = 35_000;
const RETRYABLE = new Set([429, 502, 503, 504]);

export class ApiError extends Error {
  constructor(message, { status = 0, code = "", retryable = false, retryAfter = 0, requestId = "" } = {}) {
    super(message);
    this.name = "ApiError";
    Object.assign(this, { status, code, retryable, retryAfter, requestId });
  }
}

function fallbackMessage(status) {
  if (status >= 200 && status < 300) return "The service sent an answer this page does not understand.";
  if (status === 413) return "This file is too large to upload.";
  if (status === 429) return "The service is receiving too many requests. Wait a moment, then try again.";
  if (RETRYABLE.has(status)) return "The service is starting up or busy. Try again in a few seconds.";
  if (status >= 500) return "The service could not process this image. Try again later.";
  return `The service refused the request (HTTP ${status}).`;
}

async function readJson(response) {
  try {
    return await response.json();
  } catch {
    return null;
  }
}

/**
 * @param {string} apiUrl base URL without a trailing slash
 * @param {Blob} body the image bytes
 * @param {string} contentType
 * @param {AbortSignal} signal aborts when the user picks another image
 */
export async function classify(apiUrl, body, contentType, signal) {
  const timeout = new AbortController();
  const timer = setTimeout(() => timeout.abort(), TIMEOUT_MS);
  const abort = () => timeout.abort();
  signal.addEventListener("abort", abort, { once: true });
  const started = performance.now();
  let response;
  try {
    response = await fetch(`${apiUrl}/predict`, {
      method: "POST",
      body,
      headers: { "content-type": contentType },
      signal: timeout.signal,
      mode: "cors",
      credentials: "omit",
    });
  } catch (error) {
    if (signal.aborted) throw error;
    const message = timeout.signal.aborted
      ? "The service took too long to answer. Try again."
      : "Could not reach the classification service. Check your connection, then try again.";
    throw new ApiError(message, { code: "network", retryable: true });
  } finally {
    clearTimeout(timer);
    signal.removeEventListener("abort", abort);
  }

  const data = await readJson(response);
  const latencyMs = performance.now() - started;
  const requestId = (data && data.request_id) || response.headers.get("x-request-id") || "";
  if (response.ok && data && Array.isArray(data.predictions)) {
    return { ...data, latencyMs, requestId };
  }
  const error = data && data.error;
  throw new ApiError(error && error.message ? error.message : fallbackMessage(response.status), {
    status: response.status,
    code: (error && error.code) || "",
    retryable: RETRYABLE.has(response.status),
    retryAfter: Number.parseInt(response.headers.get("retry-after") || "0", 10) || 0,
    requestId,
  });
}
