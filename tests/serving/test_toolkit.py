"""The handler inside the real SageMaker inference toolkit's transformer, as the PyTorch
serving container runs it: client errors keep their 4xx status and JSON first line."""

from __future__ import annotations

import json
import sys

import pytest

from tests.serving import images

transformer = pytest.importorskip(
    "sagemaker_inference.transformer",
    reason="sagemaker-inference is not installed (pip install sagemaker-inference)",
)


class RequestProcessor:
    def __init__(self, headers: dict[str, str]) -> None:
        self._headers = headers

    def get_request_properties(self) -> dict[str, str]:
        return self._headers


class Context:
    """The parts of the model server's context the toolkit uses."""

    def __init__(self, model_dir, headers: dict[str, str]) -> None:
        self.system_properties = {"model_dir": str(model_dir)}
        self.request_processor = [RequestProcessor(headers)]
        self.status: tuple[int, str] | None = None
        self.content_type: str | None = None

    def set_response_status(self, code: int, phrase: str) -> None:
        self.status = (code, phrase)

    def set_response_content_type(self, _index: int, content_type: str) -> None:
        self.content_type = content_type


@pytest.fixture
def toolkit(tiny_model_dir, monkeypatch):
    """The toolkit imports the user module by name from code/ on sys.path."""
    monkeypatch.setenv("SAGEMAKER_PROGRAM", "inference.py")
    monkeypatch.syspath_prepend(str(tiny_model_dir / "code"))
    monkeypatch.delitem(sys.modules, "inference", raising=False)
    yield transformer.Transformer()
    sys.modules.pop("inference", None)


def transform(toolkit, model_dir, body: bytes, content_type: str) -> tuple[Context, str]:
    context = Context(model_dir, {"Content-Type": content_type, "Accept": "*/*"})
    (response,) = toolkit.transform([{"body": body}], context)
    return context, response


def test_prediction_through_the_toolkit(toolkit, tiny_model_dir):
    context, response = transform(
        toolkit, tiny_model_dir, images.good_cases()[0].body, "image/jpeg"
    )
    assert context.status is None
    assert context.content_type == "application/json"
    assert len(json.loads(response)["predictions"]) == 5


@pytest.mark.parametrize(
    "case",
    [c for c in images.bad_cases() if c.content_type != "application/json"],
    ids=lambda case: case.name,
)
def test_client_errors_keep_their_status_and_json(toolkit, tiny_model_dir, case):
    context, response = transform(toolkit, tiny_model_dir, case.body, case.content_type)
    code, phrase = context.status
    assert code == case.status
    assert phrase
    # The toolkit sends "<message>\n<traceback>": the contract is the first line.
    first_line, _, trace = response.partition("\n")
    assert json.loads(first_line)["error"]["code"] == case.code
    assert "Traceback" in trace


def test_json_bodies_are_decoded_to_text_and_refused(toolkit, tiny_model_dir):
    context, response = transform(toolkit, tiny_model_dir, b'{"image": "x"}', "application/json")
    assert context.status[0] == 415
    assert json.loads(response.partition("\n")[0])["error"]["code"] == "unsupported_content_type"
