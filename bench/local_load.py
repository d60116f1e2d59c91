"""Load check of the local API: N concurrent clients for a bounded time, loopback only.

    .venv/bin/python bench/local_load.py [--clients 4] [--duration 10] [--artifact PATH]
    .venv/bin/python bench/local_load.py --url http://127.0.0.1:8000/api   # a running instance

Requests go where the web UI sends them: `POST /api/predict` on the site's origin, which
adds the origin header as CloudFront does (the direct API port refuses requests without
it). Without --url it starts `python -m local` on free ports and, as the baseline measured
in the same run, drives the model server behind it directly (`POST /invocations`) with
the same clients, so the ratios show what the one origin, the HTTP API emulation and the
proxy Lambda add. Prints throughput, p50/p95 latency and errors; exits 1 if any request
failed.
"""

from __future__ import annotations

import argparse
import ipaddress
import re
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.measure import Run, upload_photo  # noqa: E402 (needs the repository root on the path)
from local.process import local_runtime  # noqa: E402


def require_loopback(url: str) -> None:
    host = urlsplit(url).hostname or ""
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise SystemExit(f"refusing to load-test {url}: this check runs against loopback only")


def drive(label: str, url: str, body: bytes, clients: int, duration: float) -> Run:
    run = Run(label)
    lock = threading.Lock()
    deadline = time.monotonic() + duration

    def client() -> None:
        with httpx.Client(timeout=30) as session:
            while time.monotonic() < deadline:
                started = time.perf_counter()
                try:
                    response = session.post(
                        url, content=body, headers={"content-type": "image/jpeg"}
                    )
                    outcome = (
                        None if response.status_code == 200 else f"HTTP {response.status_code}"
                    )
                except httpx.HTTPError as exc:
                    outcome = type(exc).__name__
                elapsed = time.perf_counter() - started
                with lock:
                    if outcome is None:
                        run.latencies.append(elapsed)
                    else:
                        run.failures[outcome] += 1

    threads = [threading.Thread(target=client) for _ in range(clients)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    run.seconds = time.monotonic() - started
    return run


def report(run: Run, baseline: Run | None) -> None:
    line = (
        f"{run.label:<22} {len(run.latencies):>6} ok {run.errors:>4} errors  "
        f"{run.throughput:7.1f} req/s  p50 {run.percentile(0.5):7.1f} ms  "
        f"p95 {run.percentile(0.95):7.1f} ms"
    )
    if baseline is not None and baseline.throughput:
        line += (
            f"  | x baseline: throughput {run.throughput / baseline.throughput:.2f}, "
            f"p50 {run.percentile(0.5) / baseline.percentile(0.5):.2f}, "
            f"p95 {run.percentile(0.95) / baseline.percentile(0.95):.2f}"
        )
    print(line)
    for kind, count in run.failures.most_common():
        print(f"    {count} x {kind}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per measurement")
    parser.add_argument(
        "--url",
        help="API base URL of a running `python -m local`, through its site "
        "(http://127.0.0.1:8000/api)",
    )
    parser.add_argument("--artifact", type=Path, default=ROOT / "build" / "model.tar.gz")
    args = parser.parse_args()
    body = upload_photo()
    print(f"{args.clients} clients x {args.duration:.0f} s, {len(body)} byte JPEG per request")

    if args.url:
        require_loopback(args.url)
        run = drive(
            "local API", f"{args.url.rstrip('/')}/predict", body, args.clients, args.duration
        )
        report(run, None)
        return 1 if run.errors else 0

    if not args.artifact.is_file():
        raise SystemExit(f"{args.artifact} is missing: run `make run` once, or pass --artifact")
    with local_runtime(args.artifact) as runtime:
        found = re.search(r"^SageMaker\s+(http://\S+)", runtime.output, re.M)
        if found is None:
            raise SystemExit(f"python -m local printed no SageMaker URL:\n{runtime.output}")
        model_url = found.group(1)
        warm = drive("warm-up", f"{runtime.api_url}/predict", body, 1, 1.0)
        baseline = drive(
            "model server (base)", f"{model_url}/invocations", body, args.clients, args.duration
        )
        run = drive(
            "local API (proxy)", f"{runtime.api_url}/predict", body, args.clients, args.duration
        )
    report(baseline, None)
    report(run, baseline)
    return 1 if run.errors or baseline.errors or warm.errors else 0


if __name__ == "__main__":
    raise SystemExit(main())
