"""A real browser (Debian's Chromium via Playwright) against a running `python -m local`."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from skimage import data

from tests.local.runtime import ROOT, LocalRuntime, local_runtime

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


# Package scope, not session: Playwright's sync API keeps its event loop current while
# the browser lives, which would break the Pulumi mocks' loop in later test packages.
@pytest.fixture(scope="package")
def browser():
    if not CHROMIUM.exists():
        reason = f"{CHROMIUM} is missing; install Debian's chromium package to run browser tests"
        if os.environ.get("REQUIRE_BROWSER") == "1":
            pytest.fail(f"REQUIRE_BROWSER=1 but {reason}")
        pytest.skip(reason)
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
def page(browser, runtime: LocalRuntime):
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    page = context.new_page()
    messages: list[str] = []
    page.on("pageerror", lambda error: messages.append(str(error)))
    page.goto(runtime.site_url)
    yield page
    context.close()
    assert not messages, f"uncaught errors in the page: {messages}"


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


def _save(path: Path, image: Image.Image, **options) -> Path:
    image.save(path, **options)
    return path


@pytest.fixture(scope="session")
def images(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Real photos (scikit-image ships them) in the forms users upload."""
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
    return {
        "cat": _save(folder / "chelsea.jpg", cat, quality=92),
        "coffee": _save(folder / "coffee.jpg", coffee, quality=92),
        "transparent": _save(folder / "cup.png", transparent),
        "large": _save(folder / "phone-photo.jpg", Image.fromarray(big), quality=95),
        "text": _write(folder / "notes.txt", b"shopping list: milk, eggs\n"),
    }


def _write(path: Path, content: bytes) -> Path:
    path.write_bytes(content)
    return path
