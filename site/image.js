// Turn whatever the user picked into the bytes we upload: decoded, scaled so the
// longest side is at most MAX_SIDE, flattened onto white and re-encoded as JPEG.
// Phone photos shrink from megabytes to ~100-300 KB, far below the API's limit.

export const MAX_SIDE = 1024;
const JPEG_QUALITY = 0.9;

function undecoded(file) {
  return { blob: file, type: "application/octet-stream", decoded: false };
}

function toBlob(canvas) {
  return new Promise((resolve) => canvas.toBlob(resolve, "image/jpeg", JPEG_QUALITY));
}

/**
 * @param {Blob} file
 * @returns {Promise<{blob: Blob, type: string, decoded: boolean,
 *                    width?: number, height?: number, scaled?: boolean}>}
 */
export async function prepareImage(file) {
  let bitmap;
  try {
    bitmap = await createImageBitmap(file, { imageOrientation: "from-image" });
  } catch {
    // Not something this browser can decode: send the bytes as they are and let the API,
    // which sniffs the real format, explain what they are (e.g. "HEIC/HEIF images are not
    // supported"). The file's own type is only a guess from its name, so it is not sent.
    return undecoded(file);
  }
  const scale = Math.min(1, MAX_SIDE / Math.max(bitmap.width, bitmap.height));
  const width = Math.max(1, Math.round(bitmap.width * scale));
  const height = Math.max(1, Math.round(bitmap.height * scale));

  const canvas = document.createElement("canvas");
  canvas.width = width;
  canvas.height = height;
  const context = canvas.getContext("2d");
  // Transparent pixels become white, as the model itself composites RGBA.
  context.fillStyle = "#ffffff";
  context.fillRect(0, 0, width, height);
  context.imageSmoothingQuality = "high";
  context.drawImage(bitmap, 0, 0, width, height);
  bitmap.close();

  const blob = await toBlob(canvas);
  canvas.width = canvas.height = 0; // release the backing store right away
  if (!blob) return undecoded(file);
  return { blob, type: "image/jpeg", decoded: true, width, height, scaled: scale < 1 };
}
