"""A SageMaker-compatible model server for ``model.tar.gz``, with no torch in sight.

    python -m serving.serve --artifact build/model.tar.gz [--host 127.0.0.1] [--port 8080]
    python -m serving.serve --model-dir /opt/ml/model --host 0.0.0.0 serve   # the image

It loads the model as SageMaker does (extract the archive, or take the directory
SageMaker extracted it to; import ``code/inference.py``; call ``model_fn`` once) and
serves two faces of the same handler:

* the container contract: ``GET /ping`` and ``POST /invocations``, plus Batch Transform's
  ``GET /execution-parameters``; under ``SAGEMAKER_BATCH=true`` a record the model cannot
  use answers 200 with its error (``serving.batch_transform``);
* the SageMaker Runtime ``InvokeEndpoint`` wire API, ``POST /endpoints/{name}/invocations``,
  so a stock boto3 ``sagemaker-runtime`` client with ``AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME``
  pointed here works unchanged, handler errors arriving as ``ModelError``.

Up to ``--workers`` requests run at once (else ``SAGEMAKER_MODEL_SERVER_WORKERS``, else
as many as the CPUs, and the memory for the largest accepted image, allow, and no more
than a transform job's ``SAGEMAKER_MAX_CONCURRENT_TRANSFORMS``), each on a
thread of its own: ONNX Runtime's ``run`` is thread-safe, and decoding, resizing and
inference release the GIL. The port is ``--port``, else ``SAGEMAKER_BIND_TO_PORT``, else
8080 (SageMaker's container contract). SIGTERM stops it: requests in flight finish, for at
most a few seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import json
import logging
import math
import os
import re
import signal
import sys
import tempfile
import threading
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from http import HTTPStatus
from pathlib import Path
from types import ModuleType
from typing import Any

_stop_requested = threading.Event()


def _stop(_signum: int, _frame: object) -> None:
    # Remembered as well as raised: a C extension importing at that moment (ONNX Runtime's
    # pybind11 module) reports the exit as its own ImportError, "initialization failed".
    _stop_requested.set()
    raise SystemExit(0)


if __name__ == "__main__":
    # A stop while starting exits 0 and removes what it extracted (--artifact) rather
    # than dying by the signal. This handler covers the time until uvicorn takes SIGTERM
    # over (finishing requests in flight) and after it hands it back (it re-raises the
    # signal once stopped, which ends here). Set before the imports below, which take a
    # few hundred milliseconds. In the image python is not PID 1 (serving/Dockerfile), so a
    # SIGTERM before this line still stops it.
    signal.signal(signal.SIGTERM, _stop)

from starlette.applications import Starlette  # noqa: E402
from starlette.concurrency import run_in_threadpool  # noqa: E402
from starlette.requests import ClientDisconnect, Request  # noqa: E402
from starlette.responses import JSONResponse, Response  # noqa: E402
from starlette.routing import Route  # noqa: E402

from artifact.archive import extract  # noqa: E402
from serving.batch_transform import (  # noqa: E402
    BatchSettingError,
    BatchSettings,
    execution_parameters,
    record_error,
)

LOG = logging.getLogger("serving.serve")
JSON = "application/json"
# SageMaker real-time endpoints take at most 6 MB per request (Serverless: 4 MB).
MAX_BODY_BYTES = 6 * 1024 * 1024
ENDPOINT_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
# What the real service sends in x-amzn-ErrorType; botocore keeps the part before ":".
MODEL_ERROR_TYPE = "ModelError:http://internal.amazon.com/coral/com.amazon.sagemaker/"
VALIDATION_ERROR_TYPE = (
    "ValidationError:http://internal.amazon.com/coral/com.amazon.coral.validate/"
)
LOG_STREAM_ARN = "arn:aws:logs:local:000000000000:log-group:/aws/sagemaker/Endpoints/{name}"
# SageMaker tells the container which port to listen on with this variable.
PORT_ENV = "SAGEMAKER_BIND_TO_PORT"
DEFAULT_PORT = 8080
# The SageMaker inference toolkit's name for how many requests a container serves at once
# (there, worker processes; here, threads sharing one model).
WORKERS_ENV = "SAGEMAKER_MODEL_SERVER_WORKERS"
CGROUP_ROOT = Path("/sys/fs/cgroup")
# Requests in flight take milliseconds; this bounds a stop by a slow client to a few seconds.
SHUTDOWN_GRACE_SECONDS = 3


@dataclass(frozen=True)
class HandlerResult:
    status: int
    body: bytes
    content_type: str


class LoadedHandler:
    """The user module and the model it loaded, called the way the toolkit calls them:
    up to ``workers`` requests at once (default: its ``capacity``, ``default_workers`` for
    this machine and the archive's recorded ``peak_rss_mb``, or ``at_most`` if fewer)."""

    def __init__(
        self, artifact: Path, workers: int | None = None, at_most: int | None = None
    ) -> None:
        artifact = Path(artifact)
        if artifact.is_dir():
            self._workdir = None
            model_dir = artifact
        else:
            self._workdir = tempfile.TemporaryDirectory(prefix="model-")
            model_dir = Path(self._workdir.name)
            extract(artifact, model_dir)
        self.module = import_user_module(model_dir / "code" / "inference.py")
        self.model = self.module.model_fn(str(model_dir))
        self.capacity = default_workers(
            usable_cpus(), cgroup_memory_limit_mib(), _recorded_peak_rss_mib(model_dir)
        )
        if workers is None:
            workers = self.capacity if at_most is None else min(at_most, self.capacity)
        self.workers = workers
        # Requests beyond it wait here, in order, rather than in the thread pool.
        self._slots = asyncio.Semaphore(workers)

    async def invoke(
        self, body: bytes, content_type: str | None, accept: str | None
    ) -> HandlerResult:
        async with self._slots:
            return await run_in_threadpool(self._transform, body, content_type, accept)

    def _transform(
        self, body: bytes, content_type: str | None, accept: str | None
    ) -> HandlerResult:
        if not accept or accept == "*/*":
            accept = JSON  # the toolkit's default accept
        try:
            data = self.module.input_fn(body, content_type)
            prediction = self.module.predict_fn(data, self.model)
            result = self.module.output_fn(prediction, accept)
        except Exception as error:
            return _error_result(error)
        payload, response_type = result if isinstance(result, tuple) else (result, accept)
        if isinstance(payload, str):
            payload = payload.encode("utf-8")
        return HandlerResult(HTTPStatus.OK, bytes(payload), response_type)

    def close(self) -> None:
        if self._workdir is not None:
            self._workdir.cleanup()


def default_workers(cpus: int, memory_limit_mib: int | None, peak_rss_mib: int | None) -> int:
    """How many requests to run at once: one per CPU (ONNX Runtime runs each on its own
    thread, ``MODEL_INTRA_OP_THREADS=1``), but never more than the memory limit holds at
    the archive's ``peak_rss_mb`` each, so a container sized to ``memory_mb_min`` (a
    Serverless endpoint) still decodes the largest accepted image one at a time."""
    workers = cpus
    if memory_limit_mib is not None and peak_rss_mib:
        workers = min(workers, memory_limit_mib // peak_rss_mib)
    return max(1, workers)


def usable_cpus() -> int:
    """The CPUs this process may run on, within its container's CPU quota."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    quota = cgroup_cpu_limit()
    return max(1, min(cpus or 1, quota or cpus or 1))


def cgroup_cpu_limit(root: Path = CGROUP_ROOT) -> int | None:
    """The container's CPU quota in whole CPUs, rounded up (cgroup v2, else v1); None
    without one."""
    v2 = _read_words(root / "cpu.max")  # "QUOTA PERIOD", QUOTA "max" when unlimited
    if v2 is not None and len(v2) == 2:
        quota, period = v2
    else:
        quota = (_read_words(root / "cpu" / "cpu.cfs_quota_us") or ["-1"])[0]
        period = (_read_words(root / "cpu" / "cpu.cfs_period_us") or ["100000"])[0]
    if not quota.isdigit() or not period.isdigit() or int(period) == 0:
        return None  # "max" or -1: no quota
    return max(1, math.ceil(int(quota) / int(period)))


def cgroup_memory_limit_mib(root: Path = CGROUP_ROOT) -> int | None:
    """The container's memory limit in MiB (cgroup v2, else v1); None without one."""
    words = _read_words(root / "memory.max") or _read_words(
        root / "memory" / "memory.limit_in_bytes"
    )
    if not words or not words[0].isdigit():
        return None
    limit = int(words[0])
    # cgroup v1 spells "no limit" as the largest page-aligned 64-bit value.
    return None if limit >= 2**62 else limit // 2**20


def _read_words(path: Path) -> list[str] | None:
    try:
        return path.read_text().split()
    except OSError:
        return None


def _recorded_peak_rss_mib(model_dir: Path) -> int | None:
    """The archive's own bound on one process's peak memory (``metadata.json``
    ``peak_rss_mb``, docs/model.md), when it records one."""
    try:
        metadata = json.loads((model_dir / "metadata.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    peak = metadata.get("peak_rss_mb") if isinstance(metadata, dict) else None
    return peak if isinstance(peak, int) and peak > 0 else None


def import_user_module(path: Path) -> ModuleType:
    """Import ``code/inference.py`` as the toolkit does, under a name of its own."""
    # A private module name per load, so two servers in one process never share state.
    name = f"_sagemaker_user_module_{uuid.uuid4().hex}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise RuntimeError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def _error_result(error: Exception) -> HandlerResult:
    """The toolkit's rule: an error with ``status_code``/``message`` is the client's
    answer; anything else is a 500. Unlike the toolkit we never append the traceback:
    it goes to the log, not to the caller."""
    status = getattr(error, "status_code", None)
    message = getattr(error, "message", None)
    if isinstance(status, int) and 400 <= status < 500 and isinstance(message, str):
        return HandlerResult(status, message.encode("utf-8"), JSON)
    LOG.error("handler failed", exc_info=error)
    return HandlerResult(
        HTTPStatus.INTERNAL_SERVER_ERROR,
        _error_json("internal_error", "The model failed to process the request."),
        JSON,
    )


def _error_json(code: str, message: str) -> bytes:
    return json.dumps({"error": {"code": code, "message": message}}).encode()


async def read_limited_body(request: Request, limit: int) -> bytes | None:
    """The body, or None as soon as it is known to exceed ``limit`` bytes (declared
    length first, then while streaming, never buffering past the limit)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        return None
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def create_app(
    artifact: Path, workers: int | None = None, batch: BatchSettings | None = None
) -> Starlette:
    """Load the archive (or an extracted model directory) and build the ASGI app, which
    runs up to ``workers`` requests at once (default: ``default_workers``, within the
    transform job's ``batch.max_concurrent``) and, under ``batch.enabled``, answers a
    record the model cannot use with 200 and its error (``serving.batch_transform``)."""
    batch = batch or BatchSettings()
    handler = LoadedHandler(artifact, workers, batch.max_concurrent)
    body_limit = batch.body_limit(MAX_BODY_BYTES)

    async def ping(_request: Request) -> Response:
        return Response(status_code=HTTPStatus.OK)

    async def execution_parameters_route(_request: Request) -> Response:
        return JSONResponse(execution_parameters(handler.workers, body_limit))

    async def invocations(request: Request) -> Response:
        body = await read_limited_body(request, body_limit)
        if body is None:
            result = _too_large_container(body_limit)
        else:
            result = await handler.invoke(
                body, request.headers.get("content-type"), request.headers.get("accept")
            )
        if batch.enabled:
            record = record_error(result.status, result.body)
            if record is not None:
                result = HandlerResult(HTTPStatus.OK, record, JSON)
        return Response(result.body, status_code=result.status, media_type=result.content_type)

    async def invoke_endpoint(request: Request) -> Response:
        name = request.path_params["name"]
        request_id = str(uuid.uuid4())
        if not ENDPOINT_NAME.match(name):
            return _validation_error(f"Endpoint name {name!r} is not valid.", request_id)
        body = await read_limited_body(request, MAX_BODY_BYTES)
        if body is None:
            return _validation_error(
                f"Request payload exceeds the maximum of {MAX_BODY_BYTES} bytes.", request_id
            )
        result = await handler.invoke(
            body, request.headers.get("content-type"), request.headers.get("accept")
        )
        if result.status == HTTPStatus.OK:
            return Response(
                result.body,
                media_type=result.content_type,
                headers={
                    "x-Amzn-Invoked-Production-Variant": "AllTraffic",
                    "x-amzn-RequestId": request_id,
                },
            )
        return _model_error(name, result, request_id)

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        yield
        handler.close()

    app = Starlette(
        routes=[
            Route("/ping", ping, methods=["GET"]),
            Route("/invocations", invocations, methods=["POST"]),
            Route("/execution-parameters", execution_parameters_route, methods=["GET"]),
            Route("/endpoints/{name}/invocations", invoke_endpoint, methods=["POST"]),
        ],
        exception_handlers={ClientDisconnect: _client_disconnected},
        lifespan=lifespan,
    )
    app.state.handler = handler
    return app


def _too_large_container(limit: int) -> HandlerResult:
    return HandlerResult(
        HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
        _error_json("payload_too_large", f"The request body exceeds {limit} bytes."),
        JSON,
    )


def _model_error(name: str, result: HandlerResult, request_id: str) -> Response:
    """SageMaker Runtime's answer when the container returns a non-2xx status."""
    original = result.body.decode("utf-8", errors="replace")
    kind = "client" if result.status < 500 else "server"
    body: dict[str, Any] = {
        "ErrorCode": f"{kind.upper()}_ERROR_FROM_MODEL",
        "LogStreamArn": LOG_STREAM_ARN.format(name=name),
        "Message": (
            f"Received {kind} error ({result.status}) from primary with message "
            f'"{original}". See the model server log for more information.'
        ),
        "OriginalMessage": original,
        "OriginalStatusCode": result.status,
    }
    return JSONResponse(
        body,
        status_code=HTTPStatus.FAILED_DEPENDENCY,
        headers={"x-amzn-ErrorType": MODEL_ERROR_TYPE, "x-amzn-RequestId": request_id},
    )


def _validation_error(message: str, request_id: str) -> Response:
    return JSONResponse(
        {"message": message},
        status_code=HTTPStatus.BAD_REQUEST,
        headers={"x-amzn-ErrorType": VALIDATION_ERROR_TYPE, "x-amzn-RequestId": request_id},
    )


async def _client_disconnected(_request: Request, _error: Exception) -> Response:
    return Response(status_code=HTTPStatus.BAD_REQUEST)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m serving.serve", description=__doc__)
    parser.add_argument(
        "command",
        nargs="?",
        choices=["serve"],
        help="SageMaker starts serving containers with the argument `serve`; it is the "
        "only command, so it may be left out",
    )
    source = parser.add_mutually_exclusive_group()
    source.add_argument(
        "--artifact",
        type=Path,
        help="a model.tar.gz to extract and serve (default: build/model.tar.gz)",
    )
    source.add_argument(
        "--model-dir",
        type=Path,
        help="serve a directory a model.tar.gz was extracted to, as SageMaker does to "
        "/opt/ml/model",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    parser.add_argument(
        "--port",
        type=int,
        help=f"port to listen on (default: ${PORT_ENV} when set, else {DEFAULT_PORT})",
    )
    parser.add_argument(
        "--workers",
        type=_worker_count,
        help=f"requests to run at once (default: ${WORKERS_ENV} when set, else one per "
        "CPU, as many as the memory holds at the archive's peak_rss_mb each)",
    )
    parser.add_argument("--log-level", default="info")
    args = parser.parse_args(argv)
    if args.port is None:
        args.port = _port_from_environment(parser)
    if args.workers is None:
        args.workers = _workers_from_environment(parser)
    try:
        args.batch = BatchSettings.from_environment(os.environ)
    except BatchSettingError as error:
        parser.error(str(error))
    if args.model_dir is None and args.artifact is None:
        args.artifact = Path("build/model.tar.gz")
    return args


def _port_from_environment(parser: argparse.ArgumentParser) -> int:
    value = os.environ.get(PORT_ENV, "").strip()
    if not value:
        return DEFAULT_PORT
    if not value.isdigit() or not 0 < int(value) < 65536:
        parser.error(f"{PORT_ENV}={value!r} is not a TCP port (1 to 65535)")
    return int(value)


def _worker_count(value: str) -> int:
    if not value.strip().isdigit() or int(value) < 1:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number of at least 1")
    return int(value)


def _workers_from_environment(parser: argparse.ArgumentParser) -> int | None:
    value = os.environ.get(WORKERS_ENV, "").strip()
    if not value:
        return None
    try:
        return _worker_count(value)
    except argparse.ArgumentTypeError:
        parser.error(f"{WORKERS_ENV}={value!r} is not a whole number of at least 1")


def _source_problem(args: argparse.Namespace) -> str | None:
    """Why the model to serve cannot be loaded, in one line, or None."""
    if args.model_dir is not None:
        return _model_dir_problem(args.model_dir)
    if not args.artifact.is_file():
        return (
            f"{args.artifact} does not exist; build it with "
            "`python -m model.package --weights random --out build/model.tar.gz`"
        )
    return None


def _model_dir_problem(model_dir: Path) -> str | None:
    """What keeps this user from loading ``model_dir``: missing, unreadable (SageMaker
    extracts it as another user than the image's, decision 12), or no model in it."""
    give = "give --model-dir the directory a model.tar.gz was extracted to"
    try:
        if not model_dir.exists():
            return f"{model_dir} does not exist: {give}"
        if not model_dir.is_dir():
            return f"{model_dir} is not a directory: {give}"
        for directory, _dirs, files in os.walk(model_dir, onerror=_raise):
            for name in files:
                with open(os.path.join(directory, name), "rb"):
                    pass
    except PermissionError as error:
        return (
            f"cannot read {error.filename} as uid {os.getuid()}: make the model directory "
            "and its files readable by others (chmod -R a+rX), or run the image as root "
            "(USER root in serving/Dockerfile)"
        )
    if not (model_dir / "code" / "inference.py").is_file():
        return f"{model_dir} holds no model (no code/inference.py): {give}"
    return None


def _raise(error: OSError) -> None:
    raise error


def _load_problem(source: Path, error: Exception) -> str:
    """The handler's own error while loading ``source``, in one line."""
    detail = " ".join(str(error).split()) or type(error).__name__
    return (
        f"cannot load the model in {source}: {detail}; check that it comes from an archive "
        "built by `python -m model.package` (--log-level debug shows the traceback)"
    )


def main(argv: list[str] | None = None) -> int:
    # ONNX Runtime (1.29+) sends usage telemetry unless this is set before it initialises
    # (its Privacy.md); a model server has no business calling out, and offline it cannot.
    os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
    args = parse_args(argv)
    problem = _source_problem(args)
    if problem is not None:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    import uvicorn

    logging.basicConfig(level=args.log_level.upper(), format="%(levelname)s %(name)s %(message)s")
    source = args.model_dir or args.artifact
    try:
        app = create_app(source, args.workers, args.batch)
    except Exception as error:  # the archive's own handler: anything may fail to load
        if _stop_requested.is_set():
            return 0
        LOG.debug("loading %s failed", source, exc_info=True)
        print(f"error: {_load_problem(source, error)}", file=sys.stderr)
        return 1
    if _stop_requested.is_set():  # a stop the handler's own imports swallowed
        return 0
    LOG.info("serving up to %d requests at once", app.state.handler.workers)
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        log_level=args.log_level,
        workers=1,
        timeout_graceful_shutdown=SHUTDOWN_GRACE_SECONDS,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
