"""`StaticSite`: the web UI in a private bucket behind CloudFront.

Only this distribution can read the bucket (Origin Access Control, and a bucket policy
conditioned on its ARN); viewers are sent to HTTPS and get HSTS, no-sniff, frame denial
and a Content-Security-Policy. `config.js` is not part of the static files: it is
rendered from stack outputs by `SiteConfigFile`.

The same distribution serves the HTTP API under `/api/*` (one origin: no CORS, and a CSP
of `connect-src 'self'`): never cached, every viewer header but `Host` forwarded, the
origin secret added as `x-origin-verify`, which CloudFront sets itself (a viewer's own
header of that name is overwritten), and every path put under the API's site stage (the
origin path, a secret: decision 13). Optionally the site has its own domain (an issued
ACM certificate, with alias records when its Route 53 zone is given) and a WAF web ACL.
"""

import hashlib
import mimetypes
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import NotRequired, TypedDict

import pulumi
import pulumi_aws as aws

from components.aws_session import AwsSessionSettings, provider_session
from components.cloudfront_invalidation import CloudFrontInvalidation, CloudFrontInvalidationArgs
from components.deployables import SITE_DIR
from components.private_bucket import PrivateBucket, PrivateBucketArgs, tls_only_bucket_policy
from hosting.content_security_policy import content_security_policy
from hosting.origin import API_PATH, CONNECT_SRC
from shared.api import ORIGIN_HEADER

TYPE = "image-classifier:static_site:StaticSite"
CACHING_OPTIMIZED_POLICY_ID = "658327ea-f89d-4fab-a63d-7e88639e58f6"
"""AWS managed cache policy: honours the objects' Cache-Control, compresses gzip and br."""
CACHING_DISABLED_POLICY_ID = "4135ea2d-6df8-44a3-9df3-4b5a84be39ad"
"""AWS managed cache policy `CachingDisabled`: every API request goes to the API."""
ALL_VIEWER_EXCEPT_HOST_POLICY_ID = "b689b0a8-53d0-40ab-baf2-68738e2966ac"
"""AWS managed origin request policy `AllViewerExceptHostHeader`: the API gets every viewer
header, query string and cookie, and a `Host` of its own (API Gateway routes by it), plus
CloudFront's own headers for the protocol, HTTP and TLS versions, device type and viewer
location, `CloudFront-Viewer-Address` (the visitor's `ip:port`, which the proxy logs) among
them (CloudFront Developer Guide, "Use managed origin request policies" and "Add CloudFront
request headers"). A custom policy could not do both: `allViewerAndWhitelistCloudFront`
also forwards the viewer's `Host`, which API Gateway refuses."""
API_ORIGIN_READ_TIMEOUT_SECONDS = 60
"""How long CloudFront waits for the API's answer: above API Gateway's 30 s integration
limit, so whatever answers (the proxy's JSON, or API Gateway's own 503 at 30 s) reaches the
visitor instead of CloudFront's HTML 504 at its default 30 s. 60 s is CloudFront's most
without a quota increase (decision 6)."""
API_METHODS = ["GET", "HEAD", "OPTIONS", "PUT", "POST", "PATCH", "DELETE"]
"""CloudFront's "all methods": the API, not CloudFront, answers each (405 or 404)."""
MINIMUM_PROTOCOL_VERSION = "TLSv1.2_2021"
"""The oldest TLS a viewer of the custom domain may use (TLS 1.2 with strong ciphers)."""
PRICE_CLASSES = ("PriceClass_100", "PriceClass_200", "PriceClass_All")
PRICE_CLASS = "PriceClass_100"
"""The default: the cheapest edges (North America, Europe, Israel)."""
HTML_CACHE_CONTROL = "no-cache"
"""HTML revalidates on every visit, so a deployment shows up at once."""
ASSET_CACHE_CONTROL = "public, max-age=86400"
"""Scripts, styles and images: a day. Their names carry no content hash, so a year would
pin old code in browsers."""
GENERATED_FILES = frozenset({"config.js"})
"""Never uploaded from `site/`: `SiteConfigFile` writes them per stack."""

CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".webmanifest": "application/manifest+json",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".webp": "image/webp",
    ".ico": "image/x-icon",
    ".woff2": "font/woff2",
    ".txt": "text/plain; charset=utf-8",
}


def price_class_problem(price_class: str) -> str | None:
    """Why CloudFront would refuse `price_class`; None when it is one of its classes."""
    if price_class in PRICE_CLASSES:
        return None
    return f"must be one of {', '.join(PRICE_CLASSES)}"


def content_type(path: Path) -> str:
    """The type browsers need (module scripts and `nosniff` refuse a wrong one)."""
    known = CONTENT_TYPES.get(path.suffix.lower())
    return known or mimetypes.guess_type(path.name)[0] or "application/octet-stream"


def site_files(site_dir: Path) -> list[Path]:
    """Every file to upload, as paths relative to `site_dir`, in a stable order."""
    relative = (path.relative_to(site_dir) for path in site_dir.rglob("*") if path.is_file())
    return sorted(
        path
        for path in relative
        if not any(part.startswith(".") or part == "__pycache__" for part in path.parts)
        and path.as_posix() not in GENERATED_FILES
    )


def site_content_hash(site_dir: Path) -> str:
    """One hash over every uploaded file's name and bytes."""
    digest = hashlib.sha256()
    for relative in site_files(site_dir):
        content = hashlib.sha256((site_dir / relative).read_bytes()).hexdigest()
        digest.update(f"{relative.as_posix()}\0{content}\n".encode())
    return digest.hexdigest()


def site_paths(site_dir: Path) -> list[str]:
    """The URL paths of the uploaded files, plus `/`, which CloudFront caches apart from
    the default root object."""
    return ["/", *(f"/{relative.as_posix()}" for relative in site_files(site_dir))]


# The args are plain dicts (`TypedDict`s): the component provider passes them so to a
# program in another language, and infers its schema from these annotations at run time
# (so no annotations from `__future__` in this module).
class ApiOrigin(TypedDict):
    """The HTTP API the distribution serves under `/api/*` (`ProxyApi`'s outputs)."""

    domain_name: pulumi.Input[str]
    """Its host, `<id>.execute-api.<region>.amazonaws.com`."""
    origin_secret: pulumi.Input[str]
    """Sent on every request forwarded to it, as `x-origin-verify` (keep it a Pulumi secret)."""
    origin_path: NotRequired[pulumi.Input[str] | None]
    """Put before every forwarded path: `/<site stage>`, the API's stage only CloudFront
    knows (keep it a Pulumi secret). Left out: the API's root (`$default`)."""
    admitted_by: NotRequired[Sequence[aws.lambda_.Function]]
    """What must admit `origin_secret` before the distribution sends it (the proxy, whose
    environment holds the secrets): the distribution is updated only after them."""


class SiteDomain(TypedDict):
    """The site's own domain name."""

    name: str
    """The name, e.g. `classify.example.com`."""
    certificate_arn: pulumi.Input[str]
    """An issued ACM certificate for `name`, in us-east-1 (`SiteCertificate`)."""
    hosted_zone_id: NotRequired[str | None]
    """Its Route 53 hosted zone: `A` and `AAAA` alias records to the distribution are
    created there. Left out, the operator points the name at `domain_name`."""


class StaticSiteArgs(TypedDict):
    api: ApiOrigin
    """The API served under `/api/*`."""
    site_dir: NotRequired[str]
    """The folder of static files to serve (no `config.js`: `SiteConfigFile` writes it).
    Left out: the image classifier's own page."""
    domain: NotRequired[SiteDomain | None]
    """Left out: the site is served at the distribution's own `*.cloudfront.net` name."""
    web_acl_arn: NotRequired[pulumi.Input[str] | None]
    """A CLOUDFRONT-scope WAF web ACL to put in front of the site and the API."""
    price_class: NotRequired[pulumi.Input[str]]
    """One of `PRICE_CLASSES` (by default `PRICE_CLASS`)."""
    html_cache_control: NotRequired[str]
    """The `Cache-Control` of HTML files (by default `HTML_CACHE_CONTROL`)."""
    asset_cache_control: NotRequired[str]
    """The `Cache-Control` of every other file (by default `ASSET_CACHE_CONTROL`)."""
    security_headers: NotRequired[bool]
    """HSTS, nosniff, frame denial and the CSP, on by default. Only an emulator test stack
    (moto has no response headers policies) turns them off, and a warning says so."""
    aws_session: NotRequired[AwsSessionSettings]
    """How the invalidation reaches AWS: as the AWS provider does (left out: the default
    credential chain)."""
    tags: NotRequired[pulumi.Input[Mapping[str, str]]]
    """Tags of every resource that takes them."""


class StaticSite(pulumi.ComponentResource):
    """The web UI in a private S3 bucket behind CloudFront (Origin Access Control, security
    headers), with the HTTP API served under `/api/*` of the same origin."""

    url: pulumi.Output[str]
    """Where the site is: `https://` and its own domain, or the distribution's."""
    domain_name: pulumi.Output[str]
    """The distribution's `*.cloudfront.net` name (what a domain of its own points at)."""
    distribution_id: pulumi.Output[str]
    """The CloudFront distribution's id."""
    bucket_name: pulumi.Output[str]
    """The private bucket of the site's files."""

    def __init__(
        self, name: str, args: StaticSiteArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(TYPE, name, None, opts)
        bucket = PrivateBucket(
            f"{name}-bucket",
            # Holds only files this stack uploads (and can upload again).
            PrivateBucketArgs(force_destroy=True, tags=args.get("tags")),
            opts=pulumi.ResourceOptions(parent=self),
        )
        distribution = self._distribution(name, args, bucket)
        self._grant_reads(name, bucket, distribution)
        self._upload_site(name, args, bucket, distribution)
        domain = args.get("domain")
        zone = domain.get("hosted_zone_id") if domain is not None else None
        if domain is not None and zone is not None:
            self._alias_records(name, domain["name"], zone, distribution)

        self.domain_name = distribution.domain_name
        self.url = (
            pulumi.Output.from_input(f"https://{domain['name']}")
            if domain is not None
            else pulumi.Output.concat("https://", distribution.domain_name)
        )
        self.distribution_id = distribution.id
        self.bucket_name = bucket.name
        self.register_outputs(
            {
                "url": self.url,
                "distribution_id": self.distribution_id,
                "bucket_name": self.bucket_name,
            }
        )

    def _security_headers(self, name: str) -> pulumi.Output[str]:
        """The response headers policy: HSTS, nosniff, frame denial and the CSP."""
        return aws.cloudfront.ResponseHeadersPolicy(
            f"{name}-security-headers",
            comment=f"{name}: HSTS, nosniff, frame denial, CSP",
            security_headers_config={
                "strict_transport_security": {
                    "access_control_max_age_sec": 63072000,
                    "include_subdomains": True,
                    "override": True,
                },
                "content_type_options": {"override": True},
                "frame_options": {"frame_option": "DENY", "override": True},
                "referrer_policy": {
                    "referrer_policy": "strict-origin-when-cross-origin",
                    "override": True,
                },
                "content_security_policy": {
                    "content_security_policy": content_security_policy(CONNECT_SRC),
                    "override": True,
                },
            },
            opts=pulumi.ResourceOptions(parent=self),
        ).id

    def _distribution(
        self, name: str, args: StaticSiteArgs, bucket: PrivateBucket
    ) -> aws.cloudfront.Distribution:
        """CloudFront in front of the bucket (read with OAC) and of the API under /api."""
        access_control = aws.cloudfront.OriginAccessControl(
            f"{name}-oac",
            description=f"{name}: CloudFront reads the site bucket with SigV4",
            origin_access_control_origin_type="s3",
            signing_behavior="always",
            signing_protocol="sigv4",
            opts=pulumi.ResourceOptions(parent=self),
        )
        headers_policy_id: pulumi.Input[str] | None = None
        if args.get("security_headers", True):
            headers_policy_id = self._security_headers(name)
        else:
            pulumi.log.warn(
                "StaticSite without its response headers policy: no HSTS, nosniff, frame "
                "denial or CSP. Only emulator test stacks may do this; never a real stack.",
                resource=self,
            )
        domain = args.get("domain")
        viewer_certificate: aws.cloudfront.DistributionViewerCertificateArgsDict = {
            "cloudfront_default_certificate": True
        }
        if domain is not None:
            viewer_certificate = {
                "acm_certificate_arn": domain["certificate_arn"],
                "ssl_support_method": "sni-only",
                "minimum_protocol_version": MINIMUM_PROTOCOL_VERSION,
            }
        return aws.cloudfront.Distribution(
            f"{name}-cdn",
            comment=f"{name}: image classifier web UI",
            enabled=True,
            is_ipv6_enabled=True,
            http_version="http2and3",
            price_class=args.get("price_class", PRICE_CLASS),
            default_root_object="index.html",
            aliases=[domain["name"]] if domain is not None else None,
            web_acl_id=args.get("web_acl_arn"),
            origins=_origins(bucket, access_control, args["api"]),
            default_cache_behavior=_site_behavior(headers_policy_id),
            ordered_cache_behaviors=[_api_behavior(headers_policy_id)],
            restrictions={"geo_restriction": {"restriction_type": "none"}},
            viewer_certificate=viewer_certificate,
            tags=args.get("tags"),
            opts=pulumi.ResourceOptions(
                parent=self, depends_on=list(args["api"].get("admitted_by", ()))
            ),
        )

    def _grant_reads(
        self, name: str, bucket: PrivateBucket, distribution: aws.cloudfront.Distribution
    ) -> None:
        """The bucket policy: TLS only, and reads by this distribution only."""
        tls_only_bucket_policy(
            f"{name}-bucket-policy",
            bucket,
            grants=pulumi.Output.all(bucket.arn, distribution.arn).apply(
                lambda arns: [
                    {
                        "Sid": "AllowThisDistributionOnly",
                        "Effect": "Allow",
                        "Principal": {"Service": "cloudfront.amazonaws.com"},
                        "Action": "s3:GetObject",
                        "Resource": f"{arns[0]}/*",
                        "Condition": {"StringEquals": {"AWS:SourceArn": arns[1]}},
                    }
                ]
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _upload_site(
        self,
        name: str,
        args: StaticSiteArgs,
        bucket: PrivateBucket,
        distribution: aws.cloudfront.Distribution,
    ) -> None:
        """Each site file as an object, then one invalidation when any of them changed."""
        site_dir = Path(args["site_dir"]) if "site_dir" in args else SITE_DIR
        uploaded = []
        for relative in site_files(site_dir):
            key = relative.as_posix()
            uploaded.append(
                aws.s3.BucketObjectv2(
                    f"{name}-file-{key}",
                    bucket=bucket.name,
                    key=key,
                    source=pulumi.FileAsset(str(site_dir / relative)),
                    content_type=content_type(relative),
                    cache_control=(
                        args.get("html_cache_control", HTML_CACHE_CONTROL)
                        if relative.suffix == ".html"
                        else args.get("asset_cache_control", ASSET_CACHE_CONTROL)
                    ),
                    opts=pulumi.ResourceOptions(parent=self, depends_on=[bucket]),
                )
            )
        # Edges keep assets for their max-age; a deployment that changes a site file
        # invalidates the site's paths once, so nobody waits a day for new code.
        CloudFrontInvalidation(
            f"{name}-files-invalidation",
            CloudFrontInvalidationArgs(
                distribution_id=distribution.id,
                content_hash=site_content_hash(site_dir),
                paths=site_paths(site_dir),
                aws=provider_session(self, args.get("aws_session", AwsSessionSettings())),
            ),
            opts=pulumi.ResourceOptions(parent=self, depends_on=uploaded),
        )

    def _alias_records(
        self,
        name: str,
        domain_name: str,
        hosted_zone_id: pulumi.Input[str],
        distribution: aws.cloudfront.Distribution,
    ) -> None:
        """The site's own name, IPv4 and IPv6, as aliases of the distribution."""
        for record_type in ("A", "AAAA"):
            aws.route53.Record(
                f"{name}-alias-{record_type.lower()}",
                zone_id=hosted_zone_id,
                name=domain_name,
                type=record_type,
                aliases=[
                    {
                        "name": distribution.domain_name,
                        "zone_id": distribution.hosted_zone_id,
                        "evaluate_target_health": False,
                    }
                ],
                opts=pulumi.ResourceOptions(parent=self),
            )


_SITE_ORIGIN_ID = "site-bucket"
_API_ORIGIN_ID = "http-api"


def _origins(
    bucket: PrivateBucket, access_control: aws.cloudfront.OriginAccessControl, api: ApiOrigin
) -> list[aws.cloudfront.DistributionOriginArgsDict]:
    return [
        {
            "origin_id": _SITE_ORIGIN_ID,
            "domain_name": bucket.regional_domain_name,
            "origin_access_control_id": access_control.id,
        },
        {
            "origin_id": _API_ORIGIN_ID,
            "domain_name": api["domain_name"],
            "origin_path": api.get("origin_path"),
            "custom_origin_config": {
                "http_port": 80,
                "https_port": 443,
                "origin_protocol_policy": "https-only",
                "origin_ssl_protocols": ["TLSv1.2"],
                "origin_read_timeout": API_ORIGIN_READ_TIMEOUT_SECONDS,
            },
            "custom_headers": [{"name": ORIGIN_HEADER, "value": api["origin_secret"]}],
        },
    ]


def _site_behavior(
    headers_policy_id: pulumi.Input[str] | None,
) -> aws.cloudfront.DistributionDefaultCacheBehaviorArgsDict:
    return {
        "target_origin_id": _SITE_ORIGIN_ID,
        "viewer_protocol_policy": "redirect-to-https",
        "allowed_methods": ["GET", "HEAD"],
        "cached_methods": ["GET", "HEAD"],
        "compress": True,
        "cache_policy_id": CACHING_OPTIMIZED_POLICY_ID,
        "response_headers_policy_id": headers_policy_id,
    }


def _api_behavior(
    headers_policy_id: pulumi.Input[str] | None,
) -> aws.cloudfront.DistributionOrderedCacheBehaviorArgsDict:
    return {
        "path_pattern": f"{API_PATH}/*",
        "target_origin_id": _API_ORIGIN_ID,
        # Not a redirect: a client would follow it with a GET and lose the image.
        "viewer_protocol_policy": "https-only",
        "allowed_methods": API_METHODS,
        "cached_methods": ["GET", "HEAD"],
        # Answers are small JSON, and CachingDisabled turns compression off anyway.
        "compress": False,
        "cache_policy_id": CACHING_DISABLED_POLICY_ID,
        "origin_request_policy_id": ALL_VIEWER_EXCEPT_HOST_POLICY_ID,
        "response_headers_policy_id": headers_policy_id,
    }
