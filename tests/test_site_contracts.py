"""The pure-Python contracts shared by the cloud stack and the local runtime, and the
site's own promises about the files it ships."""

import json
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from hosting.config_js import SiteConfig, config_keys, render_config_js
from hosting.origin import API_PATH


def _config_object(text: str) -> dict:
    match = re.search(r"window\.APP_CONFIG = Object\.freeze\((\{.*\})\);", text, re.S)
    assert match, text
    return json.loads(match.group(1))


def test_config_js_carries_the_outputs():
    text = render_config_js(
        SiteConfig("https://abc.execute-api.eu-west-1.amazonaws.com/", "dev", "v1", "random")
    )
    assert _config_object(text) == {
        "apiUrl": "https://abc.execute-api.eu-west-1.amazonaws.com",
        "environment": "dev",
        "modelVersion": "v1",
        "modelWeights": "random",
    }


def test_config_js_has_exactly_the_keys_of_the_site_config():
    """One list of fields: every one required (no side can leave one out), every one written."""
    assert config_keys() == ("apiUrl", "environment", "modelVersion", "modelWeights")
    config = SiteConfig("/api", "dev", "v1", "IMAGENET1K_V2")
    assert tuple(sorted(_config_object(render_config_js(config)))) == tuple(sorted(config_keys()))
    with pytest.raises(TypeError, match="model_weights"):
        SiteConfig("/api", "dev", "v1")  # type: ignore[call-arg]


def test_config_js_cannot_break_out_of_a_script():
    text = render_config_js(
        SiteConfig("http://127.0.0.1:8001", "</script><script>x()", "v", "random")
    )
    assert "</script>" not in text
    assert _config_object(text)["environment"] == "</script><script>x()"


def test_config_js_is_deterministic():
    config = SiteConfig("http://127.0.0.1:8001", "local", "v", "random")
    assert render_config_js(config) == render_config_js(config)


def test_config_js_rejects_a_non_url():
    with pytest.raises(ValueError, match="api_url"):
        SiteConfig("execute-api", "dev", "v", "random")


def test_config_js_takes_a_path_on_the_sites_own_origin():
    # What the stack renders: the API under /api on the page's own origin.
    assert (
        _config_object(render_config_js(SiteConfig(API_PATH, "dev", "v", "random")))["apiUrl"]
        == "/api"
    )
    assert (
        _config_object(render_config_js(SiteConfig("/api/", "dev", "v", "random")))["apiUrl"]
        == "/api"
    )


@pytest.mark.parametrize(
    "api_url",
    [
        "//evil.example/api",  # another host, with the page's scheme
        "///evil.example",  # browsers read this as another host too
        "/\\evil.example",  # and this, with a backslash
        "/api?key=1",
        "/api#x",
        "/a pi",
        "api",
        "https://",
        "ftp://example.org",
        "javascript:alert(1)",
    ],
)
def test_config_js_refuses_anything_but_an_http_url_or_an_own_path(api_url):
    with pytest.raises(ValueError, match="api_url"):
        SiteConfig(api_url, "dev", "v", "random")


SITE = Path(__file__).resolve().parent.parent / "site"
LICENCES = ("CC0", "public domain")


class _Samples(HTMLParser):
    """The sample buttons (`data-sample`) and the credit items (`id="credit-..."`)."""

    def __init__(self) -> None:
        super().__init__()
        self.buttons: list[str] = []
        self.credits: dict[str, str] = {}
        self._credit: str | None = None

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if "data-sample" in attributes:
            self.buttons.append(attributes["data-sample"])
        if tag == "li" and (attributes.get("id") or "").startswith("credit-"):
            self._credit = attributes["id"].removeprefix("credit-")
            self.credits[self._credit] = ""
        if self._credit and tag == "a":
            self.credits[self._credit] += f" <{attributes.get('href')}>"

    def handle_data(self, data):
        if self._credit:
            self.credits[self._credit] += data

    def handle_endtag(self, tag):
        if tag == "li":
            self._credit = None


def test_every_sample_photo_has_a_button_a_thumbnail_and_a_free_licence():
    page = _Samples()
    page.feed((SITE / "index.html").read_text())
    photos = sorted(p.stem for p in (SITE / "samples").glob("*.jpg") if "-thumb" not in p.stem)
    assert photos
    assert sorted(page.buttons) == photos
    for photo in photos:
        assert (SITE / "samples" / f"{photo}-thumb.jpg").is_file()
        credit = page.credits[photo]
        assert any(licence in credit for licence in LICENCES), credit
        assert "<https://scikit-image.org/docs/stable/api/skimage.data.html#skimage.data." in credit
