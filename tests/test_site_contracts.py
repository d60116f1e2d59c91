"""The two pure-Python contracts shared by the cloud stack and the local runtime."""

import json
import re

import pytest

from hosting.config_js import SiteConfig, render_config_js
from hosting.cors import CorsPolicy


def _config_object(text: str) -> dict:
    match = re.search(r"window\.APP_CONFIG = Object\.freeze\((\{.*\})\);", text, re.S)
    assert match, text
    return json.loads(match.group(1))


def test_config_js_carries_the_outputs():
    text = render_config_js(
        SiteConfig("https://abc.execute-api.eu-west-1.amazonaws.com/", "dev", "v1")
    )
    assert _config_object(text) == {
        "apiUrl": "https://abc.execute-api.eu-west-1.amazonaws.com",
        "environment": "dev",
        "modelVersion": "v1",
    }


def test_config_js_carries_the_weights_only_when_known():
    config = SiteConfig("https://abc.execute-api.eu-west-1.amazonaws.com", "dev", "v1", "random")
    assert _config_object(render_config_js(config))["modelWeights"] == "random"
    # Unknown: the key is absent, and an existing deployment's config.js is unchanged.
    unknown = render_config_js(SiteConfig("https://abc.example", "dev", "v1"))
    assert "modelWeights" not in _config_object(unknown)


def test_config_js_cannot_break_out_of_a_script():
    text = render_config_js(SiteConfig("http://127.0.0.1:8001", "</script><script>x()", "v"))
    assert "</script>" not in text
    assert _config_object(text)["environment"] == "</script><script>x()"


def test_config_js_is_deterministic():
    config = SiteConfig("http://127.0.0.1:8001", "local", "v")
    assert render_config_js(config) == render_config_js(config)


def test_config_js_rejects_a_non_url():
    with pytest.raises(ValueError, match="api_url"):
        SiteConfig("execute-api", "dev", "v")


@pytest.mark.parametrize("origin", ["*", "https://*.example.com"])
def test_cors_refuses_wildcards(origin):
    with pytest.raises(ValueError, match="any website"):
        CorsPolicy(allow_origins=(origin,))


@pytest.mark.parametrize("origin", ["example.com", "https://example.com/path", "ftp://x"])
def test_cors_needs_a_bare_origin(origin):
    with pytest.raises(ValueError, match="scheme://host"):
        CorsPolicy(allow_origins=(origin,))


def test_cors_allows_only_the_site():
    policy = CorsPolicy(allow_origins=("https://d111.cloudfront.net",))
    assert policy.allows("https://d111.cloudfront.net")
    assert not policy.allows("https://evil.example")
    assert not policy.allows(None)
