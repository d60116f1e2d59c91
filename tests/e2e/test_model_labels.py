""" "What this model knows": the deployed model's labels from GET /api/labels, searchable,
fetched (code and data) only when the visitor opens the section."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import PHONE

pytestmark = pytest.mark.slow


def test_the_models_labels_load_on_demand_and_can_be_searched(open_page, runtime):
    page = open_page(goto=False)
    fetched: list[str] = []
    page.on("request", lambda request: fetched.append(request.url))
    page.goto(runtime.site_url, wait_until="networkidle")
    assert not [url for url in fetched if "/labels" in url or url.endswith("/knows.js")]

    page.click("#knows summary")
    page.wait_for_function("() => document.querySelectorAll('#knows-list li').length === 1000")
    version = page.evaluate("window.APP_CONFIG.modelVersion")
    assert f"{runtime.site_url}/api/labels?version={version}" in fetched
    assert page.inner_text("#knows-status") == (
        "It knows 1,000 labels; an answer lists up to five of them, most likely first."
    )

    page.fill("#knows-search", "cat")
    shown = page.locator("#knows-list li").all_inner_texts()
    assert shown[:5] == [
        "tiger cat",
        "Persian cat",
        "Siamese cat",
        "Egyptian cat",
        "Madagascar cat",
    ]
    assert "catamaran" in shown
    assert all("cat" in label.lower() for label in shown), "close spellings are no match"
    assert not {"cab", "bathing cap", "can opener"} & set(shown)
    assert page.inner_text("#knows-status") == f"{len(shown)} of 1,000 labels match “cat”."

    page.fill("#knows-search", "tabbby")  # a typo: no match, its close spelling suggested
    assert page.locator("#knows-list li").count() == 0
    assert page.inner_text("#knows-status") == "No label matches “tabbby”. Did you mean “tabby”?"
    page.fill("#knows-search", "qqqxzzz")
    assert page.locator("#knows-list li").count() == 0
    assert page.inner_text("#knows-status") == "No label matches “qqqxzzz”."
    assert len([url for url in fetched if "/labels" in url]) == 1


def test_on_a_phone_the_list_stays_in_its_box(open_page):
    page = open_page(**PHONE)
    page.click("#knows summary")
    page.wait_for_function("() => document.querySelectorAll('#knows-list li').length === 1000")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    box = page.locator("#knows-list").bounding_box()
    assert box["height"] < 844 / 2, "a scrolling box, not a page of a thousand lines"


def test_labels_that_fail_to_load_say_so_and_load_when_opened_again(open_page, runtime):
    page = open_page(goto=False)
    page.route("**/api/labels*", lambda route: route.fulfill(status=503, body="{}"))
    page.goto(runtime.site_url)
    page.click("#knows summary")
    page.wait_for_function(
        "() => document.getElementById('knows-status').textContent.includes('could not')"
    )
    page.unroute("**/api/labels*")
    page.click("#knows summary")
    page.click("#knows summary")
    page.wait_for_function("() => document.querySelectorAll('#knows-list li').length === 1000")
