"""A hand-written picture of the resources our stack registers, as the analyzer sees them.

The rule tests derive every bad case from these by changing one thing, so each failure
is caused by exactly the property the rule is about.
"""

from __future__ import annotations

import copy
import json

from tests.policy.harness import Resource

BUCKET = "site-bucket-7f3a9c1"
SITE_ORIGIN = "https://d111111abcdef8.cloudfront.net"
DISTRIBUTION_ARN = "arn:aws:cloudfront::123456789012:distribution/E111111ABCDEF8"
ENDPOINT_ARN = "arn:aws:sagemaker:us-east-1:123456789012:endpoint/image-classifier-dev"
LOG_GROUP_ARN = "arn:aws:logs:us-east-1:123456789012:log-group:/aws/lambda/proxy-dev"
CERTIFICATE_ARN = "arn:aws:acm:us-east-1:123456789012:certificate/0f1e2d3c-4b5a-6978-8091"
CACHING_DISABLED = "4135ea2d-6df8-44a3-9df3-4b5a84be39ad"
BATCH_LOG_GROUP_ARN = (
    "arn:aws:logs:us-east-1:123456789012:log-group:/aws/vendedlogs/states/batch-dev"
)


def document(*statements: dict) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


COMMON_RULE_SET = "AWSManagedRulesCommonRuleSet"
BAD_INPUTS_RULE_SET = "AWSManagedRulesKnownBadInputsRuleSet"
COMMON_BODY_RULES = [
    "SizeRestrictions_BODY",
    "EC2MetaDataSSRF_BODY",
    "GenericLFI_BODY",
    "GenericRFI_BODY",
    "CrossSiteScripting_BODY",
]
BAD_INPUTS_BODY_RULES = ["JavaDeserializationRCE_BODY", "Log4JRCE_BODY", "ReactJSRCE_BODY"]
SIGNATURE_LABELS = [
    "awswaf:managed:aws:core-rule-set:EC2MetaDataSSRF_Body",
    "awswaf:managed:aws:core-rule-set:GenericLFI_Body",
    "awswaf:managed:aws:core-rule-set:GenericRFI_Body",
    "awswaf:managed:aws:core-rule-set:CrossSiteScripting_Body",
    "awswaf:managed:aws:known-bad-inputs:JavaDeserializationRCE_Body",
    "awswaf:managed:aws:known-bad-inputs:Log4JRCE_Body",
    "awswaf:managed:aws:known-bad-inputs:ReactJSRCE_Body",
]


def managed_group(priority: float, group: str, counted: list[str]) -> dict:
    """A managed rule group whose `counted` rules are overridden to count."""
    return {
        "name": group,
        "priority": priority,
        "overrideAction": {"none": {}},
        "statement": {
            "managedRuleGroupStatement": {
                "name": group,
                "vendorName": "AWS",
                "ruleActionOverrides": [
                    {"name": rule, "actionToUse": {"count": {}}} for rule in counted
                ],
            }
        },
    }


def label_rule(name: str, priority: float, labels: list[str], where: str, path: str) -> dict:
    """Block a request carrying any of `labels` unless its path is `where` `path`."""
    matches = [{"labelMatchStatement": {"scope": "LABEL", "key": label}} for label in labels]
    return {
        "name": name,
        "priority": priority,
        "action": {"block": {}},
        "statement": {
            "andStatement": {
                "statements": [
                    matches[0] if len(matches) == 1 else {"orStatement": {"statements": matches}},
                    {
                        "notStatement": {
                            "statement": {
                                "byteMatchStatement": {
                                    "fieldToMatch": {"uriPath": {}},
                                    "positionalConstraint": where,
                                    "searchString": path,
                                    "textTransformations": [{"priority": 0.0, "type": "NONE"}],
                                }
                            }
                        }
                    },
                ]
            }
        },
    }


TLS_DENY = {
    "Sid": "DenyInsecureTransport",
    "Effect": "Deny",
    "Principal": "*",
    "Action": "s3:*",
    "Resource": [f"arn:aws:s3:::{BUCKET}", f"arn:aws:s3:::{BUCKET}/*"],
    "Condition": {"Bool": {"aws:SecureTransport": "false"}},
}
CLOUDFRONT_READ = {
    "Sid": "AllowCloudFrontRead",
    "Effect": "Allow",
    "Principal": {"Service": "cloudfront.amazonaws.com"},
    "Action": "s3:GetObject",
    "Resource": f"arn:aws:s3:::{BUCKET}/*",
    "Condition": {"StringEquals": {"AWS:SourceArn": DISTRIBUTION_ARN}},
}


def good_resources() -> dict[str, Resource]:
    """Fresh copies, keyed by a short role name, of resources every rule accepts."""
    resources = [
        Resource("aws:s3/bucket:Bucket", "site", {"id": BUCKET, "bucket": BUCKET}),
        Resource(
            "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock",
            "site-public-access",
            {
                "bucket": BUCKET,
                "blockPublicAcls": True,
                "blockPublicPolicy": True,
                "ignorePublicAcls": True,
                "restrictPublicBuckets": True,
            },
        ),
        Resource(
            "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
            "site-encryption",
            {
                "bucket": BUCKET,
                "rules": [
                    {
                        "applyServerSideEncryptionByDefault": {"sseAlgorithm": "AES256"},
                        "bucketKeyEnabled": True,
                    }
                ],
            },
        ),
        Resource(
            "aws:s3/bucketPolicy:BucketPolicy",
            "site-policy",
            {"bucket": BUCKET, "policy": document(CLOUDFRONT_READ, TLS_DENY)},
        ),
        Resource(
            "aws:cloudfront/originAccessControl:OriginAccessControl",
            "site-oac",
            {
                "originAccessControlOriginType": "s3",
                "signingBehavior": "always",
                "signingProtocol": "sigv4",
            },
        ),
        Resource(
            "aws:cloudfront/distribution:Distribution",
            "site-cdn",
            {
                "enabled": True,
                "origins": [
                    {
                        "originId": "site",
                        "domainName": f"{BUCKET}.s3.us-east-1.amazonaws.com",
                        "originAccessControlId": "E2QWRUHAPOMQZL",
                    }
                ],
                "defaultCacheBehavior": {
                    "targetOriginId": "site",
                    "viewerProtocolPolicy": "redirect-to-https",
                },
                "orderedCacheBehaviors": [
                    {"pathPattern": "/config.js", "viewerProtocolPolicy": "https-only"},
                    {
                        "pathPattern": "/api/*",
                        "targetOriginId": "http-api",
                        "viewerProtocolPolicy": "https-only",
                        "cachePolicyId": CACHING_DISABLED,
                    },
                ],
                "aliases": ["classify.classifier-team.io"],
                "viewerCertificate": {
                    "acmCertificateArn": CERTIFICATE_ARN,
                    "sslSupportMethod": "sni-only",
                    "minimumProtocolVersion": "TLSv1.2_2021",
                },
            },
        ),
        Resource(
            "aws:wafv2/webAcl:WebAcl",
            "web-acl",
            {
                "scope": "CLOUDFRONT",
                "rules": [
                    managed_group(2.0, COMMON_RULE_SET, COMMON_BODY_RULES),
                    managed_group(3.0, BAD_INPUTS_RULE_SET, BAD_INPUTS_BODY_RULES),
                    label_rule(
                        "oversized-body-outside-api",
                        4.0,
                        ["awswaf:managed:aws:core-rule-set:SizeRestrictions_Body"],
                        "STARTS_WITH",
                        "/api/",
                    ),
                    label_rule(
                        "body-signatures-outside-uploads",
                        5.0,
                        SIGNATURE_LABELS,
                        "EXACTLY",
                        "/api/predict",
                    ),
                ],
            },
        ),
        Resource(
            "aws:iam/role:Role",
            "proxy-role",
            {
                "assumeRolePolicy": document(
                    {
                        "Effect": "Allow",
                        "Principal": {"Service": "lambda.amazonaws.com"},
                        "Action": "sts:AssumeRole",
                    }
                ),
                "inlinePolicies": [
                    {
                        "name": "invoke-endpoint",
                        "policy": document(
                            {
                                "Effect": "Allow",
                                "Action": "sagemaker:InvokeEndpoint",
                                "Resource": ENDPOINT_ARN,
                            }
                        ),
                    }
                ],
            },
        ),
        Resource(
            "aws:iam/rolePolicy:RolePolicy",
            "proxy-logs",
            {
                "policy": document(
                    {
                        "Effect": "Allow",
                        "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
                        "Resource": f"{LOG_GROUP_ARN}:*",
                    }
                )
            },
        ),
        Resource(
            "aws:iam/rolePolicyAttachment:RolePolicyAttachment",
            "proxy-basic",
            {"policyArn": "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"},
        ),
        Resource(
            "aws:apigatewayv2/api:Api",
            "api",
            {
                "protocolType": "HTTP",
                "corsConfiguration": {"allowOrigins": [SITE_ORIGIN], "allowMethods": ["POST"]},
            },
        ),
        Resource(
            "aws:apigatewayv2/stage:Stage",
            "api-stage",
            {
                "name": "$default",
                "autoDeploy": True,
                "defaultRouteSettings": {"throttlingRateLimit": 10.0, "throttlingBurstLimit": 20.0},
            },
        ),
        Resource(
            "aws:cloudwatch/logGroup:LogGroup",
            "proxy-logs-group",
            {"name": "/aws/lambda/proxy-dev", "retentionInDays": 14.0},
        ),
        Resource(
            "aws:lambda/function:Function",
            "proxy",
            {
                "name": "proxy-dev",
                "memorySize": 256.0,
                "loggingConfig": {"logFormat": "JSON", "logGroup": "/aws/lambda/proxy-dev"},
            },
        ),
        Resource(
            "aws:sfn/stateMachine:StateMachine",
            "batch-workflow",
            {
                "type": "STANDARD",
                "loggingConfiguration": {
                    "level": "ALL",
                    "includeExecutionData": True,
                    "logDestination": f"{BATCH_LOG_GROUP_ARN}:*",
                },
            },
        ),
        Resource(
            "aws:sagemaker/endpointConfiguration:EndpointConfiguration",
            "endpoint-config",
            {
                "productionVariants": [
                    {
                        "variantName": "AllTraffic",
                        "modelName": "mobilenet-v2",
                        "serverlessConfig": {"memorySizeInMb": 2048.0, "maxConcurrency": 5.0},
                    }
                ]
            },
        ),
        Resource(
            "aws:dynamodb/table:Table",
            "predictions",
            {
                "name": "image-classifier-dev-predictions",
                "billingMode": "PAY_PER_REQUEST",
                "hashKey": "request_id",
                "pointInTimeRecovery": {"enabled": True},
                "serverSideEncryption": {"enabled": True},
            },
        ),
        Resource(
            "aws:ecr/repository:Repository",
            "serving-repository",
            {
                "name": "image-classifier-dev-serving",
                "imageScanningConfiguration": {"scanOnPush": True},
                "imageTagMutability": "MUTABLE",
                "encryptionConfigurations": [{"encryptionType": "AES256"}],
            },
        ),
    ]
    return {r.name: Resource(r.type, r.name, copy.deepcopy(dict(r.props))) for r in resources}
