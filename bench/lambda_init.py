"""Benchmark: the proxy zip's init under AWS's runtime interface client, as Lambda runs it.

    .venv/bin/python -m bench.lambda_init [--starts 9]

Each start is a fresh `python -m awslambdaric proxy.handler.handler` in the boto3-only
virtualenv of `tests/lambda_runtime` (built on first use). Its task root holds the proxy's
zip exactly as the stack builds it, read from the dev stack under Pulumi's mocks, with no
bytecode and none written (`PYTHONDONTWRITEBYTECODE`: Lambda's task root is read-only), and
it gets the stack's environment. Init is the time from the process's start to its first
`GET /2018-06-01/runtime/invocation/next` on the Runtime API stand-in. By then
awslambdaric has imported the handler module: the configuration is checked, the SageMaker
Runtime client made. That is Lambda's `Init Duration` without the sandbox's own start.

The baseline, measured the same way in the same run, is a zip whose handler module is
`def handler(event, context): return None`. It shows the interpreter's and
awslambdaric's share; the difference is the proxy's own. It prints p50 and p95 of both and
their ratio. There is no target: Lambda's init runs on other hardware. The figure is
reported in docs/testing.md.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import pulumi  # noqa: E402

from shared.stats import percentile  # noqa: E402
from tests.infra.conftest import write_synthetic_archive  # noqa: E402
from tests.lambda_runtime.harness import (  # noqa: E402
    FUNCTION,
    batch_stack,
    lambda_venv,
    start_function,
    start_zip,
)
from tests.lambda_runtime.runtime_api import LambdaFunction  # noqa: E402

PROXY = "api-function"
EMPTY_ZIP = pulumi.AssetArchive(
    {"handler.py": pulumi.StringAsset("def handler(event, context):\n    return None\n")}
)
NO_SERVICES = {"SAGEMAKER_RUNTIME": "http://127.0.0.1:9", "DYNAMODB": "http://127.0.0.1:9"}
"""Init makes no call: the endpoints only need to parse."""


def measure(
    starters: dict[str, Callable[[Path], LambdaFunction]], starts: int, scratch: Path
) -> dict[str, list[float]]:
    """Each starter's init times, the starters taking turns so that the machine's load
    weighs on all alike."""
    times: dict[str, list[float]] = {key: [] for name in starters for key in (name, f"{name} cpu")}
    for run in range(starts):
        for name, start in starters.items():
            work = scratch / f"{name}-{run}"
            work.mkdir(parents=True)
            function = start(work)
            try:
                times[name].append(function.wait_for_init())
                times[f"{name} cpu"].append(function.init_cpu_seconds or 0.0)
            finally:
                function.stop()
    return times


def summary(name: str, times: list[float]) -> str:
    p50, p95 = percentile(times, 0.5), percentile(times, 0.95)
    return f"{name:<13} p50 {p50 * 1000:7.1f} ms  p95 {p95 * 1000:7.1f} ms"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--starts", type=int, default=9, help="fresh starts of each (default 9)")
    args = parser.parse_args(argv)
    if args.starts < 1:
        parser.error("--starts must be at least 1")
    python = lambda_venv()
    with tempfile.TemporaryDirectory(prefix="lambda-init-") as directory:
        scratch = Path(directory)
        stack = batch_stack(write_synthetic_archive(scratch / "model.tar.gz"))
        proxy = stack.one(FUNCTION, PROXY)

        def empty(work: Path) -> LambdaFunction:
            return start_zip(
                EMPTY_ZIP,
                "handler.handler",
                {},
                function_name=proxy.state["name"],
                memory_mb=proxy.inputs["memorySize"],
                timeout_seconds=proxy.inputs["timeout"],
                python=python,
                workdir=work,
                endpoints=NO_SERVICES,
            )

        def the_proxy(work: Path) -> LambdaFunction:
            return start_function(stack, PROXY, python, work, NO_SERVICES)

        times = measure({"baseline": empty, "proxy": the_proxy}, args.starts, scratch)
    for name, measured in times.items():
        print(summary(name, measured))
    for kind in ("", " cpu"):
        proxy_p50 = percentile(times[f"proxy{kind}"], 0.5)
        baseline_p50 = percentile(times[f"baseline{kind}"], 0.5)
        ratio = proxy_p50 / baseline_p50
        own = (proxy_p50 - baseline_p50) * 1000
        print(f"proxy / baseline{kind} p50: {ratio:.2f} (the proxy's own: {own:.0f} ms)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
