"""`SiteConfigFile`: the site's `config.js`, rendered from stack outputs, published last.

It is separate from `StaticSite` because it changes on its own schedule: with every model
version, while the site's files change with `site/`. It is uploaded once the distribution
exists, and its CloudFront invalidation runs only when the rendered text changed.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from components.aws_session import AwsSessionSettings, provider_session
from components.cloudfront_invalidation import CloudFrontInvalidation, CloudFrontInvalidationArgs
from hosting.config_js import SiteConfig, render_config_js

TYPE = "image-classifier:site_config_file:SiteConfigFile"
KEY = "config.js"


@dataclass
class SiteConfigFileArgs:
    bucket_name: pulumi.Input[str]
    distribution_id: pulumi.Input[str]
    api_url: pulumi.Input[str]
    environment: pulumi.Input[str]
    model_version: pulumi.Input[str]
    wait_for_invalidation: pulumi.Input[bool] = False
    aws_session: AwsSessionSettings = field(default_factory=AwsSessionSettings)
    """How the invalidation reaches AWS: the stack's AWS provider settings."""


class SiteConfigFile(pulumi.ComponentResource):
    content: pulumi.Output[str]
    """The text of `config.js` as uploaded."""

    def __init__(
        self, name: str, args: SiteConfigFileArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(TYPE, name, None, opts)
        self.content = pulumi.Output.all(args.api_url, args.environment, args.model_version).apply(
            lambda values: render_config_js(SiteConfig(*values))
        )
        uploaded = aws.s3.BucketObjectv2(
            f"{name}-object",
            bucket=args.bucket_name,
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
                distribution_id=args.distribution_id,
                content_hash=self.content.apply(
                    lambda text: hashlib.sha256(text.encode()).hexdigest()
                ),
                paths=[f"/{KEY}"],
                aws=provider_session(self, args.aws_session),
                wait=args.wait_for_invalidation,
            ),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[uploaded]),
        )
        self.register_outputs({"content": self.content})
