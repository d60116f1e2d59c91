"""Kept-alive against fresh connections through the local runtime, loopback only.

    .venv/bin/python bench/keep_alive.py [--requests 200] [--artifact PATH]

Starts `python -m local` on free ports and times, one request at a time, each of:

- `GET /` on the site's origin (a static file, no model);
- `POST /api/predict` on the site's origin (the origin, the HTTP API emulation, the proxy
  Lambda and the model server behind it);
- `POST /invocations` on the model server alone (what the proxy calls).

Each is measured twice in the same run, alternating, so background load hits both alike:
on a new TCP connection per request (the baseline) and on one kept-alive connection.
Prints p50 and p95 per request and the kept-alive/fresh ratios; a ratio near 1 (or
below: no handshake) is the target, and about 40 ms more per request is the mark of
Nagle's algorithm meeting delayed ACKs. Exits 1 if any request failed.
"""

from __future__ import annotations

import argparse
import http.client
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.measure import Run, upload_photo  # noqa: E402 (needs the repository root on the path)
from local.process import local_runtime  # noqa: E402


@dataclass(frozen=True)
class Target:
    label: str
    url: str
    method: str = "GET"
    body: bytes | None = None


def _request(connection: http.client.HTTPConnection, target: Target, path: str) -> bool:
    headers = {"content-type": "image/jpeg"} if target.body is not None else {}
    connection.request(target.method, path, body=target.body, headers=headers)
    response = connection.getresponse()
    response.read()
    return response.status == 200


def measure(target: Target, requests: int) -> tuple[Run, Run]:
    """(fresh, kept-alive) timings of `requests` requests each, interleaved."""
    parts = urlsplit(target.url)
    fresh, kept = Run(f"{target.label}, fresh"), Run(f"{target.label}, kept-alive")
    alive = http.client.HTTPConnection(parts.netloc, timeout=30)
    try:
        _request(alive, target, parts.path)  # warm-up: the connection and the server
        for _ in range(requests):
            for timings, connection in (
                (fresh, None),
                (kept, alive),
            ):
                started = time.perf_counter()
                own = connection or http.client.HTTPConnection(parts.netloc, timeout=30)
                try:
                    ok = _request(own, target, parts.path)
                except (OSError, http.client.HTTPException):
                    ok = False
                finally:
                    if connection is None:
                        own.close()
                elapsed = time.perf_counter() - started
                if ok:
                    timings.latencies.append(elapsed)
                else:
                    timings.failures["failed"] += 1
    finally:
        alive.close()
    return fresh, kept


def report(timings: Run, baseline: Run | None) -> None:
    line = (
        f"{timings.label:<38} {len(timings.latencies):>4} ok {timings.errors:>3} errors  "
        f"mean {timings.mean:6.1f} ms  p50 {timings.percentile(0.5):6.1f} ms  "
        f"p95 {timings.percentile(0.95):6.1f} ms"
    )
    if baseline is not None:
        line += (
            f"  | x fresh: mean {timings.mean / baseline.mean:.2f}, "
            f"p50 {timings.percentile(0.5) / baseline.percentile(0.5):.2f}"
        )
    print(line)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=200, help="per target and kind")
    parser.add_argument("--artifact", type=Path, default=ROOT / "build" / "model.tar.gz")
    args = parser.parse_args()
    if not args.artifact.is_file():
        raise SystemExit(f"{args.artifact} is missing: run `make run` once, or pass --artifact")
    body = upload_photo()
    print(f"{args.requests} requests per target and kind, one at a time; {len(body)} byte JPEG")
    with local_runtime(args.artifact) as runtime:
        found = re.search(r"^SageMaker\s+(http://\S+)", runtime.output, re.M)
        if found is None:
            raise SystemExit(f"python -m local printed no SageMaker URL:\n{runtime.output}")
        model_url = found.group(1)
        targets = [
            Target("site GET /", f"{runtime.site_url}/"),
            Target("site POST /api/predict", f"{runtime.api_url}/predict", "POST", body),
            Target("model server /invocations", f"{model_url}/invocations", "POST", body),
        ]
        results = [measure(target, args.requests) for target in targets]
    failed = False
    for fresh, kept in results:
        report(fresh, None)
        report(kept, fresh)
        failed = failed or bool(fresh.errors or kept.errors)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
