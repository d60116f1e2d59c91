"""The batch Lambda's zip is `proxy/`, `pipeline/` and `shared/`: its handler must load
nothing else (tests/test_import_rules.py follows the imports in the source; this asks the
interpreter what importing the handler loads)."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.conftest import ROOT

NOT_IN_THE_ZIP = (
    "batch",
    "model",
    "local",
    "machine",
    "admin",
    "serving",
    "artifact",
    "tests",
    "PIL",
    "numpy",
    "torch",
    "boto3",
    "sqlite3",
)


def test_the_handler_loads_only_its_zip_and_the_runtime():
    code = "import sys, json, pipeline.handler; print(json.dumps(sorted(sys.modules)))"
    loaded = json.loads(
        subprocess.run(
            [sys.executable, "-c", code], cwd=ROOT, check=True, capture_output=True, text=True
        ).stdout
    )
    tops = {name.split(".")[0] for name in loaded}
    assert not tops & set(NOT_IN_THE_ZIP), sorted(tops & set(NOT_IN_THE_ZIP))
    assert {"pipeline", "proxy", "shared", "botocore"} <= tops
