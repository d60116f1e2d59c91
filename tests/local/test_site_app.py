"""The local static site: files from site/, config.js like StaticSite, strict headers."""

import json
import re

import pytest
from starlette.testclient import TestClient

from local.addresses import Addresses
from local.site import SITE_DIR, create_site_app


@pytest.fixture
def client():
    return TestClient(
        create_site_app("v123", model_weights="IMAGENET1K_V2"), base_url="http://127.0.0.1:8000"
    )


def config_of(text: str) -> dict:
    match = re.search(r"Object\.freeze\((\{.*\})\);", text, re.S)
    assert match, text
    return json.loads(match.group(1))


def test_config_js_points_at_the_api_on_the_sites_own_origin_and_is_never_cached(client):
    response = client.get("/config.js")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/javascript")
    assert response.headers["cache-control"] == "no-store"
    assert config_of(response.text) == {
        "apiUrl": "/api",
        "environment": "local",
        "modelVersion": "v123",
        "modelWeights": "IMAGENET1K_V2",
    }


def test_config_js_tells_the_page_the_weights_when_the_runtime_knows_them():
    app = create_site_app("v123", model_weights="random")
    client = TestClient(app, base_url="http://127.0.0.1:8000")
    assert config_of(client.get("/config.js").text)["modelWeights"] == "random"


@pytest.mark.parametrize("host", ["localhost:8000", "192.168.1.5:8000", "evil.example:8000"])
def test_config_js_and_the_csp_are_the_same_whatever_name_the_browser_used(client, host):
    """Relative: a phone on the LAN reaches the API wherever it reached the page."""
    response = client.get("/config.js", headers={"host": host})
    assert config_of(response.text)["apiUrl"] == "/api"
    assert "connect-src 'self';" in response.headers["content-security-policy"]


def test_index_loads_config_as_a_classic_script_before_the_module(client):
    response = client.get("/")
    assert response.status_code == 200
    html = response.text
    assert html.index('<script src="config.js"></script>') < html.index('type="module"')


def test_every_file_has_strict_headers(client):
    for path in ("/", "/app.js", "/styles.css"):
        response = client.get(path)
        assert response.status_code == 200, path
        csp = response.headers["content-security-policy"]
        assert "script-src 'self'" in csp
        assert "connect-src 'self';" in csp
        assert "8001" not in csp
        assert response.headers["x-content-type-options"] == "nosniff"
    assert client.get("/app.js").headers["content-type"].startswith("text/javascript")


@pytest.mark.parametrize("path", ["/", "/app.js", "/styles.css"])
def test_text_is_sent_compressed(client, path):
    response = client.get(path, headers={"accept-encoding": "gzip"})
    assert response.headers["content-encoding"] == "gzip"
    assert response.num_bytes_downloaded < len(response.content) / 2
    assert response.headers["content-security-policy"]


def test_images_are_sent_as_they_are(client):
    response = client.get("/samples/cat.jpg", headers={"accept-encoding": "gzip"})
    assert response.status_code == 200
    assert "content-encoding" not in response.headers


def test_nothing_outside_site_is_served(client):
    assert client.get("/../local/cli.py").status_code == 404
    assert client.get("/%2e%2e/local/cli.py").status_code == 404


def test_the_site_has_no_stale_config_file():
    assert not (SITE_DIR / "config.js").exists(), "config.js is generated per deployment"


@pytest.mark.parametrize(
    ("host", "site", "api", "direct"),
    [
        (
            "127.0.0.1",
            "http://127.0.0.1:8000",
            "http://127.0.0.1:8000/api",
            "http://127.0.0.1:8001/api",
        ),
        ("::1", "http://[::1]:8000", "http://[::1]:8000/api", "http://[::1]:8001/api"),
        (
            "0.0.0.0",
            "http://127.0.0.1:8000",
            "http://127.0.0.1:8000/api",
            "http://127.0.0.1:8001/api",
        ),
    ],
)
def test_the_printed_urls(host, site, api, direct):
    addresses = Addresses(host, 8000, 8001)
    assert (addresses.site_url(), addresses.api_url(), addresses.direct_api_url()) == (
        site,
        api,
        direct,
    )
