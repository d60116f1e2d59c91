"""The proxy's log lines: JSON objects, with the keys appended to the request in flight."""

import threading

import pytest

from proxy.logs import append_keys, log, request_context
from tests.proxy.support import LogLines


@pytest.fixture
def logs():
    return LogLines("DEBUG")


def test_a_line_is_the_level_the_event_and_the_records_fields(logs):
    log.error("invalid_configuration", extra={"fields": {"message": "LOG_LEVEL='LOUD' ..."}})
    assert logs.text.endswith("\n")
    assert logs.records() == [
        {"level": "ERROR", "event": "invalid_configuration", "message": "LOG_LEVEL='LOUD' ..."}
    ]


def test_keys_appended_during_a_request_are_on_its_lines_and_gone_after_it(logs):
    with request_context(request_id="r1"):
        append_keys(status=200, failures=["timeout"])
        log.info("request")
    log.info("after")
    assert logs.records() == [
        {
            "level": "INFO",
            "event": "request",
            "request_id": "r1",
            "status": 200,
            "failures": ["timeout"],
        },
        {"level": "INFO", "event": "after"},
    ]


def test_keys_appended_outside_a_request_go_nowhere(logs):
    append_keys(status=200)
    log.info("startup")
    assert logs.records() == [{"level": "INFO", "event": "startup"}]


def test_an_exception_is_a_traceback_field(logs):
    try:
        raise ZeroDivisionError("boom")
    except ZeroDivisionError as exc:
        log.error("request", exc_info=exc)
    (record,) = logs.records()
    assert record["traceback"].startswith("Traceback (most recent call last):")
    assert "ZeroDivisionError: boom" in record["traceback"]


def test_values_json_cannot_encode_are_written_as_text(logs):
    with request_context(request_id=b"bytes"):
        log.warning("request")
    assert logs.records()[0]["request_id"] == "b'bytes'"


def test_concurrent_requests_keep_their_own_keys(logs):
    """The local runtime serves requests in threads, each with its own context."""
    both_inside = threading.Barrier(2)

    def request(name):
        with request_context(request_id=name):
            both_inside.wait()
            append_keys(method=name.upper())
            both_inside.wait()
            log.info("request")

    threads = [threading.Thread(target=request, args=(name,)) for name in ("a", "b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    records = sorted(logs.records(), key=lambda record: record["request_id"])
    assert [(r["request_id"], r["method"]) for r in records] == [("a", "A"), ("b", "B")]
