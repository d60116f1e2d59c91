"""The pack's entry point, run the way the Pulumi CLI runs it, answering real analyzer RPCs.

`pulumi preview --policy-pack policy` starts the pack through its Python analyzer shim,
`python -u -m pulumi.policy <engine> <pack dir>` in the pack's virtualenv, reads the
port the pack prints and talks gRPC to it. We start it the same way, so the entry
point, the import of `rules` and the wire format of every diagnostic are checked
without the CLI.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from google.protobuf import empty_pb2, struct_pb2

from policy import rules
from tests.policy.stack_fixture import good_resources
from tests.policy_sdk_adapter import analyzer_pb2, analyzer_pb2_grpc

PACK_DIR = Path(__file__).resolve().parents[2] / "policy"


@pytest.fixture(scope="module")
def analyzer() -> Iterator[analyzer_pb2_grpc.AnalyzerStub]:
    process = subprocess.Popen(
        # The engine address is only parsed by the shim; the pack never calls back.
        [sys.executable, "-u", "-m", "pulumi.policy", "127.0.0.1:1", "."],
        cwd=PACK_DIR,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        port = int(process.stdout.readline().decode().strip() or 0)
        assert port, process.stderr.read().decode()
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            grpc.channel_ready_future(channel).result(timeout=10)
            yield analyzer_pb2_grpc.AnalyzerStub(channel)
    finally:
        process.terminate()
        process.wait(timeout=10)


def _struct(props: dict) -> struct_pb2.Struct:
    message = struct_pb2.Struct()
    message.update(json.loads(json.dumps(props)))
    return message


def test_pack_advertises_every_rule_as_mandatory(analyzer):
    info = analyzer.GetAnalyzerInfo(empty_pb2.Empty())

    assert info.name == rules.PACK_NAME
    assert {p.name for p in info.policies} == {p.name for p in rules.POLICIES}
    assert {p.enforcementLevel for p in info.policies} == {analyzer_pb2.MANDATORY}


def test_pack_reports_a_bad_resource_over_grpc(analyzer):
    stage = good_resources()["api-stage"]
    request = analyzer_pb2.AnalyzeRequest(
        type=stage.type,
        properties=_struct({"name": "$default", "autoDeploy": True}),
        urn=stage.urn,
        name=stage.name,
        options=analyzer_pb2.AnalyzerResourceOptions(),
    )

    diagnostics = analyzer.Analyze(request).diagnostics

    assert [d.policyName for d in diagnostics] == ["api-stage-throttling"] * 2
    assert all(d.enforcementLevel == analyzer_pb2.MANDATORY for d in diagnostics)


def test_pack_accepts_the_sound_stack_over_grpc(analyzer):
    resources = good_resources().values()
    for r in resources:
        request = analyzer_pb2.AnalyzeRequest(
            type=r.type, properties=_struct(dict(r.props)), urn=r.urn, name=r.name
        )
        assert list(analyzer.Analyze(request).diagnostics) == [], r.name

    stack = analyzer_pb2.AnalyzeStackRequest(
        resources=[
            analyzer_pb2.AnalyzerResource(
                type=r.type, properties=_struct(dict(r.props)), urn=r.urn, name=r.name
            )
            for r in resources
        ]
    )
    assert list(analyzer.AnalyzeStack(stack).diagnostics) == []
    assert analyzer.GetPluginInfo(empty_pb2.Empty()).version
