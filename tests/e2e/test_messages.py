"""Every message a visitor reads is written for a visitor; the operator's details go to the
console. Screen readers hear the busy state, the answer and errors, and focus stays visible."""

from __future__ import annotations

import re

import pytest

from hosting.config_js import SiteConfig, render_config_js
from local.ports import free_port
from tests.e2e.support import (
    PREDICT,
    choose_file,
    fulfill_json,
    hold_predictions,
    visible_text,
    wait_for_error,
    wait_for_results,
    wait_until_held,
)

pytestmark = pytest.mark.slow

# Words for an operator or a developer, never for a visitor.
JARGON = re.compile(r"content-type|application/json|base64|redeploy|config\.js|HTTP \d", re.I)


def console_of(page) -> list[str]:
    messages: list[str] = []
    page.on("console", lambda message: messages.append(message.text))
    return messages


def test_without_config_js_the_page_says_it_is_unavailable_not_why(open_page, runtime):
    page = open_page(goto=False)
    console = console_of(page)
    page.route("**/config.js", lambda route: route.fulfill(status=404, body="not found"))
    page.goto(runtime.site_url)
    page.wait_for_selector("#unavailable-notice:not([hidden])")

    assert page.inner_text("#unavailable-notice") == (
        "The classifier is not available right now. Please try again later."
    )
    assert page.is_hidden("#error"), "no image was chosen, so no image failed"
    assert page.is_disabled("#choose")
    assert not JARGON.search(visible_text(page))
    assert any("redeploy" in line for line in console), console


def test_a_server_error_blames_nobody_and_offers_a_retry(page, images):
    console = console_of(page)
    api_message = "Internal error; the traceback is in the log."
    page.route(
        PREDICT,
        lambda route: fulfill_json(
            route,
            500,
            {"error": {"code": "internal_error", "message": api_message}, "request_id": "req-500"},
        ),
    )
    choose_file(page, images["cat"])
    assert wait_for_error(page) == (
        "Something went wrong on our side\n"
        "Your image is fine. Try again; if it keeps failing, please come back later."
    )
    assert page.is_visible("#retry")
    assert page.inner_text("#error-detail") == "Reference for support: req-500"
    assert api_message not in visible_text(page)
    assert any(api_message in line and "req-500" in line for line in console), console

    page.unroute(PREDICT)
    page.click("#retry")
    wait_for_results(page)


def test_a_request_the_api_cannot_read_is_not_explained_to_the_visitor(page, images):
    """E.g. the API's answer to an empty body or a wrong Content-Type speaks to developers."""
    console = console_of(page)
    api_message = (
        "Content-Type multipart/form-data is not accepted: send the image bytes with its image "
        'Content-Type (e.g. image/jpeg), or application/json {"image": "<base64>"}.'
    )
    page.route(
        PREDICT,
        lambda route: fulfill_json(
            route,
            415,
            {"error": {"code": "unsupported_media_type", "message": api_message}},
        ),
    )
    choose_file(page, images["cat"])
    assert wait_for_error(page) == (
        "Something went wrong on our side\n"
        "This page and the classifier did not understand each other. "
        "Reload the page, then try again."
    )
    assert not JARGON.search(visible_text(page))
    assert any(api_message in line for line in console)


def test_a_cold_start_is_announced_and_its_retry_works(page, images):
    held = hold_predictions(page)
    choose_file(page, images["cat"])
    wait_until_held(page, held)
    assert page.inner_text("#announcer") == "Classifying chelsea.jpg…"
    assert page.get_attribute("#results-card", "aria-busy") == "true"
    # Past a few seconds a silent spinner looks broken: say what is going on.
    page.wait_for_function(
        "() => document.getElementById('announcer').textContent.startsWith('Still working')",
        timeout=5000,
    )
    assert page.inner_text("#busy-text").startswith("Still working: the classifier may be waking")

    fulfill_json(
        held[0],
        503,
        {
            "error": {"code": "model_not_ready", "message": "The endpoint is starting up."},
            "request_id": "req-503",
        },
        **{"retry-after": "2"},
    )
    assert wait_for_error(page) == (
        "The classifier is busy or starting up\n"
        "It can take a few seconds to wake up after a quiet spell. Try again in a moment. "
        "The classifier suggests waiting 2 seconds."
    )
    page.wait_for_function(
        "() => document.getElementById('announcer').textContent"
        ".startsWith('The classifier is busy or starting up.')"
    )

    # Keyboard: Try again, and focus lands somewhere visible next to what comes.
    page.unroute(PREDICT)
    page.focus("#retry")
    page.keyboard.press("Enter")
    focused = page.evaluate(
        """() => { const e = document.activeElement, s = getComputedStyle(e);
                   return [e.id, e.getBoundingClientRect().height > 0, s.outlineStyle]; }"""
    )
    assert focused == ["results-heading", True, "solid"]
    wait_for_results(page)
    assert page.inner_text("#announcer").startswith("chelsea.jpg: top label ")


def test_an_error_replaces_the_previous_answer_in_the_live_region(page, images):
    choose_file(page, images["cat"])
    wait_for_results(page)
    page.wait_for_function(
        "() => document.getElementById('announcer').textContent.includes('top label')"
    )
    choose_file(page, images["text"])
    wait_for_error(page)
    page.wait_for_function(
        "() => document.getElementById('announcer').textContent.startsWith('This file is not')"
    )
    assert "top label" not in page.inner_text("#announcer")


def test_the_api_being_down_is_said_plainly_with_a_retry(open_page, runtime, images):
    dead_api = f"http://127.0.0.1:{free_port()}"
    page = open_page(goto=False)
    page.route(
        "**/config.js",
        lambda route: route.fulfill(
            content_type="text/javascript",
            body=render_config_js(SiteConfig(dead_api, "local", "v", "random")),
        ),
    )
    page.goto(runtime.site_url)
    choose_file(page, images["cat"])
    assert wait_for_error(page) == (
        "Can\u2019t reach the classifier\nCheck your internet connection, then try again."
    )
    assert page.is_visible("#retry")


def test_the_page_is_headed_by_the_product_and_the_footer_keeps_internals_out(page):
    assert page.locator("h1").all_inner_texts() == ["Image classifier"]
    footer = page.inner_text("footer")
    api_url = page.evaluate("window.APP_CONFIG.apiUrl")
    assert api_url not in footer
    assert "local" not in footer.lower().split()
    assert "Environment" not in footer
