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
const megabytes = (bytes) => `${(bytes / (1024 * 1024)).toFixed(1)} MB`;
const quoted = (name) => (name ? `“${name}”` : "This file");

const SOMETHING_BROKE = {
  title: "Something went wrong on our side",
  message: "Your image is fine. Try again; if it keeps failing, please come back later.",
  retry: true,
};
const BUSY = {
  title: "The classifier is busy or starting up",
  message: "It can take a few seconds to wake up after a quiet spell. Try again in a moment.",
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
  payload_too_large: (f) => ({
    title: "This image is too large",
    message: `The image is ${f.size ? `about ${megabytes(f.size)}` : "too large"}; the limit is ${megabytes(MAX_UPLOAD_BYTES)}. Choose a smaller image.`,
  }),
  invalid_dimensions: () => ({
    title: "This image cannot be classified",
    message: "Its width or height is outside what the model accepts (1 to 16,384 pixels).",
  }),
  no_image_pasted: () => ({
    title: "Nothing to classify",
    message: "The clipboard holds no image. Copy an image itself (not a link to it), then paste again.",
  }),
};

// The service's answers, by the API's codes (docs/contracts.md), then by HTTP status.
const SERVICE_TEXT = {
  network: { title: "Can’t reach the classifier", message: "Check your internet connection, then try again.", retry: true },
  timeout: { title: "The classifier did not answer in time", message: "It may be starting up. Try again in a moment.", retry: true },
  model_not_ready: BUSY,
  model_busy: BUSY,
  model_unavailable: BUSY,
  model_timeout: BUSY,
  endpoint_not_found: { title: "The classifier is not available right now", message: "Please try again later.", retry: true },
  internal_error: SOMETHING_BROKE,
  model_error: SOMETHING_BROKE,
  bad_model_response: SOMETHING_BROKE,
  upstream_error: SOMETHING_BROKE,
  unexpected: SOMETHING_BROKE,
};

function byStatus(status) {
  if (status === 429 || status === 503 || status === 504) return BUSY;
  if (status >= 500 || status === 0) return SOMETHING_BROKE;
  // Any other refusal means this page sent something the API does not take (a wrong
  // Content-Type, a stale page against a newer API): not the visitor's doing.
  return PAGE_OUT_OF_DATE;
}

/** @returns {{title: string, message: string, retry: boolean, reference: string}} */
export function describe(problem) {
  const facts = problem instanceof Problem ? problem.facts : {};
  const code = problem instanceof Problem ? problem.code : "unexpected";
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
  unknown_label: { message: "That label is not one of the model’s. Choose one from the list.", retry: false },
  labels_unavailable: { message: "The label could not be checked, so it was not saved.", retry: false },
};

/** @returns {{message: string, retry: boolean}} */
export function describeFeedback(problem) {
  const facts = problem instanceof Problem ? problem.facts : {};
  const code = problem instanceof Problem ? problem.code : "unexpected";
  if (FEEDBACK_TEXT[code]) return FEEDBACK_TEXT[code];
  const status = facts.status ?? 0;
  if (code === "network" || code === "timeout" || status === 0 || status === 429 || status >= 500) {
    return { message: "Your feedback could not be sent. Check your connection, then try again.", retry: true };
  }
  return { message: "Your feedback could not be sent.", retry: false };
}
