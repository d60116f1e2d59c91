"""The batch Lambda's entry points: `pipeline.handler.classify` and
`pipeline.handler.record_failure`.

One function (its zip holds `proxy/`, `pipeline/` and `shared/`) with two handlers, or two
functions with the same zip. The environment is the proxy's (`proxy.config.load_config`,
documented in docs/api.md): `SAGEMAKER_ENDPOINT_NAME` (required), `REVIEW_THRESHOLD`,
`MAX_IMAGE_BYTES`, `SAGEMAKER_MAX_ATTEMPTS` (2 suits the batch: Step Functions does the
long waits), `SAGEMAKER_READ_TIMEOUT_SECONDS`, `SAGEMAKER_CONNECT_TIMEOUT_SECONDS`,
`LOG_LEVEL`, and `PREDICTIONS_TABLE` to record each prediction (variant `batch`) as the
proxy records its own. It is read and checked at the first invocation (the proxy's at its
cold start), and a bad value fails every invocation with a message naming the variable.

Each invocation logs one JSON line (`"event": "batch_task"`) with the task, bucket, key,
outcome or error and its duration.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from pipeline.storage import S3Storage
from pipeline.tasks import Classifier, Job, TaskError, event_location, inbox_job, located_key
from pipeline.tasks import classify as classify_task
from pipeline.tasks import record_failure as record_failure_task
from proxy.config import load_config
from proxy.logs import append_keys, configure_logging, log, request_context
from proxy.predictions import open_store
from proxy.sagemaker import RuntimeClients

RESERVE_SECONDS = 2.0
"""Kept back from the Lambda's deadline to write the outcome and log."""
_DEFAULT_BUDGET_SECONDS = 60.0

_state: dict[str, Any] = {}


def _runtime() -> tuple[Classifier, RuntimeClients]:
    if "classifier" not in _state:
        config = load_config(os.environ)
        configure_logging(config.log_level)
        clients = RuntimeClients(config.read_timeout, config.connect_timeout)
        _state["clients"] = clients
        store = open_store(config, clients.session)
        _state["classifier"] = Classifier.from_config(config, clients, store=store)
    return _state["classifier"], _state["clients"]


def _storage(bucket: str, clients: RuntimeClients) -> S3Storage:
    stores = _state.setdefault("storage", {})
    if bucket not in stores:
        stores[bucket] = S3Storage(bucket, session=clients.session)
    return stores[bucket]


def _job(event: Any, clients: RuntimeClients) -> tuple[str, Job]:
    """The event's bucket and the job of its object, under the key S3 meant."""
    bucket, keys = event_location(event)
    storage = _storage(bucket, clients)
    return bucket, inbox_job(storage, located_key(storage, keys))


def classify(event: dict[str, Any], context: Any) -> dict[str, Any]:
    classifier, clients = _runtime()
    bucket, job = _job(event, clients)
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    budget = remaining() / 1000 if callable(remaining) else _DEFAULT_BUDGET_SECONDS
    deadline = classifier.invoker.clock() + budget - RESERVE_SECONDS
    with _logged("classify", job.request_id, bucket, job.key):
        output = classify_task(job, classifier, deadline=deadline)
        append_keys(outcome=output["outcome"], skipped=output["skipped"])
    return {"bucket": bucket, **output}


def record_failure(event: dict[str, Any], context: Any) -> dict[str, Any]:
    _classifier, clients = _runtime()
    bucket, job = _job(event, clients)
    with _logged("record_failure", job.request_id, bucket, job.key):
        output = record_failure_task(job, event.get("error") or {})
        append_keys(outcome=output["outcome"], code=output["code"])
    return {"bucket": bucket, **output}


@contextmanager
def _logged(task: str, request_id: str, bucket: str, key: str) -> Iterator[None]:
    """One log line per task: what it was given, what came of it, how long it took."""
    with request_context(task=task, request_id=request_id, bucket=bucket, key=key):
        start = time.monotonic()
        try:
            yield
        except TaskError as error:
            append_keys(total_ms=_ms(start), error=type(error).__name__, code=error.code)
            log.warning("batch_task")
            raise
        except Exception as error:
            append_keys(total_ms=_ms(start), error=type(error).__name__)
            log.error("batch_task", exc_info=True)
            raise
        append_keys(total_ms=_ms(start))
        log.info("batch_task")


def _ms(start: float) -> float:
    return round((time.monotonic() - start) * 1000, 3)
