"""Pulumi mocks for the infrastructure tests: the stack's `build` run in process, no engine.

Public Pulumi APIs only: `pulumi.runtime.set_mocks` is called exactly once, when this file
is imported, for project `image-classifier`, stack `dev`, not a preview (so every `apply`
runs); each run is a `@pulumi.runtime.test` function; `register_stack_transformation`
sees every resource as it is constructed (its parent, aliases and options), `Mocks.new_resource`
what the engine would receive (engine-shaped inputs).

Fixtures (stable: the policy and monitoring tests in this folder rely on them)

- `dev_stack` (session): a `StackRun` of `components.stack.build` with the dev stack's
  settings, i.e. `load_settings` of the defaults declared in `Pulumi.yaml` overlaid by
  `Pulumi.dev.yaml` (what the engine passes), with `model` pointing at
  `synthetic_archive`.
- `run_stack` (session): `run_stack(overrides: dict[str, str]) -> StackRun` runs it again
  with the dev config plus `overrides` (fully qualified keys, values as the engine passes
  them: strings, JSON for lists). A failing program does not raise: the exception is in
  `StackRun.error` and `StackRun.resources` holds what got registered before it
  (nothing, for a config error; some without their `urn` and `parent`, for an error in
  an `apply`).
- `synthetic_archive` (session): a tiny `model.tar.gz` with the real layout
  (`metadata.json` with `version`, `weights` and `labels`, `model.onnx`, `code/`); no torch.
- `registry` (function): `REGISTRY`, the model versions the mocked artifact bucket holds
  (version -> its `metadata.json` as a dict; `write_synthetic_archive`'s by default via
  `registered(version)`), emptied after the test.

`record(program)` runs any program (a callable returning its outputs, or None) the same
way and returns its `StackRun`; `plain(inputs)` makes inputs with assets comparable.

`StackRun`
- `.resources`: every resource registered, in order, as `RegisteredResource`:
  `type` (token, e.g. `aws:s3/bucket:Bucket`, `image-classifier:static_site:StaticSite`,
  `pulumi-python:dynamic/endpoint_rollout:EndpointRollout`), `name`, `urn`, `parent`
  (the parent's URN), `id`, `custom` (False for components), `inputs` (as the
  engine receives them: camelCase keys for provider resources, i.e. what a policy pack
  sees, with secrets unwrapped as the policy analyzer unwraps them), `secrets` (the
  names of the inputs the engine receives as secrets), `state` (inputs plus the ids, ARNs
  and domains the mocks computed) and
  `aliases` (the types of its `pulumi.Alias(type_=...)`: what it was registered as before)
  `retain_on_delete` (Pulumi leaves it in AWS when it leaves the state) and `depends_on`
  (the names of the resources its `depends_on` option lists).
- `.outputs`: the resolved stack outputs (`site_url`, `api_url`, ...).
- `.warnings`: messages the program logged with `pulumi.log.warn`.
- `.error`: the exception the program raised, or None.
- helpers: `.of_type(token)`, `.one(token, name=None)`.

The mocks fill in what AWS would: ids, ARNs and domains; an ECR repository's
`repositoryUrl` under `ECR_REGISTRY`; the `digest` `IMAGE_DIGEST` of every
`docker-build:index:Image`, as if pushed; user `AWS`, password `ECR_PASSWORD` from
`aws.ecr.get_authorization_token`; `ORIGIN_SECRET` as every `RandomPassword`'s result; an
ACM certificate's one DNS validation record (`VALIDATION_RECORD`), issued at once. A
resource with its own `region` input gets ARNs in that region.

The artifact bucket's objects are what `REGISTRY` says: `aws.s3.get_objects` lists
`models/<version>/model.tar.gz` and `metadata.json` for each entry under the prefix asked
for, `aws.s3.get_object` returns the sidecar's JSON as its `body`.

`FakeClock` is the `clock` and `sleep` the dynamic providers' tests inject, `FakeSession`
what their `session_factory` returns, and `aws_input(region)` their `aws` input.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import io
import json
import logging
import tarfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import pulumi
import pytest
import yaml
from pulumi_policy.deserialize import (
    SPECIAL_SECRET_SIG,
    SPECIAL_SIG_KEY,
    deserialize_properties,
)

from components.stack import build
from components.stack_config import load_settings

ROOT = Path(__file__).resolve().parents[2]
PROJECT = "image-classifier"
STACK = "dev"
ACCOUNT = "123456789012"
REGION = yaml.safe_load((ROOT / f"Pulumi.{STACK}.yaml").read_text())["config"]["aws:region"]
ARCHIVE_VERSION = "0123abcd4567"
ECR_REGISTRY = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com"
IMAGE_DIGEST = "sha256:" + "5e" * 32
"""What every `docker-build:index:Image` pushed, as the mocks answer."""
ECR_PASSWORD = "ecr-token-for-tests"
"""The password `aws.ecr.get_authorization_token` answers."""
ORIGIN_SECRET = "0riginSecretF0rTests" + "x" * 28
"""The `result` of every `random:index/randomPassword:RandomPassword` (48 characters) but
those of `RANDOM_RESULTS`."""
SITE_STAGE = "s1teStageF0rTests" + "y" * 15
"""The `result` of the API's site stage name (32 characters)."""
OTHER_ORIGIN_SECRET = "0therOriginSecretF0rTests" + "z" * 23
"""The `result` of the origin secret's second slot (48 characters)."""
RANDOM_RESULTS = {"api-site-stage-name": SITE_STAGE, "api-origin-secret-1": OTHER_ORIGIN_SECRET}
VALIDATION_RECORD = {
    "resourceRecordName": "_3f9a1c2b4d5e.classify.classifier-team.io.",
    "resourceRecordType": "CNAME",
    "resourceRecordValue": "_7e6d5c4b3a21.zfyfvmchrl.acm-validations.aws.",
}
"""The one DNS validation record of every mocked ACM certificate."""
CLOUDFRONT_ZONE_ID = "Z2FDTNDATAQYW2"
"""The hosted zone of every CloudFront distribution's domain (for Route 53 aliases)."""
REGISTRY: dict[str, dict[str, Any]] = {}
"""Model versions in the mocked artifact bucket: version -> its metadata.json."""


@dataclass(frozen=True)
class RegisteredResource:
    type: str
    name: str
    urn: str
    parent: str
    """URN of the parent (the stack's own URN for top-level components)."""
    id: str | None
    custom: bool
    inputs: dict[str, Any]
    state: dict[str, Any]
    aliases: tuple[str, ...] = ()
    retain_on_delete: bool = False
    depends_on: tuple[str, ...] = ()
    secrets: frozenset[str] = frozenset()


@dataclass
class StackRun:
    resources: list[RegisteredResource]
    outputs: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    error: BaseException | None = None

    def of_type(self, token: str) -> list[RegisteredResource]:
        return [resource for resource in self.resources if resource.type == token]

    def one(self, token: str, name: str | None = None) -> RegisteredResource:
        found = [r for r in self.of_type(token) if name is None or r.name == name]
        assert len(found) == 1, f"expected one {token} {name or ''}, got {[r.name for r in found]}"
        return found[0]


class FakeSession:
    """A `session_factory`'s session for the dynamic providers' tests: these clients."""

    def __init__(self, **clients: Any) -> None:
        self.clients = clients

    def client(self, service_name: str) -> Any:
        return self.clients[service_name]


def aws_input(region: str, account: str = ACCOUNT) -> dict[str, Any]:
    """A dynamic resource's `aws` input as the engine hands it over: the default chain in
    `account` (moto's default account is `ACCOUNT`)."""
    return {"region": region, "profile": None, "assume_roles": [], "account_id": account}


class FakeClock:
    """`clock` and `sleep` for the provider: sleeping moves time on, instantly."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def _computed_state(args: pulumi.runtime.MockResourceArgs, resource_id: str) -> dict[str, Any]:
    """What AWS would fill in: ids, ARNs, domains, in their real shapes."""
    kind = args.typ.split(":")[-1]
    arn_name = args.inputs.get("name", resource_id)
    region = args.inputs.get("region", REGION)
    state: dict[str, Any] = {"arn": f"arn:aws:mock:{region}:{ACCOUNT}:{kind.lower()}/{arn_name}"}
    if args.typ == "aws:s3/bucket:Bucket":
        state |= {
            "bucket": resource_id,
            "arn": f"arn:aws:s3:::{resource_id}",
            "bucketRegionalDomainName": f"{resource_id}.s3.{REGION}.amazonaws.com",
        }
    elif args.typ == "aws:cloudfront/distribution:Distribution":
        state |= {
            "arn": f"arn:aws:cloudfront::{ACCOUNT}:distribution/{resource_id}",
            "domainName": "d111111abcdef8.cloudfront.net",
            "hostedZoneId": CLOUDFRONT_ZONE_ID,
        }
    elif args.typ == "aws:apigatewayv2/api:Api":
        state |= {
            "apiEndpoint": f"https://{resource_id}.execute-api.{REGION}.amazonaws.com",
            "executionArn": f"arn:aws:execute-api:{REGION}:{ACCOUNT}:{resource_id}",
        }
    elif args.typ == "aws:lambda/function:Function":
        arn = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{resource_id}"
        state |= {
            "name": resource_id,
            "arn": arn,
            "invokeArn": f"arn:aws:apigateway:{REGION}:lambda:path/2015-03-31/functions/"
            f"{arn}/invocations",
        }
    elif args.typ == "aws:cloudwatch/logGroup:LogGroup":
        state["arn"] = f"arn:aws:logs:{region}:{ACCOUNT}:log-group:{arn_name}"
    elif args.typ == "random:index/randomPassword:RandomPassword":
        state["result"] = RANDOM_RESULTS.get(args.name, ORIGIN_SECRET)
    elif args.typ == "aws:acm/certificate:Certificate":
        state |= {
            "arn": f"arn:aws:acm:{region}:{ACCOUNT}:certificate/{resource_id}",
            "domainValidationOptions": [
                {"domainName": args.inputs["domainName"], **VALIDATION_RECORD}
            ],
            "status": "PENDING_VALIDATION",
        }
    elif args.typ == "aws:acm/certificateValidation:CertificateValidation":
        state["certificateArn"] = args.inputs["certificateArn"]
    elif args.typ == "aws:route53/record:Record":
        state["fqdn"] = args.inputs["name"].rstrip(".")
    elif args.typ == "aws:wafv2/webAcl:WebAcl":
        state["arn"] = f"arn:aws:wafv2:{region}:{ACCOUNT}:global/webacl/{arn_name}/{resource_id}"
    elif args.typ == "aws:dynamodb/table:Table":
        state["arn"] = f"arn:aws:dynamodb:{region}:{ACCOUNT}:table/{arn_name}"
    elif args.typ == "aws:iam/role:Role":
        state |= {"name": resource_id, "arn": f"arn:aws:iam::{ACCOUNT}:role/{resource_id}"}
    elif args.typ == "pulumi-python:dynamic/endpoint_rollout:EndpointRollout":
        name = args.inputs["endpoint_name"]
        state |= {
            "endpoint_arn": f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:endpoint/{name}",
            "endpoint_status": "InService",
        }
    elif args.typ == "pulumi-python:dynamic/cloudfront_invalidation:CloudFrontInvalidation":
        state["invalidation_id"] = "I2J0I21PCUYOIK"
    elif args.typ == "aws:ecr/repository:Repository":
        state |= {
            "arn": f"arn:aws:ecr:{REGION}:{ACCOUNT}:repository/{resource_id}",
            "registryId": ACCOUNT,
            "repositoryUrl": f"{ECR_REGISTRY}/{resource_id}",
        }
    elif args.typ == "docker-build:index:Image":
        # Built and pushed: the digest of its first tag.
        state |= {"digest": IMAGE_DIGEST, "ref": f"{args.inputs['tags'][0]}@{IMAGE_DIGEST}"}
    return state


class _Registration(NamedTuple):
    type: str
    name: str
    id: str
    custom: bool
    inputs: dict[str, Any]
    state: dict[str, Any]
    secrets: frozenset[str]


class _Construction(NamedTuple):
    resource: pulumi.Resource
    parent: pulumi.Resource | None
    aliases: tuple[str, ...]
    retain_on_delete: bool
    depends_on: tuple[pulumi.Resource, ...]


def _is_secret(value: Any) -> bool:
    """Whether `value` reaches the engine as a secret (the wire format's signature)."""
    return isinstance(value, dict) and value.get(SPECIAL_SIG_KEY) == SPECIAL_SECRET_SIG


class RecordingMocks(pulumi.runtime.Mocks):
    def __init__(self) -> None:
        self.registered: list[_Registration] = []

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict]:
        if args.typ == "aws:apigatewayv2/stage:Stage":
            # A stage's id is its name, in plain text even where the name is a secret.
            name = args.inputs["name"]
            resource_id = name["value"] if _is_secret(name) else name
        elif args.typ == "aws:cloudfront/distribution:Distribution":
            resource_id = "E111111ABCDEF8"
        elif args.typ == "aws:apigatewayv2/api:Api":
            resource_id = "a1b2c3d4e5"
        elif "namePrefix" in args.inputs:
            resource_id = f"{args.inputs['namePrefix']}20261121054658123400000001"
        else:
            resource_id = args.inputs.get("name") or f"{args.name}-0a1b2c3"
        state = {"name": resource_id, **args.inputs, **_computed_state(args, resource_id)}
        self.registered.append(
            _Registration(
                args.typ,
                args.name,
                resource_id,
                bool(args.custom),
                deserialize_properties(dict(args.inputs)),
                deserialize_properties(state),
                frozenset(key for key, value in args.inputs.items() if _is_secret(value)),
            )
        )
        return resource_id, state

    def call(self, args: pulumi.runtime.MockCallArgs) -> dict[str, Any]:
        if args.token == "aws:index/getCallerIdentity:getCallerIdentity":
            return {
                "accountId": ACCOUNT,
                "arn": f"arn:aws:iam::{ACCOUNT}:user/ci",
                "userId": "AIDAEXAMPLE",
                "id": ACCOUNT,
            }
        if args.token == "aws:index/getPartition:getPartition":
            return {
                "partition": "aws",
                "dnsSuffix": "amazonaws.com",
                "reverseDnsPrefix": "com.amazonaws",
                "id": "aws",
            }
        if args.token == "aws:index/getRegion:getRegion":
            # The provider's region: the dev stack's `aws:region`.
            return {"region": REGION, "name": REGION, "id": REGION}
        if args.token == "aws:s3/getObjects:getObjects":
            prefix = args.args.get("prefix", "")
            keys = [
                f"models/{version}/{name}"
                for version in sorted(REGISTRY)
                for name in ("metadata.json", "model.tar.gz")
            ]
            return {
                "bucket": args.args["bucket"],
                "keys": [key for key in keys if key.startswith(prefix)],
                "commonPrefixes": [],
                "owners": [],
                "id": args.args["bucket"],
            }
        if args.token == "aws:s3/getObject:getObject":
            version = args.args["key"].split("/")[1]
            return {
                "bucket": args.args["bucket"],
                "key": args.args["key"],
                "body": json.dumps(REGISTRY[version]),
                "contentType": "application/json",
                "id": args.args["key"],
            }
        if args.token == "aws:ecr/getAuthorizationToken:getAuthorizationToken":
            return {
                "authorizationToken": "QVdTOmVjci10b2tlbi1mb3ItdGVzdHM=",
                "expiresAt": "2026-11-21T17:46:58Z",
                "id": REGION,
                "password": ECR_PASSWORD,
                "proxyEndpoint": f"https://{ECR_REGISTRY}",
                "region": REGION,
                "registryId": ACCOUNT,
                "userName": "AWS",
            }
        return {}


class _Warnings(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def pytest_configure(config: pytest.Config) -> None:
    # pulumi_aws announces its deprecated resource classes when its modules load.
    config.addinivalue_line("filterwarnings", "ignore::DeprecationWarning:pulumi_aws.*")


MOCKS = RecordingMocks()
WARNINGS = _Warnings()
CONSTRUCTED: dict[tuple[str, str], _Construction] = {}
_logger = logging.getLogger("tests.infra.pulumi")
_logger.addHandler(WARNINGS)
_logger.propagate = False
pulumi.runtime.set_mocks(MOCKS, project=PROJECT, stack=STACK, preview=False, logger=_logger)


def _remember(args: pulumi.ResourceTransformationArgs) -> None:
    """Each resource as it is constructed, for its parent (the mocks are not told)."""
    key = (args.type_, args.name)
    assert key not in CONSTRUCTED, f"{key} constructed twice in one run"
    aliases = tuple(
        alias.type_
        for alias in args.opts.aliases or ()
        if isinstance(alias, pulumi.Alias) and alias.type_
    )
    depends_on = args.opts.depends_on or ()
    CONSTRUCTED[key] = _Construction(
        args.resource,
        args.opts.parent,
        aliases,
        bool(args.opts.retain_on_delete),
        tuple(depends_on if isinstance(depends_on, list | tuple) else [depends_on]),
    )


def _names(resources: tuple[pulumi.Resource, ...]) -> tuple[str, ...]:
    by_identity = {id(made.resource): name for (_, name), made in CONSTRUCTED.items()}
    return tuple(by_identity[id(resource)] for resource in resources)


pulumi.runtime.register_stack_transformation(_remember)


async def _quiet() -> None:
    """Let the event loop and the mocked monitor's threads run until no registration has
    arrived for a quarter of a second."""
    quiet, seen = 0, len(MOCKS.registered)
    while quiet < 5:
        await asyncio.sleep(0.05)
        quiet = quiet + 1 if len(MOCKS.registered) == seen else 0
        seen = len(MOCKS.registered)


@pulumi.runtime.test
def _settle() -> pulumi.Output[None]:
    return pulumi.Output.from_input(_quiet())


def _drop_failed_futures(run: StackRun) -> None:
    """Collect a failed run's futures now, quietly: each holds `run.error` and a finalizer
    that logs it when collected, which would otherwise happen later, anywhere (on Python
    3.11, inside an `ast.parse` it makes that raise SystemError: AST constructor recursion
    depth mismatch). What still reaches them goes first: the resources and the error's
    traceback (the StackRun keeps what the tests read)."""
    CONSTRUCTED.clear()
    MOCKS.registered.clear()
    if run.error is not None:
        run.error = run.error.with_traceback(None)
        run.error.__context__ = run.error.__cause__ = None
    asyncio_log = logging.getLogger("asyncio")
    disabled, asyncio_log.disabled = asyncio_log.disabled, True
    try:
        gc.collect()
    finally:
        asyncio_log.disabled = disabled


def record(program: Callable[[], Mapping[str, pulumi.Input[Any]] | None]) -> StackRun:
    """Run `program` once under the mocks: what it registers, logs, returns or raises."""
    MOCKS.registered.clear()
    CONSTRUCTED.clear()
    WARNINGS.messages.clear()
    run = StackRun(resources=[])
    urns: dict[tuple[str, str], tuple[str, str]] = {}

    @pulumi.runtime.test
    def registered() -> pulumi.Output[Any]:
        try:
            outputs = pulumi.Output.from_input(dict(program() or {}))
        except Exception as error:
            # Still wait for what got registered before the error, as the engine does.
            run.error = error
            outputs = pulumi.Output.from_input({})
        stack_urn = pulumi.create_urn(f"{PROJECT}-{STACK}", "pulumi:pulumi:Stack")
        resolved = [
            pulumi.Output.all(
                made.resource.urn, made.parent.urn if made.parent else stack_urn
            ).apply(lambda both, key=key: urns.update({key: (both[0], both[1])}))
            for key, made in CONSTRUCTED.items()
        ]
        return pulumi.Output.all(outputs.apply(run.outputs.update), *resolved)

    try:
        registered()
    except Exception as error:
        run.error = run.error or error
        # The first failed registration ends the wait; the others still under way would
        # otherwise land in the next run. They fail alike (or not at all): the run's error
        # is the first one.
        with contextlib.suppress(Exception):
            _settle()
    # A program that failed may leave some registrations without their URN.
    run.resources = [
        RegisteredResource(
            type=made.type,
            name=made.name,
            urn=urns.get((made.type, made.name), ("", ""))[0],
            parent=urns.get((made.type, made.name), ("", ""))[1],
            id=made.id,
            custom=made.custom,
            inputs=made.inputs,
            state=made.state,
            aliases=CONSTRUCTED[(made.type, made.name)].aliases,
            retain_on_delete=CONSTRUCTED[(made.type, made.name)].retain_on_delete,
            depends_on=_names(CONSTRUCTED[(made.type, made.name)].depends_on),
            secrets=made.secrets,
        )
        for made in MOCKS.registered
    ]
    run.warnings = list(WARNINGS.messages)
    if run.error is not None:
        _drop_failed_futures(run)
    return run


def plain(value: Any) -> Any:
    """`value` with each asset as what it holds (assets compare by identity): a file's path,
    a string asset's text, an archive's members."""
    if isinstance(value, pulumi.AssetArchive):
        return {name: plain(asset) for name, asset in value.assets.items()}
    if isinstance(value, pulumi.FileAsset):
        return value.path
    if isinstance(value, pulumi.StringAsset):
        return value.text
    if isinstance(value, dict):
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [plain(item) for item in value]
    return value


def engine_value(value: Any) -> str:
    """Config values the way the engine hands them to a Python program."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | dict):
        return json.dumps(value)
    return str(value)


def stack_config(stack: str = STACK) -> dict[str, str]:
    """What the engine passes for `stack`: `Pulumi.yaml`'s defaults overlaid by
    `Pulumi.<stack>.yaml`, fully qualified."""
    project = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())
    # A key declared in short form (`model: ...`) is its default; such a key is untyped.
    config = {
        f"{PROJECT}:{key}": engine_value(spec["default"] if isinstance(spec, dict) else spec)
        for key, spec in project.get("config", {}).items()
        if not isinstance(spec, dict) or "default" in spec
    }
    stack_file = yaml.safe_load((ROOT / f"Pulumi.{stack}.yaml").read_text())
    for key, value in (stack_file.get("config") or {}).items():
        qualified = key if ":" in key else f"{PROJECT}:{key}"
        config[qualified] = engine_value(value)
    return config


def run_build(config: Mapping[str, str]) -> StackRun:
    """`components.stack.build` with the settings `load_settings` reads from exactly `config`."""
    return record(lambda: build(load_settings(config, PROJECT, STACK, ROOT)).exports())


def synthetic_metadata(version: str = ARCHIVE_VERSION, weights: str = "random") -> dict:
    """What `model.package` writes into `metadata.json` (the parts the stack reads)."""
    return {
        "name": "mobilenet_v2",
        "version": version,
        "weights": weights,
        "labels": [f"class {index}" for index in range(1000)],
        "preprocessing": {"resize": 256, "crop": 224},
    }


def write_synthetic_archive(
    path: Path,
    version: str = ARCHIVE_VERSION,
    weights: str = "random",
    memory_mb_min: int | None = None,
):
    """An archive the stack reads as `model.package`'s; without `memory_mb_min`, one from
    before archives recorded it."""
    metadata = synthetic_metadata(version, weights)
    if memory_mb_min is not None:
        metadata["memory_mb_min"] = memory_mb_min
    entries = {
        "model.onnx": b"not a real network",
        "metadata.json": json.dumps(metadata).encode(),
        "code/inference.py": b"def model_fn(model_dir):\n    return None\n",
    }
    with tarfile.open(path, "w:gz") as archive:
        for name, data in entries.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return path


@pytest.fixture(scope="session")
def synthetic_archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_synthetic_archive(tmp_path_factory.mktemp("model") / "model.tar.gz")


@pytest.fixture
def registry() -> Iterator[dict[str, dict[str, Any]]]:
    """`REGISTRY`, emptied after the test."""
    yield REGISTRY
    REGISTRY.clear()


@pytest.fixture(scope="session")
def run_stack(synthetic_archive: Path) -> Callable[[dict[str, str]], StackRun]:
    def run(overrides: dict[str, str] | None = None) -> StackRun:
        config = stack_config() | {f"{PROJECT}:model": str(synthetic_archive)}
        return run_build(config | (overrides or {}))

    return run


@pytest.fixture(scope="session")
def dev_stack(run_stack: Callable[[dict[str, str]], StackRun]) -> StackRun:
    run = run_stack({})
    if run.error is not None:
        raise run.error
    return run
