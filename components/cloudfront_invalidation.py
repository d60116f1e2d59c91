"""`CloudFrontInvalidation`: a dynamic provider that invalidates paths in CloudFront when
the content behind them changes (`config.js` in `SiteConfigFile`, every site file in
`StaticSite`).

Only the content's hash is an input that triggers work, so a `pulumi up` that does not
change the content creates no invalidation (they are billed beyond the free
tier, and each takes minutes). Deleting the resource does nothing: an invalidation
cannot be undone and needs no cleanup.

Its session follows the stack's AWS settings and refuses any account but the stack's
(the `aws` input, `components.aws_session`).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi.dynamic

from components.aws_session import checked_session

PROVIDER_VERSION = "3"
"""Bump when the provider's behaviour changes, so every stack picks the new code up.
2: the provider moved here from `components/config_invalidation.py`; the update that the
bump causes rewrites the module path pickled in each stack's state (see that module).
3: the session follows the stack's AWS settings and account (the `aws` input)."""

PREVIOUS_TYPE = "pulumi-python:dynamic/config_invalidation:ConfigInvalidation"
"""The type these resources were created with before the rename; an alias keeps them."""

TRIGGERS = ("distribution_id", "paths", "content_hash")
"""Inputs whose change means viewers may hold a stale copy."""


class InvalidationTimeoutError(Exception):
    """CloudFront had not finished the invalidation when the timeout ran out."""


class CloudFrontInvalidationProvider(pulumi.dynamic.ResourceProvider):
    def __init__(
        self,
        session_factory: Callable[[Mapping[str, Any]], Any] | None = None,
        sleep: Callable[[float], None] | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        super().__init__()
        self._session_factory = session_factory
        self._sleep = sleep
        self._clock = clock

    def _client(self, props: Mapping[str, Any]) -> Any:
        return (self._session_factory or checked_session)(props["aws"]).client("cloudfront")

    def diff(
        self, _id: str, olds: dict[str, Any], news: dict[str, Any]
    ) -> pulumi.dynamic.DiffResult:
        keys = (*TRIGGERS, "wait", "timeout_seconds", "poll_seconds", "version", "aws")
        return pulumi.dynamic.DiffResult(
            changes=any(olds.get(key) != news.get(key) for key in keys)
        )

    def create(self, props: dict[str, Any]) -> pulumi.dynamic.CreateResult:
        invalidation_id = self._invalidate(props)
        return pulumi.dynamic.CreateResult(
            id_=invalidation_id, outs={**props, "invalidation_id": invalidation_id}
        )

    def update(
        self, _id: str, olds: dict[str, Any], news: dict[str, Any]
    ) -> pulumi.dynamic.UpdateResult:
        if all(olds.get(key) == news.get(key) for key in TRIGGERS):
            return pulumi.dynamic.UpdateResult(
                outs={**news, "invalidation_id": olds.get("invalidation_id")}
            )
        return pulumi.dynamic.UpdateResult(outs={**news, "invalidation_id": self._invalidate(news)})

    def delete(self, _id: str, _props: dict[str, Any]) -> None:
        return None

    def _invalidate(self, props: dict[str, Any]) -> str:
        client = self._client(props)
        paths = list(props["paths"])
        # Unique per call: CloudFront answers a reused reference with the old invalidation,
        # which would skip a change back to earlier content.
        reference = f"pulumi-{str(props['content_hash'])[:16]}-{uuid.uuid4().hex[:12]}"
        created = client.create_invalidation(
            DistributionId=props["distribution_id"],
            InvalidationBatch={
                "Paths": {"Quantity": len(paths), "Items": paths},
                "CallerReference": reference,
            },
        )
        invalidation_id = created["Invalidation"]["Id"]
        if props.get("wait"):
            self._wait_for(client, props, invalidation_id)
        return invalidation_id

    def _wait_for(self, client: Any, props: dict[str, Any], invalidation_id: str) -> None:
        clock, sleep = self._clock or time.monotonic, self._sleep or time.sleep
        timeout = int(props["timeout_seconds"])
        deadline = clock() + timeout
        while True:
            got = client.get_invalidation(
                DistributionId=props["distribution_id"], Id=invalidation_id
            )
            # CloudFront says "Completed"; emulators (moto) say "COMPLETED".
            if got["Invalidation"]["Status"].lower() == "completed":
                return
            if clock() >= deadline:
                raise InvalidationTimeoutError(
                    f"CloudFront invalidation {invalidation_id} of {props['paths']} is still "
                    f"{got['Invalidation']['Status']} after {timeout} s; it will finish on its "
                    "own"
                )
            sleep(max(1, int(props["poll_seconds"])))


@dataclass
class CloudFrontInvalidationArgs:
    distribution_id: pulumi.Input[str]
    content_hash: pulumi.Input[str]
    """Hash of the content behind `paths`; a change triggers the invalidation."""
    paths: Sequence[str]
    aws: pulumi.Input[Mapping[str, Any]]
    """The stack's AWS settings and account: `components.aws_session.provider_session`."""
    wait: pulumi.Input[bool] = False
    """Wait for CloudFront to finish (a few minutes) before the deployment completes."""
    timeout_seconds: pulumi.Input[int] = 900
    poll_seconds: pulumi.Input[int] = 10


class CloudFrontInvalidation(
    pulumi.dynamic.Resource, module="cloudfront_invalidation", name="CloudFrontInvalidation"
):
    """A CloudFront invalidation of `paths`, made again whenever `content_hash` changes."""

    invalidation_id: pulumi.Output[str]

    def __init__(
        self,
        name: str,
        args: CloudFrontInvalidationArgs,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__(
            CloudFrontInvalidationProvider(),
            name,
            {
                **vars(args),
                "paths": list(args.paths),
                "version": PROVIDER_VERSION,
                "invalidation_id": None,
            },
            pulumi.ResourceOptions.merge(
                opts, pulumi.ResourceOptions(aliases=[pulumi.Alias(type_=PREVIOUS_TYPE)])
            ),
        )
