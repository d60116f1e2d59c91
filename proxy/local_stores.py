"""The stores a machine supplies in place of the cloud's, for `PREDICTIONS_FILE` and
`API_KEYS_FILE`.

On Lambda the stack sets `PREDICTIONS_TABLE` and `API_KEYS_PATH`, and the proxy opens
DynamoDB and SSM itself: nothing here is used. A file store is not in the Lambda's zip: the
process that runs `proxy.handler` on one machine (the local runtime) calls `supply` before
it imports the handler, whose init then opens the files with what it was given. A `*_FILE`
variable with nothing supplied fails the init with a message naming it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from proxy.api_keys import KeyStore
    from proxy.predictions import PredictionStore


@dataclass(frozen=True)
class LocalStores:
    """How to open each file store, given the variable's value (a path)."""

    predictions: Callable[[str], PredictionStore]
    """For `PREDICTIONS_FILE`, at init; raises `proxy.predictions.StoreError` when the file
    cannot be a store."""
    api_keys: Callable[[str], KeyStore]
    """For `API_KEYS_FILE`, at the first request that carries a key."""


_supplied: LocalStores | None = None


def supply(stores: LocalStores | None) -> None:
    """Let the handler's init open the file stores with `stores` (None: no more)."""
    global _supplied
    _supplied = stores


def supplied() -> LocalStores | None:
    """What `supply` was last given: None unless a machine supplied its stores."""
    return _supplied
