"""Benchmark: the proxy zip's init under AWS's runtime interface client, as Lambda runs it.

    .venv/bin/python -m bench.lambda_init [--starts 9]

Each start is a fresh `python -m awslambdaric proxy.handler.handler` in the boto3-only
virtualenv of `machine/lambda_zip.py` (built on first use). Its task root holds the proxy's
zip as the dev stack builds it (`components.proxy_api.lambda_code`, with the labels of a
1000-class model), with no bytecode and none written (`PYTHONDONTWRITEBYTECODE`: Lambda's
task root is read-only), and it gets the dev stack's handler, memory, timeout and
environment (`proxy_function`; tests/lambda_runtime/test_bench_function.py checks it is the
function the dev stack defines). Init is the time from the process's start to its first
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
import json
import secrets
import string
import sys
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import pulumi  # noqa: E402
import yaml  # noqa: E402

from components.model_variants import MAIN, endpoint_name  # noqa: E402
from components.proxy_api import (  # noqa: E402
    DEFAULT_LOG_LEVEL,
    FUNCTION_MEMORY_MB,
    FUNCTION_TIMEOUT_SECONDS,
    HANDLER,
    LAMBDA_TASK_ROOT,
    MODEL_LABELS_DIR,
    ORIGIN_SECRET_LENGTH,
    labels_files,
    lambda_code,
)
from components.stack_config import name_prefix  # noqa: E402
from machine.lambda_runtime_api import LambdaFunction  # noqa: E402
from machine.lambda_zip import Deployment, ZipFunction, lambda_venv, start_zip  # noqa: E402
from shared.stats import percentile  # noqa: E402

PROJECT = "image-classifier"
STACK = "dev"
DEPLOYMENT = Deployment(
    region=yaml.safe_load((ROOT / f"Pulumi.{STACK}.yaml").read_text())["config"]["aws:region"],
    account="123456789012",
    task_root=LAMBDA_TASK_ROOT,
)
MODEL_VERSION = "0123abcd4567"
MODEL_LABELS = [f"class {index}" for index in range(1000)]
"""The served model's labels, which the zip carries: as many as ImageNet's."""
EMPTY_ZIP = pulumi.AssetArchive(
    {"handler.py": pulumi.StringAsset("def handler(event, context):\n    return None\n")}
)
NO_SERVICES = {"SAGEMAKER_RUNTIME": "http://127.0.0.1:9", "DYNAMODB": "http://127.0.0.1:9"}
"""Init makes no call: the endpoints only need to parse."""


def proxy_function(labels: Mapping[str, Sequence[str]]) -> ZipFunction:
    """The proxy's function as the dev stack defines it (its one variant, `main`, serving
    the model versions of `labels`), with a fresh origin secret."""
    prefix = name_prefix(PROJECT, STACK)
    endpoint = endpoint_name(prefix, MAIN)
    alphabet = string.ascii_letters + string.digits
    variables = {
        "SAGEMAKER_ENDPOINT_NAME": endpoint,
        "VARIANTS": json.dumps([{"name": MAIN, "weight": 100, "endpoint": endpoint}]),
        "PREDICTIONS_TABLE": f"{prefix}-predictions",
        "MODEL_LABELS_DIR": f"{LAMBDA_TASK_ROOT}/{MODEL_LABELS_DIR}",
        "LOG_LEVEL": DEFAULT_LOG_LEVEL,
        "ORIGIN_SECRET": "".join(secrets.choice(alphabet) for _ in range(ORIGIN_SECRET_LENGTH)),
    }
    return ZipFunction(
        members=lambda_code(ROOT / "proxy", labels_files(labels)).assets,
        handler=HANDLER,
        variables=variables,
        name=f"{prefix}-api",
        memory_mb=FUNCTION_MEMORY_MB,
        timeout_seconds=FUNCTION_TIMEOUT_SECONDS,
    )


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
    proxy = proxy_function({MODEL_VERSION: MODEL_LABELS})
    empty = ZipFunction(
        members=EMPTY_ZIP.assets,
        handler="handler.handler",
        variables={},
        name=proxy.name,
        memory_mb=proxy.memory_mb,
        timeout_seconds=proxy.timeout_seconds,
    )

    def starter(function: ZipFunction) -> Callable[[Path], LambdaFunction]:
        def start(work: Path) -> LambdaFunction:
            return start_zip(
                function, deployment=DEPLOYMENT, python=python, workdir=work, endpoints=NO_SERVICES
            )

        return start

    with tempfile.TemporaryDirectory(prefix="lambda-init-") as directory:
        starters = {"baseline": starter(empty), "proxy": starter(proxy)}
        times = measure(starters, args.starts, Path(directory))
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
