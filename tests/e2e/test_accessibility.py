"""axe-core in every state of the page, in light, dark and forced-colors modes: no
violations. axe comes from node_modules (package.json), never from a CDN."""

from __future__ import annotations

import pytest

from hosting.config_js import SiteConfig, render_config_js
from machine.ports import free_port
from tests.e2e.conftest import PHONE
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
    page.wait_for_function("() => !document.getElementById('busy-slow').hidden", timeout=6000)
    found["slow, with the counter and the cold-start line"] = run_axe(page, axe_source)

    held[0].continue_()
    wait_for_results(page)
    page.click("#code summary")  # the snippets and the credits are checked open too
    page.click(".credits summary")
    found["results"] = run_axe(page, axe_source)

    page.click("#feedback-no")
    page.wait_for_function("() => document.querySelectorAll('#feedback-labels option').length > 0")
    page.fill("#feedback-label", "cat")
    page.click("#feedback-send")
    page.wait_for_selector("#feedback-suggestions button")
    found["feedback picker, nearest labels"] = run_axe(page, axe_source)
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

    page.click("#history-clear")
    page.click("#knows summary")
    page.wait_for_selector("#knows-list li")
    page.fill("#knows-search", "cat")
    found["history cleared, the model's labels searched"] = run_axe(page, axe_source)

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
    print(f"{mode}: axe violations per state: { {state: len(found[state]) for state in found} }")
    assert not violations, violations


@pytest.mark.parametrize("mode", MODES)
def test_axe_finds_no_violation_on_a_phone(open_page, images, axe_source, mode):
    """The phone's own states: its wording, the answer's thumbnail and "Try another"."""
    found = {}
    page = open_page(**PHONE, **MODES[mode])
    found["idle"] = run_axe(page, axe_source)
    choose_file(page, images["cat"])
    wait_for_results(page)
    found["answer"] = run_axe(page, axe_source)
    page.click("#feedback-no")
    found["feedback picker"] = run_axe(page, axe_source)
    choose_file(page, images["png-bomb"])
    wait_for_error(page)
    found["error"] = run_axe(page, axe_source)
    violations = {state: found[state] for state in found if found[state]}
    print(f"phone, {mode}: axe violations per state: { {s: len(found[s]) for s in found} }")
    assert not violations, violations


def test_axe_finds_no_violation_without_a_camera(open_page, axe_source):
    page = open_page(permissions=["camera"])
    page.click("#use-camera")
    wait_for_error(page)
    assert run_axe(page, axe_source) == []
