"""The image-classifier stack: settings -> components -> outputs -> the site's config.js.

ServingImage        model/Dockerfile -> BuildKit -> private ECR (or config `imageUri`)
InferenceEndpoint   model archive -> S3 -> SageMaker model (that image) -> Serverless endpoint
StaticSite          site/ -> private S3 -> CloudFront (OAC, security headers)
ProxyApi            HTTP API POST /predict -> Lambda proxy -> the endpoint
SiteConfigFile      config.js from the outputs above, invalidated when it changes
Monitoring          alarms to an SNS topic and one dashboard (config `monitoring`)

`build` composes the components from plain settings, so tests run it under Pulumi's
mocks with any settings; `deploy` is what the engine runs (`__main__.py`).
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

import pulumi

from components.inference_endpoint import InferenceEndpoint, InferenceEndpointArgs
from components.model_archive import read_model_archive
from components.monitoring import Monitoring, MonitoringArgs
from components.proxy_api import ProxyApi, ProxyApiArgs, execute_api_origin_pattern
from components.serving_image import ServingImage, ServingImageArgs
from components.site_config_file import SiteConfigFile, SiteConfigFileArgs
from components.stack_config import StackSettings, config_keys, load_settings
from components.static_site import StaticSite, StaticSiteArgs

PROJECT_DIR = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class StackOutputs:
    """What the stack exports, in this order; the monitoring ones only with monitoring on."""

    site_url: pulumi.Output[str]
    api_url: pulumi.Output[str]
    endpoint_name: pulumi.Output[str]
    model_version: str
    model_weights: str
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
    alarm_topic_arn: pulumi.Output[str] | None = None
    dashboard_name: pulumi.Output[str] | None = None

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
    archive = read_model_archive(settings.model_archive)
    image = ServingImage(
        "serving",
        ServingImageArgs(
            repository_name=f"{settings.name_prefix}-serving",
            context_dir=PROJECT_DIR,
            image_uri=settings.image_uri,
            base_image=settings.serving_base_image,
            tags=settings.tags,
        ),
    )
    endpoint = InferenceEndpoint(
        "model",
        InferenceEndpointArgs(
            endpoint_name=settings.name_prefix,
            region=settings.region,
            archive=archive,
            image_uri=image.image_uri,
            image_repository_arn=image.repository_arn,
            serverless=settings.serverless,
            log_retention_days=settings.log_retention_days,
            rollout_timeout_seconds=settings.rollout_timeout_seconds,
            aws_session=settings.aws_session,
            tags=settings.tags,
        ),
    )

    # The API's CORS origin is the distribution's domain, and config.js needs the API's URL.
    # The cycle is broken by order: the distribution first (its CSP may connect to this
    # region's HTTP APIs, the API's own ID being unknown yet), then the API with CORS for
    # exactly the distribution's origin, then config.js last with the API's URL.
    site = StaticSite(
        "site",
        StaticSiteArgs(
            site_dir=PROJECT_DIR / "site",
            connect_src=execute_api_origin_pattern(settings.region),
            price_class=settings.price_class,
            security_headers=security_headers,
            aws_session=settings.aws_session,
            tags=settings.tags,
        ),
    )

    api = ProxyApi(
        "api",
        ProxyApiArgs(
            name_prefix=settings.name_prefix,
            source_dir=PROJECT_DIR / "proxy",
            endpoint_name=endpoint.endpoint_name,
            endpoint_arn=endpoint.endpoint_arn,
            allowed_origin=site.url,
            memory_mb=settings.lambda_memory_mb,
            timeout_seconds=settings.lambda_timeout_seconds,
            throttle_rate_limit=settings.throttle_rate_limit,
            throttle_burst_limit=settings.throttle_burst_limit,
            log_retention_days=settings.log_retention_days,
            log_level=settings.log_level,
            tracing=settings.tracing,
            tags=settings.tags,
        ),
    )

    config_js = SiteConfigFile(
        "site-config",
        SiteConfigFileArgs(
            bucket_name=site.bucket_name,
            distribution_id=site.distribution_id,
            api_url=api.api_url,
            environment=settings.stack,
            model_version=archive.version,
            wait_for_invalidation=settings.wait_for_invalidation,
            aws_session=settings.aws_session,
        ),
    )

    outputs = StackOutputs(
        site_url=site.url,
        api_url=api.api_url,
        endpoint_name=endpoint.endpoint_name,
        model_version=archive.version,
        model_weights=archive.weights,
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
    )
    if not settings.monitoring:
        return outputs
    monitoring = Monitoring(
        "monitoring",
        MonitoringArgs(
            api_id=api.api_id,
            function_name=api.function_name,
            endpoint_name=endpoint.endpoint_name,
            alarm_email=settings.alarm_email,
            region=settings.region,
            monthly_budget_usd=settings.monthly_budget_usd,
            tags=settings.tags,
        ),
    )
    return replace(
        outputs,
        alarm_topic_arn=monitoring.alarm_topic_arn,
        dashboard_name=monitoring.dashboard_name,
    )


def engine_settings() -> StackSettings:
    """The settings from the config the engine passes (Pulumi.yaml's defaults applied)."""
    project = pulumi.get_project()
    config = {}
    for key in config_keys(project):
        namespace, _, name = key.partition(":")
        value = pulumi.Config(namespace).get(name)
        if value is not None:
            config[key] = value
    return load_settings(config, project, pulumi.get_stack(), PROJECT_DIR)


def deploy(*, security_headers: bool = True) -> StackOutputs:
    """The program the engine runs: settings from its config, every resource, the exports
    (`security_headers` as in `build`)."""
    outputs = build(engine_settings(), security_headers=security_headers)
    for name, value in outputs.exports().items():
        pulumi.export(name, value)
    return outputs
