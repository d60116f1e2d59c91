"""The proxy Lambda as deployed: its environment first, then its handler module."""

from __future__ import annotations

import importlib
import os

from local.api import LambdaHandler
from local.lambda_context import FUNCTION_NAME, MEMORY_MB, REGION

ENDPOINT_NAME = "image-classifier-local"
HANDLER_MODULE = "proxy.handler"


def load_handler(sagemaker_runtime_url: str) -> LambdaHandler:
    """Configure the environment the handler reads at cold start, then import it.

    Dummy credentials and empty AWS config files keep this machine's real AWS setup
    (profiles, keys, endpoints) out of a process that only ever talks to localhost.
    """
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN"):
        os.environ.pop(name, None)
    os.environ.update(
        {
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
        }
    )
    return importlib.import_module(HANDLER_MODULE).handler
