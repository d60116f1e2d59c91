// Turn whatever the visitor picked into the bytes we upload. The file's header is checked
// first, without decoding: a non-image or an image bomb is refused with the API's own
// words and no round trip. Then it is decoded, scaled by its short side, trimmed to the
// payload budget if it is extremely long, flattened onto white and sent as JPEG.

import { MAX_PIXELS, MAX_UPLOAD_BYTES, Problem } from "./messages.js";

// The model resizes the short side to 232 px and keeps the central 224x224 square
// (serving/code/inference.py). 768 px on the short side is plenty for that and keeps a
// 4000x3000 photo at 1024x768 (~150 KB).
const SHORT_SIDE = 768;
const CROP_FRACTION = 224 / 232;
// A panorama keeps its short side and is trimmed around the middle, which holds the
// model's square anyway: 1.5 megapixels stays far below the 3 MB payload limit, and no
// side exceeds the model's 16,384 px.
const MAX_UPLOAD_PIXELS = 1536 * 1024;
const MAX_SIDE = 16_384;
const JPEG_QUALITY = 0.9;
const HEAD_BYTES = 64 * 1024;
// Below this the model mostly sees its own enlargement, so the result says so.
const SMALL_SIDE = 224;

const ascii = (bytes, start, end) => String.fromCharCode(...bytes.subarray(start, end));
const u16be = (b, i) => (b[i] << 8) | b[i + 1];
const u16le = (b, i) => b[i] | (b[i + 1] << 8);
const u24le = (b, i) => b[i] | (b[i + 1] << 8) | (b[i + 2] << 16);
const u32be = (b, i) => b[i] * 2 ** 24 + ((b[i + 1] << 16) | (b[i + 2] << 8) | b[i + 3]);
const u32le = (b, i) => b[i + 3] * 2 ** 24 + ((b[i + 2] << 16) | (b[i + 1] << 8) | b[i]);
const i32le = (b, i) => b[i] | (b[i + 1] << 8) | (b[i + 2] << 16) | (b[i + 3] << 24);

const HEIF_BRANDS = ["heic", "heix", "hevc", "hevx", "heim", "heis", "mif1", "msf1"];

/** What the first bytes say the file is, as the API's proxy/request.py sniffs it. */
function sniff(bytes) {
  if (bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff) return { format: "JPEG", supported: true };
  if (ascii(bytes, 0, 8) === "\x89PNG\r\n\x1a\n") return { format: "PNG", supported: true };
  if (ascii(bytes, 0, 4) === "RIFF" && ascii(bytes, 8, 12) === "WEBP") return { format: "WebP", supported: true };
  if (["GIF87a", "GIF89a"].includes(ascii(bytes, 0, 6))) return { format: "GIF", supported: true };
  // Image formats the model does not read. This browser may still decode them, and then
  // the page converts them to JPEG like any other photo.
  if (ascii(bytes, 4, 8) === "ftyp") {
    const brands = ascii(bytes, 8, 32);
    if (brands.includes("avif") || brands.includes("avis")) return { format: "AVIF", decodable: true };
    if (HEIF_BRANDS.includes(ascii(bytes, 8, 12))) return { format: "HEIC/HEIF", decodable: true };
  }
  if (ascii(bytes, 0, 2) === "BM") return { format: "BMP", decodable: true };
  if (["II*\x00", "MM\x00*"].includes(ascii(bytes, 0, 4))) return { format: "TIFF", decodable: true };
  if ((bytes[0] === 0xff && bytes[1] === 0x0a) || ascii(bytes, 0, 8) === "\x00\x00\x00\x0cJXL ") {
    return { format: "JPEG XL", decodable: true };
  }
  // Documents, never decoded here.
  if (ascii(bytes, 0, 5) === "%PDF-") return { format: "PDF" };
  if (ascii(bytes, 0, 64).trimStart().startsWith("<")) return { format: "SVG, XML or HTML" };
  return null;
}

async function readAt(file, head, offset, length) {
  if (offset + length <= head.length) return head.subarray(offset, offset + length);
  return new Uint8Array(await file.slice(offset, offset + length).arrayBuffer());
}

// Start-of-frame markers carry the size: SOF0-3, 5-7, 9-11, 13-15 (not DHT, JPG, DAC).
const isStartOfFrame = (marker) => marker >= 0xc0 && marker <= 0xcf && ![0xc4, 0xc8, 0xcc].includes(marker);

async function jpegSize(file, head) {
  // Walk the segments: EXIF thumbnails and ICC profiles may put the frame header far in.
  let offset = 2;
  while (offset + 9 <= file.size) {
    const segment = await readAt(file, head, offset, 9);
    if (segment[0] !== 0xff) return null;
    const marker = segment[1];
    if (marker === 0xff) {
      offset += 1; // fill byte
    } else if (marker === 0x01 || (marker >= 0xd0 && marker <= 0xd8)) {
      offset += 2; // markers without a length
    } else if (isStartOfFrame(marker)) {
      return { height: u16be(segment, 5), width: u16be(segment, 7) };
    } else if (marker === 0xda || marker === 0xd9) {
      return null; // image data or the end before any frame header
    } else {
      offset += 2 + u16be(segment, 2);
    }
  }
  return null;
}

function webpSize(b) {
  const chunk = ascii(b, 12, 16);
  if (chunk === "VP8 " && b[23] === 0x9d && b[24] === 0x01 && b[25] === 0x2a) {
    return { width: u16le(b, 26) & 0x3fff, height: u16le(b, 28) & 0x3fff };
  }
  if (chunk === "VP8L" && b[20] === 0x2f) {
    const bits = u32le(b, 21);
    return { width: (bits & 0x3fff) + 1, height: ((bits >>> 14) & 0x3fff) + 1 };
  }
  if (chunk === "VP8X") return { width: u24le(b, 24) + 1, height: u24le(b, 27) + 1 };
  return null;
}

function bmpSize(b) {
  if (u32le(b, 14) === 12) return { width: u16le(b, 18), height: u16le(b, 20) }; // OS/2 header
  return { width: Math.abs(i32le(b, 18)), height: Math.abs(i32le(b, 22)) };
}

/** The size the header declares, or null when the header is unreadable. */
async function declaredSize(file, head, format) {
  switch (format) {
    case "JPEG":
      return jpegSize(file, head);
    case "PNG":
      return ascii(head, 12, 16) === "IHDR" ? { width: u32be(head, 16), height: u32be(head, 20) } : null;
    case "GIF":
      return head.length >= 10 ? { width: u16le(head, 6), height: u16le(head, 8) } : null;
    case "WebP":
      return head.length >= 30 ? webpSize(head) : null;
    case "BMP":
      return head.length >= 26 ? bmpSize(head) : null;
    default:
      return undefined; // AVIF, HEIC, TIFF, JPEG XL: left to the decoder
  }
}

/**
 * Refuse what the API would refuse, from the header alone.
 * @returns {Promise<{format: string, supported: boolean}>}
 */
async function inspect(file) {
  const name = file.name || "";
  if (file.size === 0) throw new Problem("empty_image", { name });
  const head = new Uint8Array(await file.slice(0, HEAD_BYTES).arrayBuffer());
  const kind = sniff(head);
  if (!kind) throw new Problem("not_an_image", { name });
  if (!kind.supported && !kind.decodable) throw new Problem("unsupported_image_format", { name, format: kind.format });
  const size = await declaredSize(file, head, kind.format);
  if (size === null || (size && (size.width < 1 || size.height < 1))) {
    throw new Problem("corrupt_image", { name, format: kind.format });
  }
  if (size && size.width * size.height > MAX_PIXELS) {
    throw new Problem("image_too_large", { name, width: size.width, height: size.height });
  }
  return { format: kind.format, supported: Boolean(kind.supported) };
}

function toBlob(canvas) {
  return new Promise((resolve) => canvas.toBlob(resolve, "image/jpeg", JPEG_QUALITY));
}

/**
 * Scale by the short side, trim an extreme panorama around its middle, encode as JPEG.
 * @param {ImageBitmap} bitmap upright (EXIF orientation applied)
 */
async function encode(bitmap) {
  const { width, height } = bitmap;
  const short = Math.min(width, height);
  const scale = Math.min(1, SHORT_SIDE / short);
  // The longest side (in the bitmap's pixels) that fits the payload budget.
  const keep = Math.min(MAX_UPLOAD_PIXELS / (short * scale * scale), MAX_SIDE / scale);
  const sw = width > height ? Math.min(width, Math.floor(keep)) : width;
  const sh = height >= width ? Math.min(height, Math.floor(keep)) : height;
  const out = { width: Math.max(1, Math.round(sw * scale)), height: Math.max(1, Math.round(sh * scale)) };

  const canvas = document.createElement("canvas");
  canvas.width = out.width;
  canvas.height = out.height;
  const context = canvas.getContext("2d");
  // Transparent pixels become white, as the model itself composites RGBA.
  context.fillStyle = "#ffffff";
  context.fillRect(0, 0, out.width, out.height);
  context.imageSmoothingQuality = "high";
  context.drawImage(bitmap, (width - sw) / 2, (height - sh) / 2, sw, sh, 0, 0, out.width, out.height);
  bitmap.close();
  const blob = await toBlob(canvas);
  canvas.width = canvas.height = 0; // release the backing store right away
  if (!blob) throw new Problem("unexpected");
  if (blob.size > MAX_UPLOAD_BYTES) throw new Problem("payload_too_large", { size: blob.size, limitBytes: MAX_UPLOAD_BYTES });

  // The square the model keeps, as fractions of the uploaded image.
  const side = Math.min(out.width, out.height) * CROP_FRACTION;
  const crop = { x: (out.width - side) / 2 / out.width, y: (out.height - side) / 2 / out.height, w: side / out.width, h: side / out.height };
  return {
    blob,
    type: "image/jpeg",
    width: out.width,
    height: out.height,
    source: { width, height },
    scaled: scale < 1,
    trimmed: sw < width || sh < height,
    small: short < SMALL_SIDE,
    crop,
  };
}

/** Check, decode and encode a file the visitor picked. */
export async function prepareFile(file) {
  const { format, supported } = await inspect(file);
  let bitmap;
  try {
    bitmap = await createImageBitmap(file, { imageOrientation: "from-image" });
  } catch {
    // A format the model reads but this browser cannot decode is broken; any other
    // format is one this browser cannot convert either.
    throw new Problem(supported ? "corrupt_image" : "unsupported_image_format", { name: file.name, format });
  }
  return encode(bitmap);
}

/** Encode one of the site's own sample photos (an <img> that has loaded). */
export async function prepareImageElement(image) {
  return encode(await createImageBitmap(image));
}
