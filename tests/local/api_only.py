"""The local API alone, in front of any SageMaker Runtime URL (a test's fake one).

    python -m tests.local.api_only --sagemaker-url URL --origin ORIGIN

Prints `API http://127.0.0.1:PORT` once listening. It composes the same parts as
`python -m local`, minus the model server, so tests can play SageMaker's failures.
"""

from __future__ import annotations

import argparse

import uvicorn

from hosting.cors import CorsPolicy
from local.api import create_api_app
from local.lambda_function import load_handler
from local.ports import listen


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sagemaker-url", required=True)
    parser.add_argument("--origin", required=True)
    args = parser.parse_args()
    sock = listen("127.0.0.1", 0, "--port")
    app = create_api_app(load_handler(args.sagemaker_url), CorsPolicy(allow_origins=(args.origin,)))
    print(f"API http://127.0.0.1:{sock.getsockname()[1]}", flush=True)
    uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off")).run(sockets=[sock])


if __name__ == "__main__":
    main()
