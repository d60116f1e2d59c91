"""A private S3 bucket with every safe default, shared by the model artifacts and the site.

`PrivateBucket` owns the bucket and its settings; its policy comes from
`tls_only_bucket_policy`, a separate step because a grant may name a resource that
itself needs the bucket first (the site's CloudFront distribution).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_aws as aws

from components.iam_policy import policy_document

TYPE = "image-classifier:private_bucket:PrivateBucket"


@dataclass
class PrivateBucketArgs:
    force_destroy: bool = False
    """Let `pulumi destroy` empty the bucket (every version). Only for buckets whose whole
    content the stack uploads itself and can upload again."""
    noncurrent_version_days: int = 90
    """Days a replaced object version is kept (for recovery) before it expires."""
    expirations: Mapping[str, int] = field(default_factory=dict)
    """Key prefix -> days after which its objects expire (a delete marker; the version
    then goes as any replaced one). Empty by default: most buckets keep what they hold."""
    tags: pulumi.Input[Mapping[str, str]] | None = None


class PrivateBucket(pulumi.ComponentResource):
    """Owner-enforced (no ACLs), every public access blocked, SSE-S3 encrypted, versioned."""

    bucket: aws.s3.Bucket
    arn: pulumi.Output[str]
    name: pulumi.Output[str]
    regional_domain_name: pulumi.Output[str]

    def __init__(
        self, name: str, args: PrivateBucketArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(TYPE, name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.bucket = aws.s3.Bucket(
            name, force_destroy=args.force_destroy, tags=args.tags, opts=child
        )
        aws.s3.BucketOwnershipControls(
            f"{name}-ownership",
            bucket=self.bucket.id,
            rule={"object_ownership": "BucketOwnerEnforced"},
            opts=child,
        )
        aws.s3.BucketPublicAccessBlock(
            f"{name}-public-access",
            bucket=self.bucket.id,
            block_public_acls=True,
            block_public_policy=True,
            ignore_public_acls=True,
            restrict_public_buckets=True,
            opts=child,
        )
        aws.s3.BucketServerSideEncryptionConfiguration(
            f"{name}-encryption",
            bucket=self.bucket.id,
            rules=[
                {
                    "apply_server_side_encryption_by_default": {"sse_algorithm": "AES256"},
                    "bucket_key_enabled": True,
                }
            ],
            opts=child,
        )
        versioning = aws.s3.BucketVersioning(
            f"{name}-versioning",
            bucket=self.bucket.id,
            versioning_configuration={"status": "Enabled"},
            opts=child,
        )
        rules: list[aws.s3.BucketLifecycleConfigurationRuleArgsDict] = [
            {
                "id": "expire-replaced-versions",
                "status": "Enabled",
                "filter": {},
                "noncurrent_version_expiration": {"noncurrent_days": args.noncurrent_version_days},
                "abort_incomplete_multipart_upload": {"days_after_initiation": 7},
            }
        ]
        rules += [
            {
                "id": f"expire-{prefix.strip('/')}",
                "status": "Enabled",
                "filter": {"prefix": prefix},
                "expiration": {"days": days},
            }
            for prefix, days in sorted(args.expirations.items())
        ]
        aws.s3.BucketLifecycleConfiguration(
            f"{name}-lifecycle",
            bucket=self.bucket.id,
            rules=rules,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[versioning]),
        )
        self.arn = self.bucket.arn
        self.name = self.bucket.id
        self.regional_domain_name = self.bucket.bucket_regional_domain_name
        self.register_outputs({"arn": self.arn, "name": self.name})


def secure_transport_statement(bucket_arn: str) -> dict[str, Any]:
    return {
        "Sid": "DenyInsecureTransport",
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:*",
        "Resource": [bucket_arn, f"{bucket_arn}/*"],
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    }


def tls_only_bucket_policy(
    name: str,
    bucket: PrivateBucket,
    grants: pulumi.Input[Sequence[Mapping[str, Any]]] = (),
    opts: pulumi.ResourceOptions | None = None,
) -> aws.s3.BucketPolicy:
    """The bucket's one policy: plain HTTP refused for everyone, plus the given grants."""
    document = pulumi.Output.all(bucket.arn, grants).apply(
        lambda values: policy_document(secure_transport_statement(values[0]), *values[1])
    )
    # The public access block must exist first, or S3 may judge the policy on its own.
    return aws.s3.BucketPolicy(
        name,
        bucket=bucket.name,
        policy=document,
        opts=pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(depends_on=[bucket])),
    )
