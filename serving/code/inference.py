"""SageMaker inference handler for any packaged image classifier: ONNX Runtime, Pillow
and NumPy only. What the network expects (resize, crop, interpolation, mean and std) and
its class names come from the archive's ``metadata.json``.

The SageMaker inference toolkit imports this module and calls, in order,
``model_fn(model_dir)`` once, then ``input_fn`` -> ``predict_fn`` -> ``output_fn`` per
request. ``serving.serve`` drives it the same way. Torch never loads here: cold start and
memory are what a serverless endpoint pays for.

Client errors are raised as the toolkit's ``BaseInferenceToolkitError`` (or an identical
local base where the toolkit is not installed). The toolkit answers those with
``status_code`` and a body that starts with ``message``; our message is the one-line JSON
``{"error": {"code": ..., "message": ...}}`` and the toolkit appends a newline and a
traceback after it, so callers parse the first line.
"""

from __future__ import annotations

import io
import json
import os
import warnings
from http import HTTPStatus
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
from PIL import Image, ImageFile, ImageOps

try:
    from sagemaker_inference.errors import BaseInferenceToolkitError
except ImportError:  # serving.serve, tests and the benchmark run without the toolkit

    class BaseInferenceToolkitError(Exception):  # type: ignore[no-redef]
        """Same contract as ``sagemaker_inference.errors.BaseInferenceToolkitError``."""

        def __init__(self, status_code: int, message: str, phrase: str) -> None:
            self.status_code = status_code
            self.message = message
            self.phrase = phrase
            super().__init__(status_code, message, phrase)


JSON = "application/json"
# Content types that may carry image bytes; the real format is always sniffed.
GENERIC_TYPES = frozenset(
    {"application/x-image", "application/octet-stream", "binary/octet-stream"}
)
# Magic numbers of the formats we decode; anything else is refused before Pillow sees it.
SIGNATURES = (
    (b"\xff\xd8\xff", "JPEG"),
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"GIF87a", "GIF"),
    (b"GIF89a", "GIF"),
)
FORMAT_NAMES = "JPEG, PNG, WebP or GIF"
TOP_K = 5  # at most; a model that knows fewer classes answers with all of them
# torchvision's InterpolationMode values, each with the Pillow filter torchvision itself
# resizes PIL images with (torchvision.transforms.functional.pil_modes_mapping).
RESAMPLING = {
    "nearest": Image.Resampling.NEAREST,
    "nearest-exact": Image.Resampling.NEAREST,
    "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC,
    "box": Image.Resampling.BOX,
    "hamming": Image.Resampling.HAMMING,
    "lanczos": Image.Resampling.LANCZOS,
}
# Beyond this aspect ratio the crop is resampled alone (see resize_center_crop).
MAX_RESIZED_ASPECT = 4


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    return int(value) if value else default


# A decompression bomb is a small file that declares a huge canvas: refuse on the
# declared size, before any pixel is decoded.
MAX_PIXELS = _env_int("MODEL_MAX_IMAGE_PIXELS", 50_000_000)
MAX_SIDE = _env_int("MODEL_MAX_IMAGE_SIDE", 16_384)
# Pillow's own guard stays as a second line (it raises at twice this size); its warning
# between one and two times is noise, since open_image refuses those sizes itself.
Image.MAX_IMAGE_PIXELS = MAX_PIXELS
warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)
# A truncated file is a client error, not something to guess the rest of.
ImageFile.LOAD_TRUNCATED_IMAGES = False


class RequestError(BaseInferenceToolkitError):
    """A client error with a 4xx status and the JSON error body of the contract."""

    def __init__(self, status: HTTPStatus, code: str, message: str) -> None:
        body = json.dumps({"error": {"code": code, "message": message}}, separators=(",", ":"))
        super().__init__(int(status), body, status.phrase)
        self.code = code
        self.detail = message


class Model:
    """What ``model_fn`` returns: the ONNX Runtime session and the archive metadata."""

    def __init__(self, model_dir: str | os.PathLike[str]) -> None:
        model_dir = Path(model_dir)
        metadata = json.loads((model_dir / "metadata.json").read_text(encoding="utf-8"))
        self.labels: list[str] = metadata["labels"]
        self.info = {
            "name": metadata["name"],
            "version": metadata["version"],
            "weights": metadata["weights"],
            # Archives from before the precision option all hold the fp32 export.
            "precision": metadata.get("precision", "fp32"),
            # Archives from before --labels all answer with ImageNet's classes.
            "num_classes": len(self.labels),
            "label_set": metadata.get("label_set", "imagenet"),
        }
        self.top_k = min(TOP_K, len(self.labels))
        prep = metadata["preprocessing"]
        self.resize_size = int(prep["resize_size"])
        self.crop_size = int(prep["crop_size"])
        self.resample = RESAMPLING[prep["interpolation"]]
        mean = np.asarray(prep["mean"], dtype=np.float32)
        std = np.asarray(prep["std"], dtype=np.float32)
        # (x / 255 - mean) / std as one multiply-add per pixel.
        self.scale = (1.0 / (255.0 * std)).astype(np.float32)[:, np.newaxis, np.newaxis]
        self.offset = (-mean / std).astype(np.float32)[:, np.newaxis, np.newaxis]
        self.session = ort.InferenceSession(
            str(model_dir / "model.onnx"),
            sess_options=_session_options(),
            providers=["CPUExecutionProvider"],
        )
        self.input_name = self.session.get_inputs()[0].name
        self.output_name = self.session.get_outputs()[0].name


def _session_options() -> ort.SessionOptions:
    options = ort.SessionOptions()
    # One thread per request: serving.serve runs a request per CPU at once, each calling
    # run() (thread-safe) on its own thread, so more intra-op threads would oversubscribe
    # the cores; on a small slice of CPU (Serverless) they only add spinning and memory.
    # Both counts are explicit and tunable per deployment.
    options.intra_op_num_threads = _env_int("MODEL_INTRA_OP_THREADS", 1)
    options.inter_op_num_threads = _env_int("MODEL_INTER_OP_THREADS", 1)
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return options


def model_fn(model_dir: str) -> Model:
    model = Model(model_dir)
    # The first run allocates and plans; pay for it here, not in the first request.
    warmup = np.zeros((1, 3, model.crop_size, model.crop_size), dtype=np.float32)
    (logits,) = model.session.run([model.output_name], {model.input_name: warmup})
    # A model and labels that disagree would mislabel every answer: refuse to start.
    if logits.shape != (1, len(model.labels)):
        raise ValueError(
            f"model.onnx answers {list(logits.shape)} for one image but metadata.json has "
            f"{len(model.labels)} labels"
        )
    return model


def input_fn(request_body: Any, request_content_type: str | None) -> Image.Image:
    """Check the request and open the image (header only). Decoding needs the model's
    sizes to shrink large photos early, so it happens in predict_fn."""
    media_type = (request_content_type or "").split(";", 1)[0].strip().lower()
    if media_type and not (media_type.startswith("image/") or media_type in GENERIC_TYPES):
        raise RequestError(
            HTTPStatus.UNSUPPORTED_MEDIA_TYPE,
            "unsupported_content_type",
            f"Content type {media_type!r} is not accepted: send the raw bytes of a "
            f"{FORMAT_NAMES} image (for example image/jpeg or application/octet-stream).",
        )
    if isinstance(request_body, str):
        raise RequestError(
            HTTPStatus.UNSUPPORTED_MEDIA_TYPE,
            "unsupported_content_type",
            f"The body is text, not the raw bytes of a {FORMAT_NAMES} image.",
        )
    body = bytes(request_body or b"")
    if not body:
        raise RequestError(HTTPStatus.BAD_REQUEST, "empty_body", "The request body is empty.")
    image_format = sniff_format(body)
    if image_format is None:
        raise RequestError(
            HTTPStatus.UNSUPPORTED_MEDIA_TYPE,
            "unsupported_image",
            f"The body is not a {FORMAT_NAMES} image.",
        )
    return open_image(body, image_format)


def sniff_format(body: bytes) -> str | None:
    for signature, name in SIGNATURES:
        if body.startswith(signature):
            return name
    if body[:4] == b"RIFF" and body[8:12] == b"WEBP":
        return "WEBP"
    return None


def open_image(body: bytes, image_format: str) -> Image.Image:
    """Open lazily, check the declared size, then decode (first frame only)."""
    try:
        image = Image.open(io.BytesIO(body), formats=[image_format])
    except Image.DecompressionBombError as error:
        raise _too_large() from error
    except MemoryError:
        raise
    except Exception as error:  # any failure to parse untrusted bytes is a bad image
        raise _corrupt(image_format) from error
    width, height = image.size
    if width < 1 or height < 1 or width > MAX_SIDE or height > MAX_SIDE:
        raise RequestError(
            HTTPStatus.BAD_REQUEST,
            "invalid_dimensions",
            f"The image declares {width}x{height} pixels; each side must be between 1 and "
            f"{MAX_SIDE}.",
        )
    if width * height > MAX_PIXELS:
        raise _too_large(width, height)
    return image


def _too_large(width: int | None = None, height: int | None = None) -> RequestError:
    size = f" ({width}x{height})" if width else ""
    return RequestError(
        HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
        "image_too_large",
        f"The image{size} has more than {MAX_PIXELS} pixels.",
    )


def _corrupt(image_format: str) -> RequestError:
    return RequestError(
        HTTPStatus.BAD_REQUEST,
        "corrupt_image",
        f"The {image_format} image is truncated or corrupt and cannot be decoded.",
    )


def predict_fn(image: Image.Image, model: Model) -> dict[str, Any]:
    batch = preprocess(image, model)
    (logits,) = model.session.run([model.output_name], {model.input_name: batch})
    return top_k(logits[0], model)


def preprocess(image: Image.Image, model: Model) -> np.ndarray:
    """torchvision's ``ImageClassification`` (resize short side, center crop, normalize)."""
    image_format = image.format or "image"
    try:
        rgb = decode_rgb(image, model.resize_size)
        crop = resize_center_crop(rgb, model.resize_size, model.crop_size, model.resample)
    except Image.DecompressionBombError as error:
        raise _too_large() from error
    except MemoryError:
        raise
    except Exception as error:  # decoders raise many types on malformed data
        raise _corrupt(image_format) from error
    # One pass from uint8 HWC to the float32 NCHW batch, with no temporaries.
    batch = np.empty((1, 3, model.crop_size, model.crop_size), dtype=np.float32)
    np.multiply(np.asarray(crop).transpose(2, 0, 1), model.scale, out=batch[0])
    batch += model.offset
    return batch


def decode_rgb(image: Image.Image, resize_size: int) -> Image.Image:
    """Decode to upright 8-bit RGB. Large photos shrink early by a whole factor, keeping
    at least twice the resize target so the resize filter still does the final
    antialiasing; photos up to 4x the target (928 px short side for a 232 resize) are
    untouched, so they match torchvision exactly."""
    if image.format in ("JPEG", "MPO"):  # MPO: a camera's multi-picture JPEG
        # JPEG decodes at 1/2, 1/4 or 1/8 scale in the DCT: the cheapest shrink there is.
        width, height = image.size
        scale = min(width, height) / (2 * resize_size)
        if scale >= 2:
            image.draft("RGB", (int(width / scale), int(height / scale)))
    image.load()
    ImageOps.exif_transpose(image, in_place=True)
    rgb = _to_rgb(image)
    factor = min(rgb.size) // (2 * resize_size)
    return rgb.reduce(factor) if factor >= 2 else rgb


def _to_rgb(image: Image.Image) -> Image.Image:
    mode = image.mode
    if mode == "RGB":
        return image
    if mode.startswith("I;16") or mode == "I":
        # 16-bit grayscale: scale to 8 bits instead of letting convert() clip at 255.
        wide = np.asarray(image, dtype=np.uint32)
        return Image.fromarray(((wide + 128) // 257).clip(0, 255).astype(np.uint8)).convert("RGB")
    if mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    elif mode in ("LA", "La", "PA", "RGBa"):
        image = image.convert("RGBA")
    if image.mode == "RGBA":
        # Transparent pixels become white, as a browser shows them on a page.
        background = Image.new("RGB", image.size, (255, 255, 255))
        background.paste(image, mask=image.getchannel("A"))
        return background
    return image.convert("RGB")


def resize_center_crop(
    image: Image.Image, resize_size: int, crop_size: int, resample: Image.Resampling
) -> Image.Image:
    """Resize the short side to ``resize_size``, then center-crop: torchvision's sizes
    and offsets (``_compute_resized_output_size``, ``center_crop``) and its PIL calls, so
    the pixels are identical to ``weights.transforms()``.

    A very wide or tall image would resize into a huge strip only to keep its middle;
    there Pillow's ``box`` resamples just the source region that maps to the crop (same
    filter, within one 8-bit step of the full resize) at the cost of a square image.
    """
    width, height = image.size
    short, long = (width, height) if width <= height else (height, width)
    new_long = int(resize_size * long / short)
    new_width, new_height = (resize_size, new_long) if width <= height else (new_long, resize_size)
    top = round((new_height - crop_size) / 2.0)
    left = round((new_width - crop_size) / 2.0)
    crop = (left, top, left + crop_size, top + crop_size)
    if (new_width, new_height) == (width, height):
        return image.crop(crop)
    if new_long <= MAX_RESIZED_ASPECT * resize_size:
        return image.resize((new_width, new_height), resample).crop(crop)
    sx, sy = width / new_width, height / new_height
    box = (left * sx, top * sy, (left + crop_size) * sx, (top + crop_size) * sy)
    return image.resize((crop_size, crop_size), resample, box=box)


def top_k(logits: np.ndarray, model: Model) -> dict[str, Any]:
    shifted = logits.astype(np.float64) - logits.max()
    probabilities = np.exp(shifted)
    probabilities /= probabilities.sum()
    best = np.argsort(-probabilities, kind="stable")[: model.top_k]
    return {
        "predictions": [
            {
                "label": model.labels[index],
                "index": int(index),
                "probability": float(probabilities[index]),
            }
            for index in best
        ],
        "model": dict(model.info),
    }


def output_fn(prediction: dict[str, Any], accept: str | None) -> tuple[str, str]:
    """Serialize as JSON; the toolkit takes the tuple's second item as the content type."""
    if not _accepts_json(accept):
        raise RequestError(
            HTTPStatus.NOT_ACCEPTABLE,
            "unsupported_accept",
            f"Accept {accept!r} is not supported: this model answers {JSON}.",
        )
    return json.dumps(prediction, separators=(",", ":")), JSON


def _accepts_json(accept: str | None) -> bool:
    if not accept:
        return True
    for part in accept.split(","):
        media_type = part.split(";", 1)[0].strip().lower()
        if media_type in (JSON, "application/*", "*/*"):
            return True
    return False
