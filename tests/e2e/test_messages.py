"""Every message a visitor reads is written for a visitor; the operator's details go to the
console. Screen readers hear the busy state, the answer and errors, and focus stays visible."""

from __future__ import annotations

import re

import pytest

from hosting.config_js import SiteConfig, render_config_js
from machine.ports import free_port
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
    # The drop zone no longer invites a drop or a click.
    assert page.locator("#dropzone-empty p:visible").all_inner_texts() == [
        "Images can\u2019t be classified right now"
    ]
    stage = page.evaluate(
        "() => { const s = getComputedStyle(document.getElementById('dropzone'));"
        " return [s.cursor, s.borderStyle]; }"
    )
    assert stage == ["default", "solid"]
    opened: list = []
    page.on("filechooser", lambda chooser: opened.append(chooser))
    page.click("#dropzone")
    page.wait_for_timeout(300)
    assert not opened
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
    # No promise of a support desk the page cannot name: what the reference is for.
    assert page.inner_text("#error-detail") == (
        "Reference: req-500 (it finds this request in the classifier\u2019s logs)"
    )
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
    # Past a few seconds a silent spinner looks broken: say what may be going on.
    page.wait_for_function(
        "() => document.getElementById('announcer').textContent.startsWith('Still classifying')",
        timeout=6000,
    )
    assert page.inner_text("#busy-slow") == (
        "If the classifier has been idle, starting it takes up to half a minute."
    )

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
        "The classifier is starting up\n"
        "After a quiet spell it takes up to half a minute to start. Try again in a moment. "
        "The classifier suggests waiting 2 seconds."
    )
    page.wait_for_function(
        "() => document.getElementById('announcer').textContent"
        ".startsWith('The classifier is starting up.')"
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
    # The visitor's connection works (the page loaded): the service is down, not their line.
    assert wait_for_error(page) == (
        "Can\u2019t reach the classifier\nIt may be down for a moment. Try again in a little while."
    )
    assert page.is_visible("#retry")


def test_only_an_offline_browser_is_told_to_check_its_connection(page, images):
    page.context.set_offline(True)
    choose_file(page, images["cat"])
    assert wait_for_error(page) == (
        "You\u2019re offline\nCheck your internet connection, then try again."
    )
    page.context.set_offline(False)
    page.click("#retry")
    wait_for_results(page)


def test_a_429_says_busy_not_waking_up(page, images):
    page.route(PREDICT, lambda route: fulfill_json(route, 429, {"message": "Too Many Requests"}))
    choose_file(page, images["cat"])
    assert wait_for_error(page) == (
        "The classifier is busy\nMany images are being classified right now. Try again in a moment."
    )


def test_a_413_quotes_the_visitors_file_and_the_servers_limit(page, images):
    """The page sends a scaled-down JPEG; a server with a lower limit than the page's says
    its own (error.limit_bytes), and the page words it from the file the visitor chose."""
    page.route(
        PREDICT,
        lambda route: fulfill_json(
            route,
            413,
            {
                "error": {
                    "code": "payload_too_large",
                    "message": "The image is about 0.2 MB; the limit is 0.1 MB.",
                    "limit_bytes": 100 * 1024,
                },
                "request_id": "r",
            },
        ),
    )
    original = images["large"].stat().st_size
    choose_file(page, images["large"])
    shown = wait_for_error(page)
    sent = re.search(r"even scaled down to (\d+) KB", shown)
    assert sent, shown
    assert shown == (
        "This image is too large\n"
        f"\u201cphone-photo.jpg\u201d ({original / 1024 / 1024:.1f} MB) is too large for the "
        f"classifier, even scaled down to {sent[1]} KB: it takes images up to 100 KB. "
        "Choose a smaller image."
    )


def test_the_page_is_headed_by_the_product_and_the_footer_keeps_internals_out(page):
    assert page.locator("h1").all_inner_texts() == ["Image classifier"]
    footer = page.inner_text("footer")
    api_url = page.evaluate("window.APP_CONFIG.apiUrl")
    assert api_url not in footer
    assert "local" not in footer.lower().split()
    assert "Environment" not in footer
