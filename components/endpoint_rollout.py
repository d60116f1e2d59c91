"""`EndpointRollout`: a dynamic provider that owns a SageMaker endpoint's life cycle.

pulumi-aws would create or update an endpoint and return at once; a serverless rollout
takes minutes, can fail during creation (status Failed) and, when an update fails,
SageMaker rolls back silently: the endpoint is InService again with `FailureReason` set
and the *old* config active. This provider waits with progress, recreates an endpoint
that failed once, and turns a silent rollback into a failed deployment.

Endpoint configs and models are created by pulumi-aws with `retain_on_delete`, so Pulumi
never deletes a config the endpoint may still use (after a failed rollout the old one is
still serving); this provider retires the previous config and its models itself, only
after the new config is active, and never a config any endpoint still uses.

Every method builds its boto3 session from the `aws` input, the stack's AWS provider
settings, and refuses to act outside the stack's account (`components.aws_session`).
Clients are created inside each method (they do not pickle); `session_factory`, `sleep`,
`clock` and `log` can be injected for tests and default to the real ones.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

import pulumi
import pulumi.dynamic
from botocore.exceptions import ClientError

from components.aws_session import checked_session

PROVIDER_VERSION = "2"
"""Bump when the provider's behaviour changes, so every stack picks the new code up.
2: the session follows the stack's AWS settings and account (the `aws` input)."""

PROGRESS_SECONDS = 60
"""How often a long wait says it is still waiting."""
IN_PROGRESS = frozenset({"Creating", "Updating", "SystemUpdating", "RollingBack", "Deleting"})


class RolloutError(Exception):
    """The endpoint did not reach the requested config; the message says what serves now."""


class RolloutTimeoutError(RolloutError):
    """The endpoint was still busy when the timeout ran out (SageMaker carries on)."""


@dataclass(frozen=True)
class RolloutInputs:
    endpoint_name: str
    endpoint_config_name: str
    region: str
    timeout_seconds: int
    poll_seconds: int
    version: str
    aws: dict[str, Any]
    """How to reach AWS: `components.aws_session.provider_session`."""

    @classmethod
    def from_props(cls, props: dict[str, Any]) -> RolloutInputs:
        if not props.get("aws"):
            # State written by provider version 1, which took any credentials it found.
            raise RolloutError(
                f"endpoint {props.get('endpoint_name')}: its state does not say which AWS "
                "account it belongs to; run `pulumi up` once to record it, then try again"
            )
        # Numbers cross the engine as floats.
        return cls(
            endpoint_name=str(props["endpoint_name"]),
            endpoint_config_name=str(props["endpoint_config_name"]),
            region=str(props["region"]),
            timeout_seconds=int(props["timeout_seconds"]),
            poll_seconds=max(1, int(props["poll_seconds"])),
            version=str(props.get("version", PROVIDER_VERSION)),
            aws=dict(props["aws"]),
        )


def _is_missing(error: ClientError) -> bool:
    message = error.response.get("Error", {}).get("Message", "")
    return error.response.get("Error", {}).get("Code") in (
        "ValidationException",
        "ResourceNotFound",
    ) and ("Could not find" in message or "does not exist" in message)


class EndpointRolloutProvider(pulumi.dynamic.ResourceProvider):
    def __init__(
        self,
        session_factory: Callable[[Mapping[str, Any]], Any] | None = None,
        sleep: Callable[[float], None] | None = None,
        clock: Callable[[], float] | None = None,
        log: Callable[[str], None] | None = None,
    ) -> None:
        super().__init__()
        self._session_factory = session_factory
        self._sleep = sleep
        self._clock = clock
        self._log = log

    # -- injected collaborators, resolved at call time so nothing unpicklable is stored
    def _client(self, inputs: RolloutInputs) -> Any:
        return (self._session_factory or checked_session)(inputs.aws).client("sagemaker")

    def _now(self) -> float:
        return (self._clock or time.monotonic)()

    def _wait(self, seconds: float) -> None:
        (self._sleep or time.sleep)(seconds)

    def _say(self, message: str) -> None:
        (self._log or pulumi.log.info)(message)

    # -- the provider interface
    def diff(
        self, _id: str, olds: dict[str, Any], news: dict[str, Any]
    ) -> pulumi.dynamic.DiffResult:
        keys = (
            "endpoint_name",
            "endpoint_config_name",
            "region",
            "timeout_seconds",
            "poll_seconds",
            # Delete and refresh use the session stored in the state: keep it current.
            "aws",
        )
        changed = [key for key in (*keys, "version") if olds.get(key) != news.get(key)]
        replaces = [key for key in ("endpoint_name", "region") if key in changed]
        return pulumi.dynamic.DiffResult(
            changes=bool(changed), replaces=replaces, delete_before_replace=False
        )

    def create(self, props: dict[str, Any]) -> pulumi.dynamic.CreateResult:
        inputs = RolloutInputs.from_props(props)
        outs = self._converge(self._client(inputs), inputs, previous_config=None)
        return pulumi.dynamic.CreateResult(id_=inputs.endpoint_name, outs=outs)

    def update(
        self, _id: str, olds: dict[str, Any], news: dict[str, Any]
    ) -> pulumi.dynamic.UpdateResult:
        inputs = RolloutInputs.from_props(news)
        previous = olds.get("endpoint_config_name")
        return pulumi.dynamic.UpdateResult(
            outs=self._converge(self._client(inputs), inputs, previous_config=previous)
        )

    def read(self, id_: str, props: dict[str, Any]) -> pulumi.dynamic.ReadResult:
        """`pulumi refresh`: the endpoint as it is, so drift (another config, a deleted
        endpoint) shows up and the next `pulumi up` converges it."""
        inputs = RolloutInputs.from_props(props)
        described = self._describe(self._client(inputs), inputs.endpoint_name)
        if described is None:
            return pulumi.dynamic.ReadResult(id_="", outs={})
        return pulumi.dynamic.ReadResult(
            id_=id_,
            outs={
                **props,
                "endpoint_config_name": described["EndpointConfigName"],
                "endpoint_arn": described["EndpointArn"],
                "endpoint_status": described["EndpointStatus"],
            },
        )

    def delete(self, _id: str, props: dict[str, Any]) -> None:
        inputs = RolloutInputs.from_props(props)
        client = self._client(inputs)
        deadline = self._now() + inputs.timeout_seconds
        described = self._describe(client, inputs.endpoint_name)
        while described is not None and described["EndpointStatus"] in IN_PROGRESS - {"Deleting"}:
            described = self._pause(client, inputs, described, deadline)
        if described is None:
            return
        active = described["EndpointConfigName"]
        if described["EndpointStatus"] != "Deleting":
            self._say(f"deleting endpoint {inputs.endpoint_name}")
            client.delete_endpoint(EndpointName=inputs.endpoint_name)
        while self._describe(client, inputs.endpoint_name) is not None:
            self._check_deadline(inputs, "Deleting", deadline)
            self._wait(inputs.poll_seconds)
        self._retire(client, active, keep=None)

    # -- the state machine
    def _converge(
        self, client: Any, inputs: RolloutInputs, previous_config: str | None
    ) -> dict[str, Any]:
        """Drive the endpoint to InService on `inputs.endpoint_config_name`, or raise."""
        name, wanted = inputs.endpoint_name, inputs.endpoint_config_name
        deadline = self._now() + inputs.timeout_seconds
        recreated = False
        update_marker: Any = None  # LastModifiedTime seen when update_endpoint was called
        update_observed = False
        described = self._describe(client, name)
        if described is None and previous_config is not None:
            self._say(f"endpoint {name} is missing (deleted outside Pulumi); creating it again")
        while True:
            if described is None:
                self._say(f"creating endpoint {name} with config {wanted}")
                client.create_endpoint(EndpointName=name, EndpointConfigName=wanted)
                described = self._describe(client, name)
                continue
            status = described["EndpointStatus"]
            if status in IN_PROGRESS:
                update_observed = update_observed or update_marker is not None
                described = self._pause(client, inputs, described, deadline)
                continue
            if status == "Failed":
                reason = described.get("FailureReason", "no reason given")
                if recreated:
                    raise RolloutError(
                        f"endpoint {name} failed again after being recreated: {reason}"
                    )
                self._say(f"endpoint {name} failed ({reason}); deleting it to recreate it once")
                client.delete_endpoint(EndpointName=name)
                recreated = True
                described = self._pause(
                    client, inputs, {**described, "EndpointStatus": "Deleting"}, deadline
                )
                continue
            if status != "InService":
                raise RolloutError(
                    f"endpoint {name} is {status}: {described.get('FailureReason', '')}"
                )
            active = described["EndpointConfigName"]
            if active == wanted:
                break
            if update_marker is not None:
                if not update_observed and described.get("LastModifiedTime") == update_marker:
                    # The update has not shown up in DescribeEndpoint yet.
                    described = self._pause(client, inputs, described, deadline)
                    continue
                raise RolloutError(
                    f"rollout of {wanted} to endpoint {name} failed and SageMaker rolled back: "
                    f"{described.get('FailureReason', 'no reason given')}; "
                    f"the endpoint still serves {active}"
                )
            self._say(f"updating endpoint {name}: {active} -> {wanted}")
            update_marker = described.get("LastModifiedTime")
            client.update_endpoint(EndpointName=name, EndpointConfigName=wanted)
            described = self._describe(client, name)
        self._say(f"endpoint {name} is InService with {wanted}")
        if previous_config and previous_config != wanted:
            self._retire(client, previous_config, keep=wanted)
        return {
            **asdict(inputs),
            "endpoint_arn": described["EndpointArn"],
            "endpoint_status": "InService",
        }

    def _pause(
        self, client: Any, inputs: RolloutInputs, described: dict[str, Any], deadline: float
    ) -> dict[str, Any] | None:
        """Sleep one poll interval (or time out) and describe the endpoint again, saying
        when the status changes and, while it does not, once a minute."""
        self._check_deadline(inputs, described["EndpointStatus"], deadline)
        started = deadline - inputs.timeout_seconds
        minutes_before = (self._now() - started) // PROGRESS_SECONDS
        self._wait(inputs.poll_seconds)
        elapsed = self._now() - started
        now = self._describe(client, inputs.endpoint_name)
        if now is not None and now["EndpointStatus"] != described["EndpointStatus"]:
            self._say(f"endpoint {inputs.endpoint_name}: {now['EndpointStatus']}")
        elif elapsed // PROGRESS_SECONDS > minutes_before:
            status = now["EndpointStatus"] if now else "gone"
            self._say(f"endpoint {inputs.endpoint_name}: still {status} after {elapsed:.0f} s")
        return now

    def _check_deadline(self, inputs: RolloutInputs, status: str, deadline: float) -> None:
        if self._now() >= deadline:
            raise RolloutTimeoutError(
                f"endpoint {inputs.endpoint_name} is still {status} after "
                f"{inputs.timeout_seconds} s; SageMaker carries on: run `pulumi up` again to "
                "wait for it, or raise rolloutTimeoutMinutes"
            )

    @staticmethod
    def _describe(client: Any, name: str) -> dict[str, Any] | None:
        try:
            return client.describe_endpoint(EndpointName=name)
        except ClientError as error:
            if _is_missing(error):
                return None
            raise

    # -- retiring configs the endpoint no longer uses
    def _retire(self, client: Any, config_name: str, keep: str | None) -> None:
        try:
            if self._config_in_use(client, config_name):
                self._say(f"keeping endpoint config {config_name}: an endpoint still uses it")
                return
            models = self._config_models(client, config_name)
            kept_models = self._config_models(client, keep) if keep else set()
            client.delete_endpoint_config(EndpointConfigName=config_name)
            for model in sorted(models - kept_models):
                client.delete_model(ModelName=model)
            self._say(
                f"retired endpoint config {config_name} and models {sorted(models - kept_models)}"
            )
        except ClientError as error:
            if not _is_missing(error):
                self._say(f"could not retire endpoint config {config_name}: {error}")

    @staticmethod
    def _config_models(client: Any, config_name: str) -> set[str]:
        try:
            described = client.describe_endpoint_config(EndpointConfigName=config_name)
        except ClientError as error:
            if _is_missing(error):
                return set()
            raise
        return {variant["ModelName"] for variant in described["ProductionVariants"]}

    @staticmethod
    def _config_in_use(client: Any, config_name: str) -> bool:
        for page in client.get_paginator("list_endpoints").paginate():
            for endpoint in page["Endpoints"]:
                described = client.describe_endpoint(EndpointName=endpoint["EndpointName"])
                if described.get("EndpointConfigName") == config_name:
                    return True
        return False


@dataclass
class EndpointRolloutArgs:
    endpoint_name: pulumi.Input[str]
    endpoint_config_name: pulumi.Input[str]
    """Changing it rolls the endpoint out to the new config."""
    region: pulumi.Input[str]
    aws: pulumi.Input[Mapping[str, Any]]
    """The stack's AWS settings and account: `components.aws_session.provider_session`."""
    timeout_seconds: pulumi.Input[int] = 3600
    """Per create, update or delete; serverless rollouts take several minutes."""
    poll_seconds: pulumi.Input[int] = 15


class EndpointRollout(pulumi.dynamic.Resource, module="endpoint_rollout", name="EndpointRollout"):
    """A SageMaker endpoint, created or rolled out to a new config and waited for."""

    endpoint_name: pulumi.Output[str]
    endpoint_config_name: pulumi.Output[str]
    endpoint_arn: pulumi.Output[str]
    endpoint_status: pulumi.Output[str]

    def __init__(
        self, name: str, args: EndpointRolloutArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(
            EndpointRolloutProvider(),
            name,
            {
                **vars(args),
                "version": PROVIDER_VERSION,
                "endpoint_arn": None,
                "endpoint_status": None,
            },
            opts,
        )
