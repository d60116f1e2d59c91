"""The web UI in Chromium against the whole local product: site, API, proxy, model."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest

from hosting.config_js import SiteConfig, render_config_js
from local.process import LocalRuntime
from tests.e2e.support import (
    choose_file,
    fulfill_json,
    is_predict_post,
    is_predict_response,
    received_bytes,
    record_network,
    wait_for_results,
)

pytestmark = pytest.mark.slow


def test_a_photo_gives_five_labelled_results(page, images):
    with page.expect_request(is_predict_post) as sent:
        choose_file(page, images["cat"])
    wait_for_results(page)

    assert sent.value.headers["content-type"] == "image/jpeg"
    rows = page.locator("#predictions li")
    assert rows.count() == 5
    for text in rows.all_inner_texts():
        assert re.search(r"\S.*\n?.*(\d+\.\d%|<0\.1%)", text), text
    version = page.evaluate("window.APP_CONFIG.modelVersion")
    assert page.inner_text("#model-version") == version
    assert re.fullmatch(r"\d+ ms|\d+\.\d\d s", page.inner_text("#latency"))
    # The session archive has random weights: the results say so, in words for a visitor.
    assert page.is_visible("#untrained-note")
    assert page.inner_text("#model-name") == "MobileNetV2, untrained (random weights)"
    assert page.is_visible("#review-badge")
    assert page.get_attribute("#results-card", "aria-busy") == "false"
    assert page.is_visible("#preview")


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


CROSS_ORIGIN_POST = """async (url) => {
  try {
    const response = await fetch(url, {
      method: "POST", headers: { "content-type": "image/jpeg" }, body: "x" });
    return response.status;
  } catch (error) {
    return String(error);
  }
}"""


def test_the_page_predicts_through_its_own_origin_with_no_cors_preflight(
    open_page, images, runtime: LocalRuntime
):
    """Site and API on one origin, as CloudFront serves them: the browser never asks
    another origin for permission (no OPTIONS), and every request stays on the site's."""
    # The control: a page on another origin (the API's direct port) posting to the site's
    # API makes Chromium send a preflight, and the recorder sees it; the API grants nothing.
    control = open_page(goto=False)
    control_sent = record_network(control)
    control.goto(f"{runtime.direct_url}/not-a-page")
    outcome = control.evaluate(CROSS_ORIGIN_POST, f"{runtime.api_url}/predict")
    assert outcome == "TypeError: Failed to fetch", "a foreign page may not read the API"
    assert [r for r in control_sent if r["method"] == "OPTIONS"], control_sent

    page = open_page(goto=False)
    sent = record_network(page)
    page.goto(runtime.site_url)
    with page.expect_response(is_predict_response) as answered:
        choose_file(page, images["cat"])
    wait_for_results(page)
    assert answered.value.status == 200
    assert answered.value.url == f"{runtime.site_url}/api/predict"
    assert "access-control-allow-origin" not in answered.value.headers

    assert [r["method"] for r in sent if r["url"].endswith("/predict")] == ["POST"]
    assert not [r for r in sent if r["method"] == "OPTIONS"], sent
    network = [r for r in sent if r["url"].startswith(("http:", "https:"))]
    assert {_origin(r["url"]) for r in network} == {runtime.site_url}, network
    assert page.evaluate("window.APP_CONFIG.apiUrl") == "/api"


def test_a_transparent_png_is_flattened_and_classified(page, images):
    with page.expect_request(is_predict_post) as sent:
        choose_file(page, images["transparent"])
    wait_for_results(page)
    assert sent.value.headers["content-type"] == "image/jpeg"
    assert page.locator("#predictions li").count() == 5


def test_a_large_photo_is_downscaled_before_upload(page, images, runtime):
    original = images["large"].stat().st_size
    assert original > 3 * 1024 * 1024, "the photo must exceed the API's limit to prove the point"
    with page.expect_response(is_predict_response) as answered:
        choose_file(page, images["large"])
    wait_for_results(page)

    # Playwright keeps no copy of a Blob body, so ask the proxy: its log line for this
    # request records the bytes it received.
    request_id = answered.value.json()["request_id"]
    uploaded = received_bytes(runtime, request_id)
    print(f"{original} byte photo uploaded as {uploaded} bytes")
    assert uploaded < 600 * 1024
    assert uploaded < original / 10
    assert "4,000\u00d73,000 px, sent as 1,024\u00d7768" in page.inner_text("#preview-caption")


def test_a_jpeg_whose_size_is_far_into_the_file_is_read(page, images):
    """Large EXIF or ICC blocks put the frame header beyond the first 64 KB."""
    choose_file(page, images["frame-far-in"])
    wait_for_results(page)
    assert "451\u00d7300 px" in page.inner_text("#preview-caption")


def test_keyboard_only(page, images, artifacts_dir):
    # A standing listener turns on Playwright's file chooser interception before the key
    # press; without it the first chooser can open before interception is armed.
    page.on("filechooser", lambda _chooser: None)
    for _ in range(10):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.id") == "choose":
            break
    else:
        pytest.fail("Tab never reached the 'Choose an image' button")
    assert page.evaluate("getComputedStyle(document.activeElement).outlineStyle") == "solid"
    page.screenshot(path=str(artifacts_dir / "empty-focused.png"))

    with page.expect_file_chooser() as chooser:
        page.keyboard.press("Enter")
    chooser.value.set_files(str(images["cat"]))
    wait_for_results(page)
    assert page.locator("#predictions li").count() == 5
    assert page.evaluate("document.activeElement.id") == "choose", "focus stays put"


def _dispatch(page, kind: str, files: list[tuple[str, str, bytes]]) -> None:
    """A drop or paste event carrying `files` as (name, type, bytes)."""
    page.evaluate(
        """([kind, files]) => {
            const transfer = new DataTransfer();
            for (const [name, type, bytes] of files) {
                transfer.items.add(new File([new Uint8Array(bytes)], name, { type }));
            }
            const init = { bubbles: true, cancelable: true };
            const event = kind === "drop"
                ? new DragEvent("drop", { ...init, dataTransfer: transfer })
                : new ClipboardEvent("paste", { ...init, clipboardData: transfer });
            document.body.dispatchEvent(event);
        }""",
        [kind, [[name, media_type, list(content)] for name, media_type, content in files]],
    )


def test_drop_and_paste(page, images):
    payload = images["coffee"].read_bytes()
    for kind in ("drop", "paste"):
        _dispatch(page, kind, [(f"coffee-{kind}.jpg", "image/jpeg", payload)])
        page.wait_for_function(
            "kind => document.getElementById('preview-caption').textContent.includes(kind)",
            arg=kind,
        )
        wait_for_results(page)


def test_dropping_two_files_takes_the_image_even_when_it_comes_second(page, images):
    _dispatch(
        page,
        "drop",
        [
            ("notes.txt", "text/plain", images["text"].read_bytes()),
            ("coffee.jpg", "image/jpeg", images["coffee"].read_bytes()),
        ],
    )
    wait_for_results(page)
    assert page.inner_text("#preview-caption").startswith("coffee.jpg")


def test_pasting_something_that_is_not_an_image_says_so(page):
    page.evaluate(
        """() => {
            const transfer = new DataTransfer();
            transfer.setData("text/plain", "https://example.com/cat.jpg");
            document.body.dispatchEvent(new ClipboardEvent("paste",
                { bubbles: true, cancelable: true, clipboardData: transfer }));
        }"""
    )
    page.wait_for_selector("#error:not([hidden])")
    assert page.inner_text("#error-title") == "Nothing to classify"
    assert "clipboard holds no image" in page.inner_text("#error-message")


def test_clicking_the_drop_zone_opens_the_file_chooser(page, images):
    with page.expect_file_chooser() as chooser:
        page.click("#dropzone")
    chooser.value.set_files(str(images["cat"]))
    wait_for_results(page)


def test_ten_images_in_a_row(page, images):
    """Each new image supersedes the one in flight; the last one wins, nothing breaks."""
    sequence = [images["cat"], images["coffee"], images["transparent"]] * 3 + [images["cat"]]
    for path in sequence:
        choose_file(page, path)
    wait_for_results(page)
    assert "chelsea.jpg" in page.inner_text("#preview-caption")
    assert page.locator("#predictions li").count() == 5
    assert page.is_hidden("#error")
    # And once more after it settled.
    choose_file(page, images["coffee"])
    page.wait_for_function(
        "() => document.getElementById('preview-caption').textContent.includes('coffee')"
    )
    wait_for_results(page)


def test_a_confident_pretrained_answer_has_no_notes_and_no_badge(
    open_page, images, runtime: LocalRuntime, artifacts_dir
):
    """What users of the pretrained model see (played by routes: the session model is
    untrained, and config.js says so). Bars are drawn to scale and nothing warns."""
    predictions = [
        ("tabby", 281, 0.962),
        ("tiger cat", 282, 0.021),
        ("Egyptian cat", 285, 0.011),
        ("lynx", 287, 0.002),
        ("Persian cat", 283, 0.0004),
    ]
    body = {
        "predictions": [
            {"label": label, "index": index, "probability": p} for label, index, p in predictions
        ],
        "model": {"name": "mobilenet_v2", "version": "3f2a9c1d4e5b", "weights": "IMAGENET1K_V2"},
        "needs_review": False,
        "request_id": "r-1",
    }
    pretrained = SiteConfig("/api", "local", "3f2a9c1d4e5b", model_weights="IMAGENET1K_V2")
    page = open_page(goto=False)
    page.route(
        "**/config.js",
        lambda route: route.fulfill(
            content_type="text/javascript", body=render_config_js(pretrained)
        ),
    )
    page.route("**/predict", lambda route: fulfill_json(route, 200, body))
    page.goto(runtime.site_url)
    assert page.is_hidden("#untrained-notice")
    choose_file(page, images["cat"])
    wait_for_results(page)
    assert page.is_hidden("#untrained-note")
    assert page.is_hidden("#untrained-notice")
    assert page.is_hidden("#review-badge")
    assert page.locator(".prediction-value").all_inner_texts() == [
        "96.2%",
        "2.1%",
        "1.1%",
        "0.2%",
        "<0.1%",
    ]
    assert page.inner_text("#model-name") == "MobileNetV2, trained on ImageNet"
    page.wait_for_timeout(400)  # let the bars finish growing
    page.screenshot(path=str(artifacts_dir / "results-confident.png"))
