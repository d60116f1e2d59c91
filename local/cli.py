"""`python -m local`: model server, API and site on one machine, in one command."""

from __future__ import annotations

import argparse
import asyncio
import logging
import secrets
import signal
import socket
import sys
from collections.abc import Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import uvicorn
from starlette.types import ASGIApp

from artifact.labels import CUSTOM_LABEL_SET
from artifact.metadata import ArchiveMetadata
from hosting.origin import PREDICT_PATH
from local.addresses import Addresses
from local.api import create_api_app
from local.container import ContainerError, container_model_server
from local.inbox import InboxWatcher
from local.lambda_function import (
    PREDICTIONS_FILE_NAME,
    check_environment,
    handler_environment,
    load_handler,
)
from local.origin import create_origin_app
from local.site import create_site_app
from machine.api_keys_file import DEFAULT_LOCAL_FILE, FileKeyStore
from machine.artifact import (
    DEFAULT_ARCHIVE,
    DEFAULT_DATA_DIR,
    ArtifactError,
    read_archive_labels,
    resolve_artifact,
    shown,
)
from machine.model_server import ModelServer, ModelServerError
from machine.ports import PortInUse, listen
from machine.predictions_sqlite import SqlitePredictionStore
from proxy.api_keys import StoreError
from proxy.config import ConfigError
from proxy.labels import write_labels_file
from proxy.predictions import StoreError as PredictionStoreError
from shared.labels import MODEL_LABELS_DIR

EXIT_USAGE = 2
# Under --data-dir: where --inbox writes its results/, review/ and failed/.
INBOX_OUTCOMES = "batch"
EXIT_FAILURE = 1


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m local",
        description="Run the image classifier on this machine: the model server (SageMaker "
        "stand-in), the Lambda proxy behind a local HTTP API, and the web UI, which serves "
        "the API at /api/ on its own origin as CloudFront does.",
    )
    parser.add_argument(
        "--port",
        "--site-port",
        dest="port",
        type=int,
        default=8000,
        help="the site's port: the web UI and the API at /api/predict (8000)",
    )
    parser.add_argument(
        "--api-port",
        type=int,
        default=8001,
        help="the API called directly, as its execute-api URL: /api/predict, refused "
        "without an API key (8001)",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    parser.add_argument(
        "--api-keys",
        nargs="?",
        const=DEFAULT_LOCAL_FILE,
        type=Path,
        metavar="FILE",
        help="admit direct calls with an API key from FILE (default "
        f"{DEFAULT_LOCAL_FILE}; python -m admin.api_keys create NAME --local FILE makes one)",
    )
    parser.add_argument(
        "--artifact",
        type=Path,
        help=f"serve this model archive (.tar.gz) instead of {shown(DEFAULT_ARCHIVE)}",
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=DEFAULT_DATA_DIR,
        metavar="DIR",
        help="keep the prediction records and feedback (predictions.sqlite3, kept across "
        "runs) and the model's labels here (build/local-data)",
    )
    parser.add_argument(
        "--inbox",
        type=Path,
        metavar="DIR",
        help="classify every image put into DIR, as the batch pipeline's inbox does; the "
        "outcomes go to batch/ in --data-dir (results, review, failed)",
    )
    parser.add_argument(
        "--weights",
        help="build the archive with imagenet, random or a state_dict PATH "
        "(default: imagenet, falling back to random when it cannot be downloaded)",
    )
    parser.add_argument(
        "--container",
        action="store_true",
        help="serve the model from the serving image (serving/Dockerfile), built with podman "
        "or docker and run as SageMaker runs it, instead of python -m serving.serve",
    )
    parser.add_argument(
        "--base-image",
        help="with --container: the image's base (default: the Dockerfile's; offline with "
        "podman, a Debian base made with mmdebstrap)",
    )
    args = parser.parse_args(argv)
    if args.base_image is not None and not args.container:
        parser.error("--base-image needs --container")
    if args.artifact is not None and args.weights is not None:
        parser.error("--artifact and --weights exclude each other")
    if args.port == args.api_port and args.port != 0:
        parser.error("--port and --api-port must differ")
    return args


def say(message: str = "") -> None:
    print(message, flush=True)


def fail(message: str) -> None:
    print(f"local: {message}", file=sys.stderr, flush=True)


BANNER_RULE = "=" * 70
UNTRAINED_ADVICE = {
    # Built here: --weights rebuilds it.
    "built": """For a real classifier: --weights imagenet (needs internet once)
or --weights PATH (a MobileNetV2 state_dict file).""",
    # Given with --artifact (which excludes --weights), ImageNet's classes: build another.
    "imagenet": """For a real classifier, build one (needs internet once):
python -m model.package --weights imagenet --out build/model.tar.gz
and serve it with --artifact build/model.tar.gz (or leave out --artifact).""",
    # Classes of your own: ImageNet's weights would discard them; fine-tune instead.
    "custom": """For a real classifier of these classes, fine-tune on your photos from
the pretrained ImageNet backbone (needs internet once):
python -m model.finetune --data PHOTOS --out build/mine/weights.pt
python -m model.package --weights build/mine/weights.pt
    --labels build/mine/labels.txt --out build/mine.tar.gz
and serve it with --artifact build/mine.tar.gz.""",
}


def untrained_banner(model: ArchiveMetadata, given_artifact: bool) -> str:
    """The warning for an archive with random weights, with advice that fits how it was
    given (`--weights` excludes `--artifact`) and its classes."""
    own_classes = model.label_set == CUSTOM_LABEL_SET
    kind = "custom" if own_classes else "imagenet" if given_artifact else "built"
    lines = [
        "UNTRAINED MODEL: this archive has RANDOM weights.",
        "Its predictions are noise, and the web UI says so on every result.",
        *UNTRAINED_ADVICE[kind].splitlines(),
    ]
    return "\n".join(["", BANNER_RULE, *(f"  {line}" for line in lines), BANNER_RULE, ""])


class _Server(uvicorn.Server):
    """A uvicorn server that leaves signal handling to the runtime, which owns two of them."""

    @contextmanager
    def capture_signals(self):
        yield


def _quiet_libraries() -> None:
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "botocore", "boto3"):
        logging.getLogger(name).setLevel(logging.WARNING)


async def _serve(
    listeners: Sequence[tuple[ASGIApp, socket.socket]],
    model_server: ModelServer,
    ready_message: str,
) -> int:
    servers = [
        _Server(
            uvicorn.Config(
                app, log_config=None, access_log=False, lifespan="off", timeout_graceful_shutdown=5
            )
        )
        for app, _ in listeners
    ]
    exit_code = 0

    def stop(sig: signal.Signals) -> None:
        for server in servers:
            # A second Ctrl-C stops waiting for requests in flight.
            server.force_exit = server.should_exit
            server.should_exit = True

    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop, sig)

    tasks = [
        asyncio.create_task(server.serve(sockets=[sock]))
        for server, (_, sock) in zip(servers, listeners, strict=True)
    ]
    while not all(server.started for server in servers):
        if any(task.done() for task in tasks):
            fail("a server failed to start (see above)")
            exit_code = EXIT_FAILURE
            stop(signal.SIGTERM)
            break
        await asyncio.sleep(0.02)
    else:
        say(ready_message)

    while not all(task.done() for task in tasks):
        if model_server.exit_code is not None and not servers[0].should_exit:
            fail(f"the model server stopped unexpectedly (exit code {model_server.exit_code})")
            exit_code = EXIT_FAILURE
            stop(signal.SIGTERM)
        await asyncio.sleep(0.2)
    for task in tasks:
        if (error := task.exception()) is not None:
            raise error
    return exit_code


def _python() -> str:
    """How to run this Python, for a command to copy: `.venv/bin/python` under `make run`."""
    python = shown(Path(sys.executable))
    return python if not Path(python).is_absolute() else "python"


def _describe(
    model: ArchiveMetadata,
    addresses: Addresses,
    model_server: ModelServer,
    api_keys: Path | None,
    key_count: int,
    data_dir: Path,
) -> str:
    direct = "send an x-api-key" if api_keys is not None else "refused, 403; --api-keys admits keys"
    lines = [
        f"Model      {shown(model.path)} "
        f"({model.name}, version {model.version}, weights {model.weights})",
        f"SageMaker  {model_server.url} ({model_server.description})",
        f"Site       {addresses.site_url()} (web UI; API at {PREDICT_PATH}, as through CloudFront)",
        f"API        {addresses.direct_api_url()}/predict (direct, as execute-api: {direct})",
        f"Feedback   {shown(data_dir / PREDICTIONS_FILE_NAME)} (every prediction and its "
        f"feedback; kept across runs; per variant: "
        f"{_python()} -m admin.report --sqlite {shown(data_dir / PREDICTIONS_FILE_NAME)})",
    ]
    if api_keys is not None:
        keys = f"{key_count} key{'s' if key_count != 1 else ''}" if key_count else "no keys yet"
        file = shown(api_keys)
        lines.append(
            f"API keys   {file} ({keys}); add one: "
            f"{_python()} -m admin.api_keys create NAME --local {file}"
        )
    return "\n".join(lines)


def _count_keys(file: Path) -> int:
    """How many keys `file` holds now (a missing file holds none); StoreError if unreadable."""
    return len(FileKeyStore(file).load().keys)


def _open_data_dir(data_dir: Path) -> None:
    """Create the records' database if need be, so a directory that cannot hold it is
    said now, in one line (`PredictionStoreError`), not by the handler's init."""
    with SqlitePredictionStore(data_dir / PREDICTIONS_FILE_NAME):
        pass


def _write_labels(model: ArchiveMetadata, data_dir: Path) -> None:
    """The served archive's labels where the proxy checks feedback labels against them."""
    write_labels_file(data_dir / MODEL_LABELS_DIR, model.version, read_archive_labels(model.path))


def run(args: argparse.Namespace) -> int:
    origin_secret = secrets.token_urlsafe(32)
    # The API's site stage, as CloudFront's origin path reaches it (decision 13).
    site_stage = secrets.token_hex(16)
    api_keys = None if args.api_keys is None else Path.cwd() / args.api_keys
    data_dir = Path.cwd() / args.data_dir
    try:
        key_count = _checked_setup(origin_secret, api_keys, data_dir)
        site_sock, api_sock = _listen_both(args)
    except (ConfigError, StoreError, PortInUse) as exc:
        fail(str(exc))
        return EXIT_USAGE
    except PredictionStoreError as exc:
        fail(f"--data-dir {shown(data_dir)}: {exc}")
        return EXIT_USAGE
    addresses = Addresses(args.host, site_sock.getsockname()[1], api_sock.getsockname()[1])
    try:
        return _serve_until_stopped(
            args,
            _Origin(origin_secret, site_stage),
            api_keys,
            key_count,
            data_dir,
            addresses,
            (site_sock, api_sock),
        )
    finally:
        site_sock.close()
        api_sock.close()


@dataclass(frozen=True)
class _Origin:
    """What only CloudFront knows: the header secret and the API's site stage."""

    secret: str
    site_stage: str


def _checked_setup(origin_secret: str, api_keys: Path | None, data_dir: Path) -> int:
    """The handler's own checks, before anything slow (e.g. API_KEYS_CACHE_SECONDS); the
    number of API keys."""
    check_environment(handler_environment("http://127.0.0.1", origin_secret, api_keys, data_dir))
    key_count = _count_keys(api_keys) if api_keys is not None else 0
    _open_data_dir(data_dir)
    return key_count


def _listen_both(args: argparse.Namespace) -> tuple[socket.socket, socket.socket]:
    """The site's and the API's sockets, or `PortInUse` with neither left open."""
    site_sock = listen(args.host, args.port, "--port")
    try:
        api_sock = listen(args.host, args.api_port, "--api-port")
    except PortInUse:
        site_sock.close()
        raise
    return site_sock, api_sock


def _serve_until_stopped(
    args: argparse.Namespace,
    origin: _Origin,
    api_keys: Path | None,
    key_count: int,
    data_dir: Path,
    addresses: Addresses,
    sockets: tuple[socket.socket, socket.socket],
) -> int:
    """Start the model server (and the inbox), serve the site and the API until Ctrl-C
    or SIGTERM, then stop what was started."""
    model_server: ModelServer | None = None
    inbox: InboxWatcher | None = None
    try:
        model = resolve_artifact(args.artifact, args.weights, say)
        _write_labels(model, data_dir)
        if args.container:
            model_server = container_model_server(model.path, args.base_image, say)
        else:
            model_server = ModelServer(model.path)
        say(f"Starting the model server on {model_server.url} ...")
        model_server.start()
        # The model server is started first: its environment is not the Lambda's.
        handler = load_handler(
            handler_environment(model_server.url, origin.secret, api_keys, data_dir)
        )
        say(_describe(model, addresses, model_server, api_keys, key_count, data_dir))
        if args.inbox is not None:
            inbox = InboxWatcher(Path.cwd() / args.inbox, data_dir / INBOX_OUTCOMES, model.path)
            say(inbox.describe())
            inbox.start()
        if model.untrained:
            say(untrained_banner(model, given_artifact=args.artifact is not None))
        ready = f"Ready: open {addresses.site_url()} in a browser. Press Ctrl-C to stop."
        api = create_api_app(handler, site_stage=origin.site_stage)
        site = create_site_app(model.version, model_weights=model.weights)
        origin_app = create_origin_app(site, api, origin.secret, f"/{origin.site_stage}")
        code = asyncio.run(
            _serve([(origin_app, sockets[0]), (api, sockets[1])], model_server, ready)
        )
        say("Stopped.")
        return code
    except (ArtifactError, ContainerError, ModelServerError) as exc:
        fail(str(exc))
        return EXIT_FAILURE
    except KeyboardInterrupt:
        fail("interrupted")
        return 130
    finally:
        if inbox is not None:
            inbox.stop()
        if model_server is not None:
            model_server.stop()


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    _quiet_libraries()
    return run(args)
