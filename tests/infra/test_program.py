"""`__main__.py`, the program the engine runs for every real stack, under the engine's config.

The other tests build the stack from settings they load themselves; this one checks that
the program reads the same config from the engine and never leaves anything out.
"""

from __future__ import annotations

import pulumi
import pytest

from tests.infra.conftest import PROJECT, ROOT, plain, record, stack_config


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_the_program_builds_the_stack_from_the_engines_config(stack, run_stack, synthetic_archive):
    # What the engine passes: Pulumi.yaml's defaults and the stack file (with an archive
    # that exists without torch); `run_stack` loads the same mapping itself.
    config = stack_config(stack) | {f"{PROJECT}:model": str(synthetic_archive)}
    if stack == "prod":
        config[f"{PROJECT}:alarmEmail"] = "oncall@classifier-team.io"  # its operator sets it
    expected = run_stack(config)
    program = compile((ROOT / "__main__.py").read_text(), str(ROOT / "__main__.py"), "exec")
    pulumi.runtime.set_all_config(config)
    try:
        run = record(lambda: exec(program, {"__name__": "__main__"}))
    finally:
        pulumi.runtime.set_all_config({})

    assert run.error is None, run.error
    assert not run.warnings
    assert run.of_type("aws:cloudfront/responseHeadersPolicy:ResponseHeadersPolicy")
    registered = {(r.type, r.name): plain(r.inputs) for r in run.resources}
    assert registered == {(r.type, r.name): plain(r.inputs) for r in expected.resources}
