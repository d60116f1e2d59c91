"""Benchmark: our ONNX Runtime handler against the naive torchvision handler, per
architecture.

    python bench/inference.py [--arch mobilenet_v2 ...] [--runs 11] [--requests 50]

The baseline is the handler tutorials ship: ``import torchvision``, build the network,
load a state_dict, torchvision transforms, eager ``no_grad``. Ours runs twice, from an
archive of each precision (int8, the default, and fp32). Every handler runs the full
toolkit path (``input_fn`` -> ``predict_fn`` -> ``output_fn`` on raw JPEG bytes) with one
thread, each in fresh processes, on the same random weights and the same 500x375 photo:

* cold start: from spawning the interpreter to the first prediction (median of --runs);
* warm latency: p50/p95 over the --requests requests each run makes after its first;
* peak RSS of the worker process (VmHWM), the highest of its runs.

Prints each figure and its ratio to the baseline for every ``--arch`` (repeat it, or
give ``all`` for the tested six), then one summary table. Where the int8 build refuses an
architecture (its agreement check fails), that is reported and fp32 alone is measured.
Exits 1 if the default architecture's default precision misses a target (the targets
are MobileNetV2's, ADR 8; the other figures are for comparison).
"""

from __future__ import annotations

import argparse
import importlib
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

from model.package import DEFAULT_PRECISION, PRECISIONS  # noqa: E402
from shared.stats import percentile  # noqa: E402

TARGETS = {"warm p50": 0.33, "cold start": 0.10, "peak RSS": 0.30}
ONE_THREAD = {
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "MODEL_INTRA_OP_THREADS": "1",
    "MODEL_INTER_OP_THREADS": "1",
}
UNITS = {"warm p50": "ms", "warm p95": "ms", "cold start": "ms", "peak RSS": "MiB"}


class NaiveHandler:
    """The baseline: what a PyTorch tutorial's inference.py does, with the architecture
    and the transform values written in (here: read from the archive's metadata)."""

    def __init__(self, model_dir: Path) -> None:
        self.metadata = json.loads((model_dir / "metadata.json").read_text())

    def model_fn(self, model_dir: str):
        import torch
        import torchvision

        torch.set_num_threads(1)
        model = torchvision.models.get_model(self.metadata["architecture"], weights=None)
        state = torch.load(Path(model_dir) / "model.pth", map_location="cpu", weights_only=True)
        model.load_state_dict(state)
        model.eval()
        return model

    def input_fn(self, body: bytes, content_type: str):
        from PIL import Image
        from torchvision import transforms

        prep = self.metadata["preprocessing"]
        interpolation = transforms.InterpolationMode(prep["interpolation"])
        preprocess = transforms.Compose(
            [
                transforms.Resize(prep["resize_size"], interpolation=interpolation),
                transforms.CenterCrop(prep["crop_size"]),
                transforms.ToTensor(),
                transforms.Normalize(prep["mean"], prep["std"]),
            ]
        )
        image = Image.open(io.BytesIO(body)).convert("RGB")
        return preprocess(image).unsqueeze(0)

    def predict_fn(self, batch, model):
        import torch

        with torch.no_grad():
            probabilities = torch.softmax(model(batch), dim=1)[0]
        top = torch.topk(probabilities, 5)
        return [
            {"label": self.metadata["labels"][i], "index": int(i), "probability": float(p)}
            for p, i in zip(top.values, top.indices, strict=True)
        ]

    def output_fn(self, prediction, accept: str):
        return json.dumps({"predictions": prediction})


def load_handler(kind: str, model_dir: Path):
    if kind == "baseline":
        return NaiveHandler(model_dir)
    # The serving code imports as the toolkit loads it: a top-level module of code/.
    sys.path.insert(0, str(model_dir / "code"))
    return importlib.import_module("inference")


def worker(kind: str, model_dir: Path, image: Path, requests: int) -> None:
    """Runs in a fresh interpreter: first prediction, then ``requests`` timed ones."""
    started = time.perf_counter()
    handler = load_handler(kind, model_dir)
    body = image.read_bytes()
    model = handler.model_fn(str(model_dir))

    def request() -> str | tuple[str, str]:
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
        assert process.stdout is not None  # stdout=PIPE
        json.loads(process.stdout.readline())
        cold = time.perf_counter() - started
        report = json.loads(process.stdout.readline() or "{}")
    if process.returncode:
        raise SystemExit(f"{kind} worker failed with {process.returncode}")
    return {"cold": cold, **report}


def prepare(arch: str, directory: Path) -> tuple[dict[str, Path], dict[str, dict]]:
    """A random-weights archive of each precision, extracted (int8 may be refused); the
    same weights as a state_dict for the baseline. Returns the model directories and,
    per precision, the archive's facts (size, int8 check, memory)."""
    import torch

    from artifact.archive import extract
    from model.package import build_archive
    from model.quantize import QuantizationError
    from model.weights import load_network

    assert PRECISIONS[0] == DEFAULT_PRECISION
    model_dirs: dict[str, Path] = {}
    facts: dict[str, dict] = {}
    for precision in PRECISIONS:
        try:
            info = build_archive(
                "random", directory / f"{precision}.tar.gz", precision=precision, arch=arch
            )
        except QuantizationError as error:
            print(f"{arch} {precision}: refused: {error}", flush=True)
            facts[precision] = {"refused": True}
            continue
        model_dirs[precision] = directory / precision
        extract(info.path, model_dirs[precision])
        facts[precision] = {"size": info.size, "memory_mb_min": info.memory_mb_min}
    baseline = model_dirs["baseline"] = directory / "baseline"
    baseline.mkdir()
    torch.save(load_network("random", arch).module.state_dict(), baseline / "model.pth")
    (baseline / "metadata.json").write_bytes((model_dirs["fp32"] / "metadata.json").read_bytes())
    return model_dirs, facts


def photo(directory: Path) -> Path:
    """A 500x375 JPEG of a real photo."""
    import skimage.data
    from PIL import Image

    image = directory / "photo.jpg"
    picture = Image.fromarray(skimage.data.chelsea()).resize((500, 375), Image.Resampling.BICUBIC)
    picture.save(image, "JPEG", quality=90)
    return image


def measure(model_dirs: dict[str, Path], image: Path, runs: int, requests: int) -> dict[str, dict]:
    """Alternate the handlers run by run, so drifting load on a shared machine weighs
    on all alike; pool the warm latencies, take the median cold start."""
    kinds = ["baseline", *(p for p in PRECISIONS if p in model_dirs)]
    reports: dict[str, list[dict]] = {kind: [] for kind in kinds}
    for _ in range(runs):
        for kind in kinds:
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


def report(arch: str, results: dict[str, dict], enforce: bool) -> list[str]:
    """Print one architecture's comparison; the targets it missed (when enforced)."""
    baseline, default = results["baseline"], PRECISIONS[0]
    measured = [p for p in PRECISIONS if p in results]
    header = "".join(f"{kind:>12}{'ratio':>8}" for kind in measured)
    print(f"\n{arch}\n{'metric':<12}{'baseline':>12}{header}  target ({default})")
    missed = []
    for metric, unit in UNITS.items():
        row = f"{metric:<12}{baseline[metric]:>8.1f} {unit:<3}"
        for kind in measured:
            value = results[kind][metric]
            row += f"{value:>8.1f} {unit:<3}{value / baseline[metric]:>7.3f}x"
        target = TARGETS.get(metric)
        if enforce and target is not None:
            met = default in results and results[default][metric] / baseline[metric] <= target
            row += f"  <= {target:.2f} {'ok' if met else 'MISSED'}"
            if not met:
                missed.append(metric)
        print(row)
    return missed


def summary_row(arch: str, facts: dict[str, dict], results: dict[str, dict]) -> str:
    """One architecture's line of docs/model.md's table: each cell int8 / fp32."""
    cells = []
    for unit, digits, value in (
        ("MB", 1, lambda p: facts[p]["size"] / 1e6),
        ("s", 2, lambda p: results[p]["cold start"] / 1000),
        ("ms", 1, lambda p: results[p]["warm p50"]),
        ("MiB", 0, lambda p: results[p]["peak RSS"]),
        ("MB", 0, lambda p: facts[p]["memory_mb_min"]),
    ):
        shown = [
            "-" if facts[p].get("refused") else f"{value(p):.{digits}f} {unit}" for p in PRECISIONS
        ]
        cells.append(" / ".join(shown))
    check = "refused" if facts["int8"].get("refused") else "passed"
    return f"| {arch} | {' | '.join(cells)} | {check} |"


def main() -> int:
    from artifact.metadata import DEFAULT_ARCH
    from model.weights import TESTED_ARCHS

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--arch",
        action="append",
        help=f"an architecture to measure (repeatable; 'all': {', '.join(TESTED_ARCHS)}; "
        f"default {DEFAULT_ARCH})",
    )
    parser.add_argument("--runs", type=int, default=11, help="cold starts per handler (>= 5)")
    parser.add_argument("--requests", type=int, default=50, help="warm requests per run")
    args = parser.parse_args()
    if args.requests < 1:
        parser.error("--requests must be at least 1")
    archs = args.arch or [DEFAULT_ARCH]
    if "all" in archs:
        archs = list(TESTED_ARCHS)
    rows, missed = [], []
    with tempfile.TemporaryDirectory(prefix="bench-") as scratch:
        image = photo(Path(scratch))
        for arch in archs:
            directory = Path(scratch) / arch
            directory.mkdir()
            model_dirs, facts = prepare(arch, directory)
            print(f"measuring {arch} (1 thread, 500x375 JPEG, full handler path)...", flush=True)
            results = measure(model_dirs, image, max(args.runs, 5), args.requests)
            missed += report(arch, results, enforce=arch == DEFAULT_ARCH)
            rows.append(summary_row(arch, facts, results))
    print(
        "\n| architecture | archive int8 / fp32 | cold start int8 / fp32 "
        "| warm p50 int8 / fp32 | peak RSS int8 / fp32 | memory_mb_min int8 / fp32 "
        "| int8 check |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- |")
    print("\n".join(rows))
    return 1 if missed else 0


if __name__ == "__main__":
    if len(sys.argv) == 6 and sys.argv[1] == "--worker":
        worker(sys.argv[2], Path(sys.argv[3]), Path(sys.argv[4]), int(sys.argv[5]))
    else:
        sys.exit(main())
