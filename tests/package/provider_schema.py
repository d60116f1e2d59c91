"""Start a component provider as the Pulumi engine does and ask it for its schema.

The engine runs the plugin with its own address as the one argument, reads the port the
plugin prints, and calls `pulumirpc.ResourceProvider/GetSchema` on it (what `pulumi
package add` and `pulumi package get-schema` do). Here with gRPC's generic call, the
request and the answer in protobuf's wire format, so no generated stub is needed: the
request asks for schema version 0 (no field set), and the answer's one field (number 1)
is the schema's JSON.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import grpc

GET_SCHEMA = "/pulumirpc.ResourceProvider/GetSchema"
ENGINE = "127.0.0.1:1"
"""Never dialled: serving the schema needs no engine."""
START_SECONDS = 120


def provider_schema(
    command: Sequence[str | Path], *, cwd: Path, env: dict[str, str], log: Path
) -> dict[str, Any]:
    """The schema the provider `command` (given `ENGINE` after it) serves; its stderr goes
    to `log`, which the error quotes when it does not start."""
    with (
        log.open("wb") as stderr,
        subprocess.Popen(
            [*map(str, command), ENGINE], cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=stderr
        ) as process,
    ):
        try:
            assert process.stdout is not None
            port = process.stdout.readline().decode().strip()
            if not port.isdigit():
                process.wait(timeout=START_SECONDS)
                raise AssertionError(f"the provider did not start:\n{log.read_text()}")
            with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
                get_schema = channel.unary_unary(
                    GET_SCHEMA, request_serializer=bytes, response_deserializer=_schema_text
                )
                return json.loads(get_schema(b"", timeout=START_SECONDS))
        finally:
            process.terminate()
            process.wait(timeout=START_SECONDS)


def _schema_text(message: bytes) -> str:
    """Field 1 (a length-delimited string) of a `GetSchemaResponse`."""
    if not message:
        return ""
    if message[0] != (1 << 3 | 2):
        raise ValueError(f"not a GetSchemaResponse: {message[:16]!r}")
    length, shift, at = 0, 0, 1
    while True:
        byte = message[at]
        at += 1
        length |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return message[at : at + length].decode()


def clean_env() -> dict[str, str]:
    """This process's environment without what points Python at a checkout or a venv."""
    return {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "VIRTUAL_ENV"}}
