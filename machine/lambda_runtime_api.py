"""A stand-in for Lambda's Runtime API on loopback, and a function run by awslambdaric.

`RuntimeApi` serves what AWS's runtime interface client calls (the Runtime API of
https://docs.aws.amazon.com/lambda/latest/dg/runtimes-api.html, version 2018-06-01):

- `GET  /2018-06-01/runtime/invocation/next`: blocks until `invoke` hands out an event,
  with the `Lambda-Runtime-Aws-Request-Id`, `Lambda-Runtime-Deadline-Ms`,
  `Lambda-Runtime-Invoked-Function-Arn` and `Lambda-Runtime-Trace-Id` headers;
- `POST /2018-06-01/runtime/invocation/{id}/response` and `.../{id}/error`: the handler's
  answer or its error (`errorType`, `errorMessage`), which `invoke` returns;
- `POST /2018-06-01/runtime/init/error`: the function failed before its first event.

It also notes when the first `/next` arrived: by then the runtime has imported the
handler's module, so process start to first `/next` is the function's init, as Lambda's
`Init Duration` measures it (without the sandbox's own start).

`LambdaFunction` starts `python -m awslambdaric <handler>` in a task root, as AWS's base
images do (`/var/runtime/bootstrap` in `LAMBDA_TASK_ROOT`, which `-m` puts on
`sys.path`), with exactly the environment it is given.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import subprocess
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

PREFIX = "/2018-06-01/runtime"
POLL_SECONDS = 0.2


@dataclass(frozen=True)
class Invocation:
    """What the function answered: `kind` "response" or "error", and the JSON it posted."""

    request_id: str
    kind: str
    body: Any


class RuntimeApi:
    def __init__(self, function_arn: str, timeout_seconds: int) -> None:
        self.function_arn = function_arn
        self.timeout_seconds = timeout_seconds
        self.init_error: Any = None
        self.first_next: float | None = None
        """`time.monotonic()` of the first `/next`: the function's init had ended."""
        self._events: queue.Queue[tuple[str, bytes]] = queue.Queue()
        self._answers: dict[str, queue.Queue[Invocation]] = {}
        self._closed = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def address(self) -> str:
        """`AWS_LAMBDA_RUNTIME_API`: host and port."""
        host, port = self._server.socket.getsockname()[:2]
        return f"{host}:{port}"

    def invoke(self, event: Any, timeout: float = 120.0) -> Invocation:
        """Hand `event` to the function; its response or error."""
        request_id = str(uuid.uuid4())
        answer: queue.Queue[Invocation] = queue.Queue()
        self._answers[request_id] = answer
        self._events.put((request_id, json.dumps(event).encode()))
        try:
            return answer.get(timeout=timeout)
        except queue.Empty:
            raise TimeoutError(f"no answer to {request_id} in {timeout} s") from None

    def close(self) -> None:
        self._closed.set()
        self._server.shutdown()
        self._server.server_close()

    def next_event(self) -> tuple[str, bytes] | None:
        """`/next`: the next event and its request id, waiting for one; None once closed."""
        if self.first_next is None:
            self.first_next = time.monotonic()
        while not self._closed.is_set():
            try:
                return self._events.get(timeout=POLL_SECONDS)
            except queue.Empty:
                continue
        return None

    def answered(self, request_id: str, kind: str, body: Any) -> bool:
        """`/response` or `/error`: hand it to the waiting `invoke`; False for an unknown id."""
        answer = self._answers.pop(request_id, None)
        if answer is None:
            return False
        answer.put(Invocation(request_id, kind, body))
        return True

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet: the function's own output is what a test reads."""

            def do_GET(self) -> None:
                if self.path != f"{PREFIX}/invocation/next":
                    self._send(404, {"errorMessage": f"no route {self.path}"})
                    return
                handed = api.next_event()
                if handed is None:  # closing: the function is gone or going
                    self.close_connection = True
                    return
                request_id, body = handed
                deadline_ms = int((time.time() + api.timeout_seconds) * 1000)
                self._send(
                    200,
                    body,
                    {
                        "Lambda-Runtime-Aws-Request-Id": request_id,
                        "Lambda-Runtime-Deadline-Ms": str(deadline_ms),
                        "Lambda-Runtime-Invoked-Function-Arn": api.function_arn,
                        "Lambda-Runtime-Trace-Id": f"Root=1-{uuid.uuid4().hex[:8]}-"
                        f"{uuid.uuid4().hex[:24]};Parent={uuid.uuid4().hex[:16]};Sampled=0",
                    },
                )

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                body = json.loads(raw) if raw else None
                parts = self.path.removeprefix(f"{PREFIX}/").split("/")
                if parts == ["init", "error"]:
                    api.init_error = body
                    self._send(202, {"status": "OK"})
                elif (
                    len(parts) == 3
                    and parts[0] == "invocation"
                    and parts[2]
                    in (
                        "response",
                        "error",
                    )
                ):
                    if api.answered(parts[1], parts[2], body):
                        self._send(202, {"status": "OK"})
                    else:
                        self._send(400, {"errorMessage": f"unknown request id {parts[1]}"})
                else:
                    self._send(404, {"errorMessage": f"no route {self.path}"})

            def _send(
                self, status: int, body: Any, headers: Mapping[str, str] | None = None
            ) -> None:
                data = body if isinstance(body, bytes) else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                with contextlib.suppress(ConnectionError):  # the function was stopped
                    self.wfile.write(data)

        return Handler


class LambdaFunction:
    """`python -m awslambdaric <handler>` in `task_root` against a `RuntimeApi`; its
    output (the function's log) goes to `log`."""

    def __init__(
        self,
        python: Path,
        task_root: Path,
        handler: str,
        environment: Mapping[str, str],
        api: RuntimeApi,
        log: Path,
    ) -> None:
        self.api = api
        self.log = log
        self._sink = log.open("wb")
        self.started = time.monotonic()
        self.init_seconds: float | None = None
        self.init_cpu_seconds: float | None = None
        """Both set by `wait_for_init`."""
        self.process = subprocess.Popen(  # noqa: S603 (the runtime client, as Lambda starts it)
            [str(python), "-m", "awslambdaric", handler],
            cwd=task_root,
            env=dict(environment),
            stdin=subprocess.DEVNULL,
            stdout=self._sink,
            stderr=subprocess.STDOUT,
        )

    def wait_for_init(self, timeout: float = 60.0) -> float:
        """Seconds from the process's start to its first `/next` (its init); an
        `AssertionError` with its log if it failed or exited instead."""
        end = time.monotonic() + timeout
        while self.api.first_next is None:
            if self.api.init_error is not None or self.process.poll() is not None:
                raise AssertionError(
                    f"the function did not start: {self.api.init_error}\n{self.output()}"
                )
            if time.monotonic() > end:
                raise AssertionError(f"no /next within {timeout} s\n{self.output()}")
            time.sleep(0.01)
        self.init_seconds = self.api.first_next - self.started
        self.init_cpu_seconds = self.cpu_seconds()
        return self.init_seconds

    def cpu_seconds(self) -> float:
        """CPU time the process has used (user and system, from /proc): its init's, while
        it waits on `/next`, which the machine's load does not inflate as it does the
        wall-clock time."""
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        # After the command's name: state is field 3, utime 14 and stime 15 (proc(5)).
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def invoke(self, event: Any, timeout: float = 120.0) -> Invocation:
        try:
            return self.api.invoke(event, timeout)
        except TimeoutError as error:
            raise AssertionError(f"{error}\n{self.output()}") from None

    def output(self) -> str:
        self._sink.flush()
        return self.log.read_text(errors="replace")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._sink.close()
        self.api.close()
