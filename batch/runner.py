"""`python -m batch run`: the batch workflow over a folder, on one machine, with no cloud.

    python -m batch run DIR --out OUT [--threshold 0.93] [--workers 2]
                        [--model-server URL | --artifact PATH] [--reclassify] [--quiet]

Every file under DIR goes through the same task functions as the cloud's workflow
(`pipeline.tasks`), except hidden ones and outcomes: OUT, and what a run wrote in any folder
marked as its OUT (`.batch-outcomes`, or a run's `summary.json`) along a file's path, DIR
included. So OUT may lie inside DIR; DIR itself or a folder holding it is refused. They
run against a local model server: `--model-server URL` (a running `python -m serving.serve`,
asked `GET /ping` before any work: a dead URL fails at once), or one started here on
`--artifact` (by default the local runtime's `build/model.tar.gz`). It plays the part of
Step Functions too: the task errors are retried as `pipeline.workflow.RETRIES` says, and
whatever is not retried is recorded in `failed/` by the failure task. So each file ends
in exactly one of `OUT/results/`, `OUT/review/`, `OUT/failed/` (as `<path>.json`), and
bad files (not images, truncated, too large) carry the API's error codes.

It resumes: a file whose outcome is recorded for its current size and modification time
is skipped, except for failures that may pass another time (`"retryable": true`, or
`payload_too_large` of a file that this run's `--max-image-bytes` takes). A run
whose model is not the one of the outcomes in OUT (its version: the archive's, or what
`--model-server` answers to a small grey image) is refused before any work, naming both
versions; `--reclassify` classifies those files again (people's decisions are kept).
`OUT/summary.json` has the counts over all of DIR, the model version, and this run's
latency and throughput.
Progress goes to stderr.

Exit status: 0 every file has its outcome (failures included); 1 the model server could
not start or stopped, or outcomes could not be written (files left without one are
counted as `pending`; run again); 2 bad usage (also outcomes of another model without
`--reclassify`); 130 stopped by Ctrl-C (SIGINT), 143 by SIGTERM.

Ctrl-C or SIGTERM stops in order: no image starts, the images in flight finish (a retry's
wait ends at once, and the image stays pending), `summary.json` is written with what is
pending (`"interrupted"` names the signal), the model server started here is stopped, and
the last line is "stopped: N done, M pending; run again to resume". A second one stops at
once (the model server killed, `summary.json` not rewritten). The model server never
outlives the command, even killed (see `machine.model_server`).

`process_new` is the one-pass core: a watcher (`python -m local --inbox DIR`, later)
can call it every few seconds on the same folders, with `settle_seconds` so that files
still being copied in wait for the next pass.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import signal
import struct
import sys
import threading
import time
import urllib.parse
import zlib
from collections import Counter
from collections.abc import Callable, Container, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from artifact.output import OutputPathError, check_output_folder
from batch import labels as model_labels
from machine.artifact import DEFAULT_ARCHIVE, shown
from machine.model_server import ModelServer, ModelServerError, ping
from pipeline.storage import (
    FAILED,
    OUTCOME_FOLDERS,
    RESULTS,
    REVIEW,
    LocalStorage,
    ObjectInfo,
    Storage,
    StorageError,
)
from pipeline.tasks import (
    FAILED_OUTCOME,
    RESULT,
    REVIEW_OUTCOME,
    Classifier,
    ImageRefused,
    Job,
    TaskError,
    caught,
    classify,
    existing_outcome,
    record_failure,
)
from pipeline.workflow import FAILURE_RETRIES, RETRIES, RetryPolicy, policy_for
from proxy.config import (
    DEFAULT_MAX_IMAGE_BYTES,
    DEFAULT_REVIEW_THRESHOLD,
    SAGEMAKER_PAYLOAD_CAP,
    ProxyConfig,
)
from proxy.predictions import iso_time
from proxy.responses import ApiError
from proxy.sagemaker import RuntimeClients
from shared.labels import MODEL_LABELS_DIR
from shared.stats import percentile

DEFAULT_WORKERS = 2
MAX_WORKERS = 32
SUMMARY = "summary.json"
SERVER_LOG = "model-server.log"
LOCAL_BUDGET_SECONDS = 60.0
"""Time for one image's model call, retries included: SageMaker's own limit per call."""
ENDPOINT_NAME = "local-model-server"
"""Any valid endpoint name: the local model server answers whatever the name."""
EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
EXIT_SIGNALLED = 128
"""Plus the signal's number: 130 after Ctrl-C (SIGINT), 143 after SIGTERM, as shells say."""
OUTCOMES_MARK = ".batch-outcomes"
"""Written in OUT: a folder holding it is another run's outcomes, never input."""
_COUNTED = {RESULTS: "results", REVIEW: "review", FAILED: "failed"}
OUTCOME_ENTRIES = frozenset(
    {*(folder.rstrip("/") for folder in OUTCOME_FOLDERS), SUMMARY, SERVER_LOG, MODEL_LABELS_DIR}
)
"""What a run writes in OUT: in a folder that `is_outcomes`, none of these is input (its
other entries are: an earlier version let OUT hold DIR)."""


class RunError(Exception):
    """The run cannot go on (exit status 1); the message says why."""


class ModelChanged(RunError):
    """OUT holds outcomes of another model version, and `--reclassify` was not given."""


class Stopped(Exception):
    """The run is stopping: the image in hand stays pending, no outcome written."""


class Stop:
    """A run's stop request, shared by its threads: once set, no image starts, and a
    retry's wait (`sleep`) ends at once with `Stopped`."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self.signal: signal.Signals | None = None
        self._at_abort: list[Callable[[], None]] = []

    def set(self, sig: signal.Signals | None = None) -> None:
        if not self._event.is_set():
            self.signal = sig
        self._event.set()

    def is_set(self) -> bool:
        return self._event.is_set()

    def wait(self, seconds: float) -> bool:
        return self._event.wait(seconds)

    def sleep(self, seconds: float) -> None:
        if self._event.wait(seconds):
            raise Stopped

    @contextmanager
    def on_abort(self, action: Callable[[], None]) -> Iterator[None]:
        """Run `action` if the process must end at once (`abort`) meanwhile."""
        self._at_abort.append(action)
        try:
            yield
        finally:
            self._at_abort.remove(action)

    def abort(self) -> None:
        for action in list(self._at_abort):
            with contextlib.suppress(Exception):
                action()


@contextmanager
def stopped_by_signals(stop: Stop, stderr: TextIO) -> Iterator[None]:
    """SIGINT and SIGTERM stop the run: the first in order (`stop`), a second at once."""

    def handle(number: int, _frame: object) -> None:
        sig = signal.Signals(number)
        if stop.is_set():
            stop.abort()
            print_line(stderr, "stopped at once; run again to resume")
            os._exit(EXIT_SIGNALLED + number)
        stop.set(sig)
        again = "Ctrl-C" if sig == signal.SIGINT else sig.name
        print_line(stderr, f"stopping: the images in flight finish ({again} again stops at once)")

    previous = {sig: signal.signal(sig, handle) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def print_line(stream: TextIO, text: str) -> None:
    """`text` on a line of its own, also after a terminal's progress bar."""
    start = "\n" if stream.isatty() else ""
    stream.write(f"{start}{text}\n")
    stream.flush()


@dataclass
class Pass:
    """What one `process_new` call did."""

    processed: Counter = field(default_factory=Counter)
    """Outcomes of the files processed: result, review, failed."""
    skipped: int = 0
    """Files already done."""
    waiting: int = 0
    """Files too recently changed (`settle_seconds`), left for the next pass."""
    unrecorded: list[str] = field(default_factory=list)
    """Files whose outcome could not be written, and why (they stay pending)."""
    latencies: list[float] = field(default_factory=list)
    """Seconds per processed file, retries included."""
    seconds: float = 0.0
    stopped: bool = False
    versions: Counter = field(default_factory=Counter)
    """Model versions of this pass's classifications."""

    @property
    def count(self) -> int:
        return sum(self.processed.values())


class Progress:
    """A one-line progress bar on a terminal; a line per tenth elsewhere (logs, CI)."""

    WIDTH = 24

    def __init__(self, total: int, stream: TextIO | None, clock: Callable[[], float]) -> None:
        self.total = total
        self.stream = stream
        self.clock = clock
        self.start = clock()
        self.counts: Counter = Counter()
        self.done = 0
        self._tty = bool(stream is not None and stream.isatty())
        self._next_line = 0
        self._lock = threading.Lock()

    def update(self, outcome: str) -> None:
        with self._lock:
            self.done += 1
            self.counts[outcome] += 1
            if self.stream is None:
                return
            if self._tty:
                self.stream.write("\r" + self.line())
            elif self.done >= self._next_line or self.done == self.total:
                self.stream.write(self.line() + "\n")
                self._next_line = self.done + max(1, self.total // 10)
            self.stream.flush()

    def finish(self) -> None:
        if self.stream is not None and self._tty and self.total:
            self.stream.write("\n")
            self.stream.flush()

    def line(self) -> str:
        share = self.done / self.total if self.total else 1.0
        filled = round(share * self.WIDTH)
        elapsed = max(self.clock() - self.start, 1e-9)
        rate = self.done / elapsed
        left = (self.total - self.done) / rate if rate else 0.0
        return (
            f"[{'#' * filled}{'.' * (self.WIDTH - filled)}] {self.done}/{self.total} "
            f"{share:4.0%}  results {self.counts['result']}  review {self.counts['review']}  "
            f"failed {self.counts['failed']}  {rate:.1f} img/s  eta {left:.0f} s"
        )


def run_job(
    job: Job,
    classifier: Classifier,
    *,
    retries: tuple[RetryPolicy, ...] = RETRIES,
    failure_retries: tuple[RetryPolicy, ...] = FAILURE_RETRIES,
    budget: float = LOCAL_BUDGET_SECONDS,
    sleep: Callable[[float], None] = time.sleep,
    jitter: Callable[[], float] = random.random,
    too_large: Callable[[int, int], str] | None = None,
) -> dict[str, Any]:
    """One image through the workflow as Step Functions runs it: classify with its
    retries, and on any error left the failure task (with its own retries). `too_large`
    (size, limit) is the advice for an image over the limit of a command whose flag
    raises it, instead of the API's."""
    used: Counter = Counter()
    while True:
        try:
            try:
                return classify(job, classifier, deadline=classifier.invoker.clock() + budget)
            except ImageRefused as refused:
                if too_large is None or refused.code != "payload_too_large":
                    raise
                info = job.source.info(job.key)
                size = info.size if info is not None else 0
                advice = too_large(size, classifier.max_image_bytes)
                raise ImageRefused(refused.status, refused.code, advice) from None
        except Stopped:
            raise  # not the image's failure: it stays pending
        except Exception as exc:  # what Catch States.ALL catches: bugs too
            policy = policy_for(type(exc).__name__, retries) if isinstance(exc, TaskError) else None
            if policy is not None and used[policy] < policy.max_attempts:
                sleep(policy.delay(used[policy], jitter))
                used[policy] += 1
                continue
            error = caught(exc)
            break
    while True:
        try:
            return record_failure(job, error)
        except TaskError as exc:
            policy = policy_for(type(exc).__name__, failure_retries)
            if policy is None or used[policy] >= policy.max_attempts:
                raise
            sleep(policy.delay(used[policy], jitter))
            used[policy] += 1


def folder_jobs(source: LocalStorage, out: LocalStorage) -> Iterator[Job]:
    """A job for each file of `source`, its outcomes in `out` under its own path; what a
    run wrote (`OUTCOME_ENTRIES` of a folder that `is_outcomes`, wherever it sits along a
    file's path from `source`'s root, the root included) is not an image to classify."""
    outcomes: dict[str, bool] = {}

    def inside_outcomes(key: str) -> bool:
        parts = key.split("/")
        for depth in range(len(parts)):  # each folder from the root, and its entry
            folder = "/".join(parts[:depth])
            if folder not in outcomes:
                outcomes[folder] = is_outcomes(source.root / folder)
            if outcomes[folder] and parts[depth] in OUTCOME_ENTRIES:
                return True
        return False

    for key in source.iter_keys():
        if not inside_outcomes(key):
            yield Job(source, key, out, key)


def is_outcomes(folder: Path) -> bool:
    """Whether `folder` is where a run wrote its outcomes: it has the mark, or (a run of
    an earlier version) a `summary.json` of a run."""
    if (folder / OUTCOMES_MARK).is_file():
        return True
    try:
        document = json.loads((folder / SUMMARY).read_bytes())
    except (OSError, ValueError):
        return False
    return isinstance(document, dict) and {"counts", "this_run"} <= document.keys()


@dataclass
class Scan:
    """The files of a folder, sorted by what a pass must do with them."""

    todo: list[Job] = field(default_factory=list)
    skipped: int = 0
    waiting: int = 0
    classified: dict[str, list[Job]] = field(default_factory=dict)
    """The files done, by the model version that classified them (results and review;
    not failures, nor a person's decisions)."""
    redo: set[str] = field(default_factory=set)
    refused_as_too_large: set[str] = field(default_factory=set)
    """Keys in `todo` whose `payload_too_large` failure goes: the limit is higher now."""
    """Keys in `todo` whose outcome of another model is replaced (`--reclassify`)."""

    def reclassify(self, version: str) -> None:
        """Put the files classified by other model versions than `version` back to do."""
        for other in [v for v in self.classified if v != version]:
            jobs = self.classified.pop(other)
            self.todo.extend(jobs)
            self.redo.update(job.key for job in jobs)
            self.skipped -= len(jobs)


@dataclass(frozen=True)
class Seen:
    """A file as a scan finds it: its job, its size and etag, its outcome if it is done
    (`existing_outcome`), and when it last changed (where that is known). A file that
    could not be looked at has neither info nor outcome: its task will say why."""

    job: Job
    info: ObjectInfo | None = None
    outcome: tuple[str, dict[str, Any]] | None = None
    modified: float | None = None


def scan(
    source: LocalStorage,
    out: LocalStorage,
    settle_seconds: float = 0.0,
    max_image_bytes: int | None = None,
) -> Scan:
    """Which files have no outcome yet (or a retryable failure, or, with `max_image_bytes`,
    a refusal as too large for a lower limit than it): only a stat and a look at the
    outcome files each, no image is read."""
    return sort_seen(
        (_seen(source, job) for job in folder_jobs(source, out)),
        settle_seconds=settle_seconds,
        max_image_bytes=max_image_bytes,
    )


def _seen(source: LocalStorage, job: Job) -> Seen:
    try:
        stat = source.path(job.key).stat()
        info = source.info(job.key)
        outcome = None if info is None else existing_outcome(job, info.etag)
    except (OSError, StorageError, TaskError):
        return Seen(job)
    return Seen(job, info, outcome, stat.st_mtime)


def sort_seen(
    seen: Iterable[Seen], *, settle_seconds: float = 0.0, max_image_bytes: int | None = None
) -> Scan:
    """The files `seen`, sorted by what a pass must do with them (`scan`)."""
    found = Scan()
    now = time.time()
    for item in seen:
        outcome = item.outcome
        if outcome is not None and _fits_now(outcome[1], item.info, max_image_bytes):
            found.todo.append(item.job)
            found.refused_as_too_large.add(item.job.key)
        elif outcome is not None:
            found.skipped += 1
            document = outcome[1]
            version = (document.get("model") or {}).get("version")
            if document.get("outcome") in (RESULT, REVIEW_OUTCOME) and isinstance(version, str):
                found.classified.setdefault(version, []).append(item.job)
        elif item.modified is not None and now - item.modified < settle_seconds:
            found.waiting += 1
        else:
            found.todo.append(item.job)
    return found


def _fits_now(document: dict[str, Any], info: ObjectInfo | None, limit: int | None) -> bool:
    """Whether an outcome is a refusal as too large of an image that `limit` now takes."""
    error = document.get("error") if document.get("outcome") == FAILED_OUTCOME else None
    return (
        limit is not None
        and info is not None
        and isinstance(error, dict)
        and error.get("code") == "payload_too_large"
        and info.size <= limit
    )


def _clear_replaced_outcomes(job: Job, found: Scan) -> None:
    """The outcomes a new attempt replaces: another model's (the file is done again), and a
    refusal as too large that a higher --max-image-bytes lifts."""
    if job.key in found.redo:
        for folder in (RESULTS, REVIEW):
            job.out.delete(job.outcome_key(folder))
    if job.key in found.refused_as_too_large:
        job.out.delete(job.outcome_key(FAILED))


def process(
    found: Scan,
    classifier: Classifier,
    *,
    workers: int = DEFAULT_WORKERS,
    progress: TextIO | None = None,
    should_stop: Callable[[], bool] = lambda: False,
    clock: Callable[[], float] = time.monotonic,
    report: Callable[[dict[str, Any]], None] | None = None,
    **job_options: Any,
) -> Pass:
    """Run the scanned files' jobs on `workers` threads; `should_stop()` is asked before
    each file (a stop, or whether the model server died); `report` gets each output."""
    started = clock()
    result = Pass(skipped=found.skipped, waiting=found.waiting)
    bar = Progress(len(found.todo), progress, clock)
    lock = threading.Lock()

    def one(job: Job) -> None:
        if should_stop():
            result.stopped = True
            return
        begun = clock()
        try:
            _clear_replaced_outcomes(job, found)
            output = run_job(job, classifier, **job_options)
        except Stopped:
            result.stopped = True
            return
        except Exception as exc:  # not even failed/ could be written: the file stays pending
            with lock:
                result.unrecorded.append(f"{job.key}: {type(exc).__name__}: {exc}")
            return
        elapsed = clock() - begun
        with lock:
            result.processed[output["outcome"]] += 1
            if not output["skipped"]:
                result.latencies.append(elapsed)
            if output.get("model_version"):
                result.versions[output["model_version"]] += 1
        bar.update(output["outcome"])
        if report is not None:
            report(output)

    if found.todo:
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="batch") as pool:
            for future in as_completed([pool.submit(one, job) for job in found.todo]):
                future.result()
        bar.finish()
    result.seconds = clock() - started
    return result


def process_new(
    source: LocalStorage,
    out: LocalStorage,
    classifier: Classifier,
    *,
    settle_seconds: float = 0.0,
    **options: Any,
) -> Pass:
    """One pass over `source`: every file without an outcome yet (or with a retryable
    failure) is processed; files changed less than `settle_seconds` ago wait for the next
    pass. What a folder watcher calls periodically (`options` as `process`)."""
    return process(scan(source, out, settle_seconds), classifier, **options)


def outcome_keys(out: Storage) -> set[str]:
    """The outcome files in `out` (`results/...json` and so on), listed once."""
    return {key for folder in OUTCOME_FOLDERS for key in out.iter_keys(folder)}


def outcome_counts(jobs: Iterable[Job], present: Container[str]) -> tuple[int, Counter]:
    """The number of files and where their outcomes are (or `pending`), the outcome files
    being `present` (`outcome_keys`)."""
    counts: Counter = Counter({"results": 0, "review": 0, "failed": 0, "pending": 0})
    files = 0
    for job in jobs:
        files += 1
        for folder in OUTCOME_FOLDERS:
            if job.outcome_key(folder) in present:
                counts[_COUNTED[folder]] += 1
                break
        else:
            counts["pending"] += 1
    return files, counts


def failure_codes(jobs: Iterable[Job], out: Storage, present: Container[str]) -> dict[str, int]:
    codes: Counter = Counter()
    for job in jobs:
        key = job.outcome_key(FAILED)
        document = out.read_json(key) if key in present else None
        if document is not None:
            codes[(document.get("error") or {}).get("code", "unknown")] += 1
    return dict(sorted(codes.items()))


def summary(
    jobs: Sequence[Job], out: Storage, done: Pass, settings: dict[str, Any]
) -> dict[str, Any]:
    """`summary.json` of a run over the files of `jobs`, their outcomes in `out`."""
    present = outcome_keys(out)
    files, counts = outcome_counts(jobs, present)

    def ms(value: float | None) -> float | None:
        return None if value is None else round(value * 1000, 1)

    return {
        **settings,
        "files": files,
        "counts": dict(counts),
        "failed_codes": failure_codes(jobs, out, present),
        "this_run": {
            "processed": done.count,
            "skipped": done.skipped,
            **{outcome: done.processed[outcome] for outcome in ("result", "review", "failed")},
            "unrecorded": done.unrecorded,
            "seconds": round(done.seconds, 3),
            "images_per_second": round(done.count / done.seconds, 2) if done.seconds else None,
            "latency_ms": {
                "p50": ms(percentile(done.latencies, 0.5) if done.latencies else None),
                "p95": ms(percentile(done.latencies, 0.95) if done.latencies else None),
                "max": ms(max(done.latencies, default=None)),
            },
        },
    }


@contextmanager
def runtime_environment(url: str) -> Iterator[None]:
    """Point the stock SageMaker Runtime client at `url` (as the local runtime does for
    the proxy), with placeholder credentials, for the duration of the run."""
    settings = {
        "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME": url,
        "AWS_ACCESS_KEY_ID": "local",
        "AWS_SECRET_ACCESS_KEY": "local",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    removed = ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN")
    saved = {name: os.environ.get(name) for name in (*settings, *removed)}
    for name in removed:
        os.environ.pop(name, None)
    os.environ.update(settings)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def local_classifier(
    threshold: float, max_image_bytes: int, sleep: Callable[[float], None] = time.sleep
) -> Classifier:
    """The proxy's invoker with its default timeouts and attempts, for a local server;
    `sleep` waits between its attempts."""
    config = ProxyConfig(
        endpoint_name=ENDPOINT_NAME, max_image_bytes=max_image_bytes, review_threshold=threshold
    )
    clients = RuntimeClients(config.read_timeout, config.connect_timeout)
    return Classifier.from_config(config, clients, sleep=sleep)


def served_version(classifier: Classifier, url: str) -> str:
    """The version of the model at `url`: its answer to a small grey image names it."""
    deadline = classifier.invoker.clock() + LOCAL_BUDGET_SECONDS
    try:
        answer = json.loads(classifier.invoker.invoke(_grey_png(), "image/png", deadline))
        version = answer["model"]["version"]
    except ApiError as error:
        raise RunError(f"--model-server {url}: no model version: {error.message}") from None
    except (ValueError, KeyError, TypeError):
        raise RunError(f"--model-server {url}: its answer names no model version") from None
    return str(version)


def _grey_png(side: int = 8) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data)
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)  # 8-bit greyscale
    rows = (b"\x00" + b"\x80" * side) * side
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows))


def check_model_server(url: str) -> str:
    """`url` without a trailing slash, once it answers `GET /ping`; `RunError` else."""
    url = url.rstrip("/")
    problem = ping(url)
    if problem is not None:
        raise RunError(
            f"--model-server {url}: {problem}; is python -m serving.serve running there? "
            "(without --model-server, one is started here)"
        )
    return url


@contextmanager
def model_server(
    url: str | None, artifact: Path | None, log_path: Path, stop: Stop
) -> Iterator[tuple[str, Callable[[], bool]]]:
    """`(url, stopped)`: the server at `url`, or one started on `artifact` (`Stopped` if
    the run is stopped while it starts)."""
    if url is not None:
        yield url, lambda: False
        return
    assert artifact is not None
    server = ModelServer(artifact)
    with log_path.open("ab") as log, stop.on_abort(server.kill):
        try:
            server.start(output=log, cancelled=stop.is_set)
        except ModelServerError as error:
            server.stop()
            if stop.is_set():
                raise Stopped from None
            raise RunError(f"{error}; its output is in {log_path}") from None
        try:
            yield server.url, lambda: server.exit_code is not None
        finally:
            server.stop()


@dataclass(frozen=True)
class Classifying:
    """How a run classifies: the review threshold, the images in flight, the largest image."""

    threshold: float = DEFAULT_REVIEW_THRESHOLD
    workers: int = DEFAULT_WORKERS
    max_image_bytes: int = DEFAULT_MAX_IMAGE_BYTES


def run(
    input_dir: Path,
    out_dir: Path,
    *,
    model_server_url: str | None = None,
    artifact: Path | None = None,
    classifying: Classifying = Classifying(),
    progress: TextIO | None = None,
    reclassify: bool = False,
    stop: Stop | None = None,
) -> dict[str, Any]:
    """Process `input_dir` into `out_dir` and write `summary.json`; its content. A `stop`
    set meanwhile leaves the files not done pending (`"interrupted"` says by what)."""
    stop = stop or Stop()
    if model_server_url is not None:  # before any work: a wrong URL is said at once
        model_server_url = check_model_server(model_server_url)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / OUTCOMES_MARK).write_text("python -m batch run's outcomes, never its input\n")
    source = LocalStorage(input_dir, exclude=out_dir)
    out = LocalStorage(out_dir)
    started_at = time.time()
    version = None
    if artifact is not None:
        try:
            version = model_labels.save(out_dir, artifact).version
        except (model_labels.LabelsError, OSError, ValueError) as error:
            said = str(error)  # most already name the archive: say it once
            raise RunError(said if str(artifact) in said else f"{artifact}: {said}") from None
    found = scan(source, out, max_image_bytes=classifying.max_image_bytes)
    if version is not None:
        check_version(found, version, reclassify, out_dir)
    done = Pass(skipped=found.skipped)
    # No model server to start when all is done, unless only it can say its version.
    if found.todo or (version is None and found.classified):
        serving = model_server(model_server_url, artifact, out_dir / SERVER_LOG, stop)
        try:
            with serving as (url, died), runtime_environment(url):
                classifier = local_classifier(
                    classifying.threshold, classifying.max_image_bytes, sleep=stop.sleep
                )
                if version is None and found.classified:
                    version = served_version(classifier, url)
                    check_version(found, version, reclassify, out_dir)
                done = process(
                    found,
                    classifier,
                    too_large=too_large_advice,
                    workers=classifying.workers,
                    progress=progress,
                    should_stop=lambda: stop.is_set() or died(),
                    sleep=stop.sleep,
                )
        except Stopped:
            done = Pass(skipped=found.skipped, stopped=True)
    if version is None and done.versions:  # not asked of --model-server: as it answered
        version = done.versions.most_common(1)[0][0]
    interrupted = stop.signal.name if stop.signal else "stop" if stop.is_set() else None
    document = summary(
        list(folder_jobs(source, out)),
        out,
        done,
        {
            "input": str(source.root),
            "out": str(out.root),
            "model_server": model_server_url or f"started on {artifact and artifact.resolve()}",
            "model_version": version,
            "threshold": classifying.threshold,
            "workers": classifying.workers,
            "started_at": iso_time(started_at),
            "finished_at": iso_time(time.time()),
            "interrupted": interrupted,
        },
    )
    out.write_json(SUMMARY, document)
    if done.stopped and interrupted is None:
        raise RunError(
            f"the model server stopped during the run (its output: {out_dir / SERVER_LOG}); "
            f"{document['counts']['pending']} file(s) are pending: run again"
        )
    return document


def too_large_advice(size: int, limit: int) -> str:
    """`batch run`'s word on an image over `--max-image-bytes`: its flag can raise the limit
    to what a SageMaker endpoint takes (the cloud's batch has the same cap), no further."""
    said = f"The image is about {_megabytes(size)}; the limit is {_megabytes(limit)}."
    scale = "scale it down (a JPEG about 2000 pixels on its longest side is plenty)"
    if size <= SAGEMAKER_PAYLOAD_CAP:
        return (
            f"{said} To classify it as it is, pass --max-image-bytes up to "
            f"{SAGEMAKER_PAYLOAD_CAP} (what a SageMaker endpoint takes), or {scale}."
        )
    return (
        f"{said} That is more than --max-image-bytes allows ({SAGEMAKER_PAYLOAD_CAP}, what a "
        f"SageMaker endpoint takes): {scale}."
    )


def _megabytes(size: int) -> str:
    return f"{size / (1024 * 1024):.1f} MB"


def check_version(found: Scan, version: str, reclassify: bool, out_dir: str | Path) -> None:
    """Outcomes of other model versions are classified again with `--reclassify`; without
    it they stop the run before any work (`ModelChanged`)."""
    others = {v: len(jobs) for v, jobs in found.classified.items() if v != version}
    if not others:
        return
    if reclassify:
        found.reclassify(version)
        return
    held = ", ".join(f"{count} of model version {v}" for v, count in sorted(others.items()))
    raise ModelChanged(
        f"{out_dir} holds outcomes of another model ({held}); this run's model is version "
        f"{version}. Pass --reclassify to classify those files again with it, or choose "
        "another --out"
    )


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "dir",
        metavar="DIR",
        help="the folder of images (with --on sagemaker: s3://BUCKET/PREFIX/)",
    )
    parser.add_argument(
        "--out",
        required=True,
        help="where results/, review/, failed/ go (inside DIR is fine: it is not input; a "
        "folder holding DIR is refused; with --on sagemaker: s3://BUCKET/OUT/)",
    )
    parser.add_argument(
        "--threshold",
        type=_fraction,
        default=DEFAULT_REVIEW_THRESHOLD,
        help="top-1 probability below which an image goes to review/ "
        f"(default {DEFAULT_REVIEW_THRESHOLD}, the API's REVIEW_THRESHOLD)",
    )
    parser.add_argument(
        "--workers",
        type=_workers,
        help=f"images in flight (threads; default {DEFAULT_WORKERS})",
    )
    server = parser.add_mutually_exclusive_group()
    server.add_argument(
        "--model-server",
        metavar="URL",
        help="a running python -m serving.serve (http://HOST:PORT; must answer GET /ping)",
    )
    server.add_argument(
        "--artifact",
        type=Path,
        help=f"the model archive to serve (default {shown(DEFAULT_ARCHIVE)})",
    )
    parser.add_argument(
        "--max-image-bytes",
        type=int,
        default=DEFAULT_MAX_IMAGE_BYTES,
        help=f"largest image accepted, as the API's MAX_IMAGE_BYTES (default "
        f"{DEFAULT_MAX_IMAGE_BYTES}, at most {SAGEMAKER_PAYLOAD_CAP}: what a SageMaker endpoint "
        "takes); larger images are failed/ with payload_too_large, not scaled",
    )
    parser.add_argument(
        "--reclassify",
        action="store_true",
        help="classify again the files whose outcome is another model version's (without "
        "it, such a run is refused); people's decisions are kept",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def _arguments_problem(args: argparse.Namespace) -> str | None:
    """What is wrong with the command line before any work, if anything."""
    if not args.dir.is_dir():
        return f"{args.dir}: no such folder"
    if args.out.resolve() in (args.dir.resolve(), *args.dir.resolve().parents):
        return (
            f"--out {args.out}: holds DIR, so its outcomes would be input of a later run over "
            "it; give a folder beside DIR or inside it"
        )
    if not 1 <= args.max_image_bytes <= SAGEMAKER_PAYLOAD_CAP:
        return f"--max-image-bytes must be between 1 and {SAGEMAKER_PAYLOAD_CAP}"
    try:  # before any work or model server: a typo costs nothing
        check_output_folder(args.out)
    except OutputPathError as error:
        return str(error)
    if args.model_server is not None:
        parts = urllib.parse.urlsplit(args.model_server)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            return f"--model-server {args.model_server}: not a URL like http://HOST:PORT"
    elif not (args.artifact or DEFAULT_ARCHIVE).is_file():
        return (
            f"{args.artifact or DEFAULT_ARCHIVE}: no model archive; run `make run` once (it "
            "builds build/model.tar.gz), or pass --artifact PATH or --model-server URL"
        )
    return None


def command(args: argparse.Namespace, stderr: TextIO | None = None) -> int:
    """`run DIR` (`--on local`): `args.dir` and `args.out` are paths."""
    stderr = stderr or sys.stderr
    args.dir, args.out = Path(args.dir), Path(args.out)
    args.workers = args.workers or DEFAULT_WORKERS
    if problem := _arguments_problem(args):
        return _usage(stderr, problem)
    artifact = args.artifact if args.model_server is not None else args.artifact or DEFAULT_ARCHIVE
    stop = Stop()
    # Up to the last line: a signal after the run's end changes nothing, no traceback.
    with stopped_by_signals(stop, stderr):
        try:
            document = run(
                args.dir,
                args.out,
                model_server_url=args.model_server,
                artifact=artifact,
                classifying=Classifying(args.threshold, args.workers, args.max_image_bytes),
                progress=None if args.quiet else stderr,
                reclassify=args.reclassify,
                stop=stop,
            )
        except ModelChanged as error:
            return _usage(stderr, str(error))
        except (RunError, StorageError) as error:
            print(f"error: {error}", file=stderr)
            return EXIT_FAILED
        for problem in document["this_run"]["unrecorded"]:
            print(f"error: no outcome written for {problem}", file=stderr)
        counts, this_run = document["counts"], document["this_run"]
        if document["interrupted"]:
            done = counts["results"] + counts["review"] + counts["failed"]
            print(
                f"stopped: {done} done, {counts['pending']} pending; run again to resume",
                file=stderr,
            )
            return EXIT_SIGNALLED + (stop.signal or signal.SIGINT)
        print(
            f"{document['files']} files: {counts['results']} results, {counts['review']} to "
            f"review, {counts['failed']} failed, {counts['pending']} pending "
            f"({this_run['processed']} processed now, {this_run['skipped']} already done); "
            f"{args.out / SUMMARY}",
            file=stderr,
        )
        return EXIT_FAILED if counts["pending"] else EXIT_OK


def _usage(stderr: TextIO, message: str) -> int:
    print(f"error: {message}", file=stderr)
    return EXIT_USAGE


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError("must be between 0 and 1")
    return value


def _workers(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if not 1 <= value <= MAX_WORKERS:
        raise argparse.ArgumentTypeError(f"must be between 1 and {MAX_WORKERS}")
    return value
