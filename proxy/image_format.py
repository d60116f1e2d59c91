"""Magic-byte sniffing: the real format of an upload, whatever its Content-Type claims.

Sniffing here turns the common mistakes (an iPhone HEIC photo, a PDF, an HTML error page
saved as .jpg) into a precise 415 or 422 before paying for a SageMaker invocation.
"""

from __future__ import annotations

from proxy.errors import ApiError

# The formats the model handler decodes, by the media type it is sent with.
SUPPORTED = {
    "jpeg": "image/jpeg",
    "png": "image/png",
    "webp": "image/webp",
    "gif": "image/gif",
}

_SUPPORTED_NAMES = "JPEG, PNG, WebP or GIF"

_HEIF_BRANDS = (b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1")


def sniff_media_type(data: bytes) -> str:
    """The media type to send to the model, or an `ApiError` saying what the bytes are."""
    supported = _supported_format(data)
    if supported is not None:
        return SUPPORTED[supported]
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


def _supported_format(data: bytes) -> str | None:
    if data.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "gif"
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
