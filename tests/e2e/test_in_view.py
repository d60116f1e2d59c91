"""Every state ends in view, on every viewport: an error's title (with focus on it), the
slow notice on the photo and in the card, and on a phone the answer with a thumbnail and
"Try another" beside it. The phone's screenshots of these states are saved as artifacts."""

from __future__ import annotations

import re

import pytest

from tests.e2e.conftest import PHONE, VIEWPORTS
from tests.e2e.support import (
    PREDICT,
    choose_file,
    fulfill_json,
    hold_predictions,
    layout_shift_since,
    now,
    wait_for_error,
    wait_for_results,
    wait_for_top_label_in_view,
    wait_until_held,
)

pytestmark = pytest.mark.slow

IN_VIEW = """(selector) => {
  const element = document.querySelector(selector);
  if (!element || !element.getClientRects().length) return false;
  const box = element.getBoundingClientRect();
  return box.top >= 0 && box.bottom <= window.innerHeight && box.left >= 0
    && box.right <= window.innerWidth;
}"""


def wait_in_view(page, selector: str, timeout_ms: int = 3000) -> None:
    """`selector` ends inside the viewport (scrolling is smooth, so within a moment)."""
    page.wait_for_function(IN_VIEW, arg=selector, timeout=timeout_ms)


def _refuse_every_upload(page) -> None:
    page.route(
        PREDICT,
        lambda route: fulfill_json(
            route, 500, {"error": {"code": "internal_error", "message": "x"}, "request_id": "r"}
        ),
    )


FAILURES = {
    # Refused on the page, before anything is sent.
    "text-file": ("text", None, "This file is not an image"),
    "54-megapixel-png": ("png-bomb", None, "This image is too large"),
    # Failed after the upload: the photo stays on the stage above the card.
    "server-error": ("cat", _refuse_every_upload, "Something went wrong on our side"),
    "aborted-request": (
        "cat",
        lambda page: page.route(PREDICT, lambda route: route.abort("aborted")),
        "Can\u2019t reach the classifier",
    ),
    "stopped-server": (
        "cat",
        lambda page: page.route(PREDICT, lambda route: route.abort("connectionrefused")),
        "Can\u2019t reach the classifier",
    ),
}


@pytest.mark.parametrize("failure", FAILURES)
@pytest.mark.parametrize("viewport", VIEWPORTS)
def test_an_error_ends_with_its_title_in_view_and_focus_on_it(open_page, images, viewport, failure):
    image, arrange, title = FAILURES[failure]
    page = open_page(**VIEWPORTS[viewport])
    if arrange:
        arrange(page)
    choose_file(page, images[image])
    assert wait_for_error(page).startswith(title)
    wait_in_view(page, "#error-title")
    assert page.evaluate("document.activeElement.id") == "error-title"
    # The next Tab is the way on: try the same image again, or another one.
    page.keyboard.press("Tab")
    following = "retry" if page.is_visible("#retry") else "error-another"
    assert page.evaluate("document.activeElement.id") == following


def test_an_error_after_an_earlier_answer_is_not_cut_off(open_page, images, artifacts_dir):
    """The page is scrolled to the answer; the next image fails."""
    page = open_page(**PHONE)
    choose_file(page, images["cat"])
    wait_for_results(page)
    wait_for_top_label_in_view(page)
    choose_file(page, images["text"])
    wait_for_error(page)
    wait_in_view(page, "#error-title")
    wait_in_view(page, "#error-message")
    page.wait_for_timeout(400)  # the scroll settles
    page.screenshot(path=str(artifacts_dir / "phone-error.png"))
    page.tap("#error-another")
    wait_in_view(page, "#choose")
    assert page.evaluate("document.activeElement.id") == "choose"


CARD_ROOM = """() => {
  const card = document.getElementById("results-card").getBoundingClientRect();
  const alert = document.getElementById("error").getBoundingClientRect();
  return card.bottom - alert.bottom;
}"""


def test_on_a_phone_an_error_leaves_no_empty_card_and_offers_both_ways_on(
    open_page, images, artifacts_dir
):
    """The answer's reserved room is no empty card under an error; "Try again" and "Try
    another image" are both there, in view, with the inputs above them."""
    page = open_page(**PHONE)
    _refuse_every_upload(page)
    started = now(page)
    choose_file(page, images["cat"])
    wait_for_error(page)
    for selector in ("#error-title", "#retry", "#error-another"):
        wait_in_view(page, selector)
    page.wait_for_timeout(400)
    assert page.evaluate(CARD_ROOM) < 40, "at most the card's padding under the alert"
    assert page.evaluate(IN_VIEW, "#choose"), "the card's end at the screen's, inputs above"
    assert layout_shift_since(page, started) == 0
    page.screenshot(path=str(artifacts_dir / "phone-error-try-again.png"))
    page.tap("#error-another")
    wait_in_view(page, "#choose")


@pytest.mark.parametrize("viewport", VIEWPORTS)
def test_from_upload_to_an_error_nothing_shifts(open_page, images, viewport):
    page = open_page(**VIEWPORTS[viewport])
    _refuse_every_upload(page)
    started = now(page)
    choose_file(page, images["cat"])
    wait_for_error(page)
    wait_in_view(page, "#error-title")
    page.wait_for_timeout(400)
    shift = layout_shift_since(page, started)
    print(f"{viewport}: layout shift from upload to an error: {shift:.4f}")
    assert shift == 0


@pytest.mark.parametrize("viewport", VIEWPORTS)
def test_a_slow_answer_counts_seconds_and_says_why_on_the_photo_and_in_the_card(
    open_page, images, artifacts_dir, viewport
):
    page = open_page(**VIEWPORTS[viewport])
    held = hold_predictions(page)
    choose_file(page, images["cat"])
    wait_until_held(page, held)
    page.wait_for_function("() => !document.getElementById('stage-busy-slow').hidden", timeout=6000)
    overlay = page.inner_text(".stage-busy")
    assert re.match(r"Classifying… \d+ s\n", overlay), overlay
    assert overlay.endswith(
        "If the classifier has been idle, starting it takes up to half a minute."
    )
    assert page.inner_text("#busy") == overlay, "the card says the same"
    # Whole, on the photo: in view wherever the card is (below it on a phone).
    wait_in_view(page, ".stage-busy")
    # One calm line, said once to screen readers (not every second).
    assert page.inner_text("#announcer").startswith("Still classifying. If the classifier")
    if viewport == "phone-390x844":
        page.screenshot(path=str(artifacts_dir / "phone-slow.png"))
    held[0].continue_()
    wait_for_results(page)
    assert page.is_hidden(".stage-busy")


def test_on_a_phone_the_answer_has_a_thumbnail_and_try_another_beside_it(
    open_page, images, artifacts_dir
):
    page = open_page(**PHONE)
    choose_file(page, images["cat"])
    wait_for_results(page)
    wait_for_top_label_in_view(page)
    wait_in_view(page, "#answer-thumb")
    wait_in_view(page, "#try-another")
    assert page.get_attribute("#answer-thumb", "src").startswith("blob:")
    assert page.inner_text("#answer-name") == "chelsea.jpg"
    # Focus follows the answer down, so the next Tab is "Try another", not 1000 px above.
    assert page.evaluate("document.activeElement.id") == "results-heading"
    page.wait_for_timeout(400)  # the bars grow and the scroll settles
    page.screenshot(path=str(artifacts_dir / "phone-answer.png"))
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "try-another"

    page.tap("#try-another")
    wait_in_view(page, "#choose")
    wait_in_view(page, "#dropzone")
    assert page.evaluate("document.activeElement.id") == "choose"


LONG_NAME = "Ein Foto von unserer Katze Mimi im Garten, Sommer 2026 (bearbeitet).jpg"
WHOLE = """(selector) => {
  const element = document.querySelector(selector);
  const box = element.getBoundingClientRect();
  return element.scrollWidth <= element.clientWidth && element.scrollHeight <= element.clientHeight
    && box.left >= 0 && box.right <= window.innerWidth;
}"""


@pytest.mark.parametrize("viewport", ["small-320x568", "phone-390x844"])
def test_a_long_file_name_shows_in_full_beside_the_answer(
    open_page, images, tmp_path, viewport, artifacts_dir
):
    """A phone cannot show a tooltip: the whole name wraps, and nothing scrolls sideways."""
    named = tmp_path / LONG_NAME
    named.write_bytes(images["cat"].read_bytes())
    page = open_page(**VIEWPORTS[viewport])
    started = now(page)
    choose_file(page, named)
    wait_for_results(page)
    wait_for_top_label_in_view(page)
    page.wait_for_timeout(400)
    assert page.inner_text("#answer-name") == LONG_NAME
    assert page.evaluate(WHOLE, "#answer-name"), "no ellipsis, nothing clipped"
    wait_in_view(page, "#try-another")
    width = VIEWPORTS[viewport]["viewport"]["width"]
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    assert layout_shift_since(page, started) == 0
    if viewport == "small-320x568":
        page.screenshot(path=str(artifacts_dir / "small-answer-long-name.png"))


def test_on_a_desktop_the_photo_is_beside_the_answer_so_no_thumbnail(open_page, images):
    page = open_page(**VIEWPORTS["desktop-1440x900"])
    page.focus("#choose")
    choose_file(page, images["cat"])
    wait_for_results(page)
    assert page.is_hidden("#answer-head")
    assert page.evaluate("document.activeElement.id") == "choose", "nothing had to move"
