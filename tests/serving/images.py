"""Request bodies for the handler and server tests: every accepted format, every bad input.

Made in memory from a real photo (scikit-image ships it offline) or from synthetic
pixels whose expected decoding is known exactly.
"""

from __future__ import annotations

import io
import struct
import zlib
from dataclasses import dataclass
from functools import cache

import numpy as np
import skimage.data
from PIL import Image

RED = (220, 20, 20)
BLUE = (20, 20, 220)
WHITE = (255, 255, 255)


@dataclass(frozen=True)
class Good:
    name: str
    body: bytes
    content_type: str | None


@dataclass(frozen=True)
class Bad:
    name: str
    body: bytes
    content_type: str | None
    status: int
    code: str


@cache
def photo() -> Image.Image:
    return Image.fromarray(skimage.data.chelsea())


def encode(image: Image.Image, image_format: str, **params: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, image_format, **params)
    return buffer.getvalue()


def halves(size: tuple[int, int] = (200, 100)) -> Image.Image:
    """Left half red, right half blue: orientation shows in where the colours end up."""
    image = Image.new("RGB", size, RED)
    image.paste(BLUE, (size[0] // 2, 0, size[0], size[1]))
    return image


def jpeg_with_orientation(orientation: int) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation
    return encode(halves(), "JPEG", quality=95, exif=exif)


def transparent_rgba() -> bytes:
    return encode(Image.new("RGBA", (64, 48), (*RED, 0)), "PNG")


def palette_with_transparency() -> bytes:
    image = Image.new("P", (64, 48), 0)
    image.putpalette([*RED, *BLUE] + [0, 0, 0] * 254)
    return encode(image, "PNG", transparency=0)


def gray16(value: int) -> bytes:
    array = np.full((48, 64), value, dtype=np.uint16)
    return encode(Image.fromarray(array), "PNG")


def animated_gif() -> bytes:
    frames = [Image.new("RGB", (64, 48), RED), Image.new("RGB", (64, 48), BLUE)]
    return encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100)


def png_declaring(width: int, height: int) -> bytes:
    """A valid PNG signature and header declaring any size, with almost no pixel data:
    how a decompression bomb or an absurd image looks before decoding."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\0" * 16))
        + chunk(b"IEND", b"")
    )


def gif_declaring(width: int, height: int) -> bytes:
    screen = struct.pack("<HHBBB", width, height, 0, 0, 0)
    image = b"," + struct.pack("<HHHHB", 0, 0, width, height, 0) + b"\x02\x02\x44\x01\x00;"
    return b"GIF89a" + screen + image


def corrupt_png() -> bytes:
    data = bytearray(encode(photo(), "PNG"))
    middle = len(data) // 2
    data[middle : middle + 64] = bytes(64)
    return bytes(data)


@cache
def good_cases() -> tuple[Good, ...]:
    rgb = photo()
    rgba = rgb.convert("RGBA")
    jpeg = encode(rgb, "JPEG", quality=90)
    return (
        Good("jpeg", jpeg, "image/jpeg"),
        Good("jpeg_progressive", encode(rgb, "JPEG", progressive=True), "image/jpeg"),
        Good("jpeg_exif_rotated", jpeg_with_orientation(6), "image/jpeg"),
        Good("jpeg_grayscale", encode(rgb.convert("L"), "JPEG"), "image/jpeg"),
        Good("jpeg_cmyk", encode(rgb.convert("CMYK"), "JPEG"), "image/jpeg"),
        Good("jpeg_mpo", encode(rgb, "MPO", save_all=True, append_images=[rgb]), "image/jpeg"),
        Good("png_rgb", encode(rgb, "PNG"), "image/png"),
        Good("png_rgba", encode(rgba, "PNG"), "image/png"),
        Good("png_rgba_transparent", transparent_rgba(), "image/png"),
        Good("png_palette", encode(rgb.convert("P"), "PNG"), "image/png"),
        Good("png_palette_transparent", palette_with_transparency(), "image/png"),
        Good("png_grayscale", encode(rgb.convert("L"), "PNG"), "image/png"),
        Good("png_grayscale_alpha", encode(rgb.convert("LA"), "PNG"), "image/png"),
        Good("png_bilevel", encode(rgb.convert("1"), "PNG"), "image/png"),
        Good("png_16bit_grayscale", gray16(40_000), "image/png"),
        Good("webp_lossy", encode(rgb, "WEBP", quality=80), "image/webp"),
        Good(
            "webp_lossless_rgba", encode(rgb.convert("RGBA"), "WEBP", lossless=True), "image/webp"
        ),
        Good("gif_animated", animated_gif(), "image/gif"),
        Good("x_image", jpeg, "application/x-image"),
        Good("octet_stream", jpeg, "application/octet-stream"),
        Good("no_content_type", jpeg, None),
        Good("content_type_with_parameters", jpeg, "image/jpeg; charset=binary"),
        Good("mislabelled_png_as_jpeg", encode(rgb, "PNG"), "image/jpeg"),
    )


@cache
def bad_cases() -> tuple[Bad, ...]:
    jpeg = encode(photo(), "JPEG", quality=90)
    png = encode(photo(), "PNG")
    return (
        Bad("empty", b"", "image/jpeg", 400, "empty_body"),
        Bad("text", b"hello, world", "image/jpeg", 415, "unsupported_image"),
        Bad(
            "html",
            b"<!doctype html><p>hi</p>",
            "application/octet-stream",
            415,
            "unsupported_image",
        ),
        Bad("bmp", encode(photo(), "BMP"), "image/bmp", 415, "unsupported_image"),
        Bad("tiff", encode(photo(), "TIFF"), "image/tiff", 415, "unsupported_image"),
        Bad("text_content_type", jpeg, "text/plain", 415, "unsupported_content_type"),
        Bad(
            "json_content_type",
            b'{"image": ""}',
            "application/json",
            415,
            "unsupported_content_type",
        ),
        Bad("truncated_jpeg", jpeg[: len(jpeg) // 2], "image/jpeg", 400, "corrupt_image"),
        Bad("jpeg_signature_only", jpeg[:3], "image/jpeg", 400, "corrupt_image"),
        Bad("truncated_png", png[: len(png) // 2], "image/png", 400, "corrupt_image"),
        Bad("corrupt_png", corrupt_png(), "image/png", 400, "corrupt_image"),
        Bad("truncated_gif", animated_gif()[:40], "image/gif", 400, "corrupt_image"),
        Bad("truncated_webp", encode(photo(), "WEBP")[:60], "image/webp", 400, "corrupt_image"),
        Bad("png_bomb", png_declaring(10_000, 10_000), "image/png", 413, "image_too_large"),
        Bad("png_huge_bomb", png_declaring(16_000, 16_000), "image/png", 413, "image_too_large"),
        Bad("gif_bomb", gif_declaring(16_000, 16_000), "image/gif", 413, "image_too_large"),
        Bad("png_absurd_width", png_declaring(100_000, 1), "image/png", 400, "invalid_dimensions"),
        Bad("gif_absurd_height", gif_declaring(1, 60_000), "image/gif", 400, "invalid_dimensions"),
    )
