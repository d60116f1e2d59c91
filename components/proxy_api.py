"""`ProxyApi`: the HTTP API (`POST /api/predict`, `POST /api/feedback`, `GET /api/labels`) and
the Lambda proxy in front of the model variants' endpoints.

The site's CloudFront distribution serves this API under `/api/*` on its own origin, so
the API has no CORS configuration: a browser on the site never makes a cross-origin
request, and programs calling from elsewhere are no browsers (they send an API key). The
proxy admits only requests with the origin secret, which this component generates and
CloudFront adds (`origin_secret`), or, with `api_keys`, a valid `x-api-key` from SSM
Parameter Store. Throttling protects the endpoint's concurrency and the bill, with two
budgets on two stages of the same routes (decision 13): the site's, on a stage named by a
random secret that CloudFront reaches as its origin path (`site_origin_path`), and the
programs', on `$default` at the API's own URL (`execute_api_url`).

The proxy shares the requests among the model variants by weight (env `VARIANTS`) and may
invoke exactly their endpoints. It records each prediction, and users' feedback on it, in
the predictions table (env `PREDICTIONS_TABLE`), on which it may get, put and update items
and nothing else; the labels of every version it serves travel in its zip
(`model_labels/<version>.json`, env `MODEL_LABELS_DIR`) to check feedback against. With
`tracing`, the Lambda sends X-Ray traces (active tracing) and may do exactly that.
"""

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import NotRequired, TypedDict
from urllib.parse import urlsplit

import pulumi
import pulumi_aws as aws
import pulumi_random as random

from components.deployables import PROXY_DIR
from components.predictions_table import RECORD_ACTIONS
from components.service_role import (
    DEFAULT_LOG_RETENTION_DAYS,
    ServiceLogs,
    ServiceRole,
    ServiceRoleNames,
    service_role,
)
from hosting.origin import API_PATH, PREDICT_PATH
from shared.api import DIRECT_STAGE, ROUTED_METHODS, ROUTES, VIA_CLOUDFRONT, VIA_EXECUTE_API
from shared.labels import MODEL_LABELS_DIR
from shared.log_levels import DEFAULT_LOG_LEVEL, LOG_LEVELS

TYPE = "image-classifier:proxy_api:ProxyApi"
HANDLER = "proxy.handler.handler"
ROUTE_KEY = f"POST {PREDICT_PATH}"
WRONG_METHOD_ROUTE_KEYS = tuple(
    f"{method} {PREDICT_PATH}" for method in ROUTED_METHODS if method != "POST"
)
ROUTE_KEYS = tuple(f"{method} {API_PATH}/{path}" for path in ROUTES for method in ROUTED_METHODS)
LAMBDA_TASK_ROOT = "/var/task"
"""Where Lambda unpacks the zip."""
SHARED_PACKAGE = "shared"
"""The standard-library constants every side imports (`shared/`): each Lambda zip carries
the package beside its own."""
SITE_STAGE_LENGTH = 32
"""Characters of the site stage's name, letters and digits (a stage name may hold up to 128
of letters, digits, '-' and '_'): the secret path segment CloudFront puts before every
request it forwards (its origin path). Requests that do not know it reach only `$default`,
the direct stage, whose throttle budget is apart from the site's (decision 13)."""
ORIGIN_SECRET_SLOTS = 2
"""Origin secrets kept at once: the one CloudFront sends, and the one it sent before the
last rotation, which the proxy still admits (`ORIGIN_SECRET_PREVIOUS`)."""
ORIGIN_SECRET_LENGTH = 48
"""Characters of the origin secret: letters and digits only (a header value anywhere), far
beyond guessing, within the 32-256 the proxy accepts."""
LAMBDA_MEMORY_MB = (128, 10240)
LAMBDA_TIMEOUT_SECONDS = (1, 30)
"""The HTTP API stops waiting after 30 s; a longer Lambda timeout would only burn money."""
# The function's fixed size and timeout (the HTTP API gives up after 30 s).
FUNCTION_MEMORY_MB = 256
FUNCTION_TIMEOUT_SECONDS = 30
# The throttle budgets (requests per second, and bursts) and log retention left out of
# `ProxyApiArgs`.
THROTTLE_RATE_LIMIT = 10
THROTTLE_BURST_LIMIT = 20
DIRECT_THROTTLE_RATE_LIMIT = 5
DIRECT_THROTTLE_BURST_LIMIT = 10

TRACE_WRITER_STATEMENT = {
    "Sid": "WriteTraces",
    "Effect": "Allow",
    "Action": ["xray:PutTraceSegments", "xray:PutTelemetryRecords"],
    # X-Ray has no resource-level permissions for these: "*" is the only resource it takes.
    "Resource": "*",
}
"""What active tracing needs, as Lambda documents it for the execution role (the proxy
carries no X-Ray SDK, which would also read sampling rules)."""


def access_log_format(via: str) -> str:
    """The stage's access log line: JSON, `via` telling the stages apart (the site stage's
    name is a secret: never in a log)."""
    return json.dumps({**ACCESS_LOG_FIELDS, "via": via}, separators=(",", ":"))


ACCESS_LOG_FIELDS = {
    "requestId": "$context.requestId",
    "ip": "$context.identity.sourceIp",
    "requestTime": "$context.requestTime",
    "routeKey": "$context.routeKey",
    "status": "$context.status",
    "protocol": "$context.protocol",
    "responseLength": "$context.responseLength",
    "responseLatency": "$context.responseLatency",
    "integrationLatency": "$context.integrationLatency",
    "integrationStatus": "$context.integrationStatus",
    "integrationError": "$context.integrationErrorMessage",
    "errorMessage": "$context.error.message",
}


def origin_secret_keepers(slot: int, rotation: int) -> dict[str, str] | None:
    """The keepers of origin secret `slot` at `rotation` (config `originSecretRotation`):
    the last rotation that made the slot the current one, so each rotation regenerates only
    the slot it makes current (`rotation % 2`) and keeps the other, the previous secret.
    None for slot 0 until it is first regenerated: the secret a stack had before rotations
    existed stays as it is."""
    made = rotation - (rotation - slot) % ORIGIN_SECRET_SLOTS
    if slot == 0 and made == 0:
        return None
    return {"rotation": str(made)}


def api_keys_path(name_prefix: str) -> str:
    """The SSM Parameter Store path of a stack's API keys, one SecureString per key."""
    return f"/{name_prefix}/api-keys"


def api_keys_reader_statement(path_arn: str) -> dict[str, object]:
    """What the proxy needs to read the keys: `GetParametersByPath`, which IAM authorizes
    on the path's own ARN, so on exactly that and nothing below. No `kms:Decrypt`: the keys
    are SecureStrings under the AWS managed key `aws/ssm`, whose key policy already lets
    principals of the account decrypt through SSM, and nothing else."""
    return {
        "Sid": "ReadTheApiKeys",
        "Effect": "Allow",
        "Action": "ssm:GetParametersByPath",
        "Resource": path_arn,
    }


def proxy_problems(
    memory_mb: int,
    timeout_seconds: int,
    throttle_rate_limit: int,
    throttle_burst_limit: int,
    log_level: str,
    direct_throttle_rate_limit: int = 1,
    direct_throttle_burst_limit: int = 1,
    origin_secret_rotation: int = 0,
) -> dict[str, str]:
    """What is wrong with the proxy's settings, by `ProxyApiArgs` field; empty when valid."""
    problems = {}
    low, high = LAMBDA_MEMORY_MB
    if not low <= memory_mb <= high:
        problems["memory_mb"] = f"{memory_mb} is out of range {low}-{high}"
    low, high = LAMBDA_TIMEOUT_SECONDS
    if not low <= timeout_seconds <= high:
        problems["timeout_seconds"] = (
            f"{timeout_seconds} is out of range {low}-{high} (the HTTP API gives up after {high} s)"
        )
    if throttle_rate_limit < 1:
        problems["throttle_rate_limit"] = (
            f"{throttle_rate_limit} must be at least 1 request per second"
        )
    if throttle_burst_limit < 1:
        problems["throttle_burst_limit"] = f"{throttle_burst_limit} must be at least 1"
    if direct_throttle_rate_limit < 1:
        problems["direct_throttle_rate_limit"] = (
            f"{direct_throttle_rate_limit} must be at least 1 request per second"
        )
    if direct_throttle_burst_limit < 1:
        problems["direct_throttle_burst_limit"] = (
            f"{direct_throttle_burst_limit} must be at least 1"
        )
    if origin_secret_rotation < 0:
        problems["origin_secret_rotation"] = (
            f"{origin_secret_rotation} must be 0 or more (add 1 to rotate the origin secret)"
        )
    if log_level not in LOG_LEVELS:
        problems["log_level"] = f"must be one of {', '.join(LOG_LEVELS)}"
    return problems


def package_assets(package_dir: Path) -> dict[str, pulumi.Asset | pulumi.Archive]:
    """The package `package_dir` itself at the root of a zip (`<name>/...`). No bytecode
    caches: they differ between machines and would change the zip on every `pulumi up`."""
    if not (package_dir / "__init__.py").is_file():
        raise FileNotFoundError(f"{package_dir}/__init__.py is missing: no package to zip")
    files = sorted(
        path.relative_to(package_dir)
        for path in package_dir.rglob("*")
        if path.is_file() and path.suffix != ".pyc"
    )
    return {
        f"{package_dir.name}/{path.as_posix()}": pulumi.FileAsset(str(package_dir / path))
        for path in files
        if "__pycache__" not in path.parts
    }


def lambda_code(
    source_dir: Path, generated: Mapping[str, pulumi.StringAsset] | None = None
) -> pulumi.AssetArchive:
    """The `proxy/` package itself at the root of the zip, and `shared/` (its sibling in
    the repository, `SHARED_PACKAGE`) beside it, so `proxy.handler.handler` and
    `from proxy.x import y` resolve in Lambda exactly as in the tests, and `generated`
    files beside them (zip path -> content, outside the packages)."""
    if not (source_dir / "handler.py").is_file():
        raise FileNotFoundError(f"{source_dir}/handler.py is missing: the proxy Lambda has no code")
    packages = (source_dir.name, SHARED_PACKAGE)
    assets = package_assets(source_dir) | package_assets(source_dir.parent / SHARED_PACKAGE)
    for member in generated or {}:
        parts = member.split("/")
        if parts[0] in packages or member.startswith("/") or "" in parts or ".." in parts:
            raise ValueError(
                f"{member!r}: generated files go beside the {' and '.join(packages)} packages"
            )
    return pulumi.AssetArchive(assets | dict(generated or {}))


def resolved_labels(
    labels: Mapping[str, pulumi.Input[Sequence[str]]],
) -> pulumi.Output[dict[str, Sequence[str]]]:
    """Each model version's labels, once all of them are known."""
    versions = list(labels)
    return pulumi.Output.all(*labels.values()).apply(
        lambda names: dict(zip(versions, names, strict=True))
    )


def labels_files(labels: Mapping[str, Sequence[str]]) -> dict[str, pulumi.StringAsset]:
    """Each model version's labels as the zip's `model_labels/<version>.json`: a JSON list
    in the model's output order."""
    for version in labels:
        if not version or "/" in version or version.startswith("."):
            raise ValueError(f"model version {version!r} cannot name a file")
    return {
        f"{MODEL_LABELS_DIR}/{version}.json": pulumi.StringAsset(
            json.dumps(list(names), ensure_ascii=False)
        )
        for version, names in sorted(labels.items())
    }


# The args are plain dicts (`TypedDict`s): the component provider passes them so to a
# program in another language, and infers its schema from these annotations at run time
# (so no annotations from `__future__` in this module).
class EndpointVariant(TypedDict):
    """A model variant as the proxy sees it: a share of the requests and an endpoint."""

    name: str
    """The variant's name, in each prediction record and metric (`main` is the baseline)."""
    weight: float
    """Its share of the requests is its weight over the sum of the weights; 0 sends it none."""
    endpoint_name: pulumi.Input[str]
    """Its endpoint, which the proxy invokes for the requests it gets."""
    endpoint_arn: pulumi.Input[str]
    """That endpoint's ARN: the function may invoke it."""


class ProxyApiArgs(TypedDict):
    name_prefix: str
    """Unique in the account and region: it names the log groups and the API keys' path."""
    endpoint_name: pulumi.Input[str]
    """The default endpoint, `SAGEMAKER_ENDPOINT_NAME` (the variant `main`'s)."""
    variants: Sequence[EndpointVariant]
    """Who shares the requests (env `VARIANTS`), in the order that splits them; the
    function may invoke exactly their endpoints."""
    model_labels: Mapping[str, pulumi.Input[Sequence[str]]]
    """Each served model version's labels, bundled into the zip to check feedback against."""
    predictions_table_name: pulumi.Input[str]
    """The DynamoDB table the function records predictions and feedback in
    (`PredictionsTable`: its key and TTL attribute are the proxy's)."""
    predictions_table_arn: pulumi.Input[str]
    """The one table the function may record predictions and feedback in."""
    memory_mb: NotRequired[pulumi.Input[int]]
    """The function's memory (by default `FUNCTION_MEMORY_MB`)."""
    timeout_seconds: NotRequired[pulumi.Input[int]]
    """The function's timeout, at most the HTTP API's 30 s (by default the most)."""
    throttle_rate_limit: NotRequired[pulumi.Input[int]]
    """Steady requests per second on each route of the site's stage (through CloudFront)."""
    throttle_burst_limit: NotRequired[pulumi.Input[int]]
    """Requests at once above the steady rate on each route of the site's stage."""
    direct_throttle_rate_limit: NotRequired[pulumi.Input[int]]
    """Steady requests per second on each route of the direct stage (`execute_api_url`):
    API-key programs' budget, apart from the site's."""
    direct_throttle_burst_limit: NotRequired[pulumi.Input[int]]
    """Requests at once above the steady rate on each route of the direct stage."""
    log_retention_days: NotRequired[pulumi.Input[int]]
    """How long the function's and the API's logs are kept, in days."""
    log_level: NotRequired[pulumi.Input[str]]
    """The proxy's `LOG_LEVEL`: DEBUG, INFO, WARNING or ERROR."""
    tracing: NotRequired[bool]
    """Active X-Ray tracing of the function (a plain value: it decides the role's policy)."""
    api_keys: NotRequired[bool]
    """Admit direct callers with an API key from SSM Parameter Store, under
    `/<name_prefix>/api-keys` (`python -m admin.api_keys` manages them; the stack does not)."""
    origin_secret_rotation: NotRequired[int]
    """Add 1 to rotate the origin secret: a new one for CloudFront, the current one still
    admitted until the next rotation (docs/operations.md#rotate-the-origin-secret)."""
    environment: NotRequired[Mapping[str, pulumi.Input[str]]]
    """Extra Lambda environment (MAX_IMAGE_BYTES, REVIEW_THRESHOLD, ...)."""
    tags: NotRequired[pulumi.Input[Mapping[str, str]]]
    """Tags of every resource that takes them."""


class ProxyApi(pulumi.ComponentResource):
    """The HTTP API (`POST /api/predict`, `POST /api/feedback`, `GET /api/labels`) and the
    Lambda proxy in front of the model variants' endpoints, on two throttled stages: the
    site's (CloudFront's origin, with the origin secret) and the direct one for programs."""

    execute_api_url: pulumi.Output[str]
    """The API's own URL with `/api` (the direct stage), for programs with a key:
    `{execute_api_url}/predict`."""
    api_domain: pulumi.Output[str]
    """The host CloudFront forwards `/api/*` to (`<id>.execute-api.<region>.amazonaws.com`)."""
    site_origin_path: pulumi.Output[str]
    """A Pulumi secret: `/<site stage>`, CloudFront's origin path for the API."""
    origin_secret: pulumi.Output[str]
    """A Pulumi secret: CloudFront sends it in `x-origin-verify`, the proxy requires it (or
    the previous one, after a rotation)."""
    function: aws.lambda_.Function
    """The proxy, which must admit a new origin secret before CloudFront sends it."""
    api_keys_path: pulumi.Output[str] | None
    """The SSM path of the API keys, with `api_keys` on."""
    api_id: pulumi.Output[str]
    """The HTTP API's id."""
    function_name: pulumi.Output[str]
    """The proxy Lambda's name."""
    function_log_group: pulumi.Output[str]
    """The log group the function writes to (a named one, not `/aws/lambda/<function>`)."""
    access_log_group: pulumi.Output[str]
    """The log group of both stages' access logs (JSON, one line a request)."""

    def __init__(
        self, name: str, args: ProxyApiArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(TYPE, name, None, opts)
        secret, previous = self._origin_secrets(name, args.get("origin_secret_rotation", 0))
        keys_path = api_keys_path(args["name_prefix"]) if args.get("api_keys", False) else None
        keys_arn = self._keys_arn(keys_path)
        execution = self._execution_role(name, args, keys_arn)
        environment = {
            **_environment(args),
            "ORIGIN_SECRET": secret,
            **previous,
            **({"API_KEYS_PATH": keys_path} if keys_path is not None else {}),
        }
        function = self._function(name, args, execution, environment)
        api, routes = self._http_api(name, args, function)
        access_logs = aws.cloudwatch.LogGroup(
            f"{name}-access-logs",
            name=f"/aws/apigateway/{args['name_prefix']}-http-api",
            retention_in_days=args.get("log_retention_days", DEFAULT_LOG_RETENTION_DAYS),
            tags=args.get("tags"),
            opts=pulumi.ResourceOptions(parent=self),
        )
        site_stage_name, stages = self._stages(name, args, api, routes, access_logs)
        stage = stages[VIA_EXECUTE_API]
        self._invoke_permissions(name, function, api)

        # The $default stage is served at the API's root URL (once the stage exists).
        endpoint = pulumi.Output.all(api.api_endpoint, stage.id).apply(lambda v: v[0])
        self.execute_api_url = endpoint.apply(lambda url: f"{url}{API_PATH}")
        self.api_domain = endpoint.apply(lambda url: urlsplit(url).netloc)
        # Once the site's stage exists, so CloudFront never forwards to a missing one.
        self.site_origin_path = pulumi.Output.secret(
            pulumi.Output.all(stages[VIA_CLOUDFRONT].id, site_stage_name.result).apply(
                lambda values: f"/{values[1]}"
            )
        )
        self.origin_secret = secret
        self.function = function
        self.api_keys_path = pulumi.Output.from_input(keys_path) if keys_path else None
        self.api_id = api.id
        self.function_name = function.name
        self.function_log_group = execution.log_group.name
        self.access_log_group = access_logs.name
        self.register_outputs(
            {
                "execute_api_url": self.execute_api_url,
                "api_domain": self.api_domain,
                "api_keys_path": self.api_keys_path,
                "api_id": self.api_id,
                "function_name": self.function_name,
                "function_log_group": self.function_log_group,
                "access_log_group": self.access_log_group,
            }
        )

    def _origin_secrets(
        self, name: str, rotation: int
    ) -> tuple[pulumi.Output[str], dict[str, pulumi.Output[str]]]:
        """The current origin secret, and the previous one's environment after a rotation."""
        # Two slots, stable but for a rotation: each rotation regenerates the slot it makes
        # current and keeps the other, which the proxy still admits while CloudFront
        # deploys the new one (a replaced secret alone would be refused until then).
        slots = [
            random.RandomPassword(
                f"{name}-origin-secret" if slot == 0 else f"{name}-origin-secret-{slot}",
                length=ORIGIN_SECRET_LENGTH,
                special=False,
                keepers=origin_secret_keepers(slot, rotation),
                opts=pulumi.ResourceOptions(parent=self),
            )
            for slot in range(ORIGIN_SECRET_SLOTS)
        ]
        secret: pulumi.Output[str] = pulumi.Output.secret(
            slots[rotation % ORIGIN_SECRET_SLOTS].result
        )
        # Before the first rotation there is no previous secret to admit.
        previous: dict[str, pulumi.Output[str]] = (
            {"ORIGIN_SECRET_PREVIOUS": pulumi.Output.secret(slots[(rotation + 1) % 2].result)}
            if rotation
            else {}
        )
        return secret, previous

    def _keys_arn(self, keys_path: str | None) -> pulumi.Output[str | None]:
        """The SSM parameter ARN of the API keys (None without them)."""
        if keys_path is None:
            return pulumi.Output.from_input(None)
        invoke = pulumi.InvokeOutputOptions(parent=self)
        return pulumi.Output.format(
            "arn:{0}:ssm:{1}:{2}:parameter{3}",
            aws.get_partition_output(opts=invoke).partition,
            aws.get_region_output(opts=invoke).region,
            aws.get_caller_identity_output(opts=invoke).account_id,
            keys_path,
        )

    def _execution_role(
        self, name: str, args: ProxyApiArgs, keys_arn: pulumi.Output[str | None]
    ) -> ServiceRole:
        """The function's log group and role: invoke exactly the variants' endpoints,
        record in the one table, read the keys (and write traces)."""
        return service_role(
            self,
            ServiceRoleNames(
                log_group=f"{name}-function-logs",
                role=f"{name}-function-role",
                policy=f"{name}-function-policy",
            ),
            service="lambda.amazonaws.com",
            logs=ServiceLogs(
                f"/aws/lambda/{args['name_prefix']}-proxy",
                args.get("log_retention_days", DEFAULT_LOG_RETENTION_DAYS),
            ),
            statements=pulumi.Output.all(
                [variant["endpoint_arn"] for variant in args["variants"]],
                args["predictions_table_arn"],
                keys_arn,
            ).apply(
                lambda arns: [
                    {
                        "Sid": "InvokeTheEndpoint",
                        "Effect": "Allow",
                        "Action": "sagemaker:InvokeEndpoint",
                        # One ARN as a string: a one-variant stack's policy as it always was.
                        "Resource": arns[0][0] if len(arns[0]) == 1 else arns[0],
                    },
                    {
                        "Sid": "RecordPredictionsAndFeedback",
                        "Effect": "Allow",
                        "Action": list(RECORD_ACTIONS),
                        "Resource": arns[1],
                    },
                    *([TRACE_WRITER_STATEMENT] if args.get("tracing", False) else []),
                    *([api_keys_reader_statement(arns[2])] if arns[2] else []),
                ]
            ),
            tags=args.get("tags"),
        )

    def _function(
        self,
        name: str,
        args: ProxyApiArgs,
        execution: ServiceRole,
        environment: Mapping[str, pulumi.Input[str]],
    ) -> aws.lambda_.Function:
        return aws.lambda_.Function(
            f"{name}-function",
            runtime="python3.12",
            architectures=["arm64"],
            handler=HANDLER,
            code=resolved_labels(args["model_labels"]).apply(
                lambda labels: lambda_code(PROXY_DIR, labels_files(labels))
            ),
            role=execution.role.arn,
            memory_size=args.get("memory_mb", FUNCTION_MEMORY_MB),
            timeout=args.get("timeout_seconds", FUNCTION_TIMEOUT_SECONDS),
            environment={"variables": environment},
            logging_config=aws.lambda_.FunctionLoggingConfigArgs(
                log_format="Text", log_group=execution.log_group.name
            ),
            # Explicit either way: leaving it out would not turn active tracing off again.
            tracing_config={"mode": "Active" if args.get("tracing", False) else "PassThrough"},
            tags=args.get("tags"),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[execution.policy]),
        )

    def _http_api(
        self, name: str, args: ProxyApiArgs, function: aws.lambda_.Function
    ) -> tuple[aws.apigatewayv2.Api, list[aws.apigatewayv2.Route]]:
        """The HTTP API, its Lambda integration and every routed method of every path."""
        child = pulumi.ResourceOptions(parent=self)
        api = aws.apigatewayv2.Api(
            f"{name}-http-api",
            protocol_type="HTTP",
            description=f"{ROUTE_KEY}: image in, top-5 classes out",
            tags=args.get("tags"),
            opts=child,
        )
        integration = aws.apigatewayv2.Integration(
            f"{name}-integration",
            api_id=api.id,
            integration_type="AWS_PROXY",
            integration_method="POST",
            integration_uri=function.invoke_arn,
            payload_format_version="2.0",
            timeout_milliseconds=30000,
            opts=child,
        )
        target = pulumi.Output.concat("integrations/", integration.id)
        routes = [
            aws.apigatewayv2.Route(
                f"{name}-{path}-{method.lower()}-route",
                api_id=api.id,
                route_key=f"{method} {API_PATH}/{path}",
                target=target,
                opts=child,
            )
            for path in ROUTES
            for method in ROUTED_METHODS
        ]
        return api, routes

    def _stages(
        self,
        name: str,
        args: ProxyApiArgs,
        api: aws.apigatewayv2.Api,
        routes: list[aws.apigatewayv2.Route],
        access_logs: aws.cloudwatch.LogGroup,
    ) -> tuple[random.RandomPassword, dict[str, aws.apigatewayv2.Stage]]:
        """The site stage's secret name, and both stages by who calls them."""
        # Two stages on the same routes, each with its own throttle buckets (decision 13):
        # the site's, under a random name only CloudFront knows (its origin path), and the
        # direct `$default` at the API's root URL, for programs with a key.
        site_stage_name = random.RandomPassword(
            f"{name}-site-stage-name",
            length=SITE_STAGE_LENGTH,
            special=False,
            opts=pulumi.ResourceOptions(parent=self),
        )
        stages = {}
        site_stage: pulumi.Output[str] = pulumi.Output.secret(site_stage_name.result)
        for stage_name, via, rate, burst, resource in (
            (
                site_stage,
                VIA_CLOUDFRONT,
                args.get("throttle_rate_limit", THROTTLE_RATE_LIMIT),
                args.get("throttle_burst_limit", THROTTLE_BURST_LIMIT),
                f"{name}-site-stage",
            ),
            (
                DIRECT_STAGE,
                VIA_EXECUTE_API,
                args.get("direct_throttle_rate_limit", DIRECT_THROTTLE_RATE_LIMIT),
                args.get("direct_throttle_burst_limit", DIRECT_THROTTLE_BURST_LIMIT),
                # Its name from when it was the only stage.
                f"{name}-default-stage",
            ),
        ):
            stages[via] = aws.apigatewayv2.Stage(
                resource,
                api_id=api.id,
                name=stage_name,
                auto_deploy=True,
                default_route_settings={
                    "throttling_rate_limit": rate,
                    "throttling_burst_limit": burst,
                },
                route_settings=[
                    {
                        "route_key": key,
                        "throttling_rate_limit": rate,
                        "throttling_burst_limit": burst,
                    }
                    for key in ROUTE_KEYS
                ],
                access_log_settings=aws.apigatewayv2.StageAccessLogSettingsArgs(
                    destination_arn=access_logs.arn, format=access_log_format(via)
                ),
                tags=args.get("tags"),
                opts=pulumi.ResourceOptions(parent=self, depends_on=routes),
            )
        return site_stage_name, stages

    def _invoke_permissions(
        self, name: str, function: aws.lambda_.Function, api: aws.apigatewayv2.Api
    ) -> None:
        """One per path, each on exactly its path (the first keeps its name from when the
        API had only that one)."""
        for path in ROUTES:
            aws.lambda_.Permission(
                f"{name}-invoke-permission"
                if path == "predict"
                else f"{name}-{path}-invoke-permission",
                action="lambda:InvokeFunction",
                function=function.name,
                principal="apigateway.amazonaws.com",
                source_arn=pulumi.Output.concat(api.execution_arn, "/*/*", f"{API_PATH}/{path}"),
                opts=pulumi.ResourceOptions(parent=self),
            )


def _environment(args: ProxyApiArgs) -> dict[str, pulumi.Input[str]]:
    """The function's environment but its secrets."""
    return {
        **args.get("environment", {}),
        "SAGEMAKER_ENDPOINT_NAME": args["endpoint_name"],
        "VARIANTS": pulumi.Output.json_dumps(
            [
                {
                    "name": variant["name"],
                    "weight": variant["weight"],
                    "endpoint": variant["endpoint_name"],
                }
                for variant in args["variants"]
            ]
        ),
        "PREDICTIONS_TABLE": args["predictions_table_name"],
        "MODEL_LABELS_DIR": f"{LAMBDA_TASK_ROOT}/{MODEL_LABELS_DIR}",
        "LOG_LEVEL": args.get("log_level", DEFAULT_LOG_LEVEL),
    }
