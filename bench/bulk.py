"""Bulk throughput: the serving container's Batch Transform path and the inbox path, against
one-by-one API calls, on the same photos, in the same run.

    .venv/bin/python bench/bulk.py [--images 300] [--rounds 3] [--artifact PATH]
                                   [--container [--base-image REF]]

(With --container, on hosts like ours, CONTAINERS_CONF="$PWD/tests/container/containers.conf":
an absolute path, which podman's build steps also find.) It makes the photos as
bench/batch.py does (crops and resizes of those scikit-image and scikit-learn ship, JPEG,
320 to 1024 px on the long side), starts `python -m local --inbox DIR` on free ports
(with --container, its model server from the serving image), and measures, in rounds
(each on its share of the photos, the three paths in turn) so that load from other
programs falls on all alike:

- the API, the baseline: each photo in turn, `POST /api/predict` on the site's origin
  (the HTTP API emulation, the proxy Lambda, the model server), one request at a time;
- the inbox: the round's photos moved into DIR at once (one rename), each then classified
  by what the local runtime's inbox runs (`local.inbox`: `batch.runner` running the
  pipeline's classify task, the proxy's invoker calling the same model server, the
  outcome file written), one at a time as that watcher does. Timed by the outcome files'
  modification times, first to last, so the watcher's poll interval is left out; the
  per-image times are the gaps between consecutive outcomes (one fewer than the photos
  in each round);
- the transform: a model server started as a Batch Transform job starts its container,
  `python -m serving.serve` (with --container, the serving image under podman, as
  SageMaker runs it), with `SAGEMAKER_BATCH=true`, `SAGEMAKER_BATCH_STRATEGY`,
  `SAGEMAKER_MAX_PAYLOAD_IN_MB` and `SAGEMAKER_MAX_CONCURRENT_TRANSFORMS` as its own
  `GET /execution-parameters` answered them to a first start with `SAGEMAKER_BATCH=true`
  alone; then driven as the job drives it: MaxConcurrentTransforms connections, each
  posting one record (one photo, `application/x-image`) to `/invocations` after another
  until none is left.

Prints images per second, p50 and p95 per image and the ratios to the API, the
transform's images per second per CPU (what docs/cost.md turns into instance-hours) and
the load average before and after; exits 1 if any image failed (a transform record
answered with an error object counts).
"""

from __future__ import annotations

import argparse
import http.client
import itertools
import json
import os
import shutil
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# These need the repository root on the path.
from artifact.metadata import read_archive_metadata  # noqa: E402
from bench.batch import make_photos, one_by_one, report  # noqa: E402
from bench.measure import Run  # noqa: E402
from local.cli import INBOX_OUTCOMES  # noqa: E402
from local.container import (  # noqa: E402
    ContainerError,
    ContainerModelServer,
    Engine,
    build_image,
    choose_base_image,
    find_engine,
)
from local.process import LocalRuntime, local_runtime  # noqa: E402
from machine.model_server import ModelServer, ModelServerError  # noqa: E402
from pipeline.storage import FAILED, OUTCOME_FOLDERS  # noqa: E402
from serving.batch_transform import (  # noqa: E402
    BATCH_ENV,
    MAX_CONCURRENT_ENV,
    MAX_PAYLOAD_ENV,
)
from serving.serve import usable_cpus  # noqa: E402

# What SageMaker sets from the job's BatchStrategy; the server only reports its own.
STRATEGY_ENV = "SAGEMAKER_BATCH_STRATEGY"
# A transform job's ContentType for a prefix of photos: what SageMaker's image examples use.
RECORD_TYPE = "application/x-image"
RECORD_TIMEOUT_SECONDS = 60
# A round's inbox outcomes should take well under a second each; beyond this, give up.
INBOX_SECONDS_PER_IMAGE = 5.0
INBOX_SLACK_SECONDS = 30.0
# Older than the inbox's settle time: a dropped photo is taken at the watcher's next pass.
SETTLED_AGO_SECONDS = 60.0

StartServer = Callable[[Mapping[str, str]], ModelServer]


class TransformContainer(ContainerModelServer):
    """The serving image run as `local --container` runs it, plus the job's environment."""

    def __init__(
        self, engine: Engine, image: str, artifact: Path, settings: Mapping[str, str]
    ) -> None:
        super().__init__(engine, image, artifact)
        self.settings = dict(settings)

    def command(self) -> list[str]:
        executable, run, *rest = super().command()
        flags = [
            part for name, value in self.settings.items() for part in ("--env", f"{name}={value}")
        ]
        return [executable, run, *flags, *rest]


def host_servers(artifact: Path) -> StartServer:
    def start(settings: Mapping[str, str]) -> ModelServer:
        server = ModelServer(artifact, environment=settings)
        server.start()
        return server

    return start


def container_servers(engine: Engine, image: str, artifact: Path) -> StartServer:
    def start(settings: Mapping[str, str]) -> ModelServer:
        server = TransformContainer(engine, image, artifact, settings)
        server.start()
        return server

    return start


def transform_environment(start: StartServer) -> dict[str, str]:
    """What a transform job that leaves its settings to the container sets: the answer of
    `GET /execution-parameters` from a server started with `SAGEMAKER_BATCH=true`."""
    server = start({BATCH_ENV: "true"})
    try:
        with urllib.request.urlopen(f"{server.url}/execution-parameters", timeout=10) as answer:
            parameters = json.load(answer)
    finally:
        server.stop()
    return {
        BATCH_ENV: "true",
        STRATEGY_ENV: str(parameters["BatchStrategy"]),
        MAX_PAYLOAD_ENV: str(parameters["MaxPayloadInMB"]),
        MAX_CONCURRENT_ENV: str(parameters["MaxConcurrentTransforms"]),
    }


def post_record(connection: http.client.HTTPConnection, path: str, body: bytes) -> str | None:
    """None when the record was classified; else the kind of failure."""
    try:
        connection.request(
            "POST",
            path,
            body=body,
            headers={"content-type": RECORD_TYPE, "accept": "application/json"},
        )
        response = connection.getresponse()
        answer = response.read()
    except (OSError, http.client.HTTPException):
        connection.close()  # the next request opens a new connection
        return "connection"
    if response.status != 200:
        return f"status {response.status}"
    try:
        error = json.loads(answer).get("error")
    except (ValueError, AttributeError):
        return "not JSON"
    return None if error is None else f"record error {error.get('code')}"


def transform(label: str, url: str, bodies: list[bytes], concurrent: int) -> Run:
    """Every body posted once, `concurrent` at a time, each connection taking the next."""
    parts = urlsplit(url)
    run = Run(label)
    lock = threading.Lock()
    records = iter(bodies)

    def agent() -> None:
        connection = http.client.HTTPConnection(parts.netloc, timeout=RECORD_TIMEOUT_SECONDS)
        try:
            while True:
                with lock:
                    body = next(records, None)
                if body is None:
                    return
                began = time.perf_counter()
                failure = post_record(connection, parts.path, body)
                elapsed = time.perf_counter() - began
                with lock:
                    if failure is None:
                        run.latencies.append(elapsed)
                    else:
                        run.failures[failure] += 1
        finally:
            connection.close()

    threads = [threading.Thread(target=agent) for _ in range(concurrent)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    run.seconds = time.perf_counter() - started
    return run


def outcome_files(outcomes: Path, dropped: str) -> list[tuple[str, Path]]:
    """The outcome files of the photos dropped as the folder `dropped`: (outcome folder,
    file) each."""
    return [
        (folder, path)
        for folder in OUTCOME_FOLDERS
        for path in (outcomes / folder / dropped).glob("*.json")
    ]


class RuntimeStopped(RuntimeError):
    """`python -m local` ended during the run; the message has its output."""


def inbox(label: str, local: LocalRuntime, drop: Drop, paths: list[Path]) -> Run:
    """The photos put into the inbox at once (as a folder of their own), timed from the
    first outcome written to the last."""
    folder = drop.staging / f"drop-{time.monotonic_ns()}"
    folder.mkdir()
    settled = time.time() - SETTLED_AGO_SECONDS
    for path in paths:
        copy = folder / path.name
        shutil.copyfile(path, copy)
        os.utime(copy, (settled, settled))
    os.rename(folder, drop.inbox / folder.name)
    deadline = time.monotonic() + INBOX_SLACK_SECONDS + INBOX_SECONDS_PER_IMAGE * len(paths)
    found = outcome_files(drop.outcomes, folder.name)
    while len(found) < len(paths) and time.monotonic() < deadline:
        if local.process.poll() is not None:
            raise RuntimeStopped(f"python -m local stopped during the run:\n{local.output}")
        time.sleep(0.05)
        found = outcome_files(drop.outcomes, folder.name)
    run = Run(label)
    written = sorted(path.stat().st_mtime for _folder, path in found)
    run.latencies = [later - earlier for earlier, later in itertools.pairwise(written)]
    run.seconds = written[-1] - written[0] if written else 0.0
    failed = sum(1 for where, _path in found if where == FAILED)
    run.failures.update({"failed": failed, "no outcome": len(paths) - len(found)})
    return run


def merge(total: Run, part: Run) -> None:
    total.latencies += part.latencies
    total.failures += part.failures
    total.seconds += part.seconds


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f}"


@dataclass(frozen=True)
class Drop:
    """The local runtime's inbox, its outcomes, and where photos wait to be moved in."""

    inbox: Path
    outcomes: Path
    staging: Path


@dataclass
class Paths:
    """Where each path is, and what each has measured so far."""

    local: LocalRuntime
    invocations: str
    concurrent: int
    drop: Drop
    runs: list[Run] = field(default_factory=list)

    @property
    def api(self) -> str:
        return f"{self.local.api_url}/predict"

    def __post_init__(self) -> None:
        self.runs = [
            Run("local API, one by one"),
            Run("inbox (local --inbox)"),
            Run(f"transform, {self.concurrent} concurrent"),
        ]

    def warm_up(self, bodies: dict[Path, bytes]) -> None:
        one_by_one("warm-up", self.api, list(bodies)[:10])
        transform("warm-up", self.invocations, list(bodies.values())[:20], self.concurrent)

    def measure(self, bodies: dict[Path, bytes]) -> None:
        """One round: these photos through each path in turn."""
        api, drop, job = self.runs
        merge(api, one_by_one(api.label, self.api, list(bodies)))
        merge(drop, inbox(drop.label, self.local, self.drop, list(bodies)))
        merge(job, transform(job.label, self.invocations, list(bodies.values()), self.concurrent))


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=300, help="photos, each through every path")
    parser.add_argument("--rounds", type=int, default=3, help="the photos in this many shares")
    parser.add_argument("--artifact", type=Path, default=ROOT / "build" / "model.tar.gz")
    parser.add_argument(
        "--container",
        action="store_true",
        help="the model servers from the serving image under podman, as SageMaker runs it",
    )
    parser.add_argument("--base-image", help="with --container: the image's base")
    args = parser.parse_args()
    if not args.artifact.is_file():
        parser.error(f"{args.artifact} is missing: run `make run` once, or pass --artifact")
    if args.base_image is not None and not args.container:
        parser.error("--base-image needs --container")
    if not 1 <= args.rounds <= args.images:
        parser.error("--rounds must be between 1 and --images")
    return args


def servers(args: argparse.Namespace) -> tuple[StartServer, list[str]]:
    """How to start a transform's server, and the local runtime's flags to match."""
    if not args.container:
        return host_servers(args.artifact), []
    engine = find_engine()
    base = choose_base_image(engine, args.base_image, print)
    image = build_image(engine, base, print)
    return container_servers(engine, image, args.artifact), ["--container", "--base-image", base]


def run(args: argparse.Namespace, scratch: Path) -> list[Run]:
    start_server, extra = servers(args)
    meta = read_archive_metadata(args.artifact)
    for folder in ("photos", "staging"):
        (scratch / folder).mkdir()
    bodies = {path: path.read_bytes() for path in make_photos(scratch / "photos", args.images)}
    sizes = sorted(len(body) for body in bodies.values())
    settings = transform_environment(start_server)
    print(
        f"{len(bodies)} JPEGs, {sizes[0] // 1024}-{sizes[-1] // 1024} KB (median "
        f"{sizes[len(sizes) // 2] // 1024} KB), in {args.rounds} rounds; model {meta.name} "
        f"{meta.version} (weights {meta.weights}); {usable_cpus()} CPUs; "
        f"{'the serving image' if args.container else 'python -m serving.serve'}; transform "
        + " ".join(f"{name}={value}" for name, value in settings.items()),
        flush=True,
    )
    server = start_server(settings)
    data_dir, drop = scratch / "data", scratch / "inbox"
    try:
        with local_runtime(
            args.artifact, ["--inbox", str(drop), *extra], data_dir=data_dir
        ) as local:
            paths = Paths(
                local=local,
                invocations=f"{server.url}/invocations",
                concurrent=int(settings[MAX_CONCURRENT_ENV]),
                drop=Drop(drop, data_dir / INBOX_OUTCOMES, scratch / "staging"),
            )
            paths.warm_up(bodies)
            photos = list(bodies)
            for share in range(args.rounds):
                paths.measure({photo: bodies[photo] for photo in photos[share :: args.rounds]})
    finally:
        server.stop()
    return paths.runs


def main() -> int:
    args = parse_args()
    before = load()
    try:
        with tempfile.TemporaryDirectory(prefix="bench-bulk-") as scratch:
            runs = run(args, Path(scratch))
    except (ContainerError, ModelServerError, RuntimeError, OSError) as error:
        raise SystemExit(f"error: {error}") from None
    report(runs[0], None)
    for measured in runs[1:]:
        report(measured, runs[0])
    cpus = usable_cpus()
    print(
        f"transform per CPU: {runs[2].throughput / cpus:.1f} img/s ({cpus} CPUs); "
        f"load average (1, 5, 15 min) before {before}, after {load()}"
    )
    return 1 if any(measured.errors for measured in runs) else 0


if __name__ == "__main__":
    raise SystemExit(main())
