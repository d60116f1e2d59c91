// Every sentence a visitor can read about a failure, in one place. A Problem carries a
// stable code (the API's own codes, plus a few the page adds) and its facts; describe()
// turns it into words for a visitor. What an operator needs (the API's own message, which
// Content-Type, what to redeploy) goes to the console, never on the page.

const FORMATS = "JPEG, PNG, WebP or GIF";
// The API's default limits (docs/contracts.md): MODEL_MAX_IMAGE_PIXELS for the image the
// visitor picks, MAX_IMAGE_BYTES for what the page uploads.
export const MAX_PIXELS = 50_000_000;
export const MAX_UPLOAD_BYTES = 3 * 1024 * 1024;

export class Problem extends Error {
  /**
   * @param {string} code the API's error code, or one of the page's own below
   * @param {object} facts what the sentence needs: name, format, width, height, size,
   *   and for the service: status, retryAfter, requestId, serverMessage
   */
  constructor(code, facts = {}) {
    super(facts.serverMessage || code);
    this.name = "Problem";
    this.code = code;
    this.facts = facts;
  }
}

const count = (value) => value.toLocaleString("en-US");
/** 2.4 MB, 180 KB: never "0.0 MB" for a small upload. */
export function fileSize(bytes) {
  if (bytes >= 1024 * 1024) return `${(bytes / (1024 * 1024)).toFixed(1)} MB`;
  return `${Math.max(1, Math.round(bytes / 1024))} KB`;
}
const quoted = (name) => (name ? `“${name}”` : "This file");

const SOMETHING_BROKE = {
  title: "Something went wrong on our side",
  message: "Your image is fine. Try again; if it keeps failing, please come back later.",
  retry: true,
};
// 429 and SageMaker's throttling: many requests at once, nothing to do with a cold start.
const BUSY = {
  title: "The classifier is busy",
  message: "Many images are being classified right now. Try again in a moment.",
  retry: true,
};
const STARTING = {
  title: "The classifier is starting up",
  message: "After a quiet spell it takes up to half a minute to start. Try again in a moment.",
  retry: true,
};
const PAGE_OUT_OF_DATE = {
  title: "Something went wrong on our side",
  message: "This page and the classifier did not understand each other. Reload the page, then try again.",
  retry: false,
};

// The visitor's own file: the API's wording, said before anything is uploaded.
const FILE_TEXT = {
  empty_image: (f) => ({ title: "This file is empty", message: `${quoted(f.name)} has no content (0 bytes). Choose another image.` }),
  not_an_image: (f) => ({ title: "This file is not an image", message: `${quoted(f.name)} is not a ${FORMATS} image.` }),
  unsupported_image_format: (f) => ({
    title: "This image format is not supported",
    message: `${f.format ? `${f.format} files are` : "This format is"} not supported; choose a ${FORMATS} image.`,
  }),
  corrupt_image: (f) => ({
    title: "This image cannot be read",
    message: `The ${f.format || "image"} file is truncated or corrupt and cannot be decoded.`,
  }),
  image_too_large: (f) => ({
    title: "This image is too large",
    message: `The image${f.width ? ` (${count(f.width)}×${count(f.height)})` : ""} has more than ${count(MAX_PIXELS)} pixels. Choose a smaller image.`,
  }),
  // The page scales images down before sending, so a 413 means the server's limit is lower
  // than the page's: quote the visitor's own file and the server's limit, when it says one.
  payload_too_large: (f) => ({
    title: "This image is too large",
    message:
      `${quoted(f.name)}${f.originalSize ? ` (${fileSize(f.originalSize)})` : ""} is too large for the classifier` +
      `${f.size ? `, even scaled down to ${fileSize(f.size)}` : ""}` +
      `${f.limitBytes > 0 ? `: it takes images up to ${fileSize(f.limitBytes)}` : ""}. Choose a smaller image.`,
  }),
  invalid_dimensions: () => ({
    title: "This image cannot be classified",
    message: "Its width or height is outside what the model accepts (1 to 16,384 pixels).",
  }),
  no_image_pasted: () => ({
    title: "Nothing to classify",
    message: "The clipboard holds no image. Copy an image itself (not a link to it), then paste again.",
  }),
  camera_denied: () => ({
    title: "The camera is blocked",
    message: "This page may not use the camera. Allow it in the browser’s site settings, or choose a file instead.",
  }),
  camera_missing: () => ({
    title: "No camera found",
    message: "This device has no camera the browser can use. Choose a file instead.",
  }),
  camera_busy: () => ({
    title: "The camera cannot start",
    message: "Another app may be using it. Close that app and try again, or choose a file instead.",
  }),
};

// The service's answers, by the API's codes (docs/contracts.md), then by HTTP status.
const SERVICE_TEXT = {
  // The browser online but the request failed: the service is down, not the visitor's line.
  network: { title: "Can’t reach the classifier", message: "It may be down for a moment. Try again in a little while.", retry: true },
  offline: { title: "You’re offline", message: "Check your internet connection, then try again.", retry: true },
  timeout: { title: "The classifier did not answer in time", message: "It may be starting up. Try again in a moment.", retry: true },
  model_not_ready: STARTING,
  model_busy: BUSY,
  model_unavailable: STARTING,
  model_timeout: STARTING,
  endpoint_not_found: { title: "The classifier is not available right now", message: "Please try again later.", retry: true },
  internal_error: SOMETHING_BROKE,
  model_error: SOMETHING_BROKE,
  bad_model_response: SOMETHING_BROKE,
  upstream_error: SOMETHING_BROKE,
  unexpected: SOMETHING_BROKE,
};

function byStatus(status) {
  if (status === 429) return BUSY;
  if (status === 503 || status === 504) return STARTING;
  if (status >= 500 || status === 0) return SOMETHING_BROKE;
  // Any other refusal means this page sent something the API does not take (a wrong
  // Content-Type, a stale page against a newer API): not the visitor's doing.
  return PAGE_OUT_OF_DATE;
}

/** @returns {{title: string, message: string, retry: boolean, reference: string}} */
export function describe(problem) {
  const facts = problem instanceof Problem ? problem.facts : {};
  let code = problem instanceof Problem ? problem.code : "unexpected";
  if (code === "network" && navigator.onLine === false) code = "offline";
  const reference = facts.requestId || "";
  if (FILE_TEXT[code]) return { ...FILE_TEXT[code](facts), retry: false, reference };
  const text = SERVICE_TEXT[code] || byStatus(facts.status ?? 0);
  let message = text.message;
  if (text.retry && facts.retryAfter > 0) {
    const seconds = facts.retryAfter === 1 ? "1 second" : `${facts.retryAfter} seconds`;
    message += ` The classifier suggests waiting ${seconds}.`;
  }
  return { title: text.title, message, retry: text.retry, reference };
}

// Feedback on an answer: a failure never touches the answer itself, so the words are short.
const FEEDBACK_TEXT = {
  feedback_disabled: { message: "This classifier is not collecting feedback right now.", retry: false },
  prediction_not_found: { message: "This answer can no longer take feedback.", retry: false },
  unknown_label: { message: "That label is not one of the model’s. Choose one from the list, or “Something else”.", retry: false },
  labels_unavailable: { message: "The label could not be checked, so it was not saved.", retry: false },
};

/** @returns {{message: string, retry: boolean}} */
export function describeFeedback(problem) {
  const facts = problem instanceof Problem ? problem.facts : {};
  const code = problem instanceof Problem ? problem.code : "unexpected";
  if (FEEDBACK_TEXT[code]) return FEEDBACK_TEXT[code];
  const status = facts.status ?? 0;
  if (code === "network" || code === "timeout" || status === 0 || status === 429 || status >= 500) {
    return { message: "Your feedback could not be sent. Try again in a moment.", retry: true };
  }
  return { message: "Your feedback could not be sent.", retry: false };
}
