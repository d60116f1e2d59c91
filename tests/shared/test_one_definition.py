"""Each fact more than one side names is defined once: in `shared/`, or in a module the
others may import (tests/test_import_rules.py says which may import which)."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

from shared.serverless import SERVERLESS_MEMORY_MB, SERVERLESS_MEMORY_STEP_MB
from tests.conftest import PRODUCT_PACKAGES, ROOT

PACKAGES = PRODUCT_PACKAGES
"""Every package but `policy/`: the policy pack runs alone and keeps copies, which
tests/policy/test_rules.py holds equal to the program's."""
DIFFERENT_FACTS = {
    # Each CLI's own documented exit status; 2 is also what argparse exits with.
    "EXIT_STORE",
    "EXIT_USAGE",
    # A media type, in the serving image and in the handler each archive carries alone.
    "JSON",
}
"""Names that two modules define alike without naming one fact."""
HANDLER = ROOT / "serving" / "code" / "inference.py"
"""The handler packed alone into each model archive: it imports nothing of the project, so
the facts it shares are copies, held equal below."""
NECESSARY_COPIES = {"TOP_K"}


def _literal_constants(path: Path) -> dict[str, object]:
    """The module's upper-case names assigned a literal value at its top level."""
    found = {}
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Assign):
            targets, value = node.targets, node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            targets, value = [node.target], node.value
        else:
            continue
        for target in targets:
            if isinstance(target, ast.Name) and target.id.lstrip("_").isupper():
                try:
                    found[target.id.lstrip("_")] = ast.literal_eval(value)
                except ValueError:
                    continue  # computed: refers to what it is made of
    return found


def test_no_constant_is_written_down_twice():
    definitions: dict[tuple[str, str], list[str]] = defaultdict(list)
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            for name, value in _literal_constants(path).items():
                if name not in DIFFERENT_FACTS | NECESSARY_COPIES:
                    definitions[name, repr(value)].append(str(path.relative_to(ROOT)))
    copies = {f"{name} = {value}": where for (name, value), where in definitions.items()}
    assert {k: v for k, v in copies.items() if len(v) > 1} == {}


def test_the_handlers_copies_are_what_the_rest_names():
    handler = _literal_constants(HANDLER)
    assert handler["TOP_K"] == _literal_constants(ROOT / "model" / "quantize.py")["TOP_K"]
    proxy_formats = _literal_constants(ROOT / "proxy" / "request.py")["SUPPORTED_NAMES"]
    assert handler["FORMAT_NAMES"] == proxy_formats


@pytest.mark.parametrize("name", ["a", "ic-prod-canary", "a--b", "x" * 63, "x" * 64, "-a", "a-"])
def test_the_model_servers_endpoint_names_are_the_proxys(name):
    """The serving image carries no `shared/` (a change there would change its tag), so
    `serving.serve` keeps its own copy of SageMaker's rule."""
    from proxy.config import ENDPOINT_NAME
    from serving import serve

    assert bool(serve.ENDPOINT_NAME.match(name)) is bool(ENDPOINT_NAME.fullmatch(name))


def test_the_serverless_memory_sizes_are_the_steps_up_to_6144():
    assert tuple(range(SERVERLESS_MEMORY_STEP_MB, 6145, SERVERLESS_MEMORY_STEP_MB)) == (
        SERVERLESS_MEMORY_MB
    )
