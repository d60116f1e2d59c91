"""Benchmark: our ONNX Runtime handler against the naive torchvision handler.

    python bench/inference.py [--runs 11] [--requests 50]

The baseline is the handler tutorials ship: ``import torchvision``, build MobileNetV2,
load a state_dict, torchvision transforms, eager ``no_grad``. Ours runs twice, from an
archive of each precision (int8, the default, and fp32). Every handler runs the full
toolkit path (``input_fn`` -> ``predict_fn`` -> ``output_fn`` on raw JPEG bytes) with one
thread, each in fresh processes, on the same weights and the same 500x375 photo:

* cold start: from spawning the interpreter to the first prediction (median of --runs);
* warm latency: p50/p95 over the --requests requests each run makes after its first;
* peak RSS of the worker process (VmHWM), the highest of its runs.

Prints each figure and its ratio to the baseline; exits 1 if the default precision
misses a target (fp32 is printed for comparison only).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script from anywhere: `model` is at the root
    sys.path.insert(0, str(ROOT))
TARGETS = {"warm p50": 0.33, "cold start": 0.10, "peak RSS": 0.30}
PRECISIONS = ("int8", "fp32")  # the first is model.package's default
KINDS = ("baseline", *PRECISIONS)
ONE_THREAD = {
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "MODEL_INTRA_OP_THREADS": "1",
    "MODEL_INTER_OP_THREADS": "1",
}


class NaiveHandler:
    """The baseline: what a PyTorch tutorial's inference.py does."""

    @staticmethod
    def model_fn(model_dir: str):
        import torch
        import torchvision

        torch.set_num_threads(1)
        model = torchvision.models.mobilenet_v2(weights=None)
        state = torch.load(Path(model_dir) / "model.pth", map_location="cpu", weights_only=True)
        model.load_state_dict(state)
        model.eval()
        labels = json.loads((Path(model_dir) / "metadata.json").read_text())["labels"]
        return model, labels

    @staticmethod
    def input_fn(body: bytes, content_type: str):
        from PIL import Image
        from torchvision import transforms

        preprocess = transforms.Compose(
            [
                transforms.Resize(232),
                transforms.CenterCrop(224),
                transforms.ToTensor(),
                transforms.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]),
            ]
        )
        image = Image.open(io.BytesIO(body)).convert("RGB")
        return preprocess(image).unsqueeze(0)

    @staticmethod
    def predict_fn(batch, model):
        import torch

        network, labels = model
        with torch.no_grad():
            probabilities = torch.softmax(network(batch), dim=1)[0]
        top = torch.topk(probabilities, 5)
        return [
            {"label": labels[i], "index": int(i), "probability": float(p)}
            for p, i in zip(top.values, top.indices, strict=True)
        ]

    @staticmethod
    def output_fn(prediction, accept: str):
        return json.dumps({"predictions": prediction})


def load_handler(kind: str, model_dir: Path):
    if kind == "baseline":
        return NaiveHandler
    sys.path.insert(0, str(model_dir / "code"))
    import inference

    return inference


def worker(kind: str, model_dir: Path, image: Path, requests: int) -> None:
    """Runs in a fresh interpreter: first prediction, then ``requests`` timed ones."""
    started = time.perf_counter()
    handler = load_handler(kind, model_dir)
    body = image.read_bytes()
    model = handler.model_fn(str(model_dir))

    def request() -> bytes:
        data = handler.input_fn(body, "image/jpeg")
        return handler.output_fn(handler.predict_fn(data, model), "application/json")

    first = request()
    assert json.loads(first if isinstance(first, str) else first[0])["predictions"]
    print(json.dumps({"first": time.perf_counter() - started}), flush=True)
    latencies = []
    for _ in range(requests):
        tick = time.perf_counter()
        request()
        latencies.append(time.perf_counter() - tick)
    print(json.dumps({"latencies": latencies, "peak_rss": peak_rss()}), flush=True)


def peak_rss() -> int:
    """Peak resident memory of this process image in bytes. Not ru_maxrss: that one
    survives exec, so it would report the (torch-laden) parent that forked us."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def spawn(kind: str, model_dir: Path, image: Path, requests: int) -> dict:
    """Returns the wall time from spawn to first prediction, and the worker's report."""
    command = [sys.executable, __file__, "--worker", kind, str(model_dir), str(image)]
    env = {**os.environ, **ONE_THREAD, "PYTHONPATH": str(ROOT)}
    started = time.perf_counter()
    with subprocess.Popen(
        [*command, str(requests)], stdout=subprocess.PIPE, text=True, env=env
    ) as process:
        json.loads(process.stdout.readline())
        cold = time.perf_counter() - started
        report = json.loads(process.stdout.readline() or "{}")
    if process.returncode:
        raise SystemExit(f"{kind} worker failed with {process.returncode}")
    return {"cold": cold, **report}


def prepare(directory: Path) -> tuple[dict[str, Path], Path]:
    """A random-weights archive of each precision, extracted; the same weights as a
    state_dict for the baseline; a 500x375 JPEG of a real photo."""
    import skimage.data
    import torch
    from PIL import Image

    from model.archive import extract
    from model.package import DEFAULT_PRECISION, build_archive
    from model.weights import load_network

    assert PRECISIONS[0] == DEFAULT_PRECISION
    model_dirs = {}
    for precision in PRECISIONS:
        archive = build_archive("random", directory / f"{precision}.tar.gz", precision=precision)
        model_dirs[precision] = directory / precision
        extract(archive.path, model_dirs[precision])
    baseline = model_dirs["baseline"] = directory / "baseline"
    baseline.mkdir()
    torch.save(load_network("random").module.state_dict(), baseline / "model.pth")
    (baseline / "metadata.json").write_bytes((model_dirs["fp32"] / "metadata.json").read_bytes())
    image = directory / "photo.jpg"
    photo = Image.fromarray(skimage.data.chelsea()).resize((500, 375), Image.Resampling.BICUBIC)
    photo.save(image, "JPEG", quality=90)
    return model_dirs, image


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def measure(model_dirs: dict[str, Path], image: Path, runs: int, requests: int) -> dict[str, dict]:
    """Alternate the handlers run by run, so drifting load on a shared machine weighs
    on all alike; pool the warm latencies, take the median cold start."""
    reports: dict[str, list[dict]] = {kind: [] for kind in KINDS}
    for _ in range(runs):
        for kind in KINDS:
            reports[kind].append(spawn(kind, model_dirs[kind], image, requests))
    results = {}
    for kind, runs_of_kind in reports.items():
        latencies = [latency for run in runs_of_kind for latency in run["latencies"]]
        results[kind] = {
            "warm p50": percentile(latencies, 0.50) * 1000,
            "warm p95": percentile(latencies, 0.95) * 1000,
            "cold start": statistics.median(run["cold"] for run in runs_of_kind) * 1000,
            "peak RSS": max(run["peak_rss"] for run in runs_of_kind) / 2**20,
        }
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=11, help="cold starts per handler (>= 5)")
    parser.add_argument("--requests", type=int, default=50, help="warm requests per run")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-") as scratch:
        model_dirs, image = prepare(Path(scratch))
        print("measuring (1 thread, 500x375 JPEG, full handler path)...", flush=True)
        results = measure(model_dirs, image, max(args.runs, 5), args.requests)
    baseline, default = results["baseline"], PRECISIONS[0]
    units = {"warm p50": "ms", "warm p95": "ms", "cold start": "ms", "peak RSS": "MiB"}
    header = "".join(f"{kind:>12}{'ratio':>8}" for kind in PRECISIONS)
    print(f"{'metric':<12}{'baseline':>12}{header}  target ({default})")
    missed = []
    for metric, unit in units.items():
        row = f"{metric:<12}{baseline[metric]:>8.1f} {unit:<3}"
        for kind in PRECISIONS:
            value = results[kind][metric]
            row += f"{value:>8.1f} {unit:<3}{value / baseline[metric]:>7.3f}x"
        target = TARGETS.get(metric)
        if target is not None:
            met = results[default][metric] / baseline[metric] <= target
            row += f"  <= {target:.2f} {'ok' if met else 'MISSED'}"
            if not met:
                missed.append(metric)
        print(row)
    return 1 if missed else 0


if __name__ == "__main__":
    if len(sys.argv) == 6 and sys.argv[1] == "--worker":
        worker(sys.argv[2], Path(sys.argv[3]), Path(sys.argv[4]), int(sys.argv[5]))
    else:
        sys.exit(main())
