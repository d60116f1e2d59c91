"""axe-core in every state of the page, in light, dark and forced-colors modes: no
violations. axe comes from node_modules (package.json), never from a CDN."""

from __future__ import annotations

import pytest

from hosting.config_js import SiteConfig, render_config_js
from local.ports import free_port
from tests.e2e.support import (
    choose_file,
    hold_predictions,
    run_axe,
    wait_for_error,
    wait_for_results,
    wait_until_held,
)

pytestmark = pytest.mark.slow

MODES = {
    "light": {"color_scheme": "light"},
    "dark": {"color_scheme": "dark"},
    "forced-colors": {"forced_colors": "active"},
}


@pytest.mark.parametrize("mode", MODES)
def test_axe_finds_no_violation_in_any_state(open_page, runtime, images, axe_source, mode):
    found = {}
    page = open_page(**MODES[mode])
    found["idle"] = run_axe(page, axe_source)

    held = hold_predictions(page)
    choose_file(page, images["cat"])
    wait_until_held(page, held)
    found["busy"] = run_axe(page, axe_source)

    held[0].continue_()
    wait_for_results(page)
    page.click("#code summary")  # the snippets and the credits are checked open too
    page.click(".credits summary")
    found["results"] = run_axe(page, axe_source)

    page.click("#feedback-no")
    page.wait_for_function("() => document.querySelectorAll('#feedback-labels option').length > 0")
    page.fill("#feedback-label", "not a label")
    page.click("#feedback-send")
    found["feedback picker, invalid"] = run_axe(page, axe_source)
    page.click("#feedback-skip")
    page.wait_for_selector("#feedback-status:not([hidden])")
    found["feedback thanks"] = run_axe(page, axe_source)

    page.route("**/api/feedback", lambda route: route.fulfill(status=503, body="{}"))
    choose_file(page, images["coffee"])
    wait_until_held(page, held, 2)
    held[1].continue_()
    page.wait_for_selector("#feedback-ask:not([hidden])")
    page.click("#feedback-yes")
    page.wait_for_selector("#feedback-retry:not([hidden])")
    found["feedback failed"] = run_axe(page, axe_source)

    choose_file(page, images["text"])
    wait_for_error(page)
    found["error"] = run_axe(page, axe_source)

    down = open_page(goto=False, **MODES[mode])
    dead_api = SiteConfig(f"http://127.0.0.1:{free_port()}", "local", "v", "random")
    down.route(
        "**/config.js",
        lambda route: route.fulfill(
            content_type="text/javascript", body=render_config_js(dead_api)
        ),
    )
    down.goto(runtime.site_url)
    choose_file(down, images["cat"])
    wait_for_error(down)
    found["API down"] = run_axe(down, axe_source)

    violations = {state: found[state] for state in found if found[state]}
    assert not violations, violations
