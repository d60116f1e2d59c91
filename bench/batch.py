"""Batch throughput: `python -m batch run` over a folder of photos, beside the same photos
sent one by one through the local API, in the same run, against the same model server.

    .venv/bin/python bench/batch.py [--images 200] [--workers 2] [--artifact PATH]

It makes the folder from the photos scikit-image and scikit-learn ship (crops and resizes
of each, JPEG, 320 to 1024 px on the long side, as the web UI would send them), starts
`python -m local` on free ports (as bench/local_load.py does), and measures:

- the local API: each photo in turn, `POST /api/predict` on the site's origin (the HTTP
  API emulation, the proxy Lambda, the model server), one client, one request at a time;
- the model server alone (`POST /invocations`), one request at a time: what the API adds;
- the batch: what `python -m batch run --model-server URL` does (`batch.runner`'s scan
  and process) on the folder against the runtime's model server, with 1 worker and with
  `--workers`.

Per image, the API's latency is the client's round trip; the batch's is the task's (read
and check the file, call the model, write the outcome JSON). Prints images per second,
p50 and p95 per image, and the ratios to the API; exits 1 if any image failed.
"""

from __future__ import annotations

import argparse
import io
import os
import re
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import httpx
import numpy as np
from PIL import Image
from skimage import data
from sklearn.datasets import load_sample_images

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# These need the repository root on the path.
from artifact.metadata import read_archive_metadata  # noqa: E402
from batch.runner import local_classifier, process, runtime_environment, scan  # noqa: E402
from bench.measure import Run  # noqa: E402
from local.process import local_runtime  # noqa: E402
from pipeline.storage import LocalStorage  # noqa: E402
from proxy.config import DEFAULT_MAX_IMAGE_BYTES, DEFAULT_REVIEW_THRESHOLD  # noqa: E402
from shared.stats import percentile  # noqa: E402

SOURCES = {
    "cat": data.chelsea,
    "coffee": data.coffee,
    "astronaut": data.astronaut,
    "rocket": data.rocket,
    "china": lambda: load_sample_images().images[0],
    "flower": lambda: load_sample_images().images[1],
}


def make_photos(folder: Path, count: int, seed: int = 0) -> list[Path]:
    """`count` JPEGs: random crops (55-100 %) of the sources, resized to 320-1024 px."""
    rng = np.random.default_rng(seed)
    photos = {
        name: Image.fromarray(np.asarray(load())).convert("RGB") for name, load in SOURCES.items()
    }
    names = sorted(photos)
    paths = []
    for index in range(count):
        name = names[index % len(names)]
        image = photos[name]
        share = rng.uniform(0.55, 1.0)
        width, height = int(image.width * share), int(image.height * share)
        left = int(rng.integers(0, image.width - width + 1))
        top = int(rng.integers(0, image.height - height + 1))
        view = image.crop((left, top, left + width, top + height))
        side = int(rng.integers(320, 1025))
        view = view.resize(_scaled(view.size, side), Image.Resampling.LANCZOS)
        path = folder / f"{name}-{index:03d}.jpg"
        buffer = io.BytesIO()
        view.save(buffer, "JPEG", quality=int(rng.integers(85, 93)))
        path.write_bytes(buffer.getvalue())
        paths.append(path)
    return paths


def _scaled(size: tuple[int, int], side: int) -> tuple[int, int]:
    scale = side / max(size)
    return max(1, round(size[0] * scale)), max(1, round(size[1] * scale))


def one_by_one(label: str, url: str, paths: list[Path]) -> Run:
    measure = Run(label)
    with httpx.Client(timeout=30) as client:
        started = time.perf_counter()
        for path in paths:
            body = path.read_bytes()
            begun = time.perf_counter()
            try:
                response = client.post(url, content=body, headers={"content-type": "image/jpeg"})
                ok = response.status_code == 200
            except httpx.HTTPError:
                ok = False
            if ok:
                measure.latencies.append(time.perf_counter() - begun)
            else:
                measure.failures["failed"] += 1
        measure.seconds = time.perf_counter() - started
    return measure


def batch(label: str, folder: Path, out: Path, model_url: str, workers: int) -> Run:
    """What `python -m batch run --model-server URL` does, timed from the scan of the
    folder to the last outcome written (no summary, no server to start)."""
    source, target = LocalStorage(folder), LocalStorage(out)
    with runtime_environment(model_url):
        classifier = local_classifier(DEFAULT_REVIEW_THRESHOLD, DEFAULT_MAX_IMAGE_BYTES)
        started = time.perf_counter()
        done = process(scan(source, target), classifier, workers=workers)
        seconds = time.perf_counter() - started
    failures = Counter(failed=done.processed["failed"], unrecorded=len(done.unrecorded))
    return Run(label, latencies=done.latencies, seconds=seconds, failures=failures)


def report(measure: Run, baseline: Run | None) -> None:
    line = (
        f"{measure.label:<30} {len(measure.latencies):>4} ok {measure.errors:>3} errors  "
        f"{measure.throughput:6.1f} img/s  p50 {measure.percentile(0.5):6.1f} ms  "
        f"p95 {measure.percentile(0.95):6.1f} ms"
    )
    if baseline is not None and baseline.throughput:
        line += (
            f"  | x API: throughput {measure.throughput / baseline.throughput:.2f}, "
            f"p50 {measure.percentile(0.5) / baseline.percentile(0.5):.2f}, "
            f"p95 {measure.percentile(0.95) / baseline.percentile(0.95):.2f}"
        )
    print(line)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--artifact", type=Path, default=ROOT / "build" / "model.tar.gz")
    args = parser.parse_args()
    if not args.artifact.is_file():
        raise SystemExit(f"{args.artifact} is missing: run `make run` once, or pass --artifact")
    meta = read_archive_metadata(args.artifact)
    with tempfile.TemporaryDirectory(prefix="bench-batch-") as scratch:
        folder = Path(scratch) / "photos"
        folder.mkdir()
        paths = make_photos(folder, args.images)
        sizes = sorted(path.stat().st_size for path in paths)
        print(
            f"{len(paths)} JPEGs, {sizes[0] // 1024}-{sizes[-1] // 1024} KB "
            f"(median {percentile(sizes, 0.5) / 1024:.0f} KB); model {meta.name} {meta.version} "
            f"(weights {meta.weights}), {os.cpu_count()} CPUs"
        )
        with local_runtime(args.artifact) as runtime:
            found = re.search(r"^SageMaker\s+(http://\S+)", runtime.output, re.M)
            if found is None:
                raise SystemExit(f"python -m local printed no SageMaker URL:\n{runtime.output}")
            model_url = found.group(1)
            api = f"{runtime.api_url}/predict"
            one_by_one("warm-up", api, paths[:10])
            measured = [one_by_one("local API, one by one", api, paths)]
            # Where the API's time goes: the model server alone, called the same way.
            measured.append(
                one_by_one("model server, one by one", f"{model_url}/invocations", paths)
            )
            for workers in sorted({1, args.workers}):
                out = Path(scratch) / f"out-{workers}"
                measured.append(
                    batch(f"batch run, {workers} worker(s)", folder, out, model_url, workers)
                )
    report(measured[0], None)
    for measure in measured[1:]:
        report(measure, measured[0])
    return 1 if any(measure.errors for measure in measured) else 0


if __name__ == "__main__":
    raise SystemExit(main())
