"""The same images through the three paths give the same outcomes: the API (the proxy's
Lambda handler in front of `python -m serving.serve`), a local batch run
(`python -m batch run DIR`), and a transform (`python -m batch run s3://... --on
sagemaker`, its job played by `tests.batch.transform_standin` with the same archive).

What may differ, and is set aside explicitly before comparing:

- per run: `classified_at`, `failed_at`, `latency_ms` (a transform times no single
  image: null), and in `summary.json` `input`, `out`, `model_server`, `workers`,
  `started_at`, `finished_at`, `this_run.seconds`, `this_run.images_per_second`,
  `this_run.latency_ms`;
- per place: `request_id` (a hash of the image's place), `source.location` (the folder,
  or `s3://bucket`), `source.key` (the path in the folder, or the object's key) and
  `source.etag` (size and time of a file, or S3's ETag).

Everything else of every outcome file and of the summary is equal. The API answers
what its body says of the same image: `predictions`, `model` and `needs_review` of a
photo (its `model` also names the `variant` that answered, which batch has not), and
`{code, message, status}` of an image the model or the proxy refuses; an empty or too
large file has the API's own words (there is no file in a request), compared by code and
status.
"""

from __future__ import annotations

import copy
import json
import time
from pathlib import Path
from typing import Any

import pytest

from tests.batch.support import batch_cli, write
from tests.batch.transform_support import EXPECTED, PHOTOS, Cloud, images
from tests.proxy.support import LambdaContext, body_of, http_event
from tests.proxy.test_with_model_server import import_handler

pytestmark = pytest.mark.slow

PER_RUN = ("classified_at", "failed_at", "latency_ms")
PER_PLACE = ("request_id", "source.location", "source.key", "source.etag")
SUMMARY_PER_RUN = (
    "input",
    "out",
    "model_server",
    "workers",
    "started_at",
    "finished_at",
    "this_run.seconds",
    "this_run.images_per_second",
    "this_run.latency_ms",
)
WORDS_OF_THEIR_OWN = {"empty.jpg", "big.jpg"}
"""Refused as files by batch, as request bodies by the API: the same code and status."""


def without(document: dict[str, Any], paths: tuple[str, ...]) -> dict[str, Any]:
    kept = copy.deepcopy(document)
    for path in paths:
        *parents, last = path.split(".")
        place = kept
        for parent in parents:
            place = place.get(parent) or {}
        place.pop(last, None)
    return kept


def local_outcomes(out: Path) -> dict[str, tuple[str, dict[str, Any]]]:
    found = {}
    for folder in ("results", "review", "failed"):
        for path in sorted((out / folder).rglob("*.json")):
            name = path.relative_to(out / folder).as_posix().removesuffix(".json")
            found[name] = (folder, json.loads(path.read_text()))
    return found


@pytest.fixture
def api(model_server_url: str):
    with pytest.MonkeyPatch.context() as monkeypatch:
        yield import_handler(monkeypatch, model_server_url)


def ask_api(handler, data: bytes) -> tuple[int, dict[str, Any]]:
    response = handler(
        http_event(data, "application/octet-stream"), LambdaContext(time.monotonic, 29_000)
    )
    return response["statusCode"], body_of(response)


def test_api_local_batch_and_transform_give_the_same_outcomes(
    cloud: Cloud, model_artifact: Path, tmp_path: Path, api
):
    files = {name: data for name, data in images().items()}
    folder = write(tmp_path / "team", files)
    local = batch_cli(
        "run",
        str(folder),
        "--out",
        str(tmp_path / "out"),
        "--artifact",
        str(model_artifact),
        "--quiet",
    )
    assert local.returncode == 0, local.stderr
    transformed = cloud.transform(f"s3://{PHOTOS}/team/", f"s3://{PHOTOS}/classified/")
    assert transformed.returncode == 0, transformed.stderr

    here = local_outcomes(tmp_path / "out")
    there = cloud.outcomes(PHOTOS, "classified/")
    assert set(here) == set(there) == set(EXPECTED)
    for name, (folder_here, document_here) in here.items():
        folder_there, document_there = there[name]
        assert folder_here == folder_there, name
        normalised = PER_RUN + PER_PLACE
        assert without(document_here, normalised) == without(document_there, normalised), name
        assert document_there["source"]["key"] == f"team/{name}"

    summary_here = json.loads((tmp_path / "out" / "summary.json").read_text())
    summary_there = cloud.read_json(PHOTOS, "classified/summary.json")
    assert set(summary_here) == set(summary_there)
    assert without(summary_here, SUMMARY_PER_RUN) == without(summary_there, SUMMARY_PER_RUN)

    for name, (folder, document) in here.items():
        status, body = ask_api(api, files[name])
        if folder == "failed":
            assert status == document["error"]["status"], name
            if name in WORDS_OF_THEIR_OWN:
                assert body["error"]["code"] == document["error"]["code"], name
            else:
                said = {key: body["error"][key] for key in ("code", "message")}
                assert said == {key: document["error"][key] for key in ("code", "message")}, name
        else:
            assert status == 200, (name, body)
            answered = {key: body[key] for key in ("predictions", "model", "needs_review")}
            assert answered["model"].pop("variant") == "main"  # the API's alone
            assert answered == {key: document[key] for key in answered}, name
