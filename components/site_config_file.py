"""`SiteConfigFile`: the site's `config.js`, rendered from stack outputs, published last.

It is separate from `StaticSite` because it changes on its own schedule: with every model
version, while the site's files change with `site/`. It is uploaded once the distribution
exists, and its CloudFront invalidation runs only when the rendered text changed.

Its args carry every field of `hosting.config_js.SiteConfig` under the same name, so the
file has the same keys as the local runtime's (tests/infra/test_site_config.py).
"""

import hashlib
from collections.abc import Sequence
from dataclasses import fields
from typing import NotRequired, TypedDict

import pulumi
import pulumi_aws as aws

from artifact.metadata import RANDOM
from components.aws_session import AwsSessionSettings, provider_session
from components.cloudfront_invalidation import CloudFrontInvalidation, CloudFrontInvalidationArgs
from hosting.config_js import SiteConfig, render_config_js

TYPE = "image-classifier:site_config_file:SiteConfigFile"
KEY = "config.js"


# A plain dict (`TypedDict`): the component provider passes it so to a program in another
# language, and infers its schema from these annotations at run time (so no annotations
# from `__future__` in this module).
class SiteConfigFileArgs(TypedDict):
    bucket_name: pulumi.Input[str]
    """The site's bucket (`StaticSite`'s `bucket_name`)."""
    distribution_id: pulumi.Input[str]
    """Its distribution, which the new file is invalidated in."""
    api_url: pulumi.Input[str]
    """Where the page calls the API: `/api` on the site's own origin (`StaticSite`), or an
    http(s) URL."""
    environment: pulumi.Input[str]
    """The stack's name, which the page logs."""
    model_version: pulumi.Input[str]
    """The served model's version (`InferenceEndpoint`'s `model_version`)."""
    model_weights: pulumi.Input[str]
    """The weights id the page is told (`weights_shown`): `random` shows its untrained notice."""
    wait_for_invalidation: NotRequired[pulumi.Input[bool]]
    """Wait until CloudFront has dropped the old file (off by default)."""
    aws_session: NotRequired[AwsSessionSettings]
    """How the invalidation reaches AWS: as the AWS provider does (left out: the default
    credential chain)."""


def weights_shown(served: Sequence[tuple[float, str]]) -> str:
    """The weights id `config.js` gives the page, from each variant's `(weight, weights id)`,
    `main` first: `random` when any variant that takes requests serves random weights (the
    visitor may get its answer, and cannot know which variant answers), else the weights of
    the first that takes requests (`main`, unless it is held at weight 0). Each answer still
    names the model that gave it, and the page notes an untrained one under it."""
    taking = [weights for weight, weights in served if weight > 0]
    return RANDOM if RANDOM in taking else taking[0]


class SiteConfigFile(pulumi.ComponentResource):
    """The site's `config.js`, rendered from the deployment's outputs (where the API is,
    which model answers), uploaded to the site's bucket and invalidated when it changes."""

    content: pulumi.Output[str]
    """The text of `config.js` as uploaded."""

    def __init__(
        self, name: str, args: SiteConfigFileArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(TYPE, name, None, opts)
        names = [item.name for item in fields(SiteConfig)]
        self.content = pulumi.Output.all(*(args[name] for name in names)).apply(  # type: ignore[literal-required]
            lambda values: render_config_js(SiteConfig(**dict(zip(names, values, strict=True))))
        )
        uploaded = aws.s3.BucketObjectv2(
            f"{name}-object",
            bucket=args["bucket_name"],
            key=KEY,
            content=self.content,
            content_type="text/javascript; charset=utf-8",
            # Read on every page load: a stale copy would point the UI at an old API.
            cache_control="no-store",
            opts=pulumi.ResourceOptions(parent=self),
        )
        CloudFrontInvalidation(
            f"{name}-invalidation",
            CloudFrontInvalidationArgs(
                distribution_id=args["distribution_id"],
                content_hash=self.content.apply(
                    lambda text: hashlib.sha256(text.encode()).hexdigest()
                ),
                paths=[f"/{KEY}"],
                aws=provider_session(self, args.get("aws_session", AwsSessionSettings())),
                wait=args.get("wait_for_invalidation", False),
            ),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[uploaded]),
        )
        self.register_outputs({"content": self.content})
