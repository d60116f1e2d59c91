"""The image classifier's Pulumi components, for programs of your own.

    pip install <this repository>    # distribution `image-classifier`

`InferenceEndpoint` (a model on a SageMaker Serverless endpoint), `ProxyApi` (the HTTP API
and its Lambda proxy), `PredictionsTable` (where the proxy records predictions and
feedback), `StaticSite` (the web UI behind CloudFront, the API on its origin) and
`SiteConfigFile` (the page's `config.js`), each with its args: plain dicts, documented
field by field. They are also
offered to programs in other languages (`pulumi-plugin/`, `image_classifier.provider`),
which is why this module exports no other component. `deploy` is the whole stack, as
this repository's own `__main__.py` runs it.

README.md, "Use the components in your own program", says how; `examples/` holds a program.
"""

from components.aws_session import AssumedRole, AwsSessionSettings
from components.inference_endpoint import (
    InferenceEndpoint,
    InferenceEndpointArgs,
    ServerlessCapacity,
)
from components.predictions_table import PredictionsTable, PredictionsTableArgs
from components.proxy_api import EndpointVariant, ProxyApi, ProxyApiArgs
from components.site_config_file import SiteConfigFile, SiteConfigFileArgs
from components.stack import StackOutputs, build, deploy
from components.static_site import ApiOrigin, SiteDomain, StaticSite, StaticSiteArgs

__all__ = [
    "ApiOrigin",
    "AssumedRole",
    "AwsSessionSettings",
    "EndpointVariant",
    "InferenceEndpoint",
    "InferenceEndpointArgs",
    "PredictionsTable",
    "PredictionsTableArgs",
    "ProxyApi",
    "ProxyApiArgs",
    "ServerlessCapacity",
    "SiteConfigFile",
    "SiteConfigFileArgs",
    "SiteDomain",
    "StackOutputs",
    "StaticSite",
    "StaticSiteArgs",
    "build",
    "deploy",
]
