"""The Lambda entry point, `proxy.handler.handler`.

Everything per container happens here, once, at import (the Lambda init phase): the
environment is validated, so a misconfigured function fails its init with a message naming
the variable instead of failing every request, and the SageMaker client is created, so the
first request does not pay for it. The API key store is not touched here: it is read at the
first request that carries a key (`proxy.access`). Nor is DynamoDB: its client is made at
the first write, from the container's botocore session. The stores of `PREDICTIONS_FILE` and
`API_KEYS_FILE` are the ones a machine supplied before this import (`proxy.local_stores`):
on Lambda there are none, and the local runtime supplies its own.
"""

from __future__ import annotations

import os
from typing import Any

from proxy.access import Access
from proxy.app import PredictProxy
from proxy.config import ConfigError, load_config
from proxy.local_stores import LocalStores, supplied
from proxy.logs import configure_logging, log
from proxy.predictions import open_store
from proxy.sagemaker import RuntimeClients


def _build_proxy(local: LocalStores | None) -> PredictProxy:
    try:
        config = load_config(os.environ)
    except ConfigError as error:
        configure_logging()
        log.error("invalid_configuration", extra={"fields": {"message": str(error)}})
        raise
    configure_logging(config.log_level)
    if not config.origin_check and os.environ.get("AWS_EXECUTION_ENV"):
        # On AWS (the variable is Lambda's own; the local runtime does not set it) the stack
        # always sets ORIGIN_SECRET: without it, the execute-api URL is open to anyone.
        log.warning(
            "origin_check_off",
            extra={"fields": {"message": "ORIGIN_SECRET is not set: every request is admitted"}},
        )
    if config.model_labels_dir is not None and not os.path.isdir(config.model_labels_dir):
        # Feedback still works; only a label in it cannot be checked (and is refused).
        log.warning(
            "model_labels_missing",
            extra={
                "fields": {"message": f"MODEL_LABELS_DIR={config.model_labels_dir} is no directory"}
            },
        )
    clients = RuntimeClients(config.read_timeout, config.connect_timeout)
    clients.warm()
    try:
        access = Access.from_config(config, session=clients.session, local=local)
        store = open_store(config, session=clients.session, local=local)
    except ConfigError as error:
        log.error("invalid_configuration", extra={"fields": {"message": str(error)}})
        raise
    return PredictProxy.create(config, clients, access=access, store=store)


PROXY = _build_proxy(supplied())
"""The container's proxy, built at init: `handler` hands it every event. Public so that
tests reach the parts it was built with (`PROXY.invoker.clients`, `PROXY.access`,
`PROXY.store`) as Lambda built them."""


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return PROXY.handle(event, context)
