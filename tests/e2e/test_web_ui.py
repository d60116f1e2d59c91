"""The web UI in Chromium against the whole local product: site, API, proxy, model."""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx
import pytest

from hosting.config_js import SiteConfig, render_config_js
from local.ports import free_port
from tests.local.runtime import LocalRuntime

pytestmark = pytest.mark.slow

RESULT_TIMEOUT_MS = 30_000
PREDICT = "**/predict"


def is_predict_post(request) -> bool:
    return request.url.endswith("/predict") and request.method == "POST"


def is_predict_response(response) -> bool:
    return is_predict_post(response.request)


def received_bytes(runtime: LocalRuntime, request_id: str) -> int:
    for line in reversed(runtime.lines):
        if line.startswith("{") and request_id in line:
            record = json.loads(line)
            if record.get("request_id") == request_id:
                return record["bytes"]
    raise AssertionError(f"no proxy log line for request {request_id}")


def choose_file(page, path: Path) -> None:
    page.set_input_files("#file-input", str(path))


def wait_for_results(page) -> None:
    page.wait_for_selector("#results:not([hidden])", timeout=RESULT_TIMEOUT_MS)


def wait_for_error(page) -> str:
    page.wait_for_selector("#error:not([hidden])", timeout=RESULT_TIMEOUT_MS)
    return page.inner_text("#error-message")


def test_a_photo_gives_five_labelled_results(page, images, runtime, artifacts_dir):
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
    # The session archive has random weights: the banner and the review badge must say so.
    assert page.is_visible("#untrained-banner")
    assert page.is_visible("#review-badge")
    assert page.get_attribute("#results-card", "aria-busy") == "false"
    assert "Top label:" in page.inner_text("#announcer")
    assert page.is_visible("#preview")
    page.screenshot(path=str(artifacts_dir / "results-desktop.png"), full_page=True)


def test_results_fit_a_phone_screen(browser, runtime, images, artifacts_dir):
    context = browser.new_context(
        viewport={"width": 390, "height": 844},
        device_scale_factor=2,
        is_mobile=True,
        color_scheme="dark",
    )
    page = context.new_page()
    try:
        page.goto(runtime.site_url)
        choose_file(page, images["coffee"])
        wait_for_results(page)
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        page.screenshot(path=str(artifacts_dir / "results-phone-dark.png"), full_page=True)
    finally:
        context.close()


def test_a_non_image_shows_the_apis_own_message(page, images, runtime, artifacts_dir):
    # What the browser cannot decode goes out as application/octet-stream for the API to sniff.
    expected = httpx.post(
        f"{runtime.api_url}/predict",
        content=images["text"].read_bytes(),
        headers={"content-type": "application/octet-stream"},
    ).json()["error"]["message"]

    choose_file(page, images["text"])
    assert wait_for_error(page) == expected
    assert page.is_hidden("#retry"), "a client error is not worth retrying"
    assert re.fullmatch(r"Request id \S+", page.inner_text("#error-detail"))
    assert "no preview" in page.inner_text("#preview-caption")
    page.screenshot(path=str(artifacts_dir / "error.png"))


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
    assert "1024\u00d7768, scaled down" in page.inner_text("#preview-caption")


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
    assert page.evaluate("getComputedStyle(document.activeElement).boxShadow") != "none"
    page.screenshot(path=str(artifacts_dir / "empty-focused.png"))

    with page.expect_file_chooser() as chooser:
        page.keyboard.press("Enter")
    chooser.value.set_files(str(images["cat"]))
    wait_for_results(page)
    assert page.locator("#predictions li").count() == 5
    assert page.evaluate("document.activeElement.id") == "choose", "focus stays put"


def test_drop_and_paste(page, images):
    payload = list(images["coffee"].read_bytes())
    for kind in ("drop", "paste"):
        page.evaluate(
            """([kind, bytes]) => {
                const file = new File([new Uint8Array(bytes)], `coffee-${kind}.jpg`,
                                      {type: "image/jpeg"});
                const transfer = new DataTransfer();
                transfer.items.add(file);
                const init = {bubbles: true, cancelable: true};
                const event = kind === "drop"
                    ? new DragEvent("drop", {...init, dataTransfer: transfer})
                    : new ClipboardEvent("paste", {...init, clipboardData: transfer});
                document.body.dispatchEvent(event);
            }""",
            [kind, payload],
        )
        page.wait_for_function(
            "kind => document.getElementById('preview-caption').textContent.includes(kind)",
            arg=kind,
        )
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


def test_api_down_gives_a_clear_message_and_a_retry(browser, runtime, images, artifacts_dir):
    dead_api = f"http://127.0.0.1:{free_port()}"
    context = browser.new_context()
    page = context.new_page()
    try:
        page.route(
            "**/config.js",
            lambda route: route.fulfill(
                content_type="text/javascript",
                body=render_config_js(SiteConfig(dead_api, "local", "v")),
            ),
        )
        page.goto(runtime.site_url)
        choose_file(page, images["cat"])
        assert "Could not reach the classification service" in wait_for_error(page)
        assert page.is_visible("#retry")
        page.screenshot(path=str(artifacts_dir / "api-down.png"))
    finally:
        context.close()


def test_a_503_cold_start_offers_a_retry_that_works(page, images, runtime: LocalRuntime):
    site_origin = runtime.site_url
    message = "The model is starting up; try again in a few seconds."
    starting = json.dumps({"error": {"code": "model_not_ready", "message": message}})

    def cold_start(route):
        if route.request.method != "POST":
            route.continue_()
            return
        route.fulfill(
            status=503,
            body=starting,
            headers={
                "content-type": "application/json",
                "retry-after": "2",
                "access-control-allow-origin": site_origin,
                "access-control-expose-headers": "retry-after,x-request-id",
            },
        )

    page.route(PREDICT, cold_start)
    choose_file(page, images["cat"])
    shown = wait_for_error(page)
    assert shown.startswith(message)
    assert "2 s" in shown

    page.unroute(PREDICT)
    page.click("#retry")
    wait_for_results(page)
    assert page.locator("#predictions li").count() == 5


def test_a_confident_pretrained_answer_has_no_banner_and_no_badge(
    page, images, runtime: LocalRuntime, artifacts_dir
):
    """What users of the pretrained model see (played by the route: the session model is
    untrained). Bars are drawn to scale and the untrained banner stays hidden."""
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
    page.route(
        PREDICT,
        lambda route: route.fulfill(
            status=200,
            body=json.dumps(body),
            headers={
                "content-type": "application/json",
                "access-control-allow-origin": runtime.site_url,
            },
        ),
    )
    choose_file(page, images["cat"])
    wait_for_results(page)
    assert page.is_hidden("#untrained-banner")
    assert page.is_hidden("#review-badge")
    assert page.locator(".prediction-value").all_inner_texts() == [
        "96.2%",
        "2.1%",
        "1.1%",
        "0.2%",
        "<0.1%",
    ]
    assert page.inner_text("#model-name") == "mobilenet_v2 · IMAGENET1K_V2"
    page.wait_for_timeout(400)  # let the bars finish growing
    page.screenshot(path=str(artifacts_dir / "results-confident.png"))
