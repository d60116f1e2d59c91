"""Feedback in the browser: 👍 / 👎 under an answer, the "What is it?" picker of the model's
labels, the client id the page keeps, a failed call that keeps the answer, and what the
store holds afterwards (the runtime's SQLite file, opened here)."""

from __future__ import annotations

import json
import re
import sqlite3

import pytest

from local.process import LocalRuntime
from tests.e2e.conftest import PHONE
from tests.e2e.support import (
    RESULT_TIMEOUT_MS,
    choose_file,
    fulfill_json,
    is_predict_response,
    wait_for_results,
)

pytestmark = pytest.mark.slow

FEEDBACK = "**/api/feedback"
CLIENT_ID = re.compile(r"[A-Za-z0-9_-]{22}")


def is_feedback_post(request) -> bool:
    return request.url.endswith("/api/feedback") and request.method == "POST"


def predict(page, image) -> dict:
    """Classify `image` and return the API's answer."""
    with page.expect_response(is_predict_response) as answered:
        choose_file(page, image)
    wait_for_results(page)
    return answered.value.json()


def stored(runtime: LocalRuntime, request_id: str) -> tuple | None:
    with sqlite3.connect(runtime.predictions_file) as db:
        return db.execute(
            "SELECT verdict, feedback_label, variant FROM predictions WHERE request_id = ?",
            (request_id,),
        ).fetchone()


def wait_for_status(page, text: str) -> None:
    page.wait_for_function(
        "text => document.querySelector('#feedback-status:not([hidden])')"
        "?.textContent.includes(text)",
        arg=text,
        timeout=RESULT_TIMEOUT_MS,
    )


def test_thumbs_down_then_a_picked_label_is_what_the_store_holds(page, images, runtime):
    body = predict(page, images["cat"])
    assert page.is_visible("#feedback-ask")
    assert stored(runtime, body["request_id"]) == (None, None, "main")

    with page.expect_request(is_feedback_post) as verdict:
        page.get_by_role("button", name="No").click()
    assert json.loads(verdict.value.post_data) == {
        "request_id": body["request_id"],
        "verdict": "wrong",
    }
    # The picker replaces the buttons, with the focus in its search field.
    assert page.is_visible("#feedback-form")
    assert page.evaluate("document.activeElement.id") == "feedback-label"
    page.wait_for_function(
        "() => document.querySelectorAll('#feedback-labels option').length === 1000",
        timeout=RESULT_TIMEOUT_MS,
    )
    assert "1,000 labels" in page.inner_text("#feedback-hint")
    label = page.get_by_label("What is it?")
    assert label.get_attribute("list") == "feedback-labels"

    with page.expect_request(is_feedback_post) as labelled:
        page.keyboard.type("Tabby")  # any case: the page sends the model's own spelling
        page.keyboard.press("Enter")
    assert json.loads(labelled.value.post_data)["label"] == "tabby"
    wait_for_status(page, "Thanks! Noted: it is “tabby”.")
    assert page.evaluate("document.activeElement.id") == "feedback-status"
    page.wait_for_function(
        "() => document.querySelector('#announcer').textContent.startsWith('Thanks!')"
    )
    assert stored(runtime, body["request_id"]) == ("wrong", "tabby", "main")
    assert page.locator("#predictions li").count() == 5, "the answer stays"


def test_thumbs_up_by_keyboard_and_the_client_id_the_page_keeps(open_page, images, runtime):
    page = open_page()
    with page.expect_request(lambda r: r.url.endswith("/predict")) as sent:
        body = predict(page, images["coffee"])
    client_id = sent.value.headers["x-client-id"]
    assert CLIENT_ID.fullmatch(client_id)
    assert page.evaluate("localStorage.getItem('image-classifier:client-id')") == client_id
    assert client_id not in runtime.output, "the API never logs it"

    page.focus("#feedback-yes")
    page.keyboard.press("Enter")
    wait_for_status(page, "Thanks! Glad it got this one right.")
    assert stored(runtime, body["request_id"])[0] == "correct"

    # The same browser keeps its id; another one gets its own.
    page.reload()
    with page.expect_request(lambda r: r.url.endswith("/predict")) as again:
        predict(page, images["cat"])
    assert again.value.headers["x-client-id"] == client_id
    other = open_page()
    with other.expect_request(lambda r: r.url.endswith("/predict")) as theirs:
        predict(other, images["cat"])
    assert theirs.value.headers["x-client-id"] != client_id


def test_a_common_word_gets_the_models_nearest_labels_through_the_live_region(
    page, images, runtime
):
    body = predict(page, images["cat"])
    page.get_by_role("button", name="No").click()
    page.wait_for_function("() => document.querySelectorAll('#feedback-labels option').length > 0")
    sent: list = []
    page.on("request", lambda r: sent.append(r) if is_feedback_post(r) else None)
    page.fill("#feedback-label", "cat")
    page.click("#feedback-send")
    assert page.inner_text("#feedback-invalid") == (
        "\u201ccat\u201d is not one of the model\u2019s labels. "
        "Is it one of these, or something else?"
    )
    suggestions = page.locator("#feedback-suggestions button").all_inner_texts()
    assert suggestions[:5] == [
        "tiger cat",
        "Persian cat",
        "Siamese cat",
        "Egyptian cat",
        "Madagascar cat",
    ]
    # Spoken, not only shown: the page's live region says it and the labels.
    page.wait_for_function(
        "() => document.getElementById('announcer').textContent"
        ".includes('Nearest labels: tiger cat')"
    )
    assert page.get_attribute("#feedback-label", "aria-invalid") == "true"
    assert page.evaluate("document.activeElement.id") == "feedback-label"
    # Above the field: a phone's keyboard covers what is below it.
    check = page.locator("#feedback-check").bounding_box()
    field = page.locator("#feedback-label").bounding_box()
    assert check["y"] + check["height"] <= field["y"]
    assert sent == [], "a word that is no label is not sent"

    with page.expect_request(is_feedback_post) as labelled:
        page.get_by_role("button", name="Persian cat").click()
    assert json.loads(labelled.value.post_data)["label"] == "Persian cat"
    wait_for_status(page, "Thanks! Noted: it is \u201cPersian cat\u201d.")
    assert stored(runtime, body["request_id"]) == ("wrong", "Persian cat", "main")


def test_something_else_says_it_is_none_of_the_models_labels(page, images, runtime):
    body = predict(page, images["coffee"])
    page.get_by_role("button", name="No").click()
    with page.expect_request(
        lambda r: is_feedback_post(r) and "label" in json.loads(r.post_data)
    ) as labelled:
        page.get_by_role("button", name="Something else").click()
    assert json.loads(labelled.value.post_data)["label"] == "(something else)"
    wait_for_status(page, "Thanks! Noted: it is something the model does not know.")
    assert stored(runtime, body["request_id"]) == ("wrong", "(something else)", "main")


def test_a_word_with_no_near_label_offers_something_else_and_skip_still_works(page, images):
    predict(page, images["cat"])
    page.get_by_role("button", name="No").click()
    page.wait_for_function("() => document.querySelectorAll('#feedback-labels option').length > 0")
    page.fill("#feedback-label", "qqqxzzz")
    page.click("#feedback-send")
    assert "none is close. Is it something else?" in page.inner_text("#feedback-invalid")
    assert page.locator("#feedback-suggestions button").count() == 0
    page.fill("#feedback-label", "qqq")
    assert page.is_hidden("#feedback-check"), "typing again clears the message"
    page.click("#feedback-skip")
    wait_for_status(page, "Thanks! Noted that this answer is wrong.")


def test_on_a_phone_the_check_is_in_view_and_no_emoji_is_needed(open_page, images, artifacts_dir):
    page = open_page(**PHONE)
    predict(page, images["cat"])
    assert not re.search("[\U0001f300-\U0001faff]", page.inner_text("#feedback"))
    assert page.locator("#feedback-no svg").count() == 1
    page.get_by_role("button", name="No", exact=True).click()
    page.wait_for_function("() => document.querySelectorAll('#feedback-labels option').length > 0")
    page.fill("#feedback-label", "cat")
    page.click("#feedback-send")
    page.wait_for_function(
        """() => { const b = document.getElementById('feedback-check').getBoundingClientRect();
                   return b.height > 0 && b.top >= 0 && b.bottom <= window.innerHeight; }"""
    )
    page.wait_for_timeout(300)
    page.screenshot(path=str(artifacts_dir / "phone-feedback.png"))


def test_a_failed_call_is_shown_and_sent_again_without_losing_the_answer(page, images, runtime):
    body = predict(page, images["cat"])
    page.route(
        FEEDBACK,
        lambda route: fulfill_json(
            route,
            503,
            {"error": {"code": "feedback_unavailable", "message": "x"}, "request_id": "r"},
            **{"retry-after": "5"},
        ),
    )
    page.get_by_role("button", name="Yes").click()
    wait_for_status(page, "could not be sent")
    assert page.is_visible("#feedback-retry")
    assert page.evaluate("document.activeElement.id") == "feedback-retry"
    assert page.locator("#predictions li").count() == 5
    assert page.is_visible("#results")
    assert stored(runtime, body["request_id"])[0] is None

    page.unroute(FEEDBACK)
    page.keyboard.press("Enter")
    wait_for_status(page, "Thanks!")
    assert stored(runtime, body["request_id"])[0] == "correct"


def test_each_answer_in_the_history_keeps_its_own_feedback(page, images):
    predict(page, images["cat"])
    page.get_by_role("button", name="Yes").click()
    wait_for_status(page, "Thanks!")
    predict(page, images["coffee"])
    assert page.is_visible("#feedback-ask"), "a new answer asks again"
    page.locator("#history button").nth(1).click()
    assert page.inner_text("#feedback-status") == "Thanks! Glad it got this one right."
