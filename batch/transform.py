"""`python -m batch run s3://... --on sagemaker` and `python -m batch attach JOB`: a
folder of S3 classified by SageMaker Batch Transform, with the serving image and the
outcomes of `python -m batch run DIR`.

    python -m batch run s3://BUCKET/PREFIX/ --out s3://BUCKET/OUT/ --on sagemaker
        [--stack-outputs FILE] [--model-version V] [--instance-type ml.c5.xlarge]
        [--instances 1] [--region R] [--threshold 0.93] [--max-image-bytes N]
        [--reclassify] [--quiet]
    python -m batch attach JOB [--region R] [--stop] [--quiet]

`run` reads the stack's outputs (`batch.stack_outputs`), checks the model version is in
the registry, then looks at every image under the prefix: those with an outcome under
`--out` are skipped (so a second run resumes), those refused by their first bytes are
`failed/` at once (`batch.manifest`), and the rest go to one transform job of the stack's
image, model and role (`batch.transform_job`): a manifest of them under
`s3://<batch_bucket>/transform/<job>/`, where the job's outputs go too. A run while
another job transforms into the same `--out` is refused (attach to that one).

While the job runs, its progress is shown: outputs written out of images sent, images a
second, the time left, and the job's status (and failure reason). When it ends its
outputs are sorted into `--out` (`batch.sorting`) and `summary.json` is written, as a
local run writes them (docs/contracts.md). `attach JOB` does the same for a job already
started (`--stop` stops it first): after a Ctrl-C, from another machine, or to sort the
outputs of a job whose command was killed.

Ctrl-C while the job runs asks, on a terminal, whether to stop the job or leave it
running; without a terminal to ask on (a script, CI) the job is left running, as for
SIGTERM. A job left running prints how to re-attach (and how to stop it) and exits 130
(Ctrl-C) or 143 (SIGTERM); a stopped job keeps the outputs of its finished images, and
its other images stay pending. A signal before the job starts stops the run there; one
while sorting leaves the rest to `attach`.

Exit status: 0 every image has an outcome; 1 images are pending (the job failed or was
stopped: run again), or AWS failed; 2 bad usage (flags, stack outputs, a prefix with no
images, a version not in the registry, an instance type AWS refuses, outcomes of another
model without `--reclassify`); 130 after Ctrl-C, 143 after SIGTERM.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from batch import labels as model_labels
from batch import stack_outputs
from batch.manifest import (
    S3_WORKERS,
    Image,
    Listed,
    S3Folder,
    S3UrlError,
    check,
    list_images,
    look,
)
from batch.runner import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_SIGNALLED,
    EXIT_USAGE,
    OUTCOME_ENTRIES,
    SUMMARY,
    ModelChanged,
    Pass,
    check_version,
    outcome_keys,
    print_line,
    summary,
)
from batch.sorting import OUTPUT_SUFFIX, sort_outputs
from batch.transform_job import (
    COMPLETED,
    DEFAULT_INSTANCE_TYPE,
    FAILED,
    GENERIC_CONTENT_TYPE,
    STOPPED,
    STOPPING,
    JobSpec,
    JobStatus,
    TransformError,
    TransformJobs,
    TransformRefused,
    instance_type_problem,
    job_name,
    model_name,
)
from pipeline.storage import TRANSFORM, ObjectInfo, S3Storage, StorageError
from pipeline.tasks import Job
from proxy.config import SAGEMAKER_PAYLOAD_CAP
from proxy.labels import write_labels_file
from proxy.predictions import iso_time
from shared.labels import MODEL_LABELS_DIR
from shared.registry import KEY_PREFIX, archive_key, metadata_key, version_slug

RECORD, MANIFEST, IMAGES, OUTPUTS = "job.json", "manifest.json", "images.json", "out/"
"""In `transform/<job>/` of the stack's batch bucket: the job's record, manifest, images
(with their etags and media types) and outputs."""
POLL_FIRST_SECONDS, POLL_GROWTH, POLL_MAX_SECONDS = 1.0, 1.5, 30.0
"""The job is asked for its status at once, then less and less often, every 30 s at most."""
LISTING_SHARE = 5
"""Polls are at least this many times as long apart as counting the outputs takes."""
_USER_AGENT = "image-classifier-batch-transform"
_REGISTRY = "a transform runs a registry version (--model-version)"
_LOCAL_ONLY = {
    "workers": ("--workers", "a transform's container sets how many images it takes at once"),
    "model_server": ("--model-server", _REGISTRY),
    "artifact": ("--artifact", _REGISTRY),
}
_SAGEMAKER_ONLY = {
    "stack_outputs": "--stack-outputs",
    "model_version": "--model-version",
    "instance_type": "--instance-type",
    "instances": "--instances",
    "region": "--region",
}


class UsageError(Exception):
    """Bad usage found before any job (exit 2); the message names the flag."""


class Interrupted(Exception):
    """A signal came while a question was asked: the answer is to leave the job."""


@dataclass
class Clients:
    s3: Any
    sagemaker: Any

    @classmethod
    def create(cls, region: str | None) -> Clients:
        session = boto3.session.Session(region_name=region)
        config = Config(
            retries={"mode": "standard"},
            user_agent_extra=_USER_AGENT,
            max_pool_connections=S3_WORKERS,
        )
        return cls(session.client("s3", config=config), session.client("sagemaker", config=config))


@dataclass(frozen=True)
class JobRecord:
    """`transform/<job>/job.json`: what `attach` needs to sort the job's outputs."""

    job: str
    input: str
    out: str
    model_version: str
    threshold: float
    max_image_bytes: int
    reclassify: bool
    images: int
    skipped: int
    refused: int
    created_at: str

    @classmethod
    def from_json(cls, document: Any, where: str) -> JobRecord:
        try:
            return cls(**{name: document[name] for name in cls.__dataclass_fields__})
        except (KeyError, TypeError):
            raise TransformError(f"{where}: not the record of a batch transform job") from None


class Signals:
    """SIGINT and SIGTERM, noted for the main loop; during a question, they end it."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self.signal: signal.Signals | None = None
        self.asking = False

    def handle(self, number: int, _frame: object) -> None:
        self.signal = signal.Signals(number)
        self._event.set()
        if self.asking:
            raise Interrupted

    def wait(self, seconds: float) -> signal.Signals | None:
        self._event.wait(seconds)
        return self.signal

    def is_set(self) -> bool:
        return self._event.is_set()

    def clear(self) -> None:
        self.signal = None
        self._event.clear()

    @contextlib.contextmanager
    def installed(self) -> Iterator[None]:
        previous = {sig: signal.signal(sig, self.handle) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


@dataclass
class Session:
    """One command's AWS clients, output streams and signals."""

    clients: Clients
    stderr: TextIO
    quiet: bool
    region: str | None
    signals: Signals = field(default_factory=Signals)
    stdin: TextIO = field(default_factory=lambda: sys.stdin)
    stopped_by: signal.Signals | None = None
    """The signal after which the job was stopped on request."""

    @classmethod
    def open(
        cls, clients: Clients | None, stderr: TextIO, quiet: bool, region: str | None
    ) -> Session:
        """The session in `region` (`clients` given: those); UsageError when botocore
        cannot make its clients (no region anywhere, most often)."""
        try:
            return cls(clients or Clients.create(region), stderr, quiet, region)
        except BotoCoreError as error:
            raise UsageError(f"AWS: {error}; pass --region") from None

    @property
    def jobs(self) -> TransformJobs:
        return TransformJobs(self.clients.sagemaker)

    def say(self, text: str) -> None:
        print_line(self.stderr, text)

    def attach_command(self, job: str, *extra: str) -> str:
        region = f" --region {self.region}" if self.region else ""
        return " ".join([f"python -m batch attach {job}{region}", *extra])


# -- run ------------------------------------------------------------------------------------


def configure(parser: argparse.ArgumentParser) -> None:
    """`run`'s flags for `--on sagemaker` (`batch.runner.configure` has the others)."""
    parser.add_argument(
        "--on",
        choices=("local", "sagemaker"),
        default="local",
        help="where the images are classified: here, from DIR (default), or by a SageMaker "
        "Batch Transform job, from s3://BUCKET/PREFIX/ into --out s3://BUCKET/OUT/",
    )
    cloud = parser.add_argument_group("with --on sagemaker")
    cloud.add_argument(
        "--stack-outputs",
        type=Path,
        metavar="FILE",
        help="the stack's outputs, `pulumi stack output --json > FILE` (default: that command "
        "run here, when pulumi is installed)",
    )
    cloud.add_argument(
        "--model-version",
        help="the registry version to run (default: the stack output model_version; "
        "python -m admin.registry list shows them)",
    )
    cloud.add_argument(
        "--instance-type",
        help=f"the transform's instance type (default {DEFAULT_INSTANCE_TYPE})",
    )
    cloud.add_argument("--instances", type=_count, help="instances to run it on (default 1)")
    cloud.add_argument(
        "--region", help="the AWS region (default: the serving image's, else your AWS config's)"
    )


def run_command(args: argparse.Namespace, stderr: TextIO, clients: Clients | None = None) -> int:
    """`run --on sagemaker`."""
    try:
        plan = _usage(args)
        stack = stack_outputs.load(args.stack_outputs)
    except (UsageError, stack_outputs.OutputsError) as error:
        return _usage_error(stderr, str(error))
    region = args.region or stack.region
    try:
        session = Session.open(clients, stderr, args.quiet, region)
    except UsageError as error:
        return _usage_error(stderr, str(error))
    with session.signals.installed():
        try:
            return _run(session, stack, plan)
        except (UsageError, ModelChanged, TransformRefused) as error:
            return _usage_error(stderr, str(error))
        except _Stopped as stopped:
            session.say(f"stopped before any transform job started ({stopped}); run again")
            return EXIT_SIGNALLED + (session.signals.signal or signal.SIGINT)
        except (TransformError, StorageError) as error:
            print(f"error: {error}", file=stderr)
            return EXIT_FAILED
        except (ClientError, BotoCoreError) as error:
            print(f"error: {_aws(error)}", file=stderr)
            return EXIT_FAILED


@dataclass(frozen=True)
class Plan:
    input: S3Folder
    out: S3Folder
    version: str | None
    instance_type: str
    instances: int
    threshold: float
    max_image_bytes: int
    reclassify: bool


def _usage(args: argparse.Namespace) -> Plan:
    for name, (flag, instead) in _LOCAL_ONLY.items():
        if getattr(args, name) is not None:
            raise UsageError(f"{flag} is for --on local; {instead}")
    try:
        source = S3Folder.parse(args.dir)
    except S3UrlError:
        raise UsageError(
            f"{args.dir}: --on sagemaker reads s3://BUCKET/PREFIX/; upload the folder first "
            f"(aws s3 sync {args.dir} s3://BUCKET/PREFIX/), or use --on local"
        ) from None
    try:
        out = S3Folder.parse(args.out)
    except S3UrlError:
        raise UsageError(
            f"--out {args.out}: --on sagemaker writes its outcomes to s3://BUCKET/PREFIX/"
        ) from None
    if source.holds(out):
        raise UsageError(
            f"--out {out.url}: inside the input prefix {source.url}, so its outcomes would be "
            "input of a later run; choose a prefix beside it"
        )
    inner = source.prefix.removeprefix(out.prefix).split("/")[0]
    if out.holds(source) and inner in OUTCOME_ENTRIES:
        raise UsageError(f"{source.url}: inside --out {out.url}'s own {inner}/, not images")
    if not 1 <= args.max_image_bytes <= SAGEMAKER_PAYLOAD_CAP:
        raise UsageError(f"--max-image-bytes must be between 1 and {SAGEMAKER_PAYLOAD_CAP}")
    instance_type = args.instance_type or DEFAULT_INSTANCE_TYPE
    if problem := instance_type_problem(instance_type):
        raise UsageError(problem)
    return Plan(
        source,
        out,
        args.model_version,
        instance_type,
        args.instances or 1,
        args.threshold,
        args.max_image_bytes,
        args.reclassify,
    )


def local_flags_problem(args: argparse.Namespace) -> str | None:
    """A flag of `--on sagemaker` given to a local run."""
    for name, flag in _SAGEMAKER_ONLY.items():
        if getattr(args, name) is not None:
            return f"{flag} is for --on sagemaker"
    if args.dir.startswith("s3://"):
        return f"{args.dir}: --on local reads a folder; pass --on sagemaker for s3://"
    return None


class _Stopped(Exception):
    """A signal before the job started; the message says what was done."""


def _run(session: Session, stack: stack_outputs.TransformStack, plan: Plan) -> int:
    s3 = session.clients.s3
    version, labels = _registry_version(s3, stack, plan.version)
    out = _outcomes(s3, plan.out)
    images = _images(s3, plan.input, out)
    found = look(images, max_image_bytes=plan.max_image_bytes, should_stop=session.signals.is_set)
    if session.signals.is_set():
        raise _Stopped("nothing was sent")
    check_version(found, version, plan.reclassify, plan.out.url)
    _refuse_a_second_job(session, stack, plan.out)
    todo = {job.key for job in found.todo}
    waiting = [image for image in images if image.job.key in todo]
    session.say(
        f"{len(images)} images under {plan.input.url}: {found.skipped} already have an outcome "
        f"in {plan.out.url}, {len(waiting)} to check and transform"
    )
    tally = Tally(session, len(waiting))
    checked = check(
        waiting,
        max_image_bytes=plan.max_image_bytes,
        should_stop=session.signals.is_set,
        progress=tally.add,
    )
    tally.finish()
    if session.signals.is_set():
        raise _Stopped(f"{checked.refused} refused by their first bytes were written to failed/")
    if labels is not None:
        _save_labels(s3, plan.out, version, labels)
    done = Pass(skipped=found.skipped)
    done.processed["failed"] += checked.refused
    name = job_name(stack.name_prefix, datetime.now(UTC))
    record = JobRecord(
        job=name,
        input=plan.input.url,
        out=plan.out.url,
        model_version=version,
        threshold=plan.threshold,
        max_image_bytes=plan.max_image_bytes,
        reclassify=plan.reclassify,
        images=len(checked.accepted),
        skipped=found.skipped,
        refused=checked.refused,
        created_at=iso_time(time.time()),
    )
    if not checked.accepted:
        return _finish(session, out, done, record, None)
    work = S3Folder(stack.work_bucket, f"{TRANSFORM}{name}/")
    _write_work(s3, work, plan.input, record, checked.accepted)
    slug = version_slug(version)
    data_url = f"s3://{stack.artifact_bucket}/{archive_key(slug)}"
    model = model_name(stack.name_prefix, slug, stack.image, data_url, stack.role_arn)
    session.jobs.ensure_model(model, stack.image, data_url, stack.role_arn)
    types = {media_type for _image, media_type in checked.accepted}
    spec = JobSpec(
        name=name,
        model=model,
        manifest_uri=f"s3://{work.bucket}/{work.prefix}{MANIFEST}",
        output_uri=f"s3://{work.bucket}/{work.prefix}{OUTPUTS}",
        content_type=types.pop() if len(types) == 1 else GENERIC_CONTENT_TYPE,
        instance_type=plan.instance_type,
        instances=plan.instances,
        max_image_bytes=plan.max_image_bytes,
    )
    session.jobs.create(spec)
    session.say(
        f"started transform job {name}: {len(checked.accepted)} images on {plan.instances} x "
        f"{plan.instance_type}, model version {version} (from elsewhere: "
        f"{session.attach_command(name)})"
    )
    return _watch_and_sort(session, record, checked.accepted, done)


def _registry_version(
    s3: Any, stack: stack_outputs.TransformStack, asked: str | None
) -> tuple[str, tuple[str, ...] | None]:
    """The version to run and its labels (None: an archive without a sidecar); a version
    not in the registry is bad usage, naming the ones there."""
    version = asked or stack.model_version
    if version is None:
        raise UsageError(
            f"{stack.source} names no model_version: pass --model-version (python -m "
            f"admin.registry list --bucket {stack.artifact_bucket} shows the registry)"
        )
    slug = version_slug(version)
    registry = S3Storage(stack.artifact_bucket, client=s3)
    if registry.info(archive_key(slug)) is None:
        held = sorted({key.split("/")[1] for key in registry.iter_keys(KEY_PREFIX)})
        raise UsageError(
            f"--model-version {version}: not in the registry s3://{stack.artifact_bucket}/"
            f"models/ (it holds {', '.join(held) or 'nothing'}; python -m admin.registry list "
            f"--bucket {stack.artifact_bucket} says more)"
        )
    metadata = registry.read_json(metadata_key(slug))
    if metadata is None:
        return version, None
    try:
        known = model_labels.from_metadata(metadata, f"s3://{stack.artifact_bucket}/{slug}")
    except model_labels.LabelsError:
        return version, None
    return known.version, known.labels


def _outcomes(s3: Any, out: S3Folder) -> Listed:
    storage = S3Storage(out.bucket, prefix=out.prefix, client=s3)
    return Listed(storage, outcome_keys(storage))


def _images(s3: Any, folder: S3Folder, out: Listed) -> list[Image]:
    try:
        images = list_images(s3, folder, out)
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") == "NoSuchBucket":
            raise UsageError(f"{folder.url}: no such bucket") from None
        raise
    if not images:
        raise UsageError(
            f"{folder.url}: no images there (nothing under that prefix but folders or hidden "
            "names; S3 keys are case-sensitive)"
        )
    return images


def _refuse_a_second_job(
    session: Session, stack: stack_outputs.TransformStack, out: S3Folder
) -> None:
    for name in session.jobs.in_progress(stack.name_prefix):
        record = _record_at(session.clients.s3, S3Folder(stack.work_bucket, f"{TRANSFORM}{name}/"))
        if record is not None and record.out == out.url:
            raise UsageError(
                f"transform job {name} is still transforming into --out {out.url}: watch it "
                f"with {session.attach_command(name)} (or add --stop to stop it)"
            )


def _save_labels(s3: Any, out: S3Folder, version: str, labels: tuple[str, ...]) -> None:
    """The model's labels beside the outcomes, as `run DIR` keeps them for the review CLI."""
    with tempfile.TemporaryDirectory() as scratch:
        path = write_labels_file(scratch, version, list(labels))
        s3.put_object(
            Bucket=out.bucket,
            Key=f"{out.prefix}{MODEL_LABELS_DIR}/{path.name}",
            Body=path.read_bytes(),
            ContentType="application/json",
        )


def _write_work(
    s3: Any,
    work: S3Folder,
    source: S3Folder,
    record: JobRecord,
    accepted: list[tuple[Image, str]],
) -> None:
    """The job's manifest (Batch Transform's format), its images and its record."""
    manifest = [{"prefix": source.url}, *(image.job.name for image, _type in accepted)]
    images = [
        [image.job.name, image.info.etag, image.info.size, media_type]
        for image, media_type in accepted
    ]
    for name, document in (
        (MANIFEST, manifest),
        (IMAGES, images),
        (RECORD, asdict(record)),
    ):
        s3.put_object(
            Bucket=work.bucket,
            Key=f"{work.prefix}{name}",
            Body=json.dumps(document, ensure_ascii=False).encode(),
            ContentType="application/json",
        )


def _record_at(s3: Any, work: S3Folder) -> JobRecord | None:
    document = S3Storage(work.bucket, client=s3).read_json(f"{work.prefix}{RECORD}")
    if document is None:
        return None
    return JobRecord.from_json(document, f"s3://{work.bucket}/{work.prefix}{RECORD}")


# -- attach ---------------------------------------------------------------------------------


def configure_attach(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("job", metavar="JOB", help="the transform job's name (or ARN)")
    parser.add_argument(
        "--region", help="the job's AWS region (default: its ARN's, else your AWS config's)"
    )
    parser.add_argument(
        "--stop", action="store_true", help="stop the job first, then sort what it finished"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress on stderr")


def attach_command(
    args: argparse.Namespace, stderr: TextIO | None = None, clients: Clients | None = None
) -> int:
    """`attach JOB`."""
    stderr = stderr or sys.stderr
    name, region = args.job, args.region
    if name.startswith("arn:"):
        parts = name.split(":")
        region = region or parts[3]
        name = parts[-1].split("/", 1)[-1]
    try:
        session = Session.open(clients, stderr, args.quiet, region)
    except UsageError as error:
        return _usage_error(stderr, str(error))
    with session.signals.installed():
        try:
            status = session.jobs.describe(name)
            work = _work_of(status)
            record = _record_at(session.clients.s3, work)
            if record is None:
                return _usage_error(
                    stderr,
                    f"{name}: no {TRANSFORM}{name}/{RECORD} beside its outputs: not a job "
                    "of python -m batch run",
                )
            if args.stop and not status.ended_already:
                session.jobs.stop(name)
                session.say(f"stopping transform job {name}")
            accepted = _accepted(session.clients.s3, work, record)
            return _watch_and_sort(session, record, accepted, Pass(skipped=record.skipped))
        except (TransformError, StorageError) as error:
            print(f"error: {error}", file=stderr)
            return EXIT_FAILED
        except (ClientError, BotoCoreError) as error:
            print(f"error: {_aws(error)}", file=stderr)
            return EXIT_FAILED


def _work_of(status: JobStatus) -> S3Folder:
    outputs = S3Folder.parse(status.output_uri)
    return S3Folder(outputs.bucket, outputs.prefix.removesuffix(OUTPUTS))


def _accepted(s3: Any, work: S3Folder, record: JobRecord) -> list[tuple[Image, str]]:
    """The images of a job, from its record, as `run` sent them."""
    answer = s3.get_object(Bucket=work.bucket, Key=f"{work.prefix}{IMAGES}")
    try:
        rows = [
            (str(n), str(e), int(b), str(m)) for n, e, b, m in json.loads(answer["Body"].read())
        ]
    except (ValueError, TypeError):
        where = f"s3://{work.bucket}/{work.prefix}{IMAGES}"
        raise TransformError(f"{where}: not the images of a batch transform job") from None
    source, out = S3Folder.parse(record.input), S3Folder.parse(record.out)
    images_at = S3Storage(source.bucket, client=s3)
    outcomes = _outcomes(s3, out)
    return [
        (
            Image(Job(images_at, f"{source.prefix}{name}", outcomes, name), ObjectInfo(size, etag)),
            media_type,
        )
        for name, etag, size, media_type in rows
    ]


# -- watch, then sort -----------------------------------------------------------------------


def _watch_and_sort(
    session: Session, record: JobRecord, accepted: list[tuple[Image, str]], done: Pass
) -> int:
    """Show the job's progress until it ends (or is left running), then sort its outputs
    and write `summary.json`; the exit status."""
    work = _work_of(session.jobs.describe(record.job))
    left = _watch(session, record.job, work, len(accepted))
    if left is not None:
        return left
    status = session.jobs.describe(record.job)
    if status.status == FAILED:
        session.say(f"error: transform job {record.job} failed: {status.failure_reason}")
    found = look(
        [image for image, _type in accepted],
        max_image_bytes=record.max_image_bytes,
        should_stop=lambda: False,
    )
    if record.reclassify:
        found.reclassify(record.model_version)
    todo_keys = {job.key for job in found.todo}
    sorted_now = sort_outputs(
        session.clients.s3,
        [(image, media) for image, media in accepted if image.job.key in todo_keys],
        S3Folder(work.bucket, f"{work.prefix}{OUTPUTS}"),
        threshold=record.threshold,
        should_stop=session.signals.is_set,
        progress=None if session.quiet else session.stderr,
    )
    if sorted_now.stopped:
        session.say(
            f"stopped sorting transform job {record.job}'s outputs; sort the rest with "
            f"{session.attach_command(record.job)}"
        )
        return EXIT_SIGNALLED + (session.signals.signal or signal.SIGINT)
    done.processed.update(sorted_now.processed)
    done.versions.update(sorted_now.versions)
    done.unrecorded += sorted_now.unrecorded
    done.seconds = status.seconds(datetime.now(UTC))
    return _finish(
        session, _outcomes(session.clients.s3, S3Folder.parse(record.out)), done, record, status
    )


def _watch(session: Session, job: str, work: S3Folder, total: int) -> int | None:
    """Until the job ends: None; or the exit status when it is left running."""
    shown = Shown(session, job, total)
    interval = POLL_FIRST_SECONDS
    while True:
        status = session.jobs.describe(job)
        counting = time.monotonic()
        shown.update(status, _count_outputs(session.clients.s3, work))
        if status.ended_already:
            shown.finish()
            return None
        # Counting a million outputs takes a thousand list requests: at most a fifth of
        # the time goes to it.
        listing = time.monotonic() - counting
        sig = session.signals.wait(max(interval, LISTING_SHARE * listing))
        interval = min(POLL_MAX_SECONDS, interval * POLL_GROWTH)
        if sig is None:
            continue
        shown.finish()
        stopping = status.status == STOPPING or session.stopped_by is not None
        if sig == signal.SIGINT and not stopping and _asked_to_stop(session, job):
            session.jobs.stop(job)
            session.say(f"stopping transform job {job}; its finished images are kept")
            session.stopped_by = sig
            session.signals.clear()
            continue
        why = "no terminal to ask on; " if sig == signal.SIGINT and not stopping else ""
        session.say(
            f"left transform job {job} running ({why}it bills until it ends); watch and sort "
            f"it: {session.attach_command(job)}; stop it: "
            f"{session.attach_command(job, '--stop')}"
        )
        return EXIT_SIGNALLED + sig


def _asked_to_stop(session: Session, job: str) -> bool:
    """On a terminal, whether to stop the job; without one, no (it is left running)."""
    if not session.stdin.isatty():
        return False
    session.signals.asking = True
    try:
        session.stderr.write(
            f"Stop transform job {job}? Its finished images keep their outcomes, the others "
            "stay pending. [y/N] "
        )
        session.stderr.flush()
        answer = session.stdin.readline()
    except Interrupted:
        return False
    finally:
        session.signals.asking = False
    return answer.strip().lower() in ("y", "yes")


def _count_outputs(s3: Any, work: S3Folder) -> int:
    pages = s3.get_paginator("list_objects_v2").paginate(
        Bucket=work.bucket, Prefix=f"{work.prefix}{OUTPUTS}"
    )
    return sum(
        1
        for page in pages
        for item in page.get("Contents", [])
        if item["Key"].endswith(OUTPUT_SUFFIX)
    )


class Tally:
    """How many images were judged by their first bytes: a line per tenth (kept on one line
    on a terminal), a million of them taking minutes."""

    def __init__(self, session: Session, total: int) -> None:
        self.session = session
        self.total = total
        self.done = 0
        self.next = 0
        self.lock = threading.Lock()
        self.tty = session.stderr.isatty()

    def add(self) -> None:
        with self.lock:
            self.done += 1
            shown = self.tty or self.done >= self.next or self.done == self.total
            if self.session.quiet or not shown:
                return
            self.next = self.done + max(1, self.total // 10)
            text = f"checked the first bytes of {self.done}/{self.total} images"
            self.session.stderr.write(f"\r{text}" if self.tty else f"{text}\n")
            self.session.stderr.flush()

    def finish(self) -> None:
        if self.tty and self.done and not self.session.quiet:
            self.session.stderr.write("\n")
            self.session.stderr.flush()


class Shown:
    """The job's progress on stderr: a line kept current on a terminal, else a line per
    change."""

    def __init__(self, session: Session, job: str, total: int) -> None:
        self.session = session
        self.job = job
        self.total = total
        self.since: tuple[float, int] | None = None
        self.last = ""
        self.tty = session.stderr.isatty()

    def update(self, status: JobStatus, done: int) -> None:
        now = time.monotonic()
        if self.since is None or done == self.since[1]:
            self.since = (now, done)  # the rate counts from the last poll before progress
        text = self.line(status, done, now)
        if self.session.quiet or text == self.last:
            return
        self.last = text
        self.session.stderr.write(f"\r{text}" if self.tty else f"{text}\n")
        self.session.stderr.flush()

    def line(self, status: JobStatus, done: int, now: float) -> str:
        share = done / self.total if self.total else 1.0
        said = f"{self.job}: {status.status}  {done}/{self.total} ({share:.0%})"
        if not status.ended_already and self.since is not None and now > self.since[0]:
            rate = (done - self.since[1]) / (now - self.since[0])
            eta = _duration((self.total - done) / rate) if rate else "?"
            said += f"  {rate:.1f} img/s  eta {eta}"
        if status.failure_reason:
            said += f"  ({status.failure_reason})"
        return said

    def finish(self) -> None:
        if self.tty and self.last and not self.session.quiet:
            self.session.stderr.write("\n")
            self.session.stderr.flush()


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    return f"{seconds // 3600:.0f} h {seconds % 3600 / 60:.0f} min"


def _settings(record: JobRecord, status: JobStatus | None) -> dict[str, Any]:
    """`summary.json`'s settings of a transform (a local run's, `workers` null)."""
    job = "none: every image had its outcome, or was refused by its first bytes"
    if status is not None:
        job = f"{status.name} ({status.instances} x {status.instance_type})"
    return {
        "input": record.input,
        "out": record.out,
        "model_server": f"sagemaker transform job {job}",
        "model_version": record.model_version,
        "threshold": record.threshold,
        "workers": None,
        "started_at": record.created_at,
    }


def _finish(
    session: Session,
    out: Listed,
    done: Pass,
    record: JobRecord,
    status: JobStatus | None,
) -> int:
    """`summary.json` over every image under the input prefix, and the last line."""
    source = S3Folder.parse(record.input)
    jobs = [image.job for image in list_images(session.clients.s3, source, out)]
    stopped_by = session.signals.signal or session.stopped_by
    document = summary(
        jobs,
        out,
        done,
        {
            **_settings(record, status),
            "finished_at": iso_time(time.time()),
            "interrupted": stopped_by.name if stopped_by else None,
        },
    )
    out.write_json(SUMMARY, document)
    for problem in document["this_run"]["unrecorded"]:
        print(f"error: no outcome written for {problem}", file=session.stderr)
    counts = document["counts"]
    if stopped_by is not None:
        done_count = counts["results"] + counts["review"] + counts["failed"]
        session.say(f"stopped: {done_count} done, {counts['pending']} pending; run again to resume")
        return EXIT_SIGNALLED + stopped_by
    session.say(
        f"{document['files']} images: {counts['results']} results, {counts['review']} to "
        f"review, {counts['failed']} failed, {counts['pending']} pending; "
        f"{out.describe()}/{SUMMARY}"
    )
    if counts["pending"]:
        why = f"transform job {status.name} {status.status}" if status else "not sent"
        session.say(f"{counts['pending']} images pending ({why}): run again to resume")
        return EXIT_FAILED
    if status is not None and status.status not in (COMPLETED, STOPPED):
        return EXIT_FAILED
    return EXIT_OK


def _usage_error(stderr: TextIO, message: str) -> int:
    print(f"error: {message}", file=stderr)
    return EXIT_USAGE


def _aws(error: Exception) -> str:
    if isinstance(error, ClientError):
        said = error.response.get("Error", {})
        return f"AWS {error.operation_name}: {said.get('Code')}: {said.get('Message')}"
    return f"AWS: {error}"


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value
