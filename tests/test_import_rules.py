"""Which package may import which: the map at the top of docs/architecture.md, enforced.

Each rule keeps a deployment environment honest: the Pulumi program runs in a light
virtualenv (requirements.txt), the Lambda zip holds `proxy/` and `shared/` (the batch
Lambda's, `proxy/`, `pipeline/` and `shared/`), the serving image has no torch, and the
local runtime must not need the infrastructure code.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

RULES = {
    # package or file: (allowed top-level packages, allowed exact modules)
    "__main__.py": (
        {"pulumi", "pulumi_aws", "boto3", "botocore", "components", "hosting", "shared"},
        set(),
    ),
    "components": (
        {
            "pulumi",
            "pulumi_aws",
            "pulumi_docker_build",
            "pulumi_random",
            "boto3",
            "botocore",
            "components",
            "hosting",
            "artifact",
            "shared",
        },
        {"serving.image", "pipeline.storage", "pipeline.workflow"},
    ),
    "hosting": ({"hosting", "shared"}, set()),
    # The serving image carries `artifact/` and `serving/` files without `shared/`.
    "artifact": ({"artifact"}, set()),
    "admin": ({"boto3", "botocore", "admin", "proxy", "machine", "shared"}, set()),
    "proxy": ({"boto3", "botocore", "proxy", "shared"}, {"machine.predictions_sqlite"}),
    "pipeline": ({"boto3", "botocore", "proxy", "pipeline", "shared"}, set()),
    "batch": (
        {"boto3", "botocore", "proxy", "batch", "pipeline", "artifact", "machine", "shared"},
        set(),
    ),
    "serving": (
        {"numpy", "onnxruntime", "PIL", "sagemaker_inference", "starlette", "uvicorn"},
        {"artifact.archive", "artifact.output", "serving.batch_transform", "serving"},
    ),
    # Every side imports it, both Lambda zips among them: the standard library only.
    "shared": ({"shared"}, set()),
}


def _imported_modules(path: Path) -> Iterator[str]:
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module


def _files(part: str) -> list[Path]:
    path = ROOT / part
    return sorted(path.rglob("*.py")) if path.is_dir() else [path]


@pytest.mark.parametrize("part", sorted(RULES))
def test_each_part_imports_only_what_its_environment_has(part):
    packages, modules = RULES[part]
    for path in _files(part):
        for name in _imported_modules(path):
            top = name.split(".")[0]
            allowed = top in sys.stdlib_module_names or top in packages or name in modules
            assert allowed, f"{path.relative_to(ROOT)} imports {name}"


def test_the_local_runtime_does_not_need_the_infrastructure_code():
    for path in _files("local"):
        for name in _imported_modules(path):
            assert name.split(".")[0] not in {"components", "pulumi", "pulumi_aws"}, (
                f"{path.relative_to(ROOT)} imports {name}"
            )
