// The desktop's camera (phones use their own camera app through <input capture>): a live
// preview in the drop zone's box, "Take photo", and the frame handed on as a JPEG file, so
// it goes through the same checks and scaling as any file. The stream stops whenever the
// preview closes: after a photo, on "Close camera", on Escape, or when the page is hidden.
// Loaded the first time the camera is asked for.

import { Problem } from "./messages.js";

const $ = (id) => document.getElementById(id);
const ui = {
  stage: $("dropzone"),
  empty: $("dropzone-empty"),
  figure: $("preview-figure"),
  box: $("camera"),
  video: $("camera-video"),
  capture: $("camera-capture"),
  close: $("camera-close"),
};
let stream = null;
let handlers = null;
let restore = null; // what the stage showed before the camera

function problemOf(error) {
  const name = error && error.name;
  if (name === "NotAllowedError" || name === "SecurityError") return new Problem("camera_denied", { serverMessage: String(error) });
  if (name === "NotFoundError" || name === "OverconstrainedError") return new Problem("camera_missing", { serverMessage: String(error) });
  return new Problem("camera_busy", { serverMessage: String(error) });
}

function stop() {
  for (const track of stream?.getTracks() || []) track.stop();
  stream = null;
  ui.video.srcObject = null;
}

/** Close the preview: the camera is released and the stage shows what it showed before. */
export function close({ focus = true } = {}) {
  if (!restore) return;
  stop();
  ui.box.hidden = true;
  ui.capture.disabled = true;
  ui.empty.hidden = restore.emptyHidden;
  ui.figure.hidden = restore.figureHidden;
  ui.stage.dataset.state = restore.state;
  restore = null;
  if (focus) handlers?.onClose();
}

async function capture() {
  const { videoWidth: width, videoHeight: height } = ui.video;
  if (!width || !height) return;
  const canvas = document.createElement("canvas");
  canvas.width = width;
  canvas.height = height;
  canvas.getContext("2d").drawImage(ui.video, 0, 0, width, height);
  const blob = await new Promise((resolve) => canvas.toBlob(resolve, "image/jpeg", 0.92));
  canvas.width = canvas.height = 0;
  close({ focus: false });
  if (!blob) return;
  const time = new Date().toTimeString().slice(0, 8).replaceAll(":", "-");
  handlers.onPhoto(new File([blob], `camera-${time}.jpg`, { type: "image/jpeg" }));
}

/**
 * Ask for the camera and show its preview in the drop zone.
 * @param {{onPhoto(file: File): void, onProblem(problem: Problem): void, onClose(): void}} on
 */
export async function open(on) {
  handlers = on;
  if (restore) return;
  if (!navigator.mediaDevices?.getUserMedia) {
    on.onProblem(new Problem("camera_missing", { serverMessage: "no navigator.mediaDevices" }));
    return;
  }
  restore = { emptyHidden: ui.empty.hidden, figureHidden: ui.figure.hidden, state: ui.stage.dataset.state };
  ui.empty.hidden = true;
  ui.figure.hidden = true;
  ui.box.hidden = false;
  ui.stage.dataset.state = "camera";
  ui.close.focus();
  try {
    const requested = await navigator.mediaDevices.getUserMedia({
      video: { width: { ideal: 1280 }, height: { ideal: 720 } },
      audio: false,
    });
    if (!restore) {
      // Closed while the browser was still asking.
      for (const track of requested.getTracks()) track.stop();
      return;
    }
    stream = requested;
    ui.video.srcObject = stream;
    await ui.video.play();
    ui.capture.disabled = false;
    ui.capture.focus();
  } catch (error) {
    close({ focus: false });
    on.onProblem(problemOf(error));
  }
}

ui.capture.addEventListener("click", capture);
ui.close.addEventListener("click", () => close());
ui.box.addEventListener("keydown", (event) => {
  if (event.key === "Escape") close();
});
document.addEventListener("visibilitychange", () => {
  if (document.hidden) close({ focus: false });
});
