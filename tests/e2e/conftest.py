"""A real browser (Debian's Chromium via Playwright) against a running `python -m local`."""

from __future__ import annotations

import io
import os
import struct
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from skimage import data

from local.process import LocalRuntime, local_runtime
from tests.conftest import ROOT
from tests.e2e.support import watch_performance

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
ARTIFACTS = ROOT / "test-artifacts"
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
DESKTOP = {"viewport": {"width": 1280, "height": 800}}
PHONE = {
    "viewport": {"width": 390, "height": 844},
    "device_scale_factor": 3,
    "is_mobile": True,
    "has_touch": True,
}
VIEWPORTS = {
    "phone-390x844": PHONE,
    "small-320x568": {"viewport": {"width": 320, "height": 568}},
    "landscape-844x390": {"viewport": {"width": 844, "height": 390}},
    "desktop-1440x900": {"viewport": {"width": 1440, "height": 900}},
}
"""The sizes every state is checked at: a phone (touch, scale 3), a small phone, a phone
on its side, a desktop."""


def _missing(reason: str) -> None:
    """Skip on a developer machine without the tool; fail in CI (REQUIRE_BROWSER=1)."""
    if os.environ.get("REQUIRE_BROWSER") == "1":
        pytest.fail(f"REQUIRE_BROWSER=1 but {reason}")
    pytest.skip(reason)


# Package scope, not session: Playwright's sync API keeps its event loop current while
# the browser lives, which would break the Pulumi mocks' loop in later test packages.
@pytest.fixture(scope="package")
def browser():
    if not CHROMIUM.exists():
        _missing(f"{CHROMIUM} is missing; install Debian's chromium package to run browser tests")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        yield browser
        browser.close()


@pytest.fixture(scope="package")
def runtime(model_artifact: Path) -> Iterator[LocalRuntime]:
    with local_runtime(model_artifact) as running:
        yield running


@pytest.fixture
def open_page(browser, runtime: LocalRuntime) -> Iterator[Callable[..., object]]:
    """`open_page(**context_options)`: a fresh context's page on the site, checked for
    uncaught errors when the test ends. `goto=False` leaves navigation (and routes that
    must exist before it) to the test."""
    contexts = []
    errors: list[str] = []

    def open_(goto: bool = True, **options):
        context = browser.new_context(**{**DESKTOP, **options})
        contexts.append(context)
        page = context.new_page()
        page.on("pageerror", lambda error: errors.append(str(error)))
        watch_performance(page)
        if goto:
            page.goto(runtime.site_url)
        return page

    yield open_
    for context in contexts:
        context.close()
    assert not errors, f"uncaught errors in the page: {errors}"


@pytest.fixture
def page(open_page):
    return open_page()


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


@pytest.fixture(scope="session")
def axe_source() -> str:
    """axe-core from node_modules (package.json, installed by `make test`), never a CDN."""
    if not AXE.is_file():
        _missing(f"{AXE.relative_to(ROOT)} is missing; run `npm ci` (make test does)")
    return AXE.read_text()


def _save(path: Path, image: Image.Image, **options) -> Path:
    image.save(path, **options)
    return path


def _write(path: Path, content: bytes) -> Path:
    path.write_bytes(content)
    return path


def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    crc = zlib.crc32(kind + payload)
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", crc)


def png_bomb(width: int, height: int) -> bytes:
    """A valid all-black 1-bit PNG: 400 megapixels in about 50 KB, a decompression bomb."""
    row = bytes(1 + (width + 7) // 8)  # filter byte + packed pixels
    compressor = zlib.compressobj(9)
    pixels = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", pixels)
        + _png_chunk(b"IEND", b"")
    )


def jpeg_with_frame_far_in(jpeg: bytes, padding: int = 120_000) -> bytes:
    """The same JPEG with application segments first, as large EXIF/ICC blocks put the
    frame header (and so the size) beyond the first 64 KB."""
    segments = []
    while padding > 0:
        size = min(padding, 65_000)
        segments.append(b"\xff\xef" + struct.pack(">H", size + 2) + bytes(size))
        padding -= size
    return jpeg[:2] + b"".join(segments) + jpeg[2:]


def _frame_header(jpeg: bytes) -> tuple[int, int]:
    """Offset and length of the frame header (SOF0-2) segment."""
    offset = 2
    while True:
        marker = jpeg[offset + 1]
        length = struct.unpack(">H", jpeg[offset + 2 : offset + 4])[0]
        if marker in (0xC0, 0xC1, 0xC2):
            return offset, length
        offset += 2 + length


def with_declared_size(jpeg: bytes, width: int, height: int) -> bytes:
    """The JPEG with its frame header claiming another size (the pixels stay small)."""
    offset, _ = _frame_header(jpeg)
    return jpeg[: offset + 5] + struct.pack(">HH", height, width) + jpeg[offset + 9 :]


def truncated_after_frame(jpeg: bytes) -> bytes:
    """A JPEG whose header (and size) is fine but whose image data never comes."""
    offset, length = _frame_header(jpeg)
    return jpeg[: offset + 2 + length] + bytes(20_000)


def _jpeg_bytes(image: Image.Image, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", **options)
    return buffer.getvalue()


@pytest.fixture(scope="session")
def images(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Real photos (scikit-image ships them) in the forms users upload, and the files the
    page must refuse before sending anything."""
    folder = tmp_path_factory.mktemp("images")
    cat = Image.fromarray(data.chelsea())
    coffee = Image.fromarray(data.coffee())
    alpha = np.zeros(coffee.size[::-1], dtype=np.uint8)
    alpha[40:-40, 60:-60] = 255  # an opaque cup on a transparent frame
    transparent = coffee.convert("RGBA")
    transparent.putalpha(Image.fromarray(alpha))
    # A phone-sized photo: 4000x3000 with sensor-like noise, well above the API's 3 MB limit.
    rng = np.random.default_rng(0)
    big = np.asarray(Image.fromarray(data.astronaut()).resize((4000, 3000)), dtype=np.int16)
    big = np.clip(big + rng.normal(0, 12, big.shape), 0, 255).astype(np.uint8)
    cat_jpeg = _jpeg_bytes(cat, quality=92)
    far = jpeg_with_frame_far_in(cat_jpeg)
    webp_bomb = b"VP8X" + struct.pack("<I", 10) + bytes(4) + (19_999).to_bytes(3, "little") * 2
    return {
        "cat": _write(folder / "chelsea.jpg", cat_jpeg),
        "coffee": _save(folder / "coffee.jpg", coffee, quality=92),
        "transparent": _save(folder / "cup.png", transparent),
        "large": _save(folder / "phone-photo.jpg", Image.fromarray(big), quality=95),
        "panorama": _save(folder / "panorama.jpg", coffee.resize((3000, 120)), quality=90),
        "very-wide": _save(folder / "very-wide.jpg", coffee.resize((20_000, 400)), quality=90),
        "tiny": _save(folder / "tiny.png", Image.new("RGB", (1, 1), (200, 40, 40))),
        "frame-far-in": _write(folder / "big-exif.jpg", far),
        # Refused from their headers, before decoding or sending.
        "png-bomb": _write(folder / "bomb.png", png_bomb(20_000, 20_000)),
        "jpeg-bomb": _write(folder / "bomb.jpg", with_declared_size(far, 60_000, 60_000)),
        "gif-bomb": _write(
            folder / "bomb.gif", b"GIF89a" + struct.pack("<HH", 65535, 65535) + bytes(3) + b";"
        ),
        "webp-bomb": _write(
            folder / "bomb.webp",
            b"RIFF" + struct.pack("<I", 4 + len(webp_bomb)) + b"WEBP" + webp_bomb,
        ),
        # Refused by their first bytes.
        "text": _write(folder / "notes.txt", b"shopping list: milk, eggs\n"),
        "zip": _write(folder / "photos.zip", b"PK\x03\x04" + bytes(200)),
        "pdf": _write(folder / "scan.pdf", b"%PDF-1.7\n" + bytes(200)),
        "heic": _write(folder / "IMG_0001.heic", b"\x00\x00\x00\x18ftypheic" + bytes(400)),
        "empty": _write(folder / "empty.jpg", b""),
        "junk": _write(folder / "holiday.jpg", rng.bytes(12 * 1024 * 1024)),
        "broken": _write(folder / "broken.jpg", truncated_after_frame(cat_jpeg)),
    }
