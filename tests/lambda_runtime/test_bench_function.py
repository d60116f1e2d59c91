"""`bench/lambda_init.py` starts the proxy's function as the dev stack defines it: the same
zip, handler, memory, timeout and environment (its origin secret a fresh one), in the
stack's region. It builds the function from the program's own pieces, so the benchmark
runs without the tests' Pulumi mocks; this keeps the two the same."""

from __future__ import annotations

from pathlib import Path

from bench.lambda_init import DEPLOYMENT, proxy_function
from tests.infra.conftest import (
    ARCHIVE_VERSION,
    REGION,
    plain,
    synthetic_metadata,
    write_synthetic_archive,
)
from tests.lambda_runtime.harness import DEPLOYMENT as STACK_DEPLOYMENT
from tests.lambda_runtime.harness import batch_stack, stack_function

SECRET = "ORIGIN_SECRET"


def test_the_benchmark_starts_the_dev_stacks_proxy(tmp_path: Path):
    stack = stack_function(
        batch_stack(write_synthetic_archive(tmp_path / "model.tar.gz")), "api-function"
    )
    bench = proxy_function({ARCHIVE_VERSION: synthetic_metadata()["labels"]})
    assert plain(dict(bench.members)) == plain(dict(stack.members))
    assert (bench.handler, bench.memory_mb, bench.timeout_seconds) == (
        stack.handler,
        stack.memory_mb,
        stack.timeout_seconds,
    )
    assert {**bench.variables, SECRET: ""} == {**stack.variables, SECRET: ""}
    assert len(bench.variables[SECRET]) == len(stack.variables[SECRET])
    assert bench.variables[SECRET].isalnum()
    assert (DEPLOYMENT.region, DEPLOYMENT.task_root) == (REGION, STACK_DEPLOYMENT.task_root)
