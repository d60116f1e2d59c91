"""What the page checks before decoding or sending: sizes from the file's header, formats
from its first bytes. Refusals use the API's words and cost no round trip."""

from __future__ import annotations

import pytest

from tests.e2e.support import (
    choose_file,
    count_predict_posts,
    longest_task_since,
    now,
    wait_for_error,
    wait_for_results,
)

pytestmark = pytest.mark.slow

FORMATS = "JPEG, PNG, WebP or GIF"
# The preview is the uploaded image itself.
NATURAL_SIZE = "['naturalWidth', 'naturalHeight'].map(k => document.getElementById('preview')[k])"


@pytest.mark.parametrize(
    ("image", "size"),
    [
        ("png-bomb", "20,000\u00d720,000"),
        ("jpeg-bomb", "60,000\u00d760,000"),
        ("gif-bomb", "65,535\u00d765,535"),
        ("webp-bomb", "20,000\u00d720,000"),
    ],
)
def test_an_image_bomb_is_refused_from_its_header_without_decoding(page, images, image, size):
    sent = count_predict_posts(page)
    started = now(page)
    choose_file(page, images[image])
    shown = wait_for_error(page)
    assert shown == (
        "This image is too large\n"
        f"The image ({size}) has more than 50,000,000 pixels. Choose a smaller image."
    )
    # Decoding 400 megapixels stalled the page for over a second; reading a header does not.
    assert longest_task_since(page, started) < 200
    assert not sent
    assert page.is_hidden("#retry"), "the same image would be refused again"


@pytest.mark.parametrize(
    ("image", "title", "message"),
    [
        ("text", "This file is not an image", f"“notes.txt” is not a {FORMATS} image."),
        ("zip", "This file is not an image", f"“photos.zip” is not a {FORMATS} image."),
        ("junk", "This file is not an image", f"“holiday.jpg” is not a {FORMATS} image."),
        (
            "pdf",
            "This image format is not supported",
            f"PDF files are not supported; choose a {FORMATS} image.",
        ),
        (
            "heic",
            "This image format is not supported",
            f"HEIC/HEIF files are not supported; choose a {FORMATS} image.",
        ),
        (
            "broken",
            "This image cannot be read",
            "The JPEG file is truncated or corrupt and cannot be decoded.",
        ),
        (
            "empty",
            "This file is empty",
            "“empty.jpg” has no content (0 bytes). Choose another image.",
        ),
    ],
)
def test_files_that_are_no_usable_image_never_leave_the_browser(
    page, images, image, title, message
):
    sent = count_predict_posts(page)
    choose_file(page, images[image])
    assert wait_for_error(page) == f"{title}\n{message}"
    assert not sent
    name = images[image].name
    # The caption names the file; it does not blame the browser.
    assert page.inner_text("#preview-caption") == f"{name} · not classified"
    assert page.is_hidden("#preview-figure")


def test_a_panorama_keeps_its_short_side_and_the_crop_is_marked(page, images):
    """3000x120 used to go out as 1024x41: the model enlarged a 41 px strip."""
    choose_file(page, images["panorama"])
    wait_for_results(page)
    sent = page.evaluate(NATURAL_SIZE)
    assert sent == [3000, 120]
    # The outlined square is the middle the model keeps: 224/232 of the short side.
    crop = page.locator(".crop").bounding_box()
    frame = page.locator("#preview-frame").bounding_box()
    assert crop["width"] / frame["width"] == pytest.approx(120 * 224 / 232 / 3000, rel=0.15)
    assert crop["height"] == pytest.approx(frame["height"] * 224 / 232, abs=2)
    assert crop["x"] + crop["width"] / 2 == pytest.approx(frame["x"] + frame["width"] / 2, abs=2)


def test_an_extreme_panorama_is_trimmed_to_the_payload_budget_around_its_middle(page, images):
    choose_file(page, images["very-wide"])
    wait_for_results(page)
    width, height = page.evaluate(NATURAL_SIZE)
    assert height == 400, "the short side is not scaled down"
    assert width * height <= 1536 * 1024
    assert f"20,000\u00d7400 px, sent as its middle {width:,}\u00d7400" in page.inner_text(
        "#preview-caption"
    )


def test_a_tiny_image_comes_with_a_warning(page, images):
    choose_file(page, images["tiny"])
    wait_for_results(page)
    note = page.inner_text("#small-note")
    assert note.startswith(
        "Small image (1\u00d71 px): the model scales its short side up to 224 px"
    )
    # Shown enlarged, pixel for pixel, not blown up to the whole box.
    box = page.locator("#preview-frame").bounding_box()
    assert 100 < box["width"] < 200
