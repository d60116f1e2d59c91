"""The site's `config.js` in the cloud (what `SiteConfigFile` uploads, under the shared
mocks) against the local runtime's (`GET /config.js`): one `render_config_js`, one set of
fields, and the untrained-model warning on both."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import fields
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from artifact.metadata import read_archive_metadata
from components.site_config_file import KEY, SiteConfigFileArgs
from hosting.config_js import SiteConfig, config_keys
from local.site import create_site_app
from tests.infra.conftest import PROJECT, StackRun, write_synthetic_archive

OBJECT = "aws:s3/bucketObjectv2:BucketObjectv2"
PRETRAINED = "IMAGENET1K_V2"

RunStack = Callable[[dict[str, str]], StackRun]


def config_object(text: str) -> dict[str, Any]:
    match = re.search(r"window\.APP_CONFIG = Object\.freeze\((\{.*\})\);", text, re.S)
    assert match, text
    return json.loads(match.group(1))


def uploaded(run: StackRun) -> dict[str, Any]:
    """The config.js object the stack uploads to the site bucket, as the page reads it."""
    (config_js,) = [r for r in run.of_type(OBJECT) if r.inputs["key"] == KEY]
    assert config_js.inputs["content"] == run.outputs["config_js"]
    return config_object(config_js.inputs["content"])


def served_locally(archive: Path) -> dict[str, Any]:
    """What `python -m local` serves for the same archive (its site app, as the CLI makes it)."""
    metadata = read_archive_metadata(archive)
    app = create_site_app(metadata.version, model_weights=metadata.weights)
    response = TestClient(app, base_url="http://127.0.0.1:8000").get("/config.js")
    assert response.status_code == 200
    return config_object(response.text)


def variants(*entries: dict[str, Any]) -> dict[str, str]:
    return {f"{PROJECT}:model": json.dumps(list(entries))}


def test_the_cloud_and_the_local_config_js_have_the_same_keys(dev_stack, synthetic_archive):
    cloud, local = uploaded(dev_stack), served_locally(synthetic_archive)
    assert set(cloud) == set(local) == set(config_keys())
    # The same archive: everything but the environment's name is the same.
    assert {k: v for k, v in cloud.items() if k != "environment"} == {
        k: v for k, v in local.items() if k != "environment"
    }
    assert (cloud["environment"], local["environment"]) == ("dev", "local")


def test_the_cloud_page_is_told_the_model_is_untrained(dev_stack):
    """The dev stack serves the synthetic archive, whose metadata.json says `random`."""
    assert uploaded(dev_stack)["modelWeights"] == "random"
    assert dev_stack.outputs["model_weights"] == "random"


def test_the_component_takes_every_field_of_the_site_config():
    """`SiteConfigFile` renders `SiteConfig(**{field: args[field]})`: a field added to one is
    a field the other must supply."""
    assert {f.name for f in fields(SiteConfig)} <= SiteConfigFileArgs.__required_keys__


@pytest.fixture(scope="module")
def pretrained_archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_synthetic_archive(
        tmp_path_factory.mktemp("pretrained") / "model.tar.gz", "fedcba987654", PRETRAINED
    )


@pytest.mark.parametrize(
    ("main", "other", "shown"),
    [
        # A trained main and a random canary that takes requests: some answers are guesses.
        ((95, PRETRAINED), (5, "random"), "random"),
        # A random variant held at weight 0 answers nobody.
        ((100, PRETRAINED), (0, "random"), PRETRAINED),
        # Main held at 0, every request to a trained candidate.
        ((0, "random"), (100, PRETRAINED), PRETRAINED),
        ((50, "random"), (50, PRETRAINED), "random"),
    ],
)
def test_with_variants_the_page_warns_when_any_variant_taking_requests_is_untrained(
    run_stack: RunStack, synthetic_archive, pretrained_archive, main, other, shown
):
    archives = {"random": synthetic_archive, PRETRAINED: pretrained_archive}
    run = run_stack(
        variants(
            {"name": "main", "weight": main[0], "archive": str(archives[main[1]])},
            {"name": "canary", "weight": other[0], "archive": str(archives[other[1]])},
        )
    )
    assert run.error is None, run.error
    config = uploaded(run)
    assert config["modelWeights"] == shown
    # The version stays main's, as the stack's `model_version` output is.
    assert config["modelVersion"] == run.outputs["model_version"]
