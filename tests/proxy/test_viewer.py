"""The visitor's address in the request log: CloudFront's `CloudFront-Viewer-Address`
(`ip:port`, IPv6 unbracketed) for requests it forwarded, API Gateway's `sourceIp` for the
others. A header anyone can send is believed only behind the origin secret."""

from __future__ import annotations

import random

import pytest

from tests.proxy.support import via_cloudfront
from tests.proxy.test_access import Harness, error_of, photo

VIEWER_HEADER = "cloudfront-viewer-address"
SOURCE_IP = "203.0.113.7"
"""`requestContext.http.sourceIp` of the test events: CloudFront's edge, for its requests."""


@pytest.fixture
def harness(tmp_path):
    return Harness(tmp_path, keys=False)


def through_cloudfront(address: str | None) -> dict:
    event = via_cloudfront(photo())
    if address is not None:
        event["headers"][VIEWER_HEADER] = address
    return event


@pytest.mark.parametrize(
    ("address", "viewer"),
    [
        ("198.51.100.10:46532", "198.51.100.10"),
        # CloudFront writes IPv6 unbracketed, the port after the last colon.
        ("2001:db8::8a2e:370:7334:46532", "2001:db8::8a2e:370:7334"),
        ("2001:0db8:0000:0000:0000:0000:0000:0001:443", "2001:db8::1"),
        ("[2001:db8::1]:443", "2001:db8::1"),
        ("::ffff:198.51.100.10:1", "198.51.100.10"),
        (" 198.51.100.10:0 ", "198.51.100.10"),
    ],
)
def test_through_cloudfront_the_viewer_is_cloudfronts_viewer_address(harness, address, viewer):
    assert harness.call(through_cloudfront(address))["statusCode"] == 200
    assert harness.record()["viewer_ip"] == viewer


@pytest.mark.parametrize(
    "address",
    [
        None,
        "",
        "198.51.100.10",
        "198.51.100.10:",
        "198.51.100.10:65536",
        "198.51.100.10:-1",
        "198.51.100.10:80x",
        "2001:db8::1",
        "[2001:db8::1:443",
        "999.1.1.1:80",
        "localhost:80",
        "198.51.100.10:80,203.0.113.9:81",
        "x" * 300,
    ],
)
def test_without_a_usable_viewer_address_none_is_logged(harness, address):
    # Not the edge's sourceIp either: it would pass CloudFront off as the visitor.
    assert harness.call(through_cloudfront(address))["statusCode"] == 200
    assert "viewer_ip" not in harness.record()


def test_a_direct_request_is_its_own_source_whatever_header_it_sends(harness):
    event = photo()
    event["headers"][VIEWER_HEADER] = "198.51.100.10:46532"
    assert error_of(harness.call(event)) == (403, "forbidden")
    assert harness.record()["viewer_ip"] == SOURCE_IP


def test_a_wrong_secret_does_not_make_the_header_believed(harness):
    event = through_cloudfront("198.51.100.10:46532")
    event["headers"]["x-origin-verify"] = "a-guess-" * 5
    assert error_of(harness.call(event)) == (403, "forbidden")
    assert harness.record()["viewer_ip"] == SOURCE_IP


@pytest.mark.parametrize("seed", range(200))
def test_no_header_value_makes_it_crash(harness, seed):
    rng = random.Random(seed)
    alphabet = "0123456789abcdef:.[]% -,\x00é"
    address = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 60)))
    assert harness.call(through_cloudfront(address))["statusCode"] == 200
