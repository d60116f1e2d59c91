"""The docs name the stack's outputs as the program exports them, and the runbooks take
every log group's name from an output, never from a pattern written down twice."""

from __future__ import annotations

import re

import pytest

from tests.infra.conftest import ROOT, StackRun

DOCS = sorted([ROOT / "README.md", *(ROOT / "docs").glob("*.md")])
STACK_OUTPUT = re.compile(
    r"pulumi stack output((?:\s+--?[\w-]+(?:[= ][\w-]+)?)*?)\s+([A-Za-z_]\w*)"
)
LOG_GROUP_OUTPUTS = (
    "function_log_group",
    "api_access_log_group",
    "endpoint_log_group",
    "waf_log_group",
    "batch_log_group",
)
OPTIONAL_OUTPUTS_ON = {
    "image-classifier:domainName": "classify.classifier-team.io",
    "image-classifier:waf": "true",
    "image-classifier:apiKeys": "true",
    "image-classifier:batch": "true",
}
"""Config that adds every output the dev stack leaves out (a domain without its zone)."""


def named_outputs() -> list[tuple[str, str]]:
    return [
        (path.relative_to(ROOT).as_posix(), match.group(2))
        for path in DOCS
        for match in STACK_OUTPUT.finditer(path.read_text())
    ]


def test_the_docs_name_stack_outputs_at_all():
    assert {"site_url", "endpoint_name"} <= {name for _, name in named_outputs()}


@pytest.fixture(scope="module")
def every_output(dev_stack: StackRun, run_stack) -> set[str]:
    optional = run_stack(OPTIONAL_OUTPUTS_ON)
    assert optional.error is None, optional.error
    return set(dev_stack.outputs) | set(optional.outputs)


@pytest.mark.parametrize(("doc", "name"), named_outputs())
def test_every_stack_output_the_docs_name_exists(every_output: set[str], doc: str, name: str):
    assert name in every_output, f"{doc} runs `pulumi stack output {name}`: no such output"


def test_log_group_names_are_stack_outputs(dev_stack: StackRun):
    groups = {
        group.name: group.inputs["name"]
        for group in dev_stack.of_type("aws:cloudwatch/logGroup:LogGroup")
    }
    assert {name: dev_stack.outputs.get(name) for name in LOG_GROUP_OUTPUTS} == {
        "function_log_group": groups["api-function-logs"],
        "api_access_log_group": groups["api-access-logs"],
        "endpoint_log_group": groups["model-logs"],
        "waf_log_group": None,  # only with waf (tests/infra/test_edge_access.py)
        "batch_log_group": None,  # only with batch (tests/infra/test_batch_pipeline.py)
    }


def test_runbooks_read_every_log_group_from_a_stack_output():
    """`aws logs` commands name a shell variable set from `pulumi stack output`; the
    function logs to a named group, not to `/aws/lambda/<function>`."""
    operations = (ROOT / "docs" / "operations.md").read_text()
    assigned = dict(re.findall(r"^(\w+)=\$\(pulumi stack output (\w+)\)$", operations, re.M))
    used = re.findall(r"aws logs \S+ \"?([^\s\"]+)", operations)
    assert used, "the runbooks tail logs somewhere"
    for group in used:
        variable = re.fullmatch(r"\$(\w+)", group)
        assert variable, f"`aws logs ... {group}`: take the name from a stack output"
        assert assigned.get(variable.group(1)) in LOG_GROUP_OUTPUTS, group
    written_down = re.findall(r"/aws/(?:lambda|sagemaker|apigateway)/\S*\$\w+", operations)
    assert not written_down, f"log group names built by hand: {written_down}"
