"""HTTP <-> API Gateway HTTP API payload 2.0, as the AWS documentation shapes it."""

import base64
import json

from local.event import HttpRequest, build_event, to_http_response


def request(**overrides) -> HttpRequest:
    fields = {
        "method": "post",
        "path": "/api/predict",
        "query_string": "",
        "headers": [("Content-Type", "image/jpeg"), ("User-Agent", "pytest")],
        "body": b"\xff\xd8\xff\x00binary",
        "source_ip": "127.0.0.1",
        "host": "127.0.0.1:8001",
    }
    return HttpRequest(**{**fields, **overrides})


def test_a_binary_body_is_base64_encoded_with_the_documented_shape():
    event = build_event(request(), "POST /api/predict")
    assert event["version"] == "2.0"
    assert event["routeKey"] == "POST /api/predict"
    assert event["rawPath"] == "/api/predict"
    assert event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == b"\xff\xd8\xff\x00binary"
    assert event["headers"] == {"content-type": "image/jpeg", "user-agent": "pytest"}
    context = event["requestContext"]
    assert context["http"] == {
        "method": "POST",
        "path": "/api/predict",
        "protocol": "HTTP/1.1",
        "sourceIp": "127.0.0.1",
        "userAgent": "pytest",
    }
    assert context["stage"] == "$default"
    assert context["requestId"]
    assert isinstance(context["timeEpoch"], int)
    assert "queryStringParameters" not in event
    assert "cookies" not in event


def test_json_stays_text():
    body = json.dumps({"image": "AAAA"}).encode()
    event = build_event(
        request(headers=[("content-type", "application/json; charset=utf-8")], body=body), "k"
    )
    assert event["isBase64Encoded"] is False
    assert event["body"] == body.decode()


def test_text_that_is_not_utf8_is_base64_encoded():
    event = build_event(request(headers=[("content-type", "text/plain")], body=b"\xff\xfe"), "k")
    assert event["isBase64Encoded"] is True


def test_duplicates_are_comma_joined_and_cookies_have_their_own_list():
    event = build_event(
        request(
            query_string="a=1&a=2&b=",
            headers=[("X-Tag", "one"), ("x-tag", "two"), ("Cookie", "s=1; t=2")],
        ),
        "k",
    )
    assert event["headers"]["x-tag"] == "one,two"
    assert "cookie" not in event["headers"]
    assert event["cookies"] == ["s=1", "t=2"]
    assert event["queryStringParameters"] == {"a": "1,2", "b": ""}
    assert event["rawQueryString"] == "a=1&a=2&b="


def test_an_empty_body_has_no_body_field():
    event = build_event(request(method="GET", body=b""), "k")
    assert "body" not in event
    assert event["isBase64Encoded"] is False


def test_a_full_result_becomes_the_response_without_the_backends_framing():
    response = to_http_response(
        {
            "statusCode": 503,
            "headers": {
                "Content-Type": "application/json",
                "Retry-After": "5",
                "Access-Control-Allow-Origin": "*",
                "Content-Length": "999",
            },
            "cookies": ["a=b; Secure"],
            "body": '{"error": {}}',
        }
    )
    assert response.status == 503
    assert response.headers == [
        ("content-type", "application/json"),
        ("retry-after", "5"),
        # An HTTP API without a CORS configuration (the stack's) passes these on.
        ("access-control-allow-origin", "*"),
        ("set-cookie", "a=b; Secure"),
    ]
    assert response.body == b'{"error": {}}'


def test_a_base64_result_is_decoded():
    body = base64.b64encode(b"\x89PNG").decode()
    response = to_http_response({"statusCode": 200, "body": body, "isBase64Encoded": True})
    assert response.body == b"\x89PNG"


def test_a_bare_result_is_a_json_200():
    response = to_http_response({"ok": True})
    assert (response.status, response.body) == (200, b'{"ok": true}')
    assert response.headers == [("content-type", "application/json")]


def test_time_and_time_epoch_are_when_the_request_was_received():
    event = build_event(request(received=1795238183.2207), "POST /api/predict")
    assert event["requestContext"]["timeEpoch"] == 1795238183220
    assert event["requestContext"]["time"] == "21/Nov/2026:05:16:23 +0000"
