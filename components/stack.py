"""The image-classifier stack: settings -> components -> outputs -> the site's config.js.

ServingImage        serving/Dockerfile -> BuildKit -> private ECR (or config `imageUri`)
InferenceEndpoint   model archive -> S3 -> SageMaker model (that image) -> Serverless endpoint,
                    one per model variant (config `model`; `main` alone by default)
PredictionsTable    DynamoDB: each prediction and users' feedback on it
ProxyApi            HTTP API POST /api/predict -> Lambda proxy -> the variants' endpoints
SiteCertificate     ACM certificate for the site's own domain (config `domainName`)
WebFirewall         WAF web ACL in front of CloudFront (config `waf`)
StaticSite          site/ -> private S3 -> CloudFront (OAC, security headers), /api/* -> ProxyApi
SiteConfigFile      config.js from the outputs above, invalidated when it changes
Monitoring          alarms to an SNS topic and one dashboard (config `monitoring`)
BatchPipeline       s3 inbox/ -> EventBridge -> Step Functions -> batch Lambdas -> results/,
                    review/ (SNS) or failed/ (config `batch`); and the role of SageMaker
                    Batch Transform jobs over the bucket (`python -m batch run --on sagemaker`)

`build` composes the components from plain settings, so tests run it under Pulumi's
mocks with any settings; `deploy` is what the engine runs (`__main__.py`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

import pulumi

from components.batch_pipeline import BatchPipeline, BatchPipelineArgs
from components.deployables import LAMBDA_PACKAGES_DIR, SERVING_CONTEXT
from components.inference_endpoint import (
    ArtifactBucket,
    InferenceEndpoint,
    InferenceEndpointArgs,
    ServerlessCapacity,
    check_model_memory,
)
from components.model_archive import ModelArchive, RegistryVersion, read_model_archive
from components.model_variants import MAIN, VariantSettings, endpoint_name
from components.monitoring import Monitoring, MonitoringArgs
from components.predictions_table import PredictionsTable, PredictionsTableArgs
from components.proxy_api import EndpointVariant, ProxyApi, ProxyApiArgs
from components.serving_image import ServingImage, ServingImageArgs
from components.site_certificate import SiteCertificate, SiteCertificateArgs
from components.site_config_file import SiteConfigFile, SiteConfigFileArgs, weights_shown
from components.stack_config import StackSettings, config_error, config_keys, load_settings
from components.static_site import ApiOrigin, SiteDomain, StaticSite, StaticSiteArgs
from components.transform_role import TransformAccess
from components.web_firewall import WebFirewall, WebFirewallArgs
from hosting.origin import API_PATH


@dataclass(frozen=True)
class StackOutputs:
    """What the stack exports, in this order; those defaulting to None only where the stack
    has them."""

    site_url: pulumi.Output[str]
    """`https://<domainName>` once the site is served there, else its CloudFront address."""
    api_url: pulumi.Output[str]
    """`<site_url>/api`: what the page and programs call (`{api_url}/predict`)."""
    execute_api_url: pulumi.Output[str]
    """The HTTP API's own URL with `/api` (its direct stage): programs with an API key, on a
    throttle budget of their own (`directThrottleRateLimit`)."""
    endpoint_name: pulumi.Output[str]
    """The variant `main`'s endpoint, as `model_version` and `model_weights` are its."""
    model_version: str
    model_weights: pulumi.Output[str]
    variants: list[dict[str, pulumi.Input[Any]]]
    """`[{name, weight, model_version, endpoint_name}]`, in the order that splits the
    requests (`python -m admin.registry list --serving` reads it)."""
    predictions_table: pulumi.Output[str]
    """The DynamoDB table of predictions and feedback (`python -m admin.report --table`)."""
    endpoint_config_name: pulumi.Output[str]
    api_id: pulumi.Output[str]
    function_name: pulumi.Output[str]
    distribution_id: pulumi.Output[str]
    site_bucket: pulumi.Output[str]
    artifact_bucket: pulumi.Output[str]
    config_js: pulumi.Output[str]
    function_log_group: pulumi.Output[str]
    api_access_log_group: pulumi.Output[str]
    endpoint_log_group: pulumi.Output[str]
    serving_image: pulumi.Output[str]
    """The image the model runs, `<repository>@sha256:<digest>` (or `imageUri`)."""
    api_keys_path: pulumi.Output[str] | None = None
    """With `apiKeys`: the SSM path `python -m admin.api_keys` keeps the keys under."""
    certificate_validation_records: pulumi.Output[list[dict[str, str]]] | None = None
    """With `domainName` but no `hostedZoneId`: the DNS records the operator creates."""
    distribution_domain: pulumi.Output[str] | None = None
    """With `domainName` but no `hostedZoneId`: what the domain must point at (CNAME)."""
    waf_log_group: pulumi.Output[str] | None = None
    """With `waf`: the log group of the requests the web ACL blocked (and the uploads a
    counted body signature matched), in us-east-1."""
    alarm_topic_arn: pulumi.Output[str] | None = None
    dashboard_name: pulumi.Output[str] | None = None
    batch_bucket: pulumi.Output[str] | None = None
    """With `batch`: images go under its `inbox/`, outcomes come out beside it."""
    batch_state_machine_arn: pulumi.Output[str] | None = None
    batch_review_topic_arn: pulumi.Output[str] | None = None
    batch_log_group: pulumi.Output[str] | None = None
    """With `batch`: the workflow's execution log."""
    transform_role_arn: pulumi.Output[str] | None = None
    """With `batch`: the role SageMaker Batch Transform jobs over the batch bucket run as
    (`python -m batch run s3://... --on sagemaker`)."""

    def exports(self) -> dict[str, pulumi.Input[Any]]:
        """Stack output name -> value, leaving out those this stack does not have."""
        values = {item.name: getattr(self, item.name) for item in fields(self)}
        return {name: value for name, value in values.items() if value is not None}


def build(settings: StackSettings, *, security_headers: bool = True) -> StackOutputs:
    """Every resource of the stack.

    `security_headers=False` leaves out CloudFront's response headers policy, which moto
    cannot create, and StaticSite warns. Only the emulator test's program
    (tests/integration) passes it; `__main__.py` never does, and no config key reaches it.
    """
    models = _models(settings)
    image = ServingImage(
        "serving",
        ServingImageArgs(
            repository_name=f"{settings.name_prefix}-serving",
            context_dir=SERVING_CONTEXT,
            image_uri=settings.image_uri,
            tags=settings.tags,
        ),
    )
    endpoints = _endpoints(settings, models, image)
    endpoint = endpoints[MAIN]
    predictions = PredictionsTable(
        "predictions",
        PredictionsTableArgs(
            table_name=f"{settings.name_prefix}-predictions",
            deletion_protection=settings.production,
            tags=settings.tags,
        ),
    )
    # One origin (decision 11): the distribution serves the API under /api/*, so it needs the
    # API's host and origin secret, and nothing on the API side needs the distribution.
    # Hence the API first, then the distribution, then config.js (which names a path only).
    api = _api(settings, endpoints, predictions)
    batch = _batch(settings, endpoint, predictions, image) if settings.batch else None
    certificate, domain = _domain(settings)
    firewall = _firewall(settings) if settings.waf else None
    site = _site(settings, api, domain, firewall, security_headers)
    config_js = SiteConfigFile(
        "site-config",
        SiteConfigFileArgs(
            bucket_name=site.bucket_name,
            distribution_id=site.distribution_id,
            api_url=API_PATH,
            environment=settings.stack,
            model_version=endpoint.model_version,
            model_weights=_weights_shown(settings, endpoints),
            aws_session=settings.aws_session,
        ),
    )
    # The DNS work left to the operator, where the stack has no hosted zone to do it in.
    manual_dns = certificate if settings.hosted_zone_id is None else None
    outputs = _outputs(
        settings,
        _Built(image, endpoints, predictions, api, site, config_js, manual_dns, firewall, batch),
    )
    if not settings.monitoring:
        return outputs
    monitoring = _monitoring(settings, api, endpoint)
    return replace(
        outputs,
        alarm_topic_arn=monitoring.alarm_topic_arn,
        dashboard_name=monitoring.dashboard_name,
    )


@dataclass(frozen=True)
class _Built:
    """What the stack outputs are read from."""

    image: ServingImage
    endpoints: dict[str, InferenceEndpoint]
    predictions: PredictionsTable
    api: ProxyApi
    site: StaticSite
    config_js: SiteConfigFile
    manual_dns: SiteCertificate | None
    firewall: WebFirewall | None
    batch: BatchPipeline | None


def _endpoints(
    settings: StackSettings,
    models: dict[str, ModelArchive | RegistryVersion],
    image: ServingImage,
) -> dict[str, InferenceEndpoint]:
    """One endpoint per variant."""
    # `main` first: its endpoint creates the artifact bucket the others share, under the
    # names a one-variant stack always had.
    endpoints: dict[str, InferenceEndpoint] = {}
    for variant in sorted(settings.variants, key=lambda v: v.name != MAIN):
        main = endpoints.get(MAIN)
        capacity = replace(settings.serverless, memory_mb=_memory_mb(settings, variant))
        args = InferenceEndpointArgs(
            endpoint_name=endpoint_name(settings.name_prefix, variant.name),
            region=settings.region,
            image_uri=image.image_uri,
            image_repository_arn=image.repository_arn,
            serverless=ServerlessCapacity(
                memory_mb=capacity.memory_mb,
                max_concurrency=capacity.max_concurrency,
                provisioned_concurrency=capacity.provisioned_concurrency,
            ),
            log_retention_days=settings.log_retention_days,
            rollout_timeout_seconds=settings.rollout_timeout_seconds,
            aws_session=settings.aws_session,
            tags=settings.tags,
        )
        model = models[variant.name]
        if isinstance(model, ModelArchive):
            args["model_archive"] = str(model.path)
        else:
            args["model_version"] = model.version
        endpoints[variant.name] = _ConfiguredEndpoint(
            "model" if main is None else f"model-{variant.name}",
            args,
            _memory_keys(settings, variant),
            artifacts=None if main is None else main.artifacts,
        )
    return endpoints


class _ConfiguredEndpoint(InferenceEndpoint):
    """An endpoint whose memory comes from the stack's config: its memory errors name the
    config keys to change."""

    def __init__(
        self,
        name: str,
        args: InferenceEndpointArgs,
        memory_keys: Sequence[str],
        *,
        artifacts: ArtifactBucket | None,
    ) -> None:
        self.memory_keys = memory_keys
        super().__init__(name, args, artifacts=artifacts)

    def memory_setting(self) -> Sequence[str]:
        return self.memory_keys


def _api(
    settings: StackSettings,
    endpoints: dict[str, InferenceEndpoint],
    predictions: PredictionsTable,
) -> ProxyApi:
    endpoint = endpoints[MAIN]
    return ProxyApi(
        "api",
        ProxyApiArgs(
            name_prefix=settings.name_prefix,
            endpoint_name=endpoint.endpoint_name,
            variants=[
                EndpointVariant(
                    name=variant.name,
                    weight=variant.weight,
                    endpoint_name=endpoints[variant.name].endpoint_name,
                    endpoint_arn=endpoints[variant.name].endpoint_arn,
                )
                for variant in settings.variants
            ],
            model_labels={served.model_version: served.labels for served in endpoints.values()},
            predictions_table_name=predictions.table_name,
            predictions_table_arn=predictions.table_arn,
            api_keys=settings.api_keys,
            throttle_rate_limit=settings.throttle_rate_limit,
            throttle_burst_limit=settings.throttle_burst_limit,
            direct_throttle_rate_limit=settings.direct_throttle_rate_limit,
            direct_throttle_burst_limit=settings.direct_throttle_burst_limit,
            origin_secret_rotation=settings.origin_secret_rotation,
            log_retention_days=settings.log_retention_days,
            tracing=settings.tracing,
            environment=_review_environment(settings),
            tags=settings.tags,
        ),
    )


def _batch(
    settings: StackSettings,
    endpoint: InferenceEndpoint,
    predictions: PredictionsTable,
    image: ServingImage,
) -> BatchPipeline:
    return BatchPipeline(
        "batch",
        BatchPipelineArgs(
            name_prefix=settings.name_prefix,
            project_dir=LAMBDA_PACKAGES_DIR,
            # The batch answers with main's model: its records are variant `batch`.
            endpoint_name=endpoint.endpoint_name,
            endpoint_arn=endpoint.endpoint_arn,
            predictions_table_name=predictions.table_name,
            predictions_table_arn=predictions.table_arn,
            model_labels={endpoint.model_version: endpoint.labels},
            environment=_review_environment(settings),
            review_email=settings.review_email,
            concurrency=settings.batch_concurrency,
            transform=TransformAccess(
                image_repository_arn=image.repository_arn,
                artifact_bucket_arn=endpoint.artifacts.arn,
                region=settings.region,
            ),
            log_retention_days=settings.log_retention_days,
            tracing=settings.tracing,
            tags=settings.tags,
        ),
    )


def _domain(settings: StackSettings) -> tuple[SiteCertificate | None, SiteDomain | None]:
    """The certificate of the site's own name, and the name once it is issued."""
    if settings.domain_name is None:
        return None, None
    certificate = SiteCertificate(
        "domain",
        SiteCertificateArgs(
            domain_name=settings.domain_name,
            hosted_zone_id=settings.hosted_zone_id,
            validated=settings.domain_validated,
            tags=settings.tags,
        ),
    )
    if certificate.certificate_arn is None:
        return certificate, None
    domain = SiteDomain(
        name=settings.domain_name,
        certificate_arn=certificate.certificate_arn,
        hosted_zone_id=settings.hosted_zone_id,
    )
    return certificate, domain


def _firewall(settings: StackSettings) -> WebFirewall:
    return WebFirewall(
        "waf",
        WebFirewallArgs(
            name_prefix=settings.name_prefix,
            rate_limit=settings.waf_rate_limit,
            log_retention_days=settings.log_retention_days,
            tags=settings.tags,
        ),
    )


def _site(
    settings: StackSettings,
    api: ProxyApi,
    domain: SiteDomain | None,
    firewall: WebFirewall | None,
    security_headers: bool,
) -> StaticSite:
    return StaticSite(
        "site",
        StaticSiteArgs(
            api=ApiOrigin(
                domain_name=api.api_domain,
                origin_secret=api.origin_secret,
                origin_path=api.site_origin_path,
                # A rotated secret is admitted before CloudFront starts sending it.
                admitted_by=[api.function],
            ),
            domain=domain,
            web_acl_arn=firewall.web_acl_arn if firewall is not None else None,
            price_class=settings.price_class,
            security_headers=security_headers,
            aws_session=settings.aws_session,
            tags=settings.tags,
        ),
    )


def _outputs(settings: StackSettings, built: _Built) -> StackOutputs:
    image, endpoints, api, site = built.image, built.endpoints, built.api, built.site
    predictions, config_js, manual_dns = built.predictions, built.config_js, built.manual_dns
    firewall, batch = built.firewall, built.batch
    endpoint = endpoints[MAIN]
    return StackOutputs(
        site_url=site.url,
        api_url=pulumi.Output.concat(site.url, API_PATH),
        execute_api_url=api.execute_api_url,
        endpoint_name=endpoint.endpoint_name,
        model_version=endpoint.model_version,
        model_weights=endpoint.weights,
        variants=[
            {
                "name": variant.name,
                "weight": variant.weight,
                "model_version": endpoints[variant.name].model_version,
                "endpoint_name": endpoints[variant.name].endpoint_name,
            }
            for variant in settings.variants
        ],
        predictions_table=predictions.table_name,
        endpoint_config_name=endpoint.endpoint_config_name,
        api_id=api.api_id,
        function_name=api.function_name,
        distribution_id=site.distribution_id,
        site_bucket=site.bucket_name,
        artifact_bucket=endpoint.artifact_bucket,
        config_js=config_js.content,
        function_log_group=api.function_log_group,
        api_access_log_group=api.access_log_group,
        endpoint_log_group=endpoint.log_group,
        serving_image=image.image_uri,
        api_keys_path=api.api_keys_path,
        certificate_validation_records=manual_dns.validation_records if manual_dns else None,
        distribution_domain=site.domain_name if manual_dns else None,
        waf_log_group=firewall.log_group_name if firewall is not None else None,
        batch_bucket=batch.bucket_name if batch is not None else None,
        batch_state_machine_arn=batch.state_machine_arn if batch is not None else None,
        batch_review_topic_arn=batch.review_topic_arn if batch is not None else None,
        batch_log_group=batch.log_group if batch is not None else None,
        transform_role_arn=batch.transform_role_arn if batch is not None else None,
    )


def _monitoring(settings: StackSettings, api: ProxyApi, endpoint: InferenceEndpoint) -> Monitoring:
    return Monitoring(
        "monitoring",
        MonitoringArgs(
            api_id=api.api_id,
            # Both stages: the site stage's name is a secret, and alarms are readable.
            api_stage=None,
            function_name=api.function_name,
            endpoint_name=endpoint.endpoint_name,
            variants=[variant.name for variant in settings.variants],
            baseline_variant=MAIN,
            alarm_email=settings.alarm_email,
            region=settings.region,
            monthly_budget_usd=settings.monthly_budget_usd,
            tags=settings.tags,
        ),
    )


def _weights_shown(
    settings: StackSettings, endpoints: dict[str, InferenceEndpoint]
) -> pulumi.Output[str]:
    """What the page is told of the weights (`weights_shown`), from every variant's archive
    metadata, `main` first."""
    ordered = sorted(settings.variants, key=lambda v: v.name != MAIN)
    return pulumi.Output.all(*(endpoints[v.name].weights for v in ordered)).apply(
        lambda weights: weights_shown(
            [(v.weight, w) for v, w in zip(ordered, weights, strict=True)]
        )
    )


def _review_environment(settings: StackSettings) -> dict[str, str]:
    """One threshold for every Lambda that judges answers (the proxy's `needs_review`, the
    batch's review/): `REVIEW_THRESHOLD`, unset for the proxy's own default."""
    if settings.review_threshold is None:
        return {}
    return {"REVIEW_THRESHOLD": str(settings.review_threshold)}


def _models(settings: StackSettings) -> dict[str, ModelArchive | RegistryVersion]:
    """What each variant serves, by name: local archives read (and so checked, their memory
    too) before any resource exists; two variants on one version refused (they would
    compare nothing, bill twice and share one upload)."""
    models = {variant.name: _model(variant) for variant in settings.variants}
    served: dict[str, str] = {}
    found = []
    for name, model in models.items():
        if model.slug in served:
            found.append(
                f"model: variants {served[model.slug]} and {name} both serve model version "
                f"{model.version}; keep one (a rollback target needs a version of its own)"
            )
        served.setdefault(model.slug, name)
    if found:
        raise config_error(settings.stack, found)
    # A registry version's memory is known once its sidecar is read: its endpoint checks it.
    for variant in settings.variants:
        model = models[variant.name]
        if isinstance(model, ModelArchive):
            check_model_memory(
                model.version,
                _memory_mb(settings, variant),
                model.memory_mb_min,
                _memory_keys(settings, variant),
            )
    return models


def _memory_mb(settings: StackSettings, variant: VariantSettings) -> int:
    return variant.memory_mb or settings.serverless.memory_mb


def _memory_keys(settings: StackSettings, variant: VariantSettings) -> tuple[str, ...]:
    """The config keys that set the variant's memory, the one in effect first."""
    own = f"model[{settings.variants.index(variant)}].serverlessMemoryMb"
    if variant.memory_mb is not None:
        return (own,)
    return ("serverlessMemoryMb", own) if len(settings.variants) > 1 else ("serverlessMemoryMb",)


def _model(variant: VariantSettings) -> ModelArchive | RegistryVersion:
    if variant.archive is not None:
        return read_model_archive(variant.archive)
    return RegistryVersion(str(variant.version))


def engine_settings() -> StackSettings:
    """The settings from the config the engine passes (Pulumi.yaml's defaults applied)."""
    project = pulumi.get_project()
    config = {}
    for key in config_keys(project):
        namespace, _, name = key.partition(":")
        value = pulumi.Config(namespace).get(name)
        if value is not None:
            config[key] = value
    # Archive paths in config are relative to the program's directory, where the engine
    # runs it.
    return load_settings(config, project, pulumi.get_stack(), Path.cwd())


def deploy(*, security_headers: bool = True) -> StackOutputs:
    """The program the engine runs: settings from its config, every resource, the exports
    (`security_headers` as in `build`)."""
    outputs = build(engine_settings(), security_headers=security_headers)
    for name, value in outputs.exports().items():
        pulumi.export(name, value)
    return outputs
