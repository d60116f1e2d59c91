"""What people expect of an image classifier demo: samples, a camera, the result as JSON,
code to call the API, a history to compare, and honesty about the model up front."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys

import pytest

from local.process import LocalRuntime
from tests.e2e.conftest import PHONE
from tests.e2e.support import (
    choose_file,
    count_predict_posts,
    fulfill_json,
    is_predict_response,
    layout_shift_since,
    now,
    wait_for_results,
)

pytestmark = pytest.mark.slow


def serve_config(page, runtime: LocalRuntime, text: str) -> None:
    page.route(
        "**/config.js",
        lambda route: route.fulfill(content_type="text/javascript", body=text),
    )
    page.goto(runtime.site_url)


def test_a_sample_is_one_click_and_loads_only_when_asked_for(page):
    fetched: list[str] = []
    page.on("request", lambda request: fetched.append(request.url))
    page.wait_for_load_state("networkidle")
    assert not [url for url in fetched if re.search(r"/samples/[a-z]+\.jpg$", url)]

    page.get_by_role("button", name="Coffee").click()
    wait_for_results(page)
    assert any(url.endswith("/samples/coffee.jpg") for url in fetched)
    assert page.inner_text("#preview-caption") == "Coffee (sample) · 600\u00d7400 px"


def test_a_phone_gets_a_take_photo_button_that_opens_the_camera(open_page, images):
    desktop = open_page()
    assert desktop.is_hidden("#take-photo")
    assert desktop.locator("#dropzone-empty p:visible").all_inner_texts() == [
        "Drop an image here",
        "click to choose one, or paste it",
    ]

    phone = open_page(**PHONE)
    assert phone.is_visible("#take-photo")
    assert phone.is_hidden("#use-camera"), "a phone uses its own camera app"
    # A phone is not told to drop, click or paste.
    assert not re.search(r"\b(drop|click|paste)\b", phone.inner_text("header"), re.I)
    assert phone.locator("#dropzone-empty p:visible").all_inner_texts() == [
        "Tap to choose a photo",
        "or take one with your camera",
    ]
    assert phone.get_attribute("#camera-input", "capture") == "environment"
    with phone.expect_file_chooser() as chooser:
        phone.click("#take-photo")
    assert chooser.value.element.get_attribute("id") == "camera-input"
    chooser.value.set_files(str(images["cat"]))
    wait_for_results(phone)


def test_the_result_can_be_copied_and_downloaded_as_json(open_page, images, tmp_path):
    page = open_page(permissions=["clipboard-read", "clipboard-write"])
    with page.expect_response(is_predict_response) as answered:
        choose_file(page, images["cat"])
    wait_for_results(page)
    expected = answered.value.json()

    page.click("#copy-json")
    page.wait_for_function(
        "() => document.getElementById('announcer').textContent === 'Copied the result as JSON.'"
    )
    assert json.loads(page.evaluate("navigator.clipboard.readText()")) == expected
    # Seen on the button itself, for a moment.
    assert page.inner_text("#copy-json") == "Copied"
    page.wait_for_function(
        "() => document.getElementById('copy-json').textContent === 'Copy JSON'", timeout=4000
    )

    with page.expect_download() as download:
        page.click("#download-json")
    assert download.value.suggested_filename == "chelsea-labels.json"
    saved = tmp_path / "saved.json"
    download.value.save_as(saved)
    assert json.loads(saved.read_text()) == expected


def _snippets(page) -> tuple[str, str]:
    page.click("#code summary")
    return page.inner_text("#snippet-curl"), page.inner_text("#snippet-python")


def test_the_snippet_copy_buttons_say_copied(open_page):
    page = open_page(permissions=["clipboard-read", "clipboard-write"])
    curl, _ = _snippets(page)
    page.click("#copy-curl")
    page.wait_for_function(
        "() => document.querySelector('#copy-curl .copy-label').textContent === 'Copied'"
    )
    assert page.evaluate("navigator.clipboard.readText()") == curl
    assert page.get_by_role("button", name="Copy the Python code").is_visible()


def test_on_a_phone_the_snippets_wrap_instead_of_scrolling_sideways(open_page):
    page = open_page(**PHONE)
    _snippets(page)
    for block in page.locator(".snippet pre").all():
        assert block.evaluate("e => e.scrollWidth <= e.clientWidth"), block.inner_text()


def test_the_code_snippets_call_the_real_api_and_work(page, images, runtime, tmp_path):
    curl, python = _snippets(page)
    endpoint = f"{runtime.api_url}/predict"
    assert f"'{endpoint}'" in curl
    assert f'"{endpoint}"' in python
    # True of any image the API reads (it reads the format from the bytes), not only JPEG.
    assert "image/jpeg" not in curl + python
    assert "application/octet-stream" in curl
    assert "application/octet-stream" in python

    # A PNG under the snippets' name: the same commands work for it.
    photo = tmp_path / "photo.jpg"
    shutil.copy(images["transparent"], photo)
    ran = subprocess.run(
        [sys.executable, "-c", python], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert ran.returncode == 0, ran.stderr
    assert len(re.findall(r"^\d+\.\d%  \S", ran.stdout, re.M)) == 5, ran.stdout
    if shutil.which("curl"):
        command = curl.replace("\\\n", " ")
        ran = subprocess.run(command, shell=True, cwd=tmp_path, capture_output=True, timeout=60)
        assert len(json.loads(ran.stdout)["predictions"]) == 5


def test_the_snippets_resolve_a_relative_api_url_against_the_page(open_page, runtime):
    page = open_page(goto=False)
    config = {"apiUrl": "/api", "environment": "prod", "modelVersion": "v"}
    serve_config(page, runtime, f"window.APP_CONFIG = Object.freeze({json.dumps(config)});")
    curl, python = _snippets(page)
    assert f"'{runtime.site_url}/api/predict'" in curl
    assert f'"{runtime.site_url}/api/predict"' in python


def test_this_visits_images_can_be_compared_without_asking_again(page, images):
    sent = count_predict_posts(page)
    for count, name in enumerate(("cat", "coffee"), start=1):
        choose_file(page, images[name])
        page.wait_for_function(
            "n => document.querySelectorAll('#history li').length === n", arg=count
        )
    assert page.inner_text("#history-heading") == "This visit\u2019s images"
    items = page.locator("#history button")
    assert items.count() == 2
    assert "coffee.jpg" in items.nth(0).inner_text()
    assert items.nth(0).get_attribute("aria-current") == "true"
    # The one on screen says so in words; its border is no second focus ring.
    assert items.nth(0).locator(".history-showing").is_visible()
    assert not items.nth(1).locator(".history-showing").is_visible()
    borders = [item.evaluate("e => getComputedStyle(e).borderColor") for item in items.all()]
    assert borders[0] == borders[1]
    # A name cut off with an ellipsis is whole in the tooltip.
    assert items.nth(0).get_attribute("title").endswith(", coffee.jpg")

    cat_top = items.nth(1).locator(".history-label").inner_text()
    items.nth(1).focus()
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.getAttribute('aria-current')") == "true"
    assert page.inner_text("#preview-caption").startswith("chelsea.jpg")
    assert page.inner_text("#predictions .is-top .prediction-label") == cat_top
    assert page.locator("#history button").nth(1).get_attribute("aria-current") == "true"
    assert len(sent) == 2, "going back costs no request"
    # The visit's images stay in the page; the one thing kept is the random client id that
    # keeps this browser on one model variant.
    assert page.evaluate("() => Object.keys(localStorage)") == ["image-classifier:client-id"]
    assert page.evaluate("() => sessionStorage.length") == 0

    page.click("#history-clear")
    assert page.locator("#history li").count() == 0
    assert page.is_visible("#history-empty")
    assert page.is_hidden("#history-clear")
    assert page.evaluate("document.activeElement.id") == "history-empty"
    assert page.locator("#predictions li").count() == 5, "the answer on screen stays"


def test_needs_review_is_explained_in_one_line(page, images):
    choose_file(page, images["cat"])
    wait_for_results(page)
    assert page.inner_text("#review-badge .badge").split() == ["●", "Needs", "review"]
    assert page.inner_text("#review-badge .review-why") == (
        "The model is not sure about this image: treat its labels as guesses, not as an answer."
    )


def test_an_untrained_model_is_said_up_front_when_config_js_knows(page):
    """The local runtime's own config.js carries the archive's weights (random here)."""
    assert page.evaluate("window.APP_CONFIG.modelWeights") == "random"
    assert page.is_visible("#untrained-notice")
    assert page.inner_text("#untrained-notice") == (
        "Demo model, not trained. Its labels are random guesses, not real predictions: "
        "don\u2019t rely on them."
    )


def test_an_untrained_model_learned_from_the_answer_is_said_in_the_answer(
    open_page, runtime, images
):
    """Without `modelWeights` in config.js (every one rendered now has it) the page learns it
    from the first answer, and says so inside the results card, in space it already has
    (nothing moves)."""
    page = open_page(goto=False)
    # An older deployment's config.js: `render_config_js` always writes `modelWeights`.
    old = {"apiUrl": "/api", "environment": "local", "modelVersion": "v"}
    serve_config(page, runtime, f"window.APP_CONFIG = Object.freeze({json.dumps(old)});")
    assert page.is_hidden("#untrained-notice")
    choose_file(page, images["cat"])
    wait_for_results(page)
    assert page.is_hidden("#untrained-notice")
    assert page.inner_text("#untrained-note") == (
        "Untrained model: these labels are random guesses."
    )


def _answer(model: dict, predictions: list[tuple[str, float]]) -> dict:
    return {
        "predictions": [
            {"label": label, "index": index, "probability": p}
            for index, (label, p) in enumerate(predictions)
        ],
        "model": model,
        "needs_review": False,
        "request_id": "r-1",
    }


def _answering(body: dict):
    """A route handler (Playwright passes the request too when a handler takes two)."""
    return lambda route: fulfill_json(route, 200, body)


def test_a_custom_model_with_three_classes_shows_three_rows_its_name_and_class_count(
    open_page, images
):
    """A model trained on labels of its own answers with min(5, N) rows: three rows, no
    empty bars, and the card keeps its reserved space (nothing below moves on a phone)."""
    body = _answer(
        {
            "name": "my-parts-v2",
            "version": "9c1d4e5b3f2a",
            "weights": "file:0123456789ab",
            "precision": "fp32",
            "variant": "a",
            "num_classes": 3,
            "label_set": "custom",
        },
        [("bolt", 0.81), ("nut", 0.15), ("washer", 0.04)],
    )
    page = open_page(**PHONE)
    page.route("**/predict", _answering(body))
    started = now(page)
    choose_file(page, images["cat"])
    wait_for_results(page)

    rows = page.locator("#predictions li")
    assert rows.count() == 3
    assert page.locator("#predictions .bar").count() == 3
    assert page.locator(".prediction-label").all_inner_texts() == ["bolt", "nut", "washer"]
    name = page.inner_text("#model-name")
    assert name == "my-parts-v2, custom weights; knows 3 classes"
    assert page.locator("#model-name *").count() == 0, "the name is text, never markup"
    assert layout_shift_since(page, started) < 0.1


def test_an_imagenet_model_shows_its_readable_name_and_no_class_count(open_page, images):
    """`label_set` "imagenet", or no such keys at all (older archives): no class count."""
    five = [("tabby", 0.6), ("tiger cat", 0.2), ("lynx", 0.1), ("Egyptian cat", 0.05), ("x", 0.05)]
    new = {"name": "resnet50", "version": "v2", "weights": "IMAGENET1K_V2"}
    new |= {"num_classes": 1000, "label_set": "imagenet"}
    old = {"name": "mobilenet_v2", "version": "v1", "weights": "IMAGENET1K_V2"}
    for model, expected in (
        (new, "ResNet-50, trained on ImageNet"),
        (old, "MobileNetV2, trained on ImageNet"),
    ):
        page = open_page()
        page.route("**/predict", _answering(_answer(model, five)))
        choose_file(page, images["cat"])
        wait_for_results(page)
        assert page.locator("#predictions li").count() == 5
        assert page.inner_text("#model-name") == expected
        assert "knows" not in page.inner_text("#results")
