"""Where things land: the answer in view on a phone and at 200 % zoom, no layout shift
from upload to answer, focus and bars in forced colors, and screenshots of the results."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import PHONE, VIEWPORTS
from tests.e2e.support import (
    choose_file,
    hold_predictions,
    layout_shift_since,
    now,
    wait_for_results,
    wait_for_top_label_in_view,
    wait_until_held,
)

pytestmark = pytest.mark.slow

API_DELAY_MS = 2000


LOAD_SHIFT_BUDGET = 0.05


@pytest.mark.parametrize("viewport", VIEWPORTS)
def test_the_first_load_shifts_nothing_even_with_the_untrained_banner(open_page, viewport):
    """The local runtime's model is untrained, so its banner shows: it must take its
    place before the first paint, not push the page down after it."""
    page = open_page(**VIEWPORTS[viewport])
    page.wait_for_load_state("networkidle")
    page.wait_for_timeout(500)
    assert page.is_visible("#untrained-notice")
    shift = layout_shift_since(page, 0)
    print(f"{viewport}: layout shift while loading: {shift:.4f}")
    assert shift < LOAD_SHIFT_BUDGET


@pytest.mark.parametrize("viewport", VIEWPORTS)
def test_from_upload_to_answer_nothing_shifts_and_the_answer_is_in_view(
    open_page, images, viewport
):
    """Through every busy state: the counter, the line about cold starts, the answer."""
    page = open_page(**VIEWPORTS[viewport])
    width = VIEWPORTS[viewport]["viewport"]["width"]
    held = hold_predictions(page)
    started = now(page)
    choose_file(page, images["large"])
    wait_until_held(page, held)
    page.wait_for_function(
        "() => !document.getElementById('busy-slow').hidden", timeout=API_DELAY_MS + 4000
    )
    held[0].continue_()
    wait_for_results(page)
    wait_for_top_label_in_view(page)
    page.wait_for_timeout(400)

    shift = layout_shift_since(page, started)
    print(f"{viewport}: layout shift from upload to answer: {shift:.4f}")
    assert shift == 0
    assert page.evaluate("document.documentElement.scrollWidth") <= width


def test_at_200_percent_zoom_the_answer_arrives_in_view(open_page, images):
    # 1280x800 at 200 %: a 640x400 CSS-pixel viewport at twice the pixel density.
    page = open_page(viewport={"width": 640, "height": 400}, device_scale_factor=2)
    started = now(page)
    choose_file(page, images["cat"])
    wait_for_results(page)
    wait_for_top_label_in_view(page)
    assert layout_shift_since(page, started) < 0.1
    assert page.evaluate("document.documentElement.scrollWidth") <= 640


def test_forced_colors_keep_the_focus_ring_and_the_bars(open_page, images, artifacts_dir):
    page = open_page(forced_colors="active")
    page.focus("#choose")
    page.keyboard.press("Shift+Tab")
    page.keyboard.press("Tab")  # keyboard focus, so :focus-visible applies
    ring = page.evaluate(
        "() => { const s = getComputedStyle(document.activeElement);"
        " return [s.outlineStyle, parseFloat(s.outlineWidth)]; }"
    )
    assert ring[0] == "solid"
    assert ring[1] >= 2

    choose_file(page, images["cat"])
    wait_for_results(page)
    fill, track = page.evaluate(
        """() => {
          const fill = document.querySelector(".is-top .bar-fill");
          return [getComputedStyle(fill).backgroundColor,
                  getComputedStyle(fill.parentElement).backgroundColor];
        }"""
    )
    assert fill != track, "the bar must stand out from its track"
    page.screenshot(path=str(artifacts_dir / "results-desktop-forced-colors.png"))


@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize(
    ("width", "options"),
    [("phone", PHONE), ("desktop", {})],
)
def test_results_screenshots(open_page, images, artifacts_dir, scheme, width, options):
    page = open_page(color_scheme=scheme, **options)
    choose_file(page, images["cat"])
    wait_for_results(page)
    wait_for_top_label_in_view(page)
    page.wait_for_timeout(400)  # the bars grow and the scroll settles
    page.screenshot(path=str(artifacts_dir / f"results-{width}-{scheme}.png"))
    if width == "desktop":
        # Chromium drops touch emulation for a full-page capture, so a phone's full page
        # would show the desktop's controls; the phone's shot is its viewport, as seen.
        page.screenshot(
            path=str(artifacts_dir / f"results-{width}-{scheme}-full.png"), full_page=True
        )
