"""This machine's stores in place of the proxy's cloud ones, as `proxy.local_stores` takes
them: an SQLite file for `PREDICTIONS_FILE`, a JSON key file for `API_KEYS_FILE`."""

from __future__ import annotations

from machine.api_keys_file import FileKeyStore
from machine.predictions_sqlite import SqlitePredictionStore
from proxy.local_stores import LocalStores

LOCAL_STORES = LocalStores(predictions=SqlitePredictionStore, api_keys=FileKeyStore)
