"""A program of your own, built from the image classifier's components (the
`image-classifier` wheel): a model you packaged, served by a SageMaker Serverless endpoint
from a serving image already in ECR, behind the HTTP API, its predictions table and the
web UI.

    pulumi config set aws:region eu-west-1
    pulumi config set archive model.tar.gz
    pulumi config set imageRepository image-classifier-serving
    pulumi config set imageTag 0123456789abcdef
    pulumi up

`python -m pytest` in this folder runs it under Pulumi's mocks (test_program.py).
"""

import pulumi
import pulumi_aws as aws

from image_classifier import (
    ApiOrigin,
    EndpointVariant,
    InferenceEndpoint,
    InferenceEndpointArgs,
    PredictionsTable,
    PredictionsTableArgs,
    ProxyApi,
    ProxyApiArgs,
    SiteConfigFile,
    SiteConfigFileArgs,
    StaticSite,
    StaticSiteArgs,
)

config = pulumi.Config()
prefix = f"{pulumi.get_project()}-{pulumi.get_stack()}"
repository = aws.ecr.get_repository_output(name=config.require("imageRepository"))
image = aws.ecr.get_image_output(
    repository_name=repository.name, image_tag=config.require("imageTag")
)

endpoint = InferenceEndpoint(
    "model",
    InferenceEndpointArgs(
        endpoint_name=prefix,
        region=aws.get_region().region,
        model_archive=config.require("archive"),
        # By digest: the model runs exactly the image it was deployed with.
        image_uri=pulumi.Output.concat(repository.repository_url, "@", image.image_digest),
        image_repository_arn=repository.arn,
    ),
)
table = PredictionsTable("predictions", PredictionsTableArgs(table_name=f"{prefix}-predictions"))
api = ProxyApi(
    "api",
    ProxyApiArgs(
        name_prefix=prefix,
        endpoint_name=endpoint.endpoint_name,
        variants=[
            EndpointVariant(
                name="main",
                weight=100,
                endpoint_name=endpoint.endpoint_name,
                endpoint_arn=endpoint.endpoint_arn,
            )
        ],
        model_labels={endpoint.model_version: endpoint.labels},
        predictions_table_name=table.table_name,
        predictions_table_arn=table.table_arn,
    ),
)
site = StaticSite(
    "site",
    StaticSiteArgs(
        api=ApiOrigin(
            domain_name=api.api_domain,
            origin_secret=api.origin_secret,
            origin_path=api.site_origin_path,
            admitted_by=[api.function],
        )
    ),
)
SiteConfigFile(
    "site-config",
    SiteConfigFileArgs(
        bucket_name=site.bucket_name,
        distribution_id=site.distribution_id,
        api_url="/api",
        environment=pulumi.get_stack(),
        model_version=endpoint.model_version,
        model_weights=endpoint.weights,
    ),
)

pulumi.export("site_url", site.url)
pulumi.export("api_url", pulumi.Output.concat(site.url, "/api"))
pulumi.export("endpoint_name", endpoint.endpoint_name)
