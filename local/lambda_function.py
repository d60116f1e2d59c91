"""The proxy Lambda as deployed: its environment first, then its handler module.

The handler module is the Lambda's own; only its file stores come from this machine
(`machine.proxy_stores`, supplied through `proxy.local_stores`), where the stack has
DynamoDB and SSM."""

from __future__ import annotations

import importlib
import os
from collections.abc import Mapping
from pathlib import Path

from local.api import LambdaHandler
from local.lambda_context import FUNCTION_NAME, MEMORY_MB, REGION
from machine.predictions_sqlite import DEFAULT_SQLITE_PATH
from machine.proxy_stores import LOCAL_STORES
from proxy.config import load_config
from proxy.local_stores import supply
from shared.labels import MODEL_LABELS_DIR

ENDPOINT_NAME = "image-classifier-local"
HANDLER_MODULE = "proxy.handler"
# This machine's AWS setup (profiles, keys) stays out of a process that only talks to
# localhost, and so does a cloud key store: locally the keys are a file or nothing.
REMOVED = (
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_SESSION_TOKEN",
    "API_KEYS_PATH",
    # The stack's: locally there is one endpoint and the store is a file.
    "VARIANTS",
    "PREDICTIONS_TABLE",
)
# Set only from the runtime's own flags, never inherited from the shell.
OWN = ("API_KEYS_FILE", "PREDICTIONS_FILE", "MODEL_LABELS_DIR")
PREDICTIONS_FILE_NAME = DEFAULT_SQLITE_PATH.name


def handler_environment(
    sagemaker_runtime_url: str,
    origin_secret: str,
    api_keys_file: Path | None = None,
    data_dir: Path | None = None,
) -> dict[str, str]:
    """The variables the stack would give the function, pointed at this machine.

    `ORIGIN_SECRET` is required of every request (as deployed); `API_KEYS_FILE`, when
    given, turns API keys on. With `data_dir`, predictions are recorded in its SQLite file
    (`PREDICTIONS_FILE`, where the stack sets `PREDICTIONS_TABLE`) and feedback is checked
    against the labels files of its `model_labels/` (`MODEL_LABELS_DIR`). Dummy
    credentials and empty AWS config files keep this machine's real AWS setup out."""
    environment = {
        "SAGEMAKER_ENDPOINT_NAME": ENDPOINT_NAME,
        "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME": sagemaker_runtime_url,
        "AWS_ACCESS_KEY_ID": "local",
        "AWS_SECRET_ACCESS_KEY": "local",
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_LAMBDA_FUNCTION_NAME": FUNCTION_NAME,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(MEMORY_MB),
        "ORIGIN_SECRET": origin_secret,
    }
    if api_keys_file is not None:
        environment["API_KEYS_FILE"] = str(api_keys_file)
    if data_dir is not None:
        environment["PREDICTIONS_FILE"] = str(data_dir / PREDICTIONS_FILE_NAME)
        environment["MODEL_LABELS_DIR"] = str(data_dir / MODEL_LABELS_DIR)
    return environment


def _with(environment: Mapping[str, str], base: Mapping[str, str]) -> dict[str, str]:
    kept = {name: value for name, value in base.items() if name not in (*REMOVED, *OWN)}
    return {**kept, **environment}


def check_environment(environment: Mapping[str, str]) -> None:
    """Raise `proxy.config.ConfigError` where the handler would refuse to start with
    `environment` over this process's own (e.g. a bad `API_KEYS_CACHE_SECONDS`)."""
    load_config(_with(environment, os.environ))


def load_handler(environment: Mapping[str, str]) -> LambdaHandler:
    """Set `environment` (from `handler_environment`), which the handler reads at cold
    start, and supply this machine's stores, then import it. Raises `ConfigError` as the
    Lambda's init would."""
    merged = _with(environment, os.environ)
    for name in set(os.environ) - set(merged):
        del os.environ[name]
    os.environ.update(merged)
    supply(LOCAL_STORES)
    return importlib.import_module(HANDLER_MODULE).handler
