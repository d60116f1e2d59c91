"""The local HTTP API: API Gateway's job around the real Lambda handler.

Like the stack's HTTP API (no CORS configuration: the site calls it on its own origin),
it routes the methods `ProxyApi` routes on `/api/predict`, `/api/feedback` and
`/api/labels`, refuses bodies over its limit, turns each request into a payload 2.0 event
and calls the handler with a Lambda context. Like the stack's, it has two stages on those
routes (decision 13): `$default` at its root (the direct one, for programs with a key),
and with `site_stage`, that stage under `/<site_stage>/`, where CloudFront's stand-in
(`local/origin.py`) forwards the site's requests with the origin header. A named stage's
segment leads the event's paths, as API Gateway sends it. It never throttles.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from hosting.origin import API_PATH, PREDICT_PATH
from local.event import HttpRequest, HttpResponse, build_event, to_http_response
from local.lambda_context import LambdaContext
from serving.serve import read_limited_body
from shared.api import DIRECT_STAGE, FEEDBACK, LABELS, MAX_PAYLOAD_BYTES, ROUTED_METHODS, ROUTES

FEEDBACK_PATH = f"{API_PATH}/{FEEDBACK}"
LABELS_PATH = f"{API_PATH}/{LABELS}"
ROUTED_PATHS = tuple(f"{API_PATH}/{route}" for route in ROUTES)
# ProxyApi routes `ROUTED_METHODS` on each path (the handler answers 405 to all but POST, or
# GET on /api/labels); others get the 404 the HTTP API gives an unrouted request.
ALL_METHODS = [*ROUTED_METHODS, "HEAD", "OPTIONS"]

LambdaHandler = Callable[[dict, LambdaContext], object]
log = logging.getLogger("local.api")


def _error(status: int, code: str, message: str) -> HttpResponse:
    body = json.dumps({"error": {"code": code, "message": message}}).encode()
    return HttpResponse(status, [("content-type", "application/json")], body)


def create_api_app(
    handler: LambdaHandler,
    max_payload_bytes: int = MAX_PAYLOAD_BYTES,
    site_stage: str | None = None,
) -> Starlette:
    """An ASGI app that serves `handler` as the stack's HTTP API would: on `$default`, and
    with `site_stage`, on that stage too."""

    def stage_of(path: str) -> tuple[str, str]:
        """The stage a path is on, and the path past its segment."""
        if site_stage is not None and path.startswith(f"/{site_stage}/"):
            return site_stage, path[len(site_stage) + 1 :]
        return DIRECT_STAGE, path

    async def invoke(
        request: Request, body: bytes, received: float, stage: str, route_path: str
    ) -> HttpResponse:
        client = request.client.host if request.client else "127.0.0.1"
        event = build_event(
            HttpRequest(
                method=request.method,
                path=request.url.path,
                query_string=request.url.query,
                headers=request.headers.items(),
                body=body,
                source_ip=client,
                host=request.headers.get("host", "localhost"),
                stage=stage,
                received=received,
            ),
            route_key=f"{request.method} {route_path}",
        )
        context = LambdaContext()
        try:
            result = await run_in_threadpool(handler, event, context)
        except Exception:
            # A Lambda that raises becomes API Gateway's bare 500; show the trace locally.
            log.exception("the Lambda handler raised (request %s)", context.aws_request_id)
            return _error(500, "internal_error", "The service failed to process the request.")
        response = to_http_response(result)
        response.headers.append(("apigw-requestid", event["requestContext"]["requestId"]))
        return response

    async def dispatch(request: Request) -> Response:
        received = time.time()
        stage, route_path = stage_of(request.url.path)
        if route_path not in ROUTED_PATHS or request.method not in ROUTED_METHODS:
            result = _error(404, "not_found", f"No route here; POST an image to {PREDICT_PATH}.")
        else:
            body = await read_limited_body(request, max_payload_bytes)
            if body is None:
                limit_mb = max_payload_bytes // (1024 * 1024)
                result = _error(
                    413, "payload_too_large", f"The request is larger than {limit_mb} MB."
                )
            else:
                result = await invoke(request, body, received, stage, route_path)

        response = Response(content=result.body, status_code=result.status)
        for name, value in result.headers:
            response.headers.append(name, value)
        return response

    return Starlette(routes=[Route("/{path:path}", dispatch, methods=ALL_METHODS)])
