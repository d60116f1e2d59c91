"""The Lambda entry point, `proxy.handler.handler`.

Everything per container happens here, once, at import (the Lambda init phase): the
environment is validated, so a misconfigured function fails its init with a message naming
the variable instead of failing every request, and the SageMaker client is created, so the
first request does not pay for it. The API key store is not touched here: it is read at the
first request that carries a key (`proxy.access`).
"""

from __future__ import annotations

import os
from typing import Any

from proxy.access import Access
from proxy.app import PredictProxy
from proxy.config import ConfigError, load_config
from proxy.logs import configure_logging, log
from proxy.sagemaker import RuntimeClients


def _build_proxy() -> PredictProxy:
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
    clients = RuntimeClients(config.read_timeout, config.connect_timeout)
    clients.warm()
    access = Access.from_config(config, session=clients.session)
    return PredictProxy.create(config, clients, access=access)


_PROXY = _build_proxy()


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return _PROXY.handle(event, context)
