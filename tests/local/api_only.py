"""The local API alone, in front of any SageMaker Runtime URL (a test's fake one).

    python -m tests.local.api_only --sagemaker-url URL

Prints `API http://127.0.0.1:PORT/api` once listening: the API as the site's origin
serves it (the origin header added). It composes the same parts as `python -m local`,
minus the model server and the site's files, so tests can play SageMaker's failures.
"""

from __future__ import annotations

import argparse
import secrets

import uvicorn
from starlette.applications import Starlette

from local.api import create_api_app
from local.lambda_function import handler_environment, load_handler
from local.origin import create_origin_app
from machine.ports import listen


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sagemaker-url", required=True)
    args = parser.parse_args()
    sock = listen("127.0.0.1", 0, "--port")
    secret = secrets.token_urlsafe(32)
    handler = load_handler(handler_environment(args.sagemaker_url, secret))
    stage = secrets.token_hex(16)
    app = create_origin_app(
        Starlette(), create_api_app(handler, site_stage=stage), secret, f"/{stage}"
    )
    print(f"API http://127.0.0.1:{sock.getsockname()[1]}/api", flush=True)
    uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off")).run(sockets=[sock])


if __name__ == "__main__":
    main()
