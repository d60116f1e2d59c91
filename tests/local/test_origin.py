"""The site's one origin (CloudFront's stand-in): `/api/*` to the API with the origin
header set to the secret, whatever the client sent; everything else to the site."""

import pytest
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from local.api import create_api_app
from local.origin import create_origin_app
from shared.api import ORIGIN_HEADER
from tests.local.test_api_app import RecordingHandler

SECRET = "s" * 43


def _site() -> Starlette:
    async def page(request):
        return PlainTextResponse(f"site {request.url.path} {request.headers.get(ORIGIN_HEADER)}")

    return Starlette(routes=[Route("/{path:path}", page)])


@pytest.fixture
def handler():
    return RecordingHandler()


@pytest.fixture
def client(handler):
    app = create_origin_app(_site(), create_api_app(handler), SECRET)
    return TestClient(app, base_url="http://127.0.0.1:8000")


def test_api_requests_go_to_the_api_with_the_secret(client, handler):
    response = client.post("/api/predict", content=b"x", headers={"content-type": "image/jpeg"})
    assert response.status_code == 200
    event = handler.calls[0][0]
    assert event["headers"][ORIGIN_HEADER] == SECRET
    assert event["rawPath"] == "/api/predict", "forwarded with its path, as CloudFront does"
    assert event["headers"]["content-type"] == "image/jpeg"


@pytest.mark.parametrize("sent", ["guess", SECRET + "x", ""])
def test_a_header_the_client_sent_is_replaced_not_passed_on(client, handler, sent):
    client.post("/api/predict", content=b"x", headers={ORIGIN_HEADER: sent})
    event = handler.calls[0][0]
    assert event["headers"][ORIGIN_HEADER] == SECRET, "one value, ours (not joined with theirs)"


def test_other_api_paths_reach_the_api_and_its_404(client, handler):
    response = client.post("/api/classify", content=b"x")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    assert handler.calls == []


@pytest.mark.parametrize("path", ["/", "/config.js", "/api", "/apiary.js", "/predict"])
def test_everything_else_is_the_sites_without_the_secret(client, handler, path):
    response = client.get(path, headers={ORIGIN_HEADER: "mine"})
    assert response.text == f"site {path} mine"
    assert handler.calls == []


def test_the_direct_api_adds_no_header_and_passes_the_clients_on(handler):
    """The execute-api stand-in: what the client sent is what the proxy sees."""
    direct = TestClient(create_api_app(handler))
    direct.post("/api/predict", content=b"x")
    direct.post("/api/predict", content=b"x", headers={ORIGIN_HEADER: "guess"})
    assert ORIGIN_HEADER not in handler.calls[0][0]["headers"]
    assert handler.calls[1][0]["headers"][ORIGIN_HEADER] == "guess"


STAGE = "0123456789abcdef0123456789abcdef"


@pytest.fixture
def staged(handler):
    api = create_api_app(handler, site_stage=STAGE)
    return TestClient(create_origin_app(_site(), api, SECRET, f"/{STAGE}"))


def test_the_site_reaches_the_api_on_its_own_stage_as_through_cloudfronts_origin_path(
    staged, handler
):
    response = staged.post("/api/feedback", content=b"{}")
    assert response.status_code == 200
    event = handler.calls[0][0]
    # As API Gateway sends a named stage's request: its segment leads the paths only.
    assert event["requestContext"]["stage"] == STAGE
    assert event["rawPath"] == f"/{STAGE}/api/feedback"
    assert event["requestContext"]["http"]["path"] == f"/{STAGE}/api/feedback"
    assert event["routeKey"] == event["requestContext"]["routeKey"] == "POST /api/feedback"


def test_the_direct_api_serves_both_stages_like_execute_api(handler):
    direct = TestClient(create_api_app(handler, site_stage=STAGE))
    assert direct.post("/api/predict", content=b"x").status_code == 200
    assert handler.calls[-1][0]["requestContext"]["stage"] == "$default"
    assert direct.post(f"/{STAGE}/api/predict", content=b"x").status_code == 200
    assert handler.calls[-1][0]["requestContext"]["stage"] == STAGE
    for path in (f"/{STAGE}x/api/predict", f"/{STAGE}", "/guess/api/predict"):
        assert direct.post(path, content=b"x").status_code == 404
    assert len(handler.calls) == 2


def test_the_viewers_address_is_added_as_cloudfront_adds_it_and_a_sent_one_replaced(
    client, handler
):
    client.post(
        "/api/predict", content=b"x", headers={"cloudfront-viewer-address": "198.51.100.1:1"}
    )
    event = handler.calls[0][0]
    # The connection's host and port: the test client's own, as CloudFront sees the viewer's.
    assert event["headers"]["cloudfront-viewer-address"] == "testclient:50000"


def test_the_direct_api_adds_no_viewer_address(handler):
    direct = TestClient(create_api_app(handler))
    direct.post("/api/predict", content=b"x", headers={"cloudfront-viewer-address": "x:1"})
    assert handler.calls[0][0]["headers"]["cloudfront-viewer-address"] == "x:1"
