"""Validation before SageMaker: every request form, every bad input, with its status."""

import base64
import json

import pytest

from proxy.request import parse_upload, request_method
from proxy.responses import ApiError
from tests.proxy.photos import encoded
from tests.proxy.support import http_event, json_event

LIMIT = 3 * 1024 * 1024


def rejected(event, max_bytes=LIMIT):
    with pytest.raises(ApiError) as caught:
        parse_upload(event, max_bytes)
    return caught.value


@pytest.mark.parametrize(
    ("image_format", "declared", "sniffed"),
    [
        ("JPEG", "image/jpeg", "image/jpeg"),
        ("PNG", "image/png", "image/png"),
        ("WEBP", "image/webp", "image/webp"),
        ("GIF", "image/gif", "image/gif"),
        ("PNG", "application/octet-stream", "image/png"),
        ("JPEG", "application/x-image", "image/jpeg"),
        # A mislabelled file is sent as what it really is.
        ("JPEG", "image/png", "image/jpeg"),
        ("PNG", "IMAGE/PNG; charset=binary", "image/png"),
    ],
)
def test_raw_image_bodies(image_format, declared, sniffed):
    data = encoded("chelsea", image_format)
    upload = parse_upload(http_event(data, declared), LIMIT)
    assert (upload.data, upload.media_type, upload.form) == (data, sniffed, "raw")


def test_json_with_base64():
    data = encoded("coffee")
    upload = parse_upload(json_event({"image": base64.b64encode(data).decode()}), LIMIT)
    assert (upload.data, upload.media_type, upload.form) == (data, "image/jpeg", "json")


def test_json_with_a_data_url_as_a_browser_reads_it():
    data = encoded("astronaut", "PNG")
    url = "data:image/png;base64," + base64.b64encode(data).decode()
    assert parse_upload(json_event({"image": url}), LIMIT).data == data


@pytest.mark.parametrize(
    "spelling",
    [
        pytest.param(lambda b: base64.encodebytes(b).decode(), id="line-wrapped"),
        pytest.param(lambda b: base64.urlsafe_b64encode(b).decode(), id="url-safe"),
        pytest.param(lambda b: base64.b64encode(b).decode().rstrip("="), id="unpadded"),
    ],
)
def test_json_base64_as_real_clients_spell_it(spelling):
    data = encoded("chelsea", quality=70)[:-1]  # odd length: padding matters
    assert parse_upload(json_event({"image": spelling(data)}), LIMIT).data == data


def test_json_that_api_gateway_base64_encoded_too():
    data = encoded("chelsea")
    text = json.dumps({"image": base64.b64encode(data).decode()})
    event = http_event(text.encode(), "application/json; charset=utf-8")
    assert event["isBase64Encoded"] is True
    assert parse_upload(event, LIMIT).data == data


def test_header_names_in_any_case():
    data = encoded("chelsea")
    event = http_event(data, None, headers={"Content-Type": "image/jpeg"})
    assert parse_upload(event, LIMIT).media_type == "image/jpeg"


@pytest.mark.parametrize(
    ("event", "status", "code"),
    [
        (http_event(None), 400, "empty_body"),
        (http_event(""), 400, "empty_body"),
        (http_event("not base64 at all!", base64_encoded=True), 400, "invalid_base64"),
        (json_event({"image": "%%%%"}), 400, "invalid_base64"),
        (json_event({"image": "data:image/png,rawbytes"}), 400, "invalid_base64"),
        (json_event({"image": ""}), 400, "missing_image"),
        (json_event({"picture": "abcd"}), 400, "missing_image"),
        (json_event({"image": 42}), 400, "missing_image"),
        (json_event(["image"]), 400, "missing_image"),
        (http_event("{not json", "application/json"), 400, "invalid_json"),
        (http_event("[" * 100_000, "application/json"), 400, "invalid_json"),
        (json_event({"image": "data:image/png;base64,"}), 400, "empty_image"),
        (http_event("hello", "text/plain"), 415, "unsupported_media_type"),
        (
            http_event(b"--boundary", "multipart/form-data; boundary=x"),
            415,
            "unsupported_media_type",
        ),
        (http_event(b"\xff\xd8\xff\xe0", None), 415, "unsupported_media_type"),
    ],
)
def test_malformed_requests(event, status, code):
    error = rejected(event)
    assert (error.status, error.code) == (status, code)
    assert error.message.endswith(".")


@pytest.mark.parametrize(
    ("data", "named"),
    [
        (b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic", "HEIC"),
        (b"\x00\x00\x00\x1cftypavif\x00\x00\x00\x00avifmif1", "AVIF"),
        (b"BM6\x00\x0c\x00\x00\x00\x00\x006\x00\x00\x00", "BMP"),
        (b"II*\x00\x08\x00\x00\x00", "TIFF"),
        (b"%PDF-1.7\n", "PDF"),
        (b'<svg xmlns="http://www.w3.org/2000/svg"/>', "SVG"),
        (b"  <!DOCTYPE html><html>", "HTML"),
    ],
)
def test_other_image_formats_are_named(data, named):
    error = rejected(http_event(data, "image/jpeg"))
    assert (error.status, error.code) == (415, "unsupported_image_format")
    assert named in error.message


def test_bytes_that_are_no_image_at_all():
    error = rejected(http_event(b"PK\x03\x04 a zip file", "image/jpeg"))
    assert (error.status, error.code) == (422, "not_an_image")


def test_too_large_is_refused_before_decoding():
    event = http_event(b"\xff\xd8\xff" + bytes(LIMIT + 10))
    error = rejected(event)
    assert (error.status, error.code) == (413, "payload_too_large")
    assert "3.0 MB" in error.message
    assert error.limit_bytes == LIMIT, "the 413 body says the limit (error.limit_bytes)"


@pytest.mark.parametrize("form", ["raw", "json"])
def test_the_limit_is_exact(form):
    limit = 1000
    at_limit = b"\xff\xd8\xff" + bytes(limit - 3)

    def event(data):
        if form == "raw":
            return http_event(data)
        return json_event({"image": base64.b64encode(data).decode()})

    assert len(parse_upload(event(at_limit), limit).data) == limit
    assert rejected(event(at_limit + b"\x00"), limit).status == 413


def test_a_huge_json_body_is_refused_before_parsing():
    error = rejected(http_event("x" * (5 * LIMIT), "application/json"))
    assert (error.status, error.code) == (413, "payload_too_large")


def test_a_body_that_is_not_text():
    event = http_event(None)
    event["body"] = {"image": "abc"}
    error = rejected(event)
    assert (error.status, error.code) == (400, "invalid_request")


def test_method_of_a_payload_2_event():
    assert request_method(http_event(None, method="get")) == "GET"


@pytest.mark.parametrize(
    "event", [None, [], "text", {"httpMethod": "POST"}, {"requestContext": {}}]
)
def test_events_that_are_not_payload_2(event):
    with pytest.raises(ApiError) as caught:
        request_method(event)
    assert (caught.value.status, caught.value.code) == (400, "invalid_request")
