"""The image-classifier stack: config -> components -> outputs -> the site's config.js.

InferenceEndpoint   model archive -> S3 -> SageMaker model -> Serverless endpoint
StaticSite          site/ -> private S3 -> CloudFront (OAC, security headers)
ProxyApi            HTTP API POST /predict -> Lambda proxy -> the endpoint
SiteConfigFile      config.js from the outputs above, invalidated when it changes
Monitoring          alarms to an SNS topic and one dashboard (config `monitoring`)
"""

from pathlib import Path

import pulumi

from components.inference_endpoint import InferenceEndpoint, InferenceEndpointArgs
from components.model_archive import read_model_archive
from components.monitoring import Monitoring, MonitoringArgs
from components.proxy_api import ProxyApi, ProxyApiArgs, execute_api_origin_pattern
from components.site_config_file import SiteConfigFile, SiteConfigFileArgs
from components.stack_config import load_settings
from components.static_site import StaticSite, StaticSiteArgs

PROJECT_DIR = Path(__file__).resolve().parent

settings = load_settings(PROJECT_DIR)
archive = read_model_archive(settings.model_archive)

endpoint = InferenceEndpoint(
    "model",
    InferenceEndpointArgs(
        endpoint_name=settings.name_prefix,
        region=settings.region,
        archive=archive,
        serverless=settings.serverless,
        image_uri=settings.image_uri,
        log_retention_days=settings.log_retention_days,
        rollout_timeout_seconds=settings.rollout_timeout_seconds,
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
        security_headers="responseHeadersPolicy" not in settings.leave_out,
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
    ),
)

pulumi.export("site_url", site.url)
pulumi.export("api_url", api.api_url)
pulumi.export("endpoint_name", endpoint.endpoint_name)
pulumi.export("model_version", archive.version)
pulumi.export("model_weights", archive.weights)
pulumi.export("endpoint_config_name", endpoint.endpoint_config_name)
pulumi.export("api_id", api.api_id)
pulumi.export("function_name", api.function_name)
pulumi.export("distribution_id", site.distribution_id)
pulumi.export("site_bucket", site.bucket_name)
pulumi.export("artifact_bucket", endpoint.artifact_bucket)
pulumi.export("config_js", config_js.content)

if settings.monitoring:
    monitoring = Monitoring(
        "monitoring",
        MonitoringArgs(
            api_id=api.api_id,
            function_name=api.function_name,
            endpoint_name=endpoint.endpoint_name,
            alarm_email=settings.alarm_email,
            region=settings.region,
            tags=settings.tags,
        ),
    )
    pulumi.export("alarm_topic_arn", monitoring.alarm_topic_arn)
    pulumi.export("dashboard_name", monitoring.dashboard_name)
