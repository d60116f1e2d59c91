"""Reading the model handler's error out of `ModelError`, whatever shape it arrives in."""

import pytest

from proxy.sagemaker import classify
from tests.proxy.support import client_error, model_error


def answer(exc):
    failure = classify(exc)
    return failure.error.status, failure.error.code, failure.error.message


@pytest.mark.parametrize("traceback", [True, False])
def test_the_handlers_json_first_line(traceback):
    exc = model_error(400, "corrupt_image", "The PNG image is truncated.", traceback=traceback)
    assert answer(exc) == (400, "corrupt_image", "The PNG image is truncated.")


def test_original_message_as_bytes():
    exc = client_error(
        "ModelError",
        424,
        OriginalStatusCode=415,
        OriginalMessage=b'{"error": {"code": "unsupported_image", "message": "Not an image."}}',
    )
    assert answer(exc) == (415, "unsupported_image", "Not an image.")


@pytest.mark.parametrize(
    "original",
    [
        "Bad Request",
        "",
        "[1, 2]",
        '{"error": "just a string"}',
        '{"error": {"code": "Not Snake Case", "message": 7}}',
        None,
    ],
)
def test_a_4xx_without_the_contract_body_keeps_its_status(original):
    exc = client_error("ModelError", 424, OriginalStatusCode="400", OriginalMessage=original)
    assert answer(exc) == (400, "invalid_image", "The model could not use this image.")


def test_a_long_message_is_cut():
    exc = model_error(400, "corrupt_image", "x" * 5000)
    assert len(answer(exc)[2]) == 500


@pytest.mark.parametrize("status", [500, 503, None, "garbage"])
def test_not_a_4xx_is_a_502(status):
    exc = client_error("ModelError", 424, OriginalStatusCode=status, OriginalMessage="oops")
    assert answer(exc)[:2] == (502, "model_error")
    assert classify(exc).retryable is False
