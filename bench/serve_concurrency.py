"""Throughput of `python -m serving.serve` with 1, 2 and 4 concurrent clients, loopback only.

    .venv/bin/python bench/serve_concurrency.py [--seconds 10] [--clients 1,2,4]
                                                [--server-workers N] [--artifact PATH]

Starts two `python -m serving.serve` on the archive: one with
`SAGEMAKER_MODEL_SERVER_WORKERS=1` (one request at a time, as the server was before it ran
requests concurrently) and one with its default (or --server-workers N). It drives
`POST /invocations` on each with each number of clients, every client on its own
kept-alive connection, as `python -m batch run --workers N` does. The photos are crops of
scikit-image's, JPEG, 320 to 1024 px on the long side. The measurements run in short
rounds, alternating servers and client counts, so load from other programs falls on all
of them alike. Prints images per second, p50 and p95 latency, and the ratios to one
client on the same server (the baseline, measured in the same run). Exits 1 if any
request failed.
"""

from __future__ import annotations

import argparse
import http.client
import io
import os
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
from PIL import Image
from skimage import data

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.measure import Run  # noqa: E402 (needs the repository root on the path)
from machine.model_server import ModelServer  # noqa: E402
from serving.serve import WORKERS_ENV  # noqa: E402

SOURCES = (data.chelsea, data.coffee, data.astronaut, data.rocket)


def photos(count: int = 16, seed: int = 0) -> list[bytes]:
    rng = np.random.default_rng(seed)
    images = [Image.fromarray(load()).convert("RGB") for load in SOURCES]
    bodies = []
    for index in range(count):
        image = images[index % len(images)]
        share = rng.uniform(0.6, 1.0)
        width, height = int(image.width * share), int(image.height * share)
        view = image.crop((0, 0, width, height))
        side = int(rng.integers(320, 1025))
        scale = side / max(view.size)
        view = view.resize((round(view.width * scale), round(view.height * scale)))
        buffer = io.BytesIO()
        view.save(buffer, "JPEG", quality=90)
        bodies.append(buffer.getvalue())
    return bodies


def drive(url: str, bodies: list[bytes], clients: int, seconds: float) -> Run:
    parts = urlsplit(url)
    run = Run(f"{clients} client(s)")
    lock = threading.Lock()
    start = threading.Barrier(clients + 1)
    deadline = 0.0

    def client(offset: int) -> None:
        connection = http.client.HTTPConnection(parts.netloc, timeout=60)
        index = offset
        start.wait()
        while time.perf_counter() < deadline:
            body = bodies[index % len(bodies)]
            index += clients
            began = time.perf_counter()
            try:
                connection.request(
                    "POST", parts.path, body=body, headers={"content-type": "image/jpeg"}
                )
                response = connection.getresponse()
                response.read()
                ok = response.status == 200
            except (OSError, http.client.HTTPException):
                ok = False
                connection.close()
            elapsed = time.perf_counter() - began
            with lock:
                if ok:
                    run.latencies.append(elapsed)
                else:
                    run.failures["failed"] += 1
        connection.close()

    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    for thread in threads:
        thread.start()
    began = time.perf_counter()
    deadline = began + seconds
    start.wait()
    for thread in threads:
        thread.join()
    run.seconds = time.perf_counter() - began
    return run


def report(label: str, run: Run, baseline: Run | None) -> None:
    line = (
        f"{label:<22} {run.label}  {len(run.latencies):>5} ok {run.errors:>3} "
        f"errors  {run.throughput:6.1f} img/s  p50 {run.percentile(0.5):6.1f} ms  "
        f"p95 {run.percentile(0.95):6.1f} ms"
    )
    if baseline is not None and baseline.throughput:
        line += (
            f"  | x 1 client: img/s {run.throughput / baseline.throughput:.2f}, "
            f"p50 {run.percentile(0.5) / baseline.percentile(0.5):.2f}"
        )
    print(line, flush=True)


def start_server(artifact: Path, workers: int | None) -> ModelServer:
    """A model server with `workers` (None: its default) in its environment."""
    os.environ.pop(WORKERS_ENV, None)
    if workers is not None:
        os.environ[WORKERS_ENV] = str(workers)
    server = ModelServer(artifact)
    server.start()
    return server


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="per server and count")
    parser.add_argument("--rounds", type=int, default=5, help="alternations per measurement")
    parser.add_argument("--clients", default="1,2,4", help="comma-separated client counts")
    parser.add_argument(
        "--server-workers",
        type=int,
        help=f"the second server's {WORKERS_ENV} (default: its own, from the CPUs)",
    )
    parser.add_argument("--artifact", type=Path, default=ROOT / "build" / "model.tar.gz")
    args = parser.parse_args()
    if not args.artifact.is_file():
        raise SystemExit(f"{args.artifact} is missing: run `make run` once, or pass --artifact")
    counts = sorted({int(part) for part in args.clients.split(",")})
    bodies = photos()
    labels = ["one at a time", f"workers: {args.server_workers or 'default'}"]
    servers: list[ModelServer] = []
    try:
        for workers in (1, args.server_workers):
            servers.append(start_server(args.artifact, workers))
        urls = [f"{server.url}/invocations" for server in servers]
        for url in urls:
            drive(url, bodies, 1, 1.0)  # warm-up
        print(
            f"{os.cpu_count()} CPUs; {len(bodies)} JPEGs; {args.seconds:.0f} s per server and "
            f"client count, in {args.rounds} rounds"
        )
        runs = {(url, clients): Run(f"{clients} client(s)") for url in urls for clients in counts}
        for _ in range(args.rounds):
            for url in urls:
                for clients in counts:
                    part = drive(url, bodies, clients, args.seconds / args.rounds)
                    total = runs[url, clients]
                    total.latencies += part.latencies
                    total.failures += part.failures
                    total.seconds += part.seconds
    finally:
        for server in servers:
            server.stop()
    for label, url in zip(labels, urls, strict=True):
        for clients in counts:
            baseline = runs[url, counts[0]] if clients != counts[0] else None
            report(label, runs[url, clients], baseline)
    return 1 if any(run.errors for run in runs.values()) else 0


if __name__ == "__main__":
    raise SystemExit(main())
