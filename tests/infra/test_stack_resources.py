"""The dev stack under Pulumi mocks: every property the stack promises, as registered."""

from __future__ import annotations

import ast
import hashlib
import json
import re
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from artifact.metadata import read_archive_metadata_bytes
from components.stack_config import ROLLOUT_TIMEOUT_MINUTES
from hosting.config_js import SiteConfig, render_config_js
from tests.infra.conftest import (
    ACCOUNT,
    ARCHIVE_VERSION,
    ECR_REGISTRY,
    IMAGE_DIGEST,
    PROJECT,
    REGION,
    ROOT,
)

BUCKET = "aws:s3/bucket:Bucket"
BUCKET_POLICY = "aws:s3/bucketPolicy:BucketPolicy"
DISTRIBUTION = "aws:cloudfront/distribution:Distribution"
HEADERS_POLICY = "aws:cloudfront/responseHeadersPolicy:ResponseHeadersPolicy"
LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"
OBJECT = "aws:s3/bucketObjectv2:BucketObjectv2"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
ROUTE = "aws:apigatewayv2/route:Route"
INVALIDATION = "pulumi-python:dynamic/cloudfront_invalidation:CloudFrontInvalidation"


def _for_bucket(stack, token, bucket):
    return [r for r in stack.of_type(token) if r.inputs["bucket"] == bucket.id]


def _statements(policy_json: str) -> list[dict]:
    return json.loads(policy_json)["Statement"]


def _listed(value) -> list:
    return value if isinstance(value, list) else [value]


def _config_object(text: str) -> dict:
    match = re.search(r"window\.APP_CONFIG = Object\.freeze\((\{.*\})\);", text, re.S)
    assert match, text
    return json.loads(match.group(1))


# -- outputs and config.js ---------------------------------------------------------------


def test_outputs_are_exported(dev_stack):
    outputs = dev_stack.outputs
    assert outputs["site_url"] == "https://d111111abcdef8.cloudfront.net"
    # One origin: programs call the API where the page does; key holders may go direct.
    assert outputs["api_url"] == "https://d111111abcdef8.cloudfront.net/api"
    assert (
        outputs["execute_api_url"] == f"https://a1b2c3d4e5.execute-api.{REGION}.amazonaws.com/api"
    )
    assert outputs["endpoint_name"] == f"{PROJECT}-dev"
    assert outputs["model_version"] == ARCHIVE_VERSION
    assert outputs["model_weights"] == "random"
    assert {"api_id", "function_name", "distribution_id", "endpoint_config_name"} <= set(outputs)


def test_config_js_is_rendered_from_the_outputs(dev_stack):
    outputs = dev_stack.outputs
    expected = render_config_js(SiteConfig("/api", "dev", outputs["model_version"], "random"))
    assert outputs["config_js"] == expected
    assert _config_object(expected) == {
        # A path on the page's own origin: the same config.js whatever the site's address.
        "apiUrl": "/api",
        "environment": "dev",
        "modelVersion": ARCHIVE_VERSION,
        "modelWeights": "random",
    }
    uploaded = [r for r in dev_stack.of_type(OBJECT) if r.inputs["key"] == "config.js"]
    assert len(uploaded) == 1
    assert uploaded[0].inputs["content"] == expected
    assert uploaded[0].inputs["cacheControl"] == "no-store"
    assert uploaded[0].inputs["contentType"].startswith("text/javascript")
    assert uploaded[0].inputs["bucket"] == outputs["site_bucket"]


def test_config_js_invalidation_is_keyed_by_its_content(dev_stack):
    invalidation = dev_stack.one(INVALIDATION, "site-config-invalidation")
    assert invalidation.inputs["paths"] == ["/config.js"]
    assert invalidation.inputs["distribution_id"] == dev_stack.outputs["distribution_id"]
    digest = hashlib.sha256(dev_stack.outputs["config_js"].encode()).hexdigest()
    assert invalidation.inputs["content_hash"] == digest
    assert invalidation.inputs["wait"] is False


def test_site_files_are_invalidated_when_any_of_them_changes(dev_stack, tmp_path):
    from components.static_site import site_content_hash

    invalidation = dev_stack.one(INVALIDATION, "site-files-invalidation")
    site_bucket = dev_stack.outputs["site_bucket"]
    uploaded = {
        o.inputs["key"] for o in dev_stack.of_type(OBJECT) if o.inputs["bucket"] == site_bucket
    } - {"config.js"}
    assert invalidation.inputs["paths"] == ["/", *sorted(f"/{key}" for key in uploaded)]
    assert invalidation.inputs["distribution_id"] == dev_stack.outputs["distribution_id"]
    assert invalidation.inputs["content_hash"] == site_content_hash(ROOT / "site")

    (tmp_path / "index.html").write_text("<h1>v1</h1>")
    before = site_content_hash(tmp_path)
    assert site_content_hash(tmp_path) == before
    (tmp_path / "index.html").write_text("<h1>v2</h1>")
    assert site_content_hash(tmp_path) != before


# -- buckets -------------------------------------------------------------------------------


def test_there_are_two_private_buckets(dev_stack):
    names = {bucket.id for bucket in dev_stack.of_type(BUCKET)}
    assert names == {dev_stack.outputs["site_bucket"], dev_stack.outputs["artifact_bucket"]}


@pytest.mark.parametrize("which", ["site_bucket", "artifact_bucket"])
def test_bucket_is_private_encrypted_versioned_and_tls_only(dev_stack, which):
    bucket = next(b for b in dev_stack.of_type(BUCKET) if b.id == dev_stack.outputs[which])
    assert "acl" not in bucket.inputs
    (block,) = _for_bucket(
        dev_stack, "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock", bucket
    )
    for flag in (
        "blockPublicAcls",
        "blockPublicPolicy",
        "ignorePublicAcls",
        "restrictPublicBuckets",
    ):
        assert block.inputs[flag] is True, flag
    (ownership,) = _for_bucket(
        dev_stack, "aws:s3/bucketOwnershipControls:BucketOwnershipControls", bucket
    )
    assert ownership.inputs["rule"]["objectOwnership"] == "BucketOwnerEnforced"
    (encryption,) = _for_bucket(
        dev_stack,
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
        bucket,
    )
    default = encryption.inputs["rules"][0]["applyServerSideEncryptionByDefault"]
    assert default["sseAlgorithm"] == "AES256"
    (versioning,) = _for_bucket(dev_stack, "aws:s3/bucketVersioning:BucketVersioning", bucket)
    assert versioning.inputs["versioningConfiguration"]["status"] == "Enabled"
    (policy,) = _for_bucket(dev_stack, BUCKET_POLICY, bucket)
    deny = [s for s in _statements(policy.inputs["policy"]) if s["Effect"] == "Deny"]
    assert deny == [
        {
            "Sid": "DenyInsecureTransport",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "s3:*",
            "Resource": [bucket.state["arn"], f"{bucket.state['arn']}/*"],
            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        }
    ]


def test_site_bucket_admits_only_this_distribution(dev_stack):
    bucket = next(b for b in dev_stack.of_type(BUCKET) if b.id == dev_stack.outputs["site_bucket"])
    distribution = dev_stack.one(DISTRIBUTION)
    (policy,) = _for_bucket(dev_stack, BUCKET_POLICY, bucket)
    allows = [s for s in _statements(policy.inputs["policy"]) if s["Effect"] == "Allow"]
    assert allows == [
        {
            "Sid": "AllowThisDistributionOnly",
            "Effect": "Allow",
            "Principal": {"Service": "cloudfront.amazonaws.com"},
            "Action": "s3:GetObject",
            "Resource": f"{bucket.state['arn']}/*",
            "Condition": {"StringEquals": {"AWS:SourceArn": distribution.state["arn"]}},
        }
    ]


def test_artifact_bucket_grants_nothing_beyond_tls_only(dev_stack):
    bucket = next(
        b for b in dev_stack.of_type(BUCKET) if b.id == dev_stack.outputs["artifact_bucket"]
    )
    (policy,) = _for_bucket(dev_stack, BUCKET_POLICY, bucket)
    assert [s["Effect"] for s in _statements(policy.inputs["policy"])] == ["Deny"]


# -- CloudFront ----------------------------------------------------------------------------


def test_distribution_reads_the_bucket_through_origin_access_control(dev_stack):
    distribution = dev_stack.one(DISTRIBUTION)
    oac = dev_stack.one("aws:cloudfront/originAccessControl:OriginAccessControl")
    assert oac.inputs["originAccessControlOriginType"] == "s3"
    assert oac.inputs["signingBehavior"] == "always"
    assert oac.inputs["signingProtocol"] == "sigv4"
    (origin,) = [o for o in distribution.inputs["origins"] if o["originId"] == "site-bucket"]
    assert distribution.inputs["defaultCacheBehavior"]["targetOriginId"] == "site-bucket"
    assert origin["originAccessControlId"] == oac.id
    site_bucket = dev_stack.outputs["site_bucket"]
    assert origin["domainName"] == f"{site_bucket}.s3.{REGION}.amazonaws.com"
    assert "s3OriginConfig" not in origin
    assert "customOriginConfig" not in origin


def test_distribution_is_https_only_compressed_with_a_root_object(dev_stack):
    distribution = dev_stack.one(DISTRIBUTION).inputs
    behavior = distribution["defaultCacheBehavior"]
    assert behavior["viewerProtocolPolicy"] == "redirect-to-https"
    assert behavior["compress"] is True
    assert behavior["allowedMethods"] == ["GET", "HEAD"]
    assert distribution["defaultRootObject"] == "index.html"
    assert distribution["viewerCertificate"] == {"cloudfrontDefaultCertificate": True}
    assert distribution["priceClass"] == "PriceClass_100"
    # The one other behaviour is the API's (tests/infra/test_edge_access.py).
    assert [b["pathPattern"] for b in distribution["orderedCacheBehaviors"]] == ["/api/*"]


def test_security_headers_policy_is_attached(dev_stack):
    headers = dev_stack.one(HEADERS_POLICY)
    behavior = dev_stack.one(DISTRIBUTION).inputs["defaultCacheBehavior"]
    assert behavior["responseHeadersPolicyId"] == headers.id
    config = headers.inputs["securityHeadersConfig"]
    hsts = config["strictTransportSecurity"]
    assert hsts["accessControlMaxAgeSec"] >= 31536000
    assert hsts["includeSubdomains"] is True
    assert hsts["override"] is True
    assert config["contentTypeOptions"]["override"] is True
    assert config["frameOptions"] == {"frameOption": "DENY", "override": True}


def test_content_security_policy_connects_only_to_the_sites_own_origin(dev_stack):
    csp = dev_stack.one(HEADERS_POLICY).inputs["securityHeadersConfig"]["contentSecurityPolicy"]
    assert csp["override"] is True
    directives = dict(
        part.strip().split(" ", 1) for part in csp["contentSecurityPolicy"].split(";")
    )
    assert directives["default-src"] == "'none'"
    assert directives["frame-ancestors"] == "'none'"
    assert directives["script-src"] == "'self'"
    # The API is on the site's origin: no wildcard, no other host, not even the API's own.
    assert directives["connect-src"] == "'self'"
    assert (
        urlsplit(dev_stack.outputs["api_url"]).netloc
        == urlsplit(dev_stack.outputs["site_url"]).netloc
    )


def test_every_site_file_is_uploaded_with_its_type_and_cache_policy(dev_stack):
    site_dir = ROOT / "site"
    expected = {
        path.relative_to(site_dir).as_posix()
        for path in site_dir.rglob("*")
        if path.is_file() and path.name != "config.js" and "__pycache__" not in path.parts
    }
    uploaded = {
        r.inputs["key"]: r.inputs
        for r in dev_stack.of_type(OBJECT)
        if r.inputs["bucket"] == dev_stack.outputs["site_bucket"] and r.inputs["key"] != "config.js"
    }
    assert set(uploaded) == expected
    types = {".html": "text/html", ".js": "text/javascript", ".css": "text/css"}
    for key, inputs in uploaded.items():
        suffix = Path(key).suffix
        if suffix in types:
            assert inputs["contentType"].startswith(types[suffix]), key
        assert Path(inputs["source"].path) == site_dir / key
        if suffix == ".html":
            assert inputs["cacheControl"] == "no-cache"
        else:
            assert re.fullmatch(r"public, max-age=\d{5,}", inputs["cacheControl"]), key


# -- API and Lambda ------------------------------------------------------------------------


def test_the_api_answers_no_cors(dev_stack):
    # The page calls it on its own origin; programs elsewhere are no browsers (decision 11).
    assert "corsConfiguration" not in dev_stack.one("aws:apigatewayv2/api:Api").inputs


@pytest.mark.parametrize(
    ("stage_resource", "rate", "burst", "via"),
    [("api-site-stage", 5, 10, "cloudfront"), ("api-default-stage", 5, 10, "execute-api")],
)
def test_each_stage_throttles_and_writes_json_access_logs(
    dev_stack, stage_resource, rate, burst, via
):
    stage = dev_stack.one("aws:apigatewayv2/stage:Stage", stage_resource).inputs
    assert stage["autoDeploy"] is True
    assert stage["defaultRouteSettings"]["throttlingRateLimit"] == rate
    assert stage["defaultRouteSettings"]["throttlingBurstLimit"] == burst
    assert stage["routeSettings"] == [
        {
            "routeKey": f"{method} /api/{path}",
            "throttlingRateLimit": rate,
            "throttlingBurstLimit": burst,
        }
        for path in ("predict", "feedback", "labels")
        for method in ("POST", "GET", "PUT", "PATCH", "DELETE")
    ]
    access_logs = dev_stack.one(LOG_GROUP, "api-access-logs")
    assert stage["accessLogSettings"]["destinationArn"] == access_logs.state["arn"]
    log_format = json.loads(stage["accessLogSettings"]["format"])
    assert log_format["requestId"] == "$context.requestId"
    assert log_format["status"] == "$context.status"
    assert log_format["via"] == via


def test_predict_route_uses_a_payload_v2_lambda_proxy(dev_stack):
    function = dev_stack.one("aws:lambda/function:Function")
    integration = dev_stack.one("aws:apigatewayv2/integration:Integration").inputs
    assert integration["integrationType"] == "AWS_PROXY"
    assert integration["payloadFormatVersion"] == "2.0"
    assert integration["integrationUri"] == function.state["invokeArn"]
    routes = {r.inputs["routeKey"]: r.inputs for r in dev_stack.of_type(ROUTE)}
    target = f"integrations/{dev_stack.one('aws:apigatewayv2/integration:Integration').id}"
    assert routes["POST /api/predict"]["target"] == target


def test_wrong_methods_reach_the_proxy_for_a_405_but_preflight_never_does(dev_stack):
    routes = {r.inputs["routeKey"]: r.inputs for r in dev_stack.of_type(ROUTE)}
    methods = ("POST", "GET", "PUT", "PATCH", "DELETE")
    # The paths CloudFront forwards from /api/*, unchanged: predictions, feedback on one,
    # and a model version's labels.
    assert set(routes) == {
        f"{m} /api/{path}" for m in methods for path in ("predict", "feedback", "labels")
    }
    assert len({route["target"] for route in routes.values()}) == 1
    assert not any(key.startswith(("ANY ", "OPTIONS ", "$default")) for key in routes)


def test_lambda_permissions_are_scoped_to_this_apis_paths(dev_stack):
    api = dev_stack.one("aws:apigatewayv2/api:Api")
    permissions = {p.name: p.inputs for p in dev_stack.of_type("aws:lambda/permission:Permission")}
    assert {name: p["sourceArn"] for name, p in permissions.items()} == {
        "api-invoke-permission": f"{api.state['executionArn']}/*/*/api/predict",
        "api-feedback-invoke-permission": f"{api.state['executionArn']}/*/*/api/feedback",
        "api-labels-invoke-permission": f"{api.state['executionArn']}/*/*/api/labels",
    }
    for permission in permissions.values():
        assert permission["principal"] == "apigateway.amazonaws.com"
        assert permission["action"] == "lambda:InvokeFunction"


def test_lambda_runs_the_proxy_package(dev_stack):
    function = dev_stack.one("aws:lambda/function:Function").inputs
    assert function["runtime"] == "python3.12"
    assert function["handler"] == "proxy.handler.handler"
    assert function["memorySize"] == 256
    assert function["timeout"] == 30
    variables = function["environment"]["variables"]
    assert variables["SAGEMAKER_ENDPOINT_NAME"] == dev_stack.outputs["endpoint_name"]
    assert variables["LOG_LEVEL"] == "INFO"
    function_logs = dev_stack.one(LOG_GROUP, "api-function-logs")
    assert function["loggingConfig"]["logGroup"] == function_logs.inputs["name"]
    members = set(function["code"].assets)
    assert "proxy/handler.py" in members
    # The packages, and beside them the labels of the version it serves (for feedback).
    assert {m for m in members if not m.startswith(("proxy/", "shared/"))} == {
        f"model_labels/{ARCHIVE_VERSION}.json"
    }
    assert not any("__pycache__" in member or member.endswith(".pyc") for member in members)
    sources = {
        path.relative_to(ROOT).as_posix()
        for package in ("proxy", "shared")
        for path in (ROOT / package).rglob("*.py")
        if "__pycache__" not in path.parts
    }
    assert sources <= members


def _modules_the_handler_imports() -> set[str]:
    """The `proxy/` files `proxy.handler` imports, at its init or in a request, directly or
    through others (imports inside functions included), and the package's `__init__.py`."""
    found: set[str] = set()
    todo = ["proxy.handler"]
    while todo:
        module = todo.pop()
        path = f"{module.replace('.', '/')}.py"
        if path in found or not (ROOT / path).is_file():
            continue
        found.add(path)
        for node in ast.walk(ast.parse((ROOT / path).read_text())):
            if isinstance(node, ast.Import):
                todo += [alias.name for alias in node.names if alias.name.startswith("proxy.")]
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("proxy."):
                todo.append(node.module or "")
    return found | {"proxy/__init__.py"}


def test_the_lambda_zip_holds_what_the_handler_runs_and_nothing_else(dev_stack):
    """No CLI, no store of the local runtime's, no module the Lambda never imports."""
    function = dev_stack.one("aws:lambda/function:Function", "api-function").inputs
    members = {m for m in function["code"].assets if m.startswith("proxy/")}
    runs = _modules_the_handler_imports()
    assert members == runs, (sorted(members - runs), sorted(runs - members))
    assert {"proxy/handler.py", "proxy/api_keys.py", "proxy/local_stores.py"} <= members


def test_every_log_group_has_the_configured_retention(dev_stack):
    groups = dev_stack.of_type(LOG_GROUP)
    assert {g.inputs["name"] for g in groups} == {
        f"/aws/sagemaker/Endpoints/{PROJECT}-dev",
        f"/aws/lambda/{PROJECT}-dev-proxy",
        f"/aws/apigateway/{PROJECT}-dev-http-api",
    }
    assert all(g.inputs["retentionInDays"] == 14 for g in groups)


# -- IAM -----------------------------------------------------------------------------------


def _role_policy(stack, name):
    return _statements(stack.one(ROLE_POLICY, name).inputs["policy"])


def test_no_wildcard_actions_and_no_wildcard_resources_where_an_arn_exists(dev_stack):
    for policy in dev_stack.of_type(ROLE_POLICY):
        for statement in _statements(policy.inputs["policy"]):
            actions = _listed(statement["Action"])
            assert not any(a == "*" or a.endswith(":*") for a in actions), policy.name
            if "*" in _listed(statement["Resource"]):
                # The actions AWS offers no resource-level permission for: the ECR login,
                # and metrics, which a condition keeps to SageMaker's endpoint namespace.
                assert actions in (["ecr:GetAuthorizationToken"], ["cloudwatch:PutMetricData"])
                if actions == ["cloudwatch:PutMetricData"]:
                    assert "cloudwatch:namespace" in statement["Condition"]["StringEquals"]


def test_no_managed_or_attached_policies(dev_stack):
    assert not dev_stack.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment")
    assert not dev_stack.of_type("aws:iam/policyAttachment:PolicyAttachment")
    for role in dev_stack.of_type("aws:iam/role:Role"):
        assert not role.inputs.get("managedPolicyArns"), role.name


def test_proxy_may_invoke_exactly_its_endpoint_and_write_its_logs(dev_stack):
    endpoint_arn = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:endpoint/{PROJECT}-dev"
    logs = dev_stack.one(LOG_GROUP, "api-function-logs").state["arn"]
    table = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{PROJECT}-dev-predictions"
    statements = _role_policy(dev_stack, "api-function-policy")
    assert [(s["Action"], s["Resource"]) for s in statements] == [
        ("sagemaker:InvokeEndpoint", endpoint_arn),
        (["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"], table),
        (["logs:CreateLogStream", "logs:PutLogEvents"], f"{logs}:*"),
    ]
    trust = json.loads(
        dev_stack.one("aws:iam/role:Role", "api-function-role").inputs["assumeRolePolicy"]
    )
    assert trust["Statement"][0]["Principal"] == {"Service": "lambda.amazonaws.com"}


def test_endpoint_role_reads_exactly_its_archive_pulls_its_image_writes_its_logs(dev_stack):
    statements = {s["Sid"]: s for s in _role_policy(dev_stack, "model-execution-policy")}
    artifacts = dev_stack.outputs["artifact_bucket"]
    assert statements["ReadTheModelArchive"]["Action"] == "s3:GetObject"
    assert statements["ReadTheModelArchive"]["Resource"] == (
        f"arn:aws:s3:::{artifacts}/models/{ARCHIVE_VERSION}/model.tar.gz"
    )
    assert statements["PullTheServingImage"]["Resource"] == (
        f"arn:aws:ecr:{REGION}:{ACCOUNT}:repository/{PROJECT}-dev-serving"
    )
    logs = dev_stack.one(LOG_GROUP, "model-logs").state["arn"]
    assert statements["WriteItsOwnLogs"]["Resource"] == f"{logs}:*"
    trust = json.loads(
        dev_stack.one("aws:iam/role:Role", "model-execution").inputs["assumeRolePolicy"]
    )
    (assume,) = trust["Statement"]
    assert assume["Principal"] == {"Service": "sagemaker.amazonaws.com"}
    assert assume["Condition"] == {"StringEquals": {"aws:SourceAccount": ACCOUNT}}


# -- SageMaker -----------------------------------------------------------------------------


def test_archive_is_uploaded_under_its_content_version_with_its_metadata(
    dev_stack, synthetic_archive
):
    archive, metadata = (
        r
        for r in dev_stack.of_type(OBJECT)
        if r.inputs["bucket"] == dev_stack.outputs["artifact_bucket"]
    )
    assert archive.inputs["key"] == f"models/{ARCHIVE_VERSION}/model.tar.gz"
    assert Path(archive.inputs["source"].path) == synthetic_archive
    # The sidecar the registry lists and a later `model: <version>` reads: the archive's own.
    assert metadata.inputs["key"] == f"models/{ARCHIVE_VERSION}/metadata.json"
    assert metadata.inputs["content"] == read_archive_metadata_bytes(synthetic_archive).decode()
    assert metadata.inputs["contentType"] == "application/json"


def test_model_serves_the_archive_with_the_stacks_serving_image(dev_stack):
    model = dev_stack.one("aws:sagemaker/model:Model")
    container = model.inputs["primaryContainer"]
    assert container["image"] == f"{ECR_REGISTRY}/{PROJECT}-dev-serving@{IMAGE_DIGEST}"
    artifacts = dev_stack.outputs["artifact_bucket"]
    assert container["modelDataUrl"] == f"s3://{artifacts}/models/{ARCHIVE_VERSION}/model.tar.gz"
    # serving.serve takes everything from SageMaker's container contract.
    assert "environment" not in container
    role = dev_stack.one("aws:iam/role:Role", "model-execution")
    assert model.inputs["executionRoleArn"] == role.state["arn"]
    assert model.inputs["tags"]["model-version"] == ARCHIVE_VERSION
    # Unique per creation (AWS names it): a rollback never collides with a live model.
    assert "name" not in model.inputs


def test_endpoint_config_is_serverless_from_config_and_named_by_version(dev_stack):
    config = dev_stack.one("aws:sagemaker/endpointConfiguration:EndpointConfiguration")
    (variant,) = config.inputs["productionVariants"]
    assert variant["serverlessConfig"] == {"memorySizeInMb": 2048, "maxConcurrency": 2}
    assert variant["modelName"] == dev_stack.one("aws:sagemaker/model:Model").state["name"]
    assert config.inputs["namePrefix"] == f"{PROJECT}-dev-{ARCHIVE_VERSION}-"
    assert "name" not in config.inputs
    assert len(config.inputs["namePrefix"]) + 26 <= 63
    assert config.inputs["tags"]["model-version"] == ARCHIVE_VERSION


def test_what_a_serving_endpoint_reads_is_never_deleted_by_pulumi(dev_stack):
    """The archive, the model and the config stay when Pulumi drops them (a replaced or
    pending-delete one may still serve, and the archive's delete would remove every
    version of its key); `EndpointRollout` retires them once no config in use needs them."""
    archive, metadata = (
        r
        for r in dev_stack.of_type(OBJECT)
        if r.inputs["bucket"] == dev_stack.outputs["artifact_bucket"]
    )
    model = dev_stack.one("aws:sagemaker/model:Model")
    config = dev_stack.one("aws:sagemaker/endpointConfiguration:EndpointConfiguration")
    for resource in (archive, metadata, model, config):
        assert resource.retain_on_delete, resource.name


def test_an_endpoint_cleanup_exists_before_the_first_rollout_attempt(dev_stack):
    """A create that raises leaves no rollout in the state; the cleanup, made before it,
    still removes on destroy what that create made."""
    rollout = dev_stack.one("pulumi-python:dynamic/endpoint_rollout:EndpointRollout")
    cleanup = dev_stack.one("pulumi-python:dynamic/endpoint_rollout:EndpointCleanup")
    for key in ("endpoint_name", "config_name_prefix", "region", "aws", "timeout_seconds"):
        assert cleanup.inputs[key] == rollout.inputs[key], key
    assert "endpoint_config_name" not in cleanup.inputs
    assert cleanup.name in rollout.depends_on
    # Deleted before the bucket and the role policy it may still need.
    assert {"model-artifacts", "model-execution-policy"} <= set(cleanup.depends_on)
    config = dev_stack.one("aws:sagemaker/endpointConfiguration:EndpointConfiguration")
    assert config.inputs["namePrefix"].startswith(rollout.inputs["config_name_prefix"])


def test_config_and_model_carry_the_tag_that_finds_them_again(dev_stack):
    from components.endpoint_rollout import ENDPOINT_TAG

    for token in (
        "aws:sagemaker/model:Model",
        "aws:sagemaker/endpointConfiguration:EndpointConfiguration",
    ):
        assert dev_stack.one(token).inputs["tags"][ENDPOINT_TAG] == f"{PROJECT}-dev", token


def test_endpoint_is_rolled_out_by_the_dynamic_provider(dev_stack):
    rollout = dev_stack.one("pulumi-python:dynamic/endpoint_rollout:EndpointRollout")
    config = dev_stack.one("aws:sagemaker/endpointConfiguration:EndpointConfiguration")
    assert rollout.inputs["endpoint_name"] == f"{PROJECT}-dev"
    assert rollout.inputs["endpoint_config_name"] == config.state["name"]
    assert rollout.inputs["endpoint_config_name"].startswith(config.inputs["namePrefix"])
    assert rollout.inputs["region"] == REGION
    assert rollout.inputs["timeout_seconds"] == ROLLOUT_TIMEOUT_MINUTES * 60
    assert rollout.inputs["version"]
    assert not dev_stack.of_type("aws:sagemaker/endpoint:Endpoint")


# -- structure -----------------------------------------------------------------------------


def test_components_have_project_type_tokens_and_own_every_resource(dev_stack):
    components = [r for r in dev_stack.resources if not r.custom]
    assert {r.type for r in components} == {
        "image-classifier:inference_endpoint:InferenceEndpoint",
        "image-classifier:static_site:StaticSite",
        "image-classifier:proxy_api:ProxyApi",
        "image-classifier:site_config_file:SiteConfigFile",
        "image-classifier:private_bucket:PrivateBucket",
        "image-classifier:monitoring:Monitoring",
        "image-classifier:serving_image:ServingImage",
        "image-classifier:predictions_table:PredictionsTable",
    }
    for component in components:
        _, module, _ = component.type.split(":")
        assert (ROOT / "components" / f"{module}.py").is_file(), component.type
    component_urns = {r.urn for r in components}
    for resource in dev_stack.resources:
        if resource.custom:
            assert resource.parent in component_urns, f"{resource.type} {resource.name}"


def test_prod_stack_keeps_a_warm_instance_and_protects_its_data(run_stack):
    from tests.infra.conftest import stack_config

    # The prod file's own keys over the dev run's, whose model is a synthetic archive, and
    # the alarm email its operator sets.
    prod = run_stack(
        {k: v for k, v in stack_config("prod").items() if k != f"{PROJECT}:model"}
        | {f"{PROJECT}:alarmEmail": "oncall@classifier-team.io"}
    )
    assert prod.error is None, prod.error
    config = prod.one("aws:sagemaker/endpointConfiguration:EndpointConfiguration")
    assert config.inputs["productionVariants"][0]["serverlessConfig"] == {
        "memorySizeInMb": 3072,
        "maxConcurrency": 20,
        "provisionedConcurrency": 1,
    }
    # `pulumi up` never waits for CloudFront: the smoke test waits for the new config.js.
    assert prod.one(INVALIDATION, "site-config-invalidation").inputs["wait"] is False
    assert prod.one("aws:dynamodb/table:Table").inputs["deletionProtectionEnabled"] is True
    assert prod.one(DISTRIBUTION).inputs["priceClass"] == "PriceClass_All"
    assert all(g.inputs["retentionInDays"] == 90 for g in prod.of_type(LOG_GROUP))
    assert not prod.warnings


def test_a_custom_serving_image_is_the_only_repository_the_role_may_pull(run_stack):
    image = "111122223333.dkr.ecr.eu-west-1.amazonaws.com/team/serving:1.2"
    run = run_stack({f"{PROJECT}:imageUri": image})
    assert run.error is None, run.error
    assert run.one("aws:sagemaker/model:Model").inputs["primaryContainer"]["image"] == image
    statements = {s["Sid"]: s for s in _role_policy(run, "model-execution-policy")}
    assert statements["PullTheServingImage"]["Resource"] == (
        "arn:aws:ecr:eu-west-1:111122223333:repository/team/serving"
    )
