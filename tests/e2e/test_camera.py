"""The desktop camera: a live preview through getUserMedia, "Take photo" sending the frame
through the same checks and scaling as a file, clear words when the camera is refused or
absent, and the stream stopped whenever the preview closes. Chromium's fake camera (a
test pattern at the size asked for) stands in for a webcam."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from local.process import LocalRuntime
from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS, DESKTOP
from tests.e2e.support import (
    count_predict_posts,
    is_predict_post,
    run_axe,
    wait_for_error,
    wait_for_results,
)

pytestmark = pytest.mark.slow

FAKE_CAMERA = ["--use-fake-device-for-media-stream"]
ALLOW_CAMERA = ["--use-fake-ui-for-media-stream"]  # says yes to the permission prompt

# Keeps every stream the page opens, so a test can see whether its tracks were stopped.
STREAMS = """
window.__streams = [];
const getUserMedia = navigator.mediaDevices.getUserMedia.bind(navigator.mediaDevices);
navigator.mediaDevices.getUserMedia = async (constraints) => {
  const stream = await getUserMedia(constraints);
  window.__streams.push(stream);
  return stream;
};
"""
LIVE_TRACKS = (
    "() => window.__streams.flatMap((s) => s.getTracks()).filter((t) => t.readyState === 'live')"
    ".length"
)


def _camera_page(browser, runtime: LocalRuntime, errors: list[str], **options):
    context = browser.new_context(**{**DESKTOP, **options})
    page = context.new_page()
    page.on("pageerror", lambda error: errors.append(str(error)))
    # The CSP stays as strict as it is: a live preview needs no media-src or blob: for it.
    page.on(
        "console",
        lambda message: (
            errors.append(message.text) if "Content Security Policy" in message.text else None
        ),
    )
    page.add_init_script(STREAMS)
    page.goto(runtime.site_url)
    return page


@pytest.fixture(scope="module")
def camera_browsers(browser) -> Iterator[dict]:
    """Chromium with the fake camera, once allowing it and once not asked to allow it
    (so a request is refused, as when a visitor says no)."""
    launched = {
        name: browser.browser_type.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS + extra
        )
        for name, extra in (("allowed", FAKE_CAMERA + ALLOW_CAMERA), ("refused", FAKE_CAMERA))
    }
    yield launched
    for launched_browser in launched.values():
        launched_browser.close()


@pytest.fixture
def camera_page(camera_browsers, runtime) -> Iterator:
    errors: list[str] = []
    page = _camera_page(camera_browsers["allowed"], runtime, errors)
    yield page
    page.context.close()
    assert not errors, errors


def test_a_desktop_takes_a_photo_with_its_camera_and_it_is_classified(
    camera_page, axe_source, artifacts_dir
):
    page = camera_page
    assert page.is_visible("#use-camera")
    assert page.is_hidden("#take-photo"), "the phone's camera button stays a phone's"
    stage_before = page.locator("#dropzone").bounding_box()
    page.click("#use-camera")
    page.wait_for_selector("#camera-capture:enabled")
    # The page asks for 1280x720 at best; the fake camera gives just that.
    assert page.evaluate("document.getElementById('camera-video').videoWidth") == 1280
    assert page.evaluate("document.activeElement.id") == "camera-capture"
    assert page.locator("#dropzone").bounding_box() == stage_before, "the preview moves nothing"
    # The preview and its buttons fit inside the drop zone's box.
    for part in ("#camera-video", "#camera-capture", "#camera-close"):
        box = page.locator(part).bounding_box()
        assert box["y"] >= stage_before["y"], part
        assert box["y"] + box["height"] <= stage_before["y"] + stage_before["height"], part
    assert page.evaluate(LIVE_TRACKS) == 1
    assert run_axe(page, axe_source) == [], "the live preview and its buttons"
    page.screenshot(path=str(artifacts_dir / "camera-desktop.png"))

    with page.expect_request(is_predict_post) as sent:
        page.click("#camera-capture")
    assert sent.value.headers["content-type"] == "image/jpeg"
    wait_for_results(page)
    assert page.evaluate(LIVE_TRACKS) == 0, "the stream stops once the photo is taken"
    assert page.is_hidden("#camera")
    # The frame went through the same path as a file: its own name and size in the caption.
    assert re.fullmatch(
        r"camera-\d\d-\d\d-\d\d\.jpg · 1,280\u00d7720 px", page.inner_text("#preview-caption")
    )
    assert page.locator("#predictions li").count() == 5
    assert page.locator("#history li").count() == 1


@pytest.mark.parametrize("how", ["button", "escape", "another image"])
def test_closing_the_preview_stops_the_stream(camera_page, images, how):
    page = camera_page
    sent = count_predict_posts(page)
    page.click("#use-camera")
    page.wait_for_selector("#camera-capture:enabled")
    assert page.evaluate(LIVE_TRACKS) == 1
    if how == "button":
        page.click("#camera-close")
    elif how == "escape":
        page.keyboard.press("Escape")
    else:
        page.set_input_files("#file-input", str(images["cat"]))
        wait_for_results(page)
    page.wait_for_function(f"() => ({LIVE_TRACKS})() === 0")
    assert page.is_hidden("#camera")
    if how == "another image":
        assert len(sent) == 1
        return
    assert page.get_attribute("#dropzone", "data-state") == "empty"
    assert page.is_visible("#dropzone-empty")
    assert page.evaluate("document.activeElement.id") == "use-camera"
    assert not sent


def test_a_refused_camera_is_said_plainly(camera_browsers, runtime):
    errors: list[str] = []
    page = _camera_page(camera_browsers["refused"], runtime, errors)
    page.click("#use-camera")
    assert wait_for_error(page) == (
        "The camera is blocked\nThis page may not use the camera. Allow it in the browser\u2019s "
        "site settings, or choose a file instead."
    )
    assert page.is_hidden("#camera")
    assert page.get_attribute("#dropzone", "data-state") == "empty"
    assert page.evaluate("document.activeElement.id") == "error-title"
    page.context.close()
    assert not errors, errors


def test_without_a_camera_the_page_says_there_is_none(open_page):
    """The suite's own Chromium has no camera at all; permission is granted."""
    page = open_page(permissions=["camera"])
    page.click("#use-camera")
    assert wait_for_error(page) == (
        "No camera found\nThis device has no camera the browser can use. Choose a file instead."
    )
    assert page.is_hidden("#camera")
