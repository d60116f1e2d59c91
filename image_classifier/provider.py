"""The component provider: the serving path's components (`InferenceEndpoint`,
`PredictionsTable`, `ProxyApi`, `StaticSite`, `SiteConfigFile`) for programs in any
language, with a schema the Pulumi SDK infers from their type annotations.

`pulumi package add pulumi-plugin` runs it (`pulumi-plugin/__main__.py`), and so does the
wheel's console script `pulumi-resource-image-classifier`, the executable plugin name the
engine looks for on PATH. Either way its one argument is the engine's address, and it
prints the port it serves on.
"""

import importlib.metadata

from pulumi.provider.experimental import component_provider_host

from image_classifier import (
    InferenceEndpoint,
    PredictionsTable,
    ProxyApi,
    SiteConfigFile,
    StaticSite,
)

PACKAGE = "image-classifier"
"""The Pulumi package's name, the first part of its resources' type tokens in the schema
(`image-classifier:index:InferenceEndpoint`), and the wheel's distribution name."""
COMPONENTS = [InferenceEndpoint, PredictionsTable, ProxyApi, StaticSite, SiteConfigFile]


def version() -> str | None:
    """The installed distribution's version; None from a checkout (the SDK's default)."""
    try:
        return importlib.metadata.version(PACKAGE)
    except importlib.metadata.PackageNotFoundError:
        return None


def main() -> None:
    component_provider_host(COMPONENTS, PACKAGE, version=version())
