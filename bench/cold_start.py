"""Benchmark: the serving image's cold start and size, beside the handler's own cold start.

    CONTAINERS_CONF=tests/container/containers.conf python bench/cold_start.py \
        [--starts 9] [--artifact build/model.tar.gz] [--base-image REF]

(CONTAINERS_CONF only on hosts like ours, whose podman needs runc and no default rlimits.)
It builds the image as `python -m local --container` does (the same tag, so a built image
is reused), then measures, each in fresh processes, from the command to the first
successful prediction of a 500x375 JPEG:

* container: `podman run` of the image exactly as SageMaker runs it (`serve`, the
  extracted archive read-only at /opt/ml/model, read-only root, tmpfs /tmp, host network,
  SAGEMAKER_BIND_TO_PORT) until `POST /invocations` answers 200;
* serving.serve: `python -m serving.serve --model-dir` on this host, the same way;
* handler: a fresh interpreter importing code/inference.py, `model_fn`, then one
  `input_fn` -> `predict_fn` -> `output_fn` (bench/inference.py's cold start).

and prints p50/p95 of each, the image's size and the size of its layers over the base.
Exits 1 if the image misses a target: p50 start to first prediction <= 1.0 s, layers over
the base <= 200 MB.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script from anywhere: `local`, `model` at the root
    sys.path.insert(0, str(ROOT))

from artifact.archive import extract  # noqa: E402
from local.container import (  # noqa: E402
    MODEL_DIR,
    Engine,
    build_image,
    choose_base_image,
    find_engine,
)
from machine.ports import free_port  # noqa: E402
from serving.serve import PORT_ENV  # noqa: E402
from shared.stats import percentile  # noqa: E402

TARGET_P50_SECONDS = 1.0
TARGET_LAYERS_MB = 200
POLL_SECONDS = 0.01
# As in the image: ONNX Runtime's telemetry off, so both sides do the same work.
HOST_ENV = {**os.environ, "ORT_DISABLE_TELEMETRY": "1"}
START_TIMEOUT_SECONDS = 60
HANDLER_WORKER = """
import json, sys, time
started = float(sys.argv[1])
sys.path.insert(0, sys.argv[2] + "/code")
import inference
model = inference.model_fn(sys.argv[2])
body = open(sys.argv[3], "rb").read()
data = inference.input_fn(body, "image/jpeg")
inference.output_fn(inference.predict_fn(data, model), "application/json")
print(time.time() - started)
"""


def photo(path: Path) -> bytes:
    import skimage.data
    from PIL import Image

    image = Image.fromarray(skimage.data.chelsea()).resize((500, 375), Image.Resampling.BICUBIC)
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=90)
    path.write_bytes(buffer.getvalue())
    return buffer.getvalue()


def predicted(url: str, body: bytes) -> bool:
    request = urllib.request.Request(
        f"{url}/invocations", data=body, headers={"content-type": "image/jpeg"}
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status == 200 and b'"predictions"' in response.read()
    except (urllib.error.URLError, OSError):
        return False


def until_first_prediction(url: str, body: bytes, started: float, alive: Callable[[], bool]):
    """Seconds from `started` to the first 200 from `url`, polling every 10 ms."""
    while not predicted(url, body):
        if not alive() or time.perf_counter() - started > START_TIMEOUT_SECONDS:
            raise SystemExit(f"no prediction from {url}")
        time.sleep(POLL_SECONDS)
    return time.perf_counter() - started


def container_start(engine: Engine, image: str, model_dir: Path, body: bytes) -> float:
    port = free_port()
    name = f"cold-start-{port}"
    command = [
        engine.executable, "run", "--detach", "--rm", "--name", name,
        "--read-only", "--tmpfs", "/tmp", "--volume", f"{model_dir}:{MODEL_DIR}:ro",
        "--network=host", "--env", f"{PORT_ENV}={port}", image, "serve",
    ]  # fmt: skip
    started = time.perf_counter()
    launched = subprocess.Popen(command, stdout=subprocess.DEVNULL)
    try:
        # `run --detach` returns once the container runs; a failed start exits non-zero.
        return until_first_prediction(
            f"http://127.0.0.1:{port}", body, started, lambda: launched.poll() in (None, 0)
        )
    finally:
        launched.wait()
        engine.run("rm", "--force", name, output=subprocess.DEVNULL)


def model_serve_start(model_dir: Path, body: bytes) -> float:
    port = free_port()
    command = [sys.executable, "-m", "serving.serve", "--model-dir", str(model_dir)]
    command += ["--port", str(port), "--log-level", "warning"]
    started = time.perf_counter()
    server = subprocess.Popen(command, cwd=ROOT, env=HOST_ENV)
    try:
        return until_first_prediction(
            f"http://127.0.0.1:{port}", body, started, lambda: server.poll() is None
        )
    finally:
        server.terminate()
        server.wait()


def handler_start(model_dir: Path, image: Path) -> float:
    command = [sys.executable, "-c", HANDLER_WORKER, str(time.time()), str(model_dir), str(image)]
    result = subprocess.run(command, capture_output=True, text=True, check=True, env=HOST_ENV)
    return float(result.stdout)


def image_size(engine: Engine, ref: str) -> int:
    inspected = subprocess.run(
        [engine.executable, "image", "inspect", ref], capture_output=True, check=True
    )
    return int(json.loads(inspected.stdout)[0]["Size"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--starts", type=int, default=9, help="cold starts of each (>= 5)")
    parser.add_argument("--artifact", type=Path, default=ROOT / "build" / "model.tar.gz")
    parser.add_argument("--base-image", help="the image's base (default: as local --container)")
    args = parser.parse_args()
    if not args.artifact.is_file():
        raise SystemExit(f"{args.artifact} does not exist; build it with python -m model.package")
    engine = find_engine()
    if engine.name != "podman":
        raise SystemExit("this benchmark runs containers with podman")
    base = choose_base_image(engine, args.base_image, print)
    image = build_image(engine, base, print)
    with tempfile.TemporaryDirectory(prefix="cold-start-") as scratch:
        model_dir, jpeg = Path(scratch) / "model", Path(scratch) / "photo.jpg"
        extract(args.artifact, model_dir)
        body = photo(jpeg)
        env_note = f"CONTAINERS_CONF={os.environ.get('CONTAINERS_CONF', '(podman default)')}"
        print(f"measuring {args.starts} cold starts of each ({env_note})...", flush=True)
        times: dict[str, list[float]] = {"container": [], "serving.serve": [], "handler": []}
        # Alternate, so drifting load on a shared machine weighs on all alike.
        for _ in range(max(args.starts, 5)):
            times["container"].append(container_start(engine, image, model_dir, body))
            times["serving.serve"].append(model_serve_start(model_dir, body))
            times["handler"].append(handler_start(model_dir, jpeg))
    print(f"\n{'start to first prediction':<28}{'p50':>9}{'p95':>9}")
    for kind, values in times.items():
        print(f"{kind:<28}{percentile(values, 0.5):>7.3f} s{percentile(values, 0.95):>7.3f} s")
    total, base_size = image_size(engine, image), image_size(engine, base)
    layers = total - base_size
    print(f"\nimage {image} on {base}")
    print(f"image size {total / 1e6:.0f} MB, base {base_size / 1e6:.0f} MB, ", end="")
    print(f"layers over the base {layers / 1e6:.0f} MB (uncompressed)")
    p50 = percentile(times["container"], 0.5)
    checks = {
        f"container p50 {p50:.3f} s <= {TARGET_P50_SECONDS} s": p50 <= TARGET_P50_SECONDS,
        f"layers {layers / 1e6:.0f} MB <= {TARGET_LAYERS_MB} MB": layers <= TARGET_LAYERS_MB * 1e6,
    }
    for check, met in checks.items():
        print(f"target {check}: {'ok' if met else 'MISSED'}")
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
