"""The dynamic providers as a deployment stores them, read from a stack run under the mocks."""

from __future__ import annotations

import base64
from typing import Any

import dill

from tests.infra.conftest import StackRun

PROVIDER_INPUT = "__provider"
"""The input `pulumi.dynamic.Resource` registers its provider in, pickled (dill, base64)."""


def stored_provider(run: StackRun, token: str, name: str | None = None) -> Any:
    """The provider of `run`'s resource of type `token` (and `name`), unpickled as Pulumi's dynamic
    provider host unpickles it for every create, update and delete: from the very string
    the SDK registered (and the engine keeps in the stack's state)."""
    return dill.loads(base64.b64decode(run.one(token, name).inputs[PROVIDER_INPUT]))
