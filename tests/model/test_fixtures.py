"""The shared fixtures other parts build on: a real archive and a real server."""

import tarfile

import httpx
import pytest


@pytest.mark.slow
def test_model_artifact_is_a_sagemaker_archive(model_artifact):
    with tarfile.open(model_artifact) as tar:
        names = tar.getnames()
    assert names == ["code/inference.py", "metadata.json", "model.onnx"]


@pytest.mark.slow
def test_model_server_answers_ping(model_server_url):
    assert httpx.get(f"{model_server_url}/ping").status_code == 200
