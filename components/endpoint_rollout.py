"""`EndpointRollout` and `EndpointCleanup`: dynamic providers that own a SageMaker
endpoint's life cycle.

pulumi-aws would create or update an endpoint and return at once; a serverless rollout
takes minutes, can fail during creation (status Failed) and, when an update fails,
SageMaker rolls back silently: the endpoint is InService again with `FailureReason` set
and the *old* config active. This provider waits with progress, recreates an endpoint
that failed once, and turns a silent rollback into a failed deployment.

Endpoint configs, models and model archives are created by pulumi-aws with
`retain_on_delete`, so Pulumi never deletes one the endpoint may still use (after a failed
rollout the old ones are still serving). This provider retires configs and models itself,
only after the new config is active: a config no endpoint uses, then each model only
retired configs used. Archives it never deletes: they are the stack's model registry
(`models/<version>/`, shared by every variant's endpoint), from which a later deployment
may serve any version again without its file (config `model`); `pulumi destroy` empties
the bucket.

What failed rollouts made is retired too: every config tagged `ENDPOINT_TAG` with this
endpoint's name (found by its name prefix, then the tag, since two endpoint names may
share the prefix) that no endpoint uses, after each successful rollout and on delete.
A create that raises is not recorded by Pulumi (Python dynamic providers cannot return a
partially created resource), so its endpoint would outlive `pulumi destroy`; and deleting
it when the create fails would undo what the runbook relies on, a later `pulumi up` that
picks up a creation still under way. So `EndpointCleanup`, a resource created before the
first rollout attempt that does nothing else, deletes the endpoint by name on destroy,
whether or not a rollout ever reached the state, and retires the configs as above.

Every method builds its boto3 session from the `aws` input, the stack's AWS provider
settings, and refuses to act outside the stack's account (`components.aws_session`).
Clients are created inside each method (they do not pickle); `session_factory`, `sleep`,
`clock` and `log` can be injected for tests and default to the real ones.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from functools import partial
from typing import Any

import pulumi
import pulumi.dynamic
from botocore.exceptions import ClientError

from components.aws_session import checked_session

PROVIDER_VERSION = "7"
"""Bump when the provider's behaviour changes, so every stack picks the new code up.
2: the session follows the stack's AWS settings and account (the `aws` input).
3: retiring a model retires the archive it read.
4: what failed rollouts left (`ENDPOINT_TAG`) is retired after a rollout and on delete.
5: archives are never retired (the registry; another variant's model may read one).
6: only endpoints named like the stack's are described (ListEndpoints NameContains).
7: the endpoint carries the stack's tags (`tags`), changed in place."""

ENDPOINT_TAG = "endpoint"
"""Tag on each config and model made for an endpoint, valued with its name."""

PROGRESS_SECONDS = 60
"""How often a long wait says it is still waiting."""
IN_PROGRESS = frozenset({"Creating", "Updating", "SystemUpdating", "RollingBack", "Deleting"})


class RolloutError(Exception):
    """The endpoint did not reach the requested config; the message says what serves now."""


class RolloutTimeoutError(RolloutError):
    """The endpoint was still busy when the timeout ran out (SageMaker carries on)."""


@dataclass(frozen=True)
class EndpointInputs:
    """What both resources know of the endpoint."""

    endpoint_name: str
    config_name_prefix: str
    """Every config made for the endpoint starts with it (another endpoint's may too)."""
    region: str
    timeout_seconds: int
    poll_seconds: int
    version: str
    aws: dict[str, Any]
    """How to reach AWS: `components.aws_session.provider_session`."""

    @staticmethod
    def common(props: dict[str, Any]) -> dict[str, Any]:
        if not props.get("aws"):
            # State written by provider version 1, which took any credentials it found.
            raise RolloutError(
                f"endpoint {props.get('endpoint_name')}: its state does not say which AWS "
                "account it belongs to; run `pulumi up` once to record it, then try again"
            )
        # Numbers cross the engine as floats.
        return {
            "endpoint_name": str(props["endpoint_name"]),
            # Absent from state written before version 4: then no leftovers are looked for.
            "config_name_prefix": str(props.get("config_name_prefix") or ""),
            "region": str(props["region"]),
            "timeout_seconds": int(props["timeout_seconds"]),
            "poll_seconds": max(1, int(props["poll_seconds"])),
            "version": str(props.get("version", PROVIDER_VERSION)),
            "aws": dict(props["aws"]),
        }

    @classmethod
    def from_props(cls, props: dict[str, Any]) -> EndpointInputs:
        return cls(**cls.common(props))


@dataclass(frozen=True)
class RolloutInputs(EndpointInputs):
    endpoint_config_name: str
    tags: dict[str, str]
    """The endpoint's tags: the stack's (state before version 6 has none)."""

    @classmethod
    def from_props(cls, props: dict[str, Any]) -> RolloutInputs:
        return cls(
            **cls.common(props),
            endpoint_config_name=str(props["endpoint_config_name"]),
            tags=tags_of(props),
        )


def tags_of(props: dict[str, Any]) -> dict[str, str]:
    return {str(key): str(value) for key, value in (props.get("tags") or {}).items()}


def _tag_list(tags: Mapping[str, str]) -> list[dict[str, str]]:
    return [{"Key": key, "Value": value} for key, value in tags.items()]


def _is_missing(error: ClientError) -> bool:
    message = error.response.get("Error", {}).get("Message", "")
    return error.response.get("Error", {}).get("Code") in (
        "ValidationException",
        "ResourceNotFound",
    ) and ("Could not find" in message or "does not exist" in message)


@dataclass
class _Progress:
    """What one rollout has done so far."""

    created: bool = False
    recreated: bool = False
    update_marker: Any = None
    """LastModifiedTime seen when update_endpoint was called."""
    update_observed: bool = False


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
    def _session(self, inputs: EndpointInputs) -> Any:
        return (self._session_factory or checked_session)(inputs.aws)

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
            "config_name_prefix",
            "region",
            "timeout_seconds",
            "poll_seconds",
            # Delete and refresh use the session stored in the state: keep it current.
            "aws",
            "tags",
        )
        changed = [key for key in (*keys, "version") if olds.get(key) != news.get(key)]
        replaces: list[str] = [key for key in ("endpoint_name", "region") if key in changed]
        return pulumi.dynamic.DiffResult(
            changes=bool(changed), replaces=replaces, delete_before_replace=False
        )

    def create(self, props: dict[str, Any]) -> pulumi.dynamic.CreateResult:
        inputs = RolloutInputs.from_props(props)
        outs = self._converge(self._session(inputs), inputs, previous_config=None, tagged={})
        return pulumi.dynamic.CreateResult(id_=inputs.endpoint_name, outs=outs)

    def update(
        self, _id: str, olds: dict[str, Any], news: dict[str, Any]
    ) -> pulumi.dynamic.UpdateResult:
        inputs = RolloutInputs.from_props(news)
        previous = olds.get("endpoint_config_name")
        outs = self._converge(
            self._session(inputs), inputs, previous_config=previous, tagged=tags_of(olds)
        )
        return pulumi.dynamic.UpdateResult(outs=outs)

    def read(self, id_: str, props: dict[str, Any]) -> pulumi.dynamic.ReadResult:
        """`pulumi refresh`: the endpoint as it is, so drift (another config, a deleted
        endpoint) shows up and the next `pulumi up` converges it."""
        inputs = RolloutInputs.from_props(props)
        client = self._session(inputs).client("sagemaker")
        described = self._describe(client, inputs.endpoint_name)
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
        self._teardown(EndpointInputs.from_props(props))

    def _teardown(self, inputs: EndpointInputs) -> None:
        """Delete the endpoint once nothing is under way, then retire what it used and
        what failed rollouts left."""
        session = self._session(inputs)
        client = session.client("sagemaker")
        deadline = self._now() + inputs.timeout_seconds
        described = self._describe(client, inputs.endpoint_name)
        while described is not None and described["EndpointStatus"] in IN_PROGRESS - {"Deleting"}:
            described = self._pause(client, inputs, described, deadline)
        if described is None:
            self._retire(session, inputs, set(), keep=None)
            return
        active = described["EndpointConfigName"]
        if described["EndpointStatus"] != "Deleting":
            self._say(f"deleting endpoint {inputs.endpoint_name}")
            client.delete_endpoint(EndpointName=inputs.endpoint_name)
        while self._describe(client, inputs.endpoint_name) is not None:
            self._check_deadline(inputs, "Deleting", deadline)
            self._wait(inputs.poll_seconds)
        self._retire(session, inputs, {active}, keep=None)

    # -- the state machine
    def _converge(
        self,
        session: Any,
        inputs: RolloutInputs,
        previous_config: str | None,
        tagged: Mapping[str, str],
    ) -> dict[str, Any]:
        """Drive the endpoint to InService on `inputs.endpoint_config_name`, or raise; then
        give it `inputs.tags` (`tagged`: the ones this provider gave it before)."""
        client = session.client("sagemaker")
        name, wanted = inputs.endpoint_name, inputs.endpoint_config_name
        deadline = self._now() + inputs.timeout_seconds
        progress = _Progress()
        described = self._describe(client, name)
        if described is None and previous_config is not None:
            self._say(f"endpoint {name} is missing (deleted outside Pulumi); creating it again")
        while True:
            if described is None:
                self._say(f"creating endpoint {name} with config {wanted}")
                tags = {"Tags": _tag_list(inputs.tags)} if inputs.tags else {}
                client.create_endpoint(EndpointName=name, EndpointConfigName=wanted, **tags)
                progress.created = True
                described = self._describe(client, name)
                continue
            status = described["EndpointStatus"]
            if status in IN_PROGRESS:
                progress.update_observed |= progress.update_marker is not None
                described = self._pause(client, inputs, described, deadline)
            elif status == "Failed":
                described = self._recreate_once(client, inputs, described, deadline, progress)
            elif status != "InService":
                raise RolloutError(
                    f"endpoint {name} is {status}: {described.get('FailureReason', '')}"
                )
            elif described["EndpointConfigName"] == wanted:
                break
            else:
                described = self._update(client, inputs, described, deadline, progress)
        self._say(f"endpoint {name} is InService with {wanted}")
        if not progress.created:
            self._retag(client, described["EndpointArn"], tagged, inputs.tags)
        self._retire(session, inputs, {previous_config} if previous_config else set(), wanted)
        return {
            **asdict(inputs),
            "endpoint_arn": described["EndpointArn"],
            "endpoint_status": "InService",
        }

    def _recreate_once(
        self,
        client: Any,
        inputs: RolloutInputs,
        described: dict[str, Any],
        deadline: float,
        progress: _Progress,
    ) -> dict[str, Any] | None:
        """A failed endpoint is deleted to be created again, once."""
        name = inputs.endpoint_name
        reason = described.get("FailureReason", "no reason given")
        if progress.recreated:
            raise RolloutError(f"endpoint {name} failed again after being recreated: {reason}")
        self._say(f"endpoint {name} failed ({reason}); deleting it to recreate it once")
        client.delete_endpoint(EndpointName=name)
        progress.recreated = True
        return self._pause(client, inputs, {**described, "EndpointStatus": "Deleting"}, deadline)

    def _update(
        self,
        client: Any,
        inputs: RolloutInputs,
        described: dict[str, Any],
        deadline: float,
        progress: _Progress,
    ) -> dict[str, Any] | None:
        """Move an InService endpoint to the wanted config; an update already made that
        did not take means SageMaker rolled it back."""
        name, wanted = inputs.endpoint_name, inputs.endpoint_config_name
        active = described["EndpointConfigName"]
        if progress.update_marker is not None:
            if (
                not progress.update_observed
                and described.get("LastModifiedTime") == progress.update_marker
            ):
                # The update has not shown up in DescribeEndpoint yet.
                return self._pause(client, inputs, described, deadline)
            raise RolloutError(
                f"rollout of {wanted} to endpoint {name} failed and SageMaker rolled back: "
                f"{described.get('FailureReason', 'no reason given')}; "
                f"the endpoint still serves {active}"
            )
        self._say(f"updating endpoint {name}: {active} -> {wanted}")
        progress.update_marker = described.get("LastModifiedTime")
        client.update_endpoint(EndpointName=name, EndpointConfigName=wanted)
        return self._describe(client, name)

    @staticmethod
    def _retag(client: Any, arn: str, before: Mapping[str, str], after: Mapping[str, str]) -> None:
        """Tags changed (or an endpoint from before tags, or one adopted): at once, not at
        the next rollout. Tags someone else added are left alone."""
        added = {key: value for key, value in after.items() if before.get(key) != value}
        removed = [key for key in before if key not in after]
        if added:
            client.add_tags(ResourceArn=arn, Tags=_tag_list(added))
        if removed:
            client.delete_tags(ResourceArn=arn, TagKeys=removed)

    def _pause(
        self, client: Any, inputs: EndpointInputs, described: dict[str, Any], deadline: float
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

    def _check_deadline(self, inputs: EndpointInputs, status: str, deadline: float) -> None:
        if self._now() >= deadline:
            raise RolloutTimeoutError(
                f"endpoint {inputs.endpoint_name} is still {status} after "
                f"{inputs.timeout_seconds} s; SageMaker carries on: run `pulumi up` again to "
                "wait for it"
            )

    @staticmethod
    def _describe(client: Any, name: str) -> dict[str, Any] | None:
        try:
            return client.describe_endpoint(EndpointName=name)
        except ClientError as error:
            if _is_missing(error):
                return None
            raise

    # -- retiring what the endpoint no longer uses
    def _retire(
        self, session: Any, inputs: EndpointInputs, also: set[str], keep: str | None
    ) -> None:
        """Delete each config made for this endpoint (`ENDPOINT_TAG`), and each of `also`,
        that no endpoint uses, then the models only they used. What `keep` (the config now
        active) and any of them still in use read stays, and every archive. Best effort:
        the rollout itself is done, so a failure here is reported, never raised."""
        client = session.client("sagemaker")
        try:
            known: set[str | None] = {*also, keep}
            candidates = (self._own_configs(client, inputs, known) | also) - {keep}
            if not candidates:
                return
            in_use = self._configs_in_use(client, inputs)
            kept = (candidates & in_use) | ({keep} if keep else set())
            for config in sorted(candidates & in_use - {keep}):
                self._say(f"keeping endpoint config {config}: an endpoint still uses it")
            retiring = sorted(candidates - kept)
            if not retiring:
                return
            kept_models = set().union(*(self._config_models(client, c) for c in sorted(kept)))
            models: set[str] = set()
            for config in retiring:
                models |= self._config_models(client, config)
                self._gone_ok(partial(client.delete_endpoint_config, EndpointConfigName=config))
            for model in sorted(models - kept_models):
                self._gone_ok(partial(client.delete_model, ModelName=model))
            self._say(
                f"retired endpoint config {', '.join(retiring)} and models "
                f"{sorted(models - kept_models)}"
            )
        except ClientError as error:
            self._say(f"could not retire what endpoint {inputs.endpoint_name} used: {error}")

    @staticmethod
    def _own_configs(client: Any, inputs: EndpointInputs, known: set[str | None]) -> set[str]:
        """The configs tagged for this endpoint, besides those already `known`."""
        if not inputs.config_name_prefix:
            return set()
        own = set()
        pages = client.get_paginator("list_endpoint_configs").paginate(
            NameContains=inputs.config_name_prefix
        )
        for page in pages:
            for config in page["EndpointConfigs"]:
                if config["EndpointConfigName"] in known:
                    continue
                tags = client.list_tags(ResourceArn=config["EndpointConfigArn"])["Tags"]
                if {"Key": ENDPOINT_TAG, "Value": inputs.endpoint_name} in tags:
                    own.add(config["EndpointConfigName"])
        return own

    @staticmethod
    def _gone_ok(delete: Callable[[], Any]) -> None:
        """Run `delete`; something already gone is what it wanted."""
        try:
            delete()
        except ClientError as error:
            if not _is_missing(error):
                raise

    @staticmethod
    def _config_models(client: Any, config_name: str) -> set[str]:
        try:
            described = client.describe_endpoint_config(EndpointConfigName=config_name)
        except ClientError as error:
            if _is_missing(error):
                return set()
            raise
        return {variant["ModelName"] for variant in described["ProductionVariants"]}

    def _configs_in_use(self, client: Any, inputs: EndpointInputs) -> set[str]:
        """The configs of the endpoints that may use one made for this endpoint: those whose
        names contain the configs' name prefix (the stack's own, variants included; listed
        by name, not every endpoint of the region described)."""
        in_use = set()
        # Absent from state written before version 4: the endpoint's own name then.
        name_filter = inputs.config_name_prefix.rstrip("-") or inputs.endpoint_name
        pages = client.get_paginator("list_endpoints").paginate(NameContains=name_filter)
        for page in pages:
            for endpoint in page["Endpoints"]:
                # NameContains matches anywhere in the name; the stack's names start with it
                # (and the deploy role may describe only those).
                if not endpoint["EndpointName"].startswith(name_filter):
                    continue
                described = self._describe(client, endpoint["EndpointName"])
                if described is not None:
                    in_use.add(described["EndpointConfigName"])
        return in_use


class EndpointCleanupProvider(EndpointRolloutProvider):
    """Records the endpoint before any rollout attempt and tears it down on delete; create
    and update only check the account, so a wrong one fails before anything is made."""

    def diff(
        self, _id: str, olds: dict[str, Any], news: dict[str, Any]
    ) -> pulumi.dynamic.DiffResult:
        changed = [key for key in news if olds.get(key) != news.get(key)]
        replaces: list[str] = [key for key in ("endpoint_name", "region") if key in changed]
        return pulumi.dynamic.DiffResult(
            changes=bool(changed), replaces=replaces, delete_before_replace=False
        )

    def create(self, props: dict[str, Any]) -> pulumi.dynamic.CreateResult:
        inputs = EndpointInputs.from_props(props)
        self._session(inputs)
        return pulumi.dynamic.CreateResult(id_=inputs.endpoint_name, outs=props)

    def update(
        self, _id: str, olds: dict[str, Any], news: dict[str, Any]
    ) -> pulumi.dynamic.UpdateResult:
        self._session(EndpointInputs.from_props(news))
        return pulumi.dynamic.UpdateResult(outs=news)

    def read(self, id_: str, props: dict[str, Any]) -> pulumi.dynamic.ReadResult:
        return pulumi.dynamic.ReadResult(id_=id_, outs=props)


@dataclass
class EndpointCleanupArgs:
    endpoint_name: pulumi.Input[str]
    config_name_prefix: pulumi.Input[str]
    """The start of the name of every config made for the endpoint."""
    region: pulumi.Input[str]
    aws: pulumi.Input[Mapping[str, Any]]
    """The stack's AWS settings and account: `components.aws_session.provider_session`."""
    timeout_seconds: pulumi.Input[int] = 3600
    """How long deleting may wait for an operation under way, then for the deletion."""
    poll_seconds: pulumi.Input[int] = 15


class EndpointCleanup(pulumi.dynamic.Resource, module="endpoint_rollout", name="EndpointCleanup"):
    """Deletes the endpoint and what its rollouts made when it is deleted, even after a
    create that never reached the state. Create it before the `EndpointRollout`, and make
    the rollout depend on it, so destroy deletes the rollout first."""

    def __init__(
        self, name: str, args: EndpointCleanupArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(
            EndpointCleanupProvider(), name, {**vars(args), "version": PROVIDER_VERSION}, opts
        )


@dataclass
class EndpointRolloutArgs:
    endpoint_name: pulumi.Input[str]
    endpoint_config_name: pulumi.Input[str]
    """Changing it rolls the endpoint out to the new config."""
    config_name_prefix: pulumi.Input[str]
    """The start of the name of every config made for the endpoint (also tagged
    `ENDPOINT_TAG`): where failed rollouts' configs are looked for."""
    region: pulumi.Input[str]
    aws: pulumi.Input[Mapping[str, Any]]
    """The stack's AWS settings and account: `components.aws_session.provider_session`."""
    timeout_seconds: pulumi.Input[int] = 3600
    """Per create, update or delete; serverless rollouts take several minutes."""
    poll_seconds: pulumi.Input[int] = 15
    tags: pulumi.Input[Mapping[str, str]] | None = None
    """The endpoint's tags (the stack's); a change is applied in place, without a rollout."""


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
