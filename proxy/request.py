"""Validation of a `POST /predict` event, before anything is sent to SageMaker.

Two request forms (docs/api.md): the raw image as the body with an image content type
(API Gateway hands it over base64-encoded), or `application/json` `{"image": "<base64 or data
URL>"}`. Sizes are checked on the encoded text first, so an oversized upload is refused
without decoding it.

The real format is then sniffed from the first bytes, whatever the Content-Type claims: that
turns the common mistakes (an iPhone HEIC photo, a PDF, an HTML error page saved as .jpg) into
a precise 415 or 422 before paying for a SageMaker invocation.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any

from proxy.responses import ApiError

_RAW_TYPES = ("application/octet-stream", "application/x-image")
# Room for the JSON punctuation, a data URL prefix and line breaks in the base64 text.
_JSON_OVERHEAD = 4096
_HOW_TO_SEND = (
    "send the image bytes with its image Content-Type (e.g. image/jpeg), "
    'or application/json {"image": "<base64>"}'
)
# The formats the model handler decodes.
_SUPPORTED_NAMES = "JPEG, PNG, WebP or GIF"
_HEIF_BRANDS = (b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1")


@dataclass(frozen=True)
class ImageUpload:
    data: bytes
    media_type: str
    form: str


def request_method(event: Any) -> str:
    """The HTTP method of a payload 2.0 event, or a 400 when the event is not one."""
    try:
        method = event["requestContext"]["http"]["method"]
    except (KeyError, TypeError):
        raise ApiError(
            400, "invalid_request", "The request is not an API Gateway HTTP API 2.0 event."
        ) from None
    return str(method).upper()


def parse_upload(event: dict[str, Any], max_bytes: int) -> ImageUpload:
    """The validated image of a POST event, or an `ApiError` (400, 413, 415 or 422)."""
    content_type = _content_type(event.get("headers"))
    body = event.get("body")
    if body is None or body == "" or body == b"":
        raise ApiError(400, "empty_body", f"The request has no body: {_HOW_TO_SEND}.")
    if not isinstance(body, str | bytes):
        raise ApiError(400, "invalid_request", "The event body is not text.")
    encoded = bool(event.get("isBase64Encoded"))
    if content_type == "application/json" or content_type.endswith("+json"):
        data = _image_from_json(body, encoded, max_bytes)
        form = "json"
    elif content_type.startswith("image/") or content_type in _RAW_TYPES:
        _check_size(len(body), encoded, max_bytes)
        data = _b64decode(body) if encoded else _as_bytes(body)
        form = "raw"
    else:
        shown = content_type or "missing"
        raise ApiError(
            415, "unsupported_media_type", f"Content-Type {shown} is not accepted: {_HOW_TO_SEND}."
        )
    if not data:
        raise ApiError(400, "empty_image", "The image is empty (0 bytes).")
    if len(data) > max_bytes:
        raise _too_large(len(data), max_bytes)
    return ImageUpload(data=data, media_type=_sniff_media_type(data), form=form)


def _sniff_media_type(data: bytes) -> str:
    """The media type to send to the model, or an `ApiError` saying what the bytes are."""
    supported = _supported_media_type(data)
    if supported is not None:
        return supported
    other = _unsupported_format(data)
    if other is not None:
        raise ApiError(
            415,
            "unsupported_image_format",
            f"{other} images are not supported; send a {_SUPPORTED_NAMES} image.",
        )
    raise ApiError(
        422,
        "not_an_image",
        f"The uploaded data is not a {_SUPPORTED_NAMES} image.",
    )


def _supported_media_type(data: bytes) -> str | None:
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    return None


def _unsupported_format(data: bytes) -> str | None:
    if data[4:8] == b"ftyp":
        if b"avif" in data[8:32] or b"avis" in data[8:32]:
            return "AVIF"
        if data[8:12] in _HEIF_BRANDS:
            return "HEIC/HEIF"
    if data.startswith(b"BM"):
        return "BMP"
    if data[:4] in (b"II*\x00", b"MM\x00*"):
        return "TIFF"
    if data.startswith((b"\xff\x0a", b"\x00\x00\x00\x0cJXL ")):
        return "JPEG XL"
    if data.startswith(b"%PDF-"):
        return "PDF"
    if data.lstrip()[:1] == b"<":
        return "SVG, XML or HTML"
    return None


def _content_type(headers: Any) -> str:
    if not isinstance(headers, dict):
        return ""
    for name, value in headers.items():
        if isinstance(name, str) and name.lower() == "content-type" and isinstance(value, str):
            return value.split(";", 1)[0].strip().lower()
    return ""


def _image_from_json(body: str | bytes, encoded: bool, max_bytes: int) -> bytes:
    limit = _b64_length(max_bytes) * 51 // 50 + _JSON_OVERHEAD
    if len(body) > (_b64_length(limit) if encoded else limit):
        text_length = len(body) * 3 // 4 if encoded else len(body)
        raise _too_large(text_length * 3 // 4, max_bytes)
    raw = _b64decode(body) if encoded else body
    try:
        document = json.loads(raw)
    except (ValueError, RecursionError):
        raise ApiError(
            400, "invalid_json", 'The body is not valid JSON; expected {"image": "<base64>"}.'
        ) from None
    image = document.get("image") if isinstance(document, dict) else None
    if not isinstance(image, str) or not image.strip():
        raise ApiError(
            400,
            "missing_image",
            'The JSON body has no "image" field; expected {"image": "<base64 or data URL>"}.',
        )
    text = image.strip()
    if text.startswith("data:"):
        header, comma, text = text.partition(",")
        if not comma or not header.lower().endswith(";base64"):
            raise ApiError(
                400,
                "invalid_base64",
                "A data URL must be base64-encoded, e.g. data:image/jpeg;base64,/9j/4AAQ...",
            )
    return _b64decode(text)


def _b64decode(text: str | bytes) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        pass
    # Tolerate what real clients send: line-wrapped output of `base64`, the URL-safe
    # alphabet, missing padding.
    try:
        compact = "".join(_as_text(text).split()).replace("-", "+").replace("_", "/")
        return base64.b64decode(compact + "=" * (-len(compact) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise ApiError(400, "invalid_base64", "The image is not valid base64.") from None


def _check_size(length: int, encoded: bool, max_bytes: int) -> None:
    if length > (_b64_length(max_bytes) if encoded else max_bytes):
        raise _too_large(length * 3 // 4 if encoded else length, max_bytes)


def _b64_length(size: int) -> int:
    return 4 * ((size + 2) // 3)


def _too_large(size: int, max_bytes: int) -> ApiError:
    return ApiError(
        413,
        "payload_too_large",
        f"The image is about {_megabytes(size)}; the limit is {_megabytes(max_bytes)}. "
        "Send a smaller image (a JPEG about 2000 pixels on its longest side is plenty).",
        limit_bytes=max_bytes,
    )


def _megabytes(size: int) -> str:
    return f"{size / (1024 * 1024):.1f} MB"


def _as_bytes(body: str | bytes) -> bytes:
    return body if isinstance(body, bytes) else body.encode("utf-8", "surrogateescape")


def _as_text(body: str | bytes) -> str:
    return body if isinstance(body, str) else body.decode("ascii", "replace")
