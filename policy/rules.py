"""The guardrails the image-classifier stack promises, as Pulumi CrossGuard policies.

Plain module on purpose: constructing a `PolicyPack` starts a gRPC server, so only the
pack's entry point (`policy/__main__.py`) builds one, and tests import these objects
directly. Every rule reads engine-shaped properties (camelCase keys, numbers as floats,
JSON policy documents as strings), which is what `pulumi preview --policy-pack policy`
hands to it and what Pulumi's mocks record.

Resource rules judge one resource's own inputs. Stack rules judge what only the whole
stack can show: that every bucket actually has its public access block, its encryption
and its TLS-only policy, and that every Lambda function writes to a log group we manage
(otherwise Lambda creates one that keeps logs forever).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    PolicyConfigSchema,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)

BUCKET_TYPES = frozenset({"aws:s3/bucket:Bucket", "aws:s3/bucketV2:BucketV2"})
PUBLIC_ACCESS_BLOCK = "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"
BUCKET_ACL_TYPES = frozenset({"aws:s3/bucketAcl:BucketAcl", "aws:s3/bucketAclV2:BucketAclV2"})
BUCKET_POLICY = "aws:s3/bucketPolicy:BucketPolicy"
BUCKET_SSE_TYPES = frozenset(
    {
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
        "aws:s3/bucketServerSideEncryptionConfigurationV2:BucketServerSideEncryptionConfigurationV2",
    }
)
BUCKET_CORS_TYPES = frozenset(
    {
        "aws:s3/bucketCorsConfiguration:BucketCorsConfiguration",
        "aws:s3/bucketCorsConfigurationV2:BucketCorsConfigurationV2",
    }
)
DISTRIBUTION = "aws:cloudfront/distribution:Distribution"
ORIGIN_ACCESS_CONTROL = "aws:cloudfront/originAccessControl:OriginAccessControl"
IAM_ROLE = "aws:iam/role:Role"
IAM_INLINE_POLICY_TYPES = frozenset(
    {
        "aws:iam/rolePolicy:RolePolicy",
        "aws:iam/userPolicy:UserPolicy",
        "aws:iam/groupPolicy:GroupPolicy",
        "aws:iam/policy:Policy",
    }
)
IAM_ATTACHMENT_TYPES = frozenset(
    {
        "aws:iam/rolePolicyAttachment:RolePolicyAttachment",
        "aws:iam/userPolicyAttachment:UserPolicyAttachment",
        "aws:iam/groupPolicyAttachment:GroupPolicyAttachment",
    }
)
HTTP_API = "aws:apigatewayv2/api:Api"
HTTP_API_STAGE = "aws:apigatewayv2/stage:Stage"
FUNCTION_URL = "aws:lambda/functionUrl:FunctionUrl"
LAMBDA_FUNCTION = "aws:lambda/function:Function"
LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"
STATE_MACHINE = "aws:sfn/stateMachine:StateMachine"
ENDPOINT_CONFIGURATION = "aws:sagemaker/endpointConfiguration:EndpointConfiguration"
ECR_REPOSITORY = "aws:ecr/repository:Repository"
WEB_ACL = "aws:wafv2/webAcl:WebAcl"
DYNAMODB_TABLE = "aws:dynamodb/table:Table"

PUBLIC_CANNED_ACLS = frozenset({"public-read", "public-read-write", "authenticated-read"})
PUBLIC_GRANTEE_URIS = frozenset(
    {
        "http://acs.amazonaws.com/groups/global/AllUsers",
        "http://acs.amazonaws.com/groups/global/AuthenticatedUsers",
    }
)
PUBLIC_ACCESS_FLAGS = (
    "blockPublicAcls",
    "blockPublicPolicy",
    "ignorePublicAcls",
    "restrictPublicBuckets",
)
SSE_ALGORITHMS = frozenset({"AES256", "aws:kms", "aws:kms:dsse"})
HTTPS_VIEWER_POLICIES = frozenset({"https-only", "redirect-to-https"})
# The pack runs alone, from `policy/` in a virtualenv of its own, where no project package
# (not even the standard-library `shared/`) can be imported: the facts it shares with the
# program are copies, each held equal to the program's by tests/policy/test_rules.py
# (`test_the_pack_names_what_the_program_deploys`).
API_PATH_PREFIX = "/api"
"""Where the site's distribution serves the HTTP API (`hosting/origin.py`, `API_PATH`)."""
CACHING_DISABLED_POLICY_ID = "4135ea2d-6df8-44a3-9df3-4b5a84be39ad"
"""AWS managed cache policy `CachingDisabled` (a copy of `components/static_site.py`'s)."""
CUSTOM_DOMAIN_TLS_POLICIES = frozenset({"TLSv1.2_2021", "TLSv1.2_2025", "TLSv1.3_2025"})
"""CloudFront security policies no older than TLS 1.2 with strong ciphers (2021)."""
LEGACY_TTL_DEFAULTS = {"minTtl": 0.0, "defaultTtl": 86400.0, "maxTtl": 31536000.0}
"""What CloudFront assumes for a cache behaviour without a cache policy or TTLs."""
PREDICT_PATH = f"{API_PATH_PREFIX}/predict"
"""Where photos are uploaded (`hosting/origin.py`, `PREDICT_PATH`)."""
COMMON_RULE_SET = "AWSManagedRulesCommonRuleSet"
KNOWN_BAD_INPUTS_RULE_SET = "AWSManagedRulesKnownBadInputsRuleSet"
BODY_SIZE_RULE = "SizeRestrictions_BODY"
"""The common rule set's rule that blocks every body over 8 KB: every image upload."""
BODY_RULES = {
    COMMON_RULE_SET: (
        BODY_SIZE_RULE,
        "EC2MetaDataSSRF_BODY",
        "GenericLFI_BODY",
        "GenericRFI_BODY",
        "CrossSiteScripting_BODY",
    ),
    KNOWN_BAD_INPUTS_RULE_SET: ("JavaDeserializationRCE_BODY", "Log4JRCE_BODY", "ReactJSRCE_BODY"),
}
"""The managed rules that inspect the body, by group, and the namespaces of their labels:
copies of `components/web_firewall.py`'s (decision 14)."""
LABEL_NAMESPACES = {
    COMMON_RULE_SET: "awswaf:managed:aws:core-rule-set:",
    KNOWN_BAD_INPUTS_RULE_SET: "awswaf:managed:aws:known-bad-inputs:",
}
# SageMaker Serverless accepts exactly these memory sizes (1 GB steps, `shared.serverless`)
# and 1..200 concurrency (`components/inference_endpoint.py`); Lambda's memory range is
# `components/proxy_api.py`'s `LAMBDA_MEMORY_MB`.
SERVERLESS_MEMORY_SIZES_MB = frozenset(range(1024, 6145, 1024))
SERVERLESS_MAX_CONCURRENCY = 200
LAMBDA_MIN_MEMORY_MB = 128
LAMBDA_DEFAULT_MEMORY_MB = 128
LAMBDA_MAX_MEMORY_MB = 10240
STATE_MACHINE_LOG_LEVELS = frozenset({"ALL", "ERROR", "FATAL"})
"""Step Functions log levels that record at least every failed execution (not OFF)."""


# --- property helpers -------------------------------------------------------------------


def _as_list(value: Any) -> list[Any]:
    """A policy field that may be a scalar, a list or absent, as a list."""
    if value is None:
        return []
    if isinstance(value, str | Mapping):
        return [value]
    if isinstance(value, Sequence):
        return list(value)
    return [value]


def _statements(document: Any) -> list[Mapping[str, Any]]:
    """The statements of an IAM policy document given as a JSON string or a mapping."""
    if document is None or document == "":
        return []
    if isinstance(document, str):
        document = json.loads(document)
    return [s for s in _as_list(document.get("Statement")) if isinstance(s, Mapping)]


def _is_truthy(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.lower() == "true")


def _is_falsy(value: Any) -> bool:
    return value is False or (isinstance(value, str) and value.lower() == "false")


def _principal_is_anyone(principal: Any) -> bool:
    if principal == "*":
        return True
    if isinstance(principal, Mapping):
        return any(p == "*" for p in _as_list(principal.get("AWS")))
    return False


def _denies_insecure_transport(statement: Mapping[str, Any]) -> bool:
    if statement.get("Effect") != "Deny":
        return False
    condition = statement.get("Condition") or {}
    secure_transport = (condition.get("Bool") or {}).get("aws:SecureTransport")
    return any(_is_falsy(v) for v in _as_list(secure_transport))


def _wildcard_actions(statement: Mapping[str, Any]) -> list[str]:
    """Actions in an Allow statement that grant a whole service (or everything)."""
    if statement.get("Effect", "Allow") != "Allow":
        return []
    if "NotAction" in statement:
        return [f"NotAction {json.dumps(statement['NotAction'])}"]
    return [a for a in _as_list(statement.get("Action")) if a == "*" or str(a).endswith(":*")]


def _number(value: Any) -> float | None:
    return None if value is None else float(value)


# --- S3 -----------------------------------------------------------------------------------


def _validate_s3_no_public_access(args: ResourceValidationArgs, report: ReportViolation) -> None:
    props = args.props
    if args.resource_type == PUBLIC_ACCESS_BLOCK:
        off = [flag for flag in PUBLIC_ACCESS_FLAGS if not _is_truthy(props.get(flag))]
        if off:
            report(f"Public access block '{args.name}' must set {', '.join(off)} to true.", None)
    elif args.resource_type in BUCKET_TYPES | BUCKET_ACL_TYPES:
        acl = props.get("acl")
        if acl in PUBLIC_CANNED_ACLS:
            report(f"'{args.name}' uses the public canned ACL '{acl}'.", None)
        grants = list(_as_list(props.get("grants")))
        policy = props.get("accessControlPolicy")
        if isinstance(policy, Mapping):
            grants += _as_list(policy.get("grants"))
        for grant in grants:
            grantee = grant.get("grantee", grant) if isinstance(grant, Mapping) else {}
            if grantee.get("uri") in PUBLIC_GRANTEE_URIS:
                report(f"'{args.name}' grants access to {grantee['uri']}.", None)
    elif args.resource_type == BUCKET_POLICY:
        for statement in _statements(props.get("policy")):
            if (
                statement.get("Effect") == "Allow"
                and _principal_is_anyone(statement.get("Principal"))
                and not statement.get("Condition")
            ):
                report(
                    f"Bucket policy '{args.name}' allows anyone ('*') without a condition; "
                    "admit the CloudFront distribution through Origin Access Control instead.",
                    None,
                )


def _validate_s3_encryption(args: ResourceValidationArgs, report: ReportViolation) -> None:
    props = args.props
    if args.resource_type in BUCKET_SSE_TYPES:
        rules = _as_list(props.get("rules"))
    elif args.resource_type in BUCKET_TYPES and props.get("serverSideEncryptionConfiguration"):
        # The bucket's own (deprecated) block holds a single `rule`.
        rules = _as_list(props["serverSideEncryptionConfiguration"].get("rule"))
    else:
        return
    if not rules:
        report(f"'{args.name}' declares no default encryption rule.", None)
    for rule in rules:
        default = rule.get("applyServerSideEncryptionByDefault") or {}
        algorithm = default.get("sseAlgorithm")
        if algorithm not in SSE_ALGORITHMS:
            report(
                f"'{args.name}' must encrypt by default with one of {sorted(SSE_ALGORITHMS)}, "
                f"got {algorithm!r}.",
                None,
            )


def _validate_s3_tls_only(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type != BUCKET_POLICY:
        return
    if not any(_denies_insecure_transport(s) for s in _statements(args.props.get("policy"))):
        report(
            f"Bucket policy '{args.name}' must deny every request made without TLS "
            '(Effect Deny, Condition {"Bool": {"aws:SecureTransport": "false"}}).',
            None,
        )


def _bucket_keys(props: Mapping[str, Any]) -> set[str]:
    """The values other resources use to point at a bucket: its id and its name."""
    return {str(props[k]) for k in ("id", "bucket") if props.get(k)}


def _validate_bucket_companions(args: StackValidationArgs, report: ReportViolation) -> None:
    protected: dict[str, set[str]] = {"public access block": set(), "encryption": set()}
    tls_only: set[str] = set()
    for resource in args.resources:
        target = resource.props.get("bucket")
        if target is None:
            continue
        if resource.resource_type == PUBLIC_ACCESS_BLOCK:
            protected["public access block"].add(str(target))
        elif resource.resource_type in BUCKET_SSE_TYPES:
            protected["encryption"].add(str(target))
        elif resource.resource_type == BUCKET_POLICY and any(
            _denies_insecure_transport(s) for s in _statements(resource.props.get("policy"))
        ):
            tls_only.add(str(target))
    protected["TLS-only bucket policy"] = tls_only
    for bucket in args.resources:
        if bucket.resource_type not in BUCKET_TYPES:
            continue
        keys = _bucket_keys(bucket.props)
        for companion, covered in protected.items():
            if not keys & covered:
                report(f"Bucket '{bucket.name}' has no {companion}.", bucket.urn)


# --- CloudFront -------------------------------------------------------------------------


def _is_s3_website(domain: str) -> bool:
    # Both spellings AWS uses: bucket.s3-website-us-east-1... and bucket.s3-website.eu-west-2...
    return ".s3-website" in domain


def _validate_private_origins(args: ResourceValidationArgs, report: ReportViolation) -> None:
    props = args.props
    if args.resource_type == ORIGIN_ACCESS_CONTROL:
        if props.get("signingBehavior") != "always":
            report(
                f"Origin access control '{args.name}' must sign every request "
                f"(signingBehavior 'always'), got {props.get('signingBehavior')!r}.",
                None,
            )
        return
    if args.resource_type != DISTRIBUTION:
        return
    for origin in _as_list(props.get("origins")):
        origin_id = origin.get("originId")
        domain = str(origin.get("domainName") or "")
        if _is_s3_website(domain):
            report(
                f"Origin '{origin_id}' is a public S3 website endpoint ({domain}); serve a "
                "private bucket through Origin Access Control.",
                None,
            )
            continue
        s3_config = origin.get("s3OriginConfig") or {}
        if s3_config.get("originAccessIdentity"):
            report(
                f"Origin '{origin_id}' uses a legacy origin access identity; use Origin "
                "Access Control.",
                None,
            )
        is_s3 = not origin.get("customOriginConfig") or ".s3." in domain
        if is_s3 and not origin.get("originAccessControlId"):
            report(f"S3 origin '{origin_id}' has no Origin Access Control.", None)


def _validate_https_only(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type != DISTRIBUTION:
        return
    behaviors = _as_list(args.props.get("defaultCacheBehavior")) + _as_list(
        args.props.get("orderedCacheBehaviors")
    )
    for behavior in behaviors:
        policy = behavior.get("viewerProtocolPolicy")
        if policy not in HTTPS_VIEWER_POLICIES:
            where = behavior.get("pathPattern", "default")
            report(
                f"Cache behavior '{where}' of '{args.name}' allows plain HTTP "
                f"(viewerProtocolPolicy {policy!r}); use 'redirect-to-https' or 'https-only'.",
                None,
            )


def _is_api_behavior(behavior: Mapping[str, Any]) -> bool:
    pattern = str(behavior.get("pathPattern") or "")
    return pattern == API_PATH_PREFIX or pattern.startswith(f"{API_PATH_PREFIX}/")


def _caches(behavior: Mapping[str, Any]) -> str | None:
    """How a cache behaviour may cache, or None when it never does."""
    policy = behavior.get("cachePolicyId")
    if policy:
        return None if policy == CACHING_DISABLED_POLICY_ID else f"cache policy {policy}"
    # Legacy settings: only TTLs of 0 keep every answer out of the cache.
    ttls = {key: _number(behavior.get(key)) for key in LEGACY_TTL_DEFAULTS}
    effective = {key: LEGACY_TTL_DEFAULTS[key] if ttl is None else ttl for key, ttl in ttls.items()}
    cached = {key: ttl for key, ttl in effective.items() if ttl > 0}
    if not cached:
        return None
    return ", ".join(f"{key} {ttl:g}" for key, ttl in cached.items())


def _validate_api_not_cached(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type != DISTRIBUTION:
        return
    for behavior in _as_list(args.props.get("orderedCacheBehaviors")):
        if not _is_api_behavior(behavior):
            continue
        caching = _caches(behavior)
        if caching:
            report(
                f"Cache behavior '{behavior.get('pathPattern')}' of '{args.name}' serves the API "
                f"but may cache its answers ({caching}): one caller's prediction or error would "
                f"be served to others. Use the managed CachingDisabled policy "
                f"({CACHING_DISABLED_POLICY_ID}).",
                None,
            )


def _validate_custom_domain_tls(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type != DISTRIBUTION or not _as_list(args.props.get("aliases")):
        return
    certificate = args.props.get("viewerCertificate") or {}
    version = certificate.get("minimumProtocolVersion")
    if _is_truthy(certificate.get("cloudfrontDefaultCertificate")) or (
        version not in CUSTOM_DOMAIN_TLS_POLICIES
    ):
        report(
            f"'{args.name}' serves {', '.join(map(str, _as_list(args.props['aliases'])))} with "
            f"minimumProtocolVersion {version!r}; use an ACM certificate with TLSv1.2_2021 or "
            "newer.",
            None,
        )


# --- WAF ----------------------------------------------------------------------------------


def body_label(group: str, rule: str) -> str:
    """The label a managed body rule adds when it matches (`..._BODY` -> `..._Body`)."""
    return f"{LABEL_NAMESPACES[group]}{rule.removesuffix('_BODY')}_Body"


def _allowed_exemptions(rule: str) -> frozenset[tuple[str, str]]:
    """Where a counted body rule's label may go unblocked: signatures on uploads only,
    the size limit on the whole API (the proxy enforces its own)."""
    uploads = ("EXACTLY", PREDICT_PATH)
    if rule == BODY_SIZE_RULE:
        return frozenset({uploads, ("STARTS_WITH", f"{API_PATH_PREFIX}/")})
    return frozenset({uploads})


def _label_block(statement: Mapping[str, Any]) -> tuple[set[str], set[tuple[str, str]]] | None:
    """The labels a statement matches and the URI paths it exempts, for the shapes a
    label rule takes: a label, any of several labels, either AND NOT path matches; None
    for any other statement (which this rule cannot vouch for)."""
    if match := statement.get("labelMatchStatement"):
        return ({str(match.get("key"))}, set()) if match.get("scope") == "LABEL" else None
    if any_of := statement.get("orStatement"):
        labels: set[str] = set()
        for part in _as_list(any_of.get("statements")):
            found = _label_block(part)
            if found is None or found[1]:
                return None
            labels |= found[0]
        return labels, set()
    if all_of := statement.get("andStatement"):
        parts = _as_list(all_of.get("statements"))
        exempt = [_path_exemption(part) for part in parts]
        label_parts = [part for part, path in zip(parts, exempt, strict=True) if path is None]
        found = _label_block(label_parts[0]) if len(label_parts) == 1 else None
        if found is None:
            return None
        return found[0], found[1] | {path for path in exempt if path is not None}
    return None


def _path_exemption(statement: Mapping[str, Any]) -> tuple[str, str] | None:
    """(constraint, path) for `NOT uri path <constraint> <path>` matched as sent."""
    inner = ((statement.get("notStatement") or {}).get("statement")) or {}
    match = inner.get("byteMatchStatement") or {}
    transformations = {t.get("type") for t in _as_list(match.get("textTransformations"))}
    if "uriPath" not in (match.get("fieldToMatch") or {}) or transformations - {"NONE"}:
        return None
    return str(match.get("positionalConstraint")), str(match.get("searchString"))


def _label_blocked(
    acl_rules: list[Any], label: str, after: float, allowed: frozenset[tuple[str, str]]
) -> bool:
    """Whether a rule evaluated after priority `after` (labels are visible only to later
    rules) blocks `label` everywhere but the `allowed` paths."""
    for rule in acl_rules:
        priority = _number(rule.get("priority"))
        if "block" not in (rule.get("action") or {}) or priority is None or priority <= after:
            continue
        found = _label_block(rule.get("statement") or {})
        if found is not None and label in found[0] and found[1] <= allowed:
            return True
    return False


def _validate_waf_admits_uploads(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type != WEB_ACL:
        return
    acl_rules = _as_list(args.props.get("rules"))
    for rule in acl_rules:
        group = (rule.get("statement") or {}).get("managedRuleGroupStatement") or {}
        name = group.get("name")
        if name not in BODY_RULES:
            continue
        whole_group_counts = "count" in (rule.get("overrideAction") or {})
        overrides = {
            str(o.get("name")): o.get("actionToUse") or {}
            for o in _as_list(group.get("ruleActionOverrides"))
        }
        blocking = [
            body_rule
            for body_rule in BODY_RULES[name]
            if not whole_group_counts and "count" not in overrides.get(body_rule, {})
        ]
        if blocking:
            size = (
                f" ({BODY_SIZE_RULE} blocks every body over 8 KB, so every image upload)"
                if BODY_SIZE_RULE in blocking
                else ""
            )
            report(
                f"Rule '{rule.get('name')}' of web ACL '{args.name}' uses {name} without "
                f"overriding {', '.join(blocking)} to count: body rules block image uploads to "
                f"{PREDICT_PATH} whose bytes they happen to match{size}. Count them and block "
                "their labels elsewhere with a later rule (decision 14).",
                None,
            )
        priority = _number(rule.get("priority"))
        unguarded = [
            body_label(name, body_rule)
            for body_rule in BODY_RULES[name]
            if body_rule not in blocking
            and not _label_blocked(
                acl_rules,
                body_label(name, body_rule),
                priority if priority is not None else float("inf"),
                _allowed_exemptions(body_rule),
            )
        ]
        if unguarded:
            report(
                f"Rule '{rule.get('name')}' of web ACL '{args.name}' counts body rules of {name} "
                f"that no later rule blocks outside {PREDICT_PATH} (outside {API_PATH_PREFIX}/ "
                f"for {BODY_SIZE_RULE}), so they are off everywhere: {', '.join(unguarded)}. "
                "Add a block rule after the group on those labels, AND NOT the upload path, "
                "as the stack's body-signatures-outside-uploads (decision 14).",
                None,
            )


# --- IAM ----------------------------------------------------------------------------------


def _policy_documents(args: ResourceValidationArgs) -> Iterator[tuple[str, Any]]:
    if args.resource_type == IAM_ROLE:
        for inline in _as_list(args.props.get("inlinePolicies")):
            yield f"inline policy '{inline.get('name')}'", inline.get("policy")
    elif args.resource_type in IAM_INLINE_POLICY_TYPES:
        yield "policy", args.props.get("policy")


def _validate_no_wildcard_actions(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type in IAM_ATTACHMENT_TYPES:
        arn = str(args.props.get("policyArn") or "")
        if arn.startswith("arn:aws:iam::aws:policy/") and (
            arn.endswith("FullAccess") or arn.endswith("/AdministratorAccess")
        ):
            report(
                f"'{args.name}' attaches the managed policy {arn}; grant the exact actions "
                "on the exact ARNs instead.",
                None,
            )
        return
    for where, document in _policy_documents(args):
        for statement in _statements(document):
            wildcards = _wildcard_actions(statement)
            if wildcards:
                report(
                    f"The {where} of '{args.name}' allows {', '.join(map(str, wildcards))}; "
                    "name each action.",
                    None,
                )


# --- CORS ---------------------------------------------------------------------------------


def _cors_origins(args: ResourceValidationArgs) -> Iterable[Any]:
    props = args.props
    if args.resource_type == HTTP_API:
        yield from _as_list((props.get("corsConfiguration") or {}).get("allowOrigins"))
    elif args.resource_type == FUNCTION_URL:
        yield from _as_list((props.get("cors") or {}).get("allowOrigins"))
    elif args.resource_type in BUCKET_CORS_TYPES:
        for rule in _as_list(props.get("corsRules")):
            yield from _as_list(rule.get("allowedOrigins"))


def _validate_cors(args: ResourceValidationArgs, report: ReportViolation) -> None:
    for origin in _cors_origins(args):
        if "*" in str(origin):
            report(
                f"'{args.name}' allows the CORS origin {origin!r}; allow the site's own "
                "origin only.",
                None,
            )


# --- logs ---------------------------------------------------------------------------------


def _validate_log_retention(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type != LOG_GROUP:
        return
    retention = _number(args.props.get("retentionInDays"))
    if not retention or retention <= 0:
        report(f"Log group '{args.name}' keeps logs forever; set retentionInDays.", None)


def _validate_functions_have_log_groups(args: StackValidationArgs, report: ReportViolation) -> None:
    managed = {
        str(r.props.get("name"))
        for r in args.resources
        if r.resource_type == LOG_GROUP and r.props.get("name")
    }
    for function in args.resources:
        if function.resource_type != LAMBDA_FUNCTION:
            continue
        logging_config = function.props.get("loggingConfig") or {}
        names = {f"/aws/lambda/{function.props.get('name') or function.name}"}
        if logging_config.get("logGroup"):
            names = {str(logging_config["logGroup"])}
        if not names & managed:
            report(
                f"Lambda function '{function.name}' writes to a log group the stack does not "
                f"manage ({', '.join(sorted(names))}); Lambda would create it with no retention.",
                function.urn,
            )


def _validate_state_machine_logging(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type != STATE_MACHINE:
        return
    logging = args.props.get("loggingConfiguration") or {}
    level = logging.get("level")
    if level not in STATE_MACHINE_LOG_LEVELS or not logging.get("logDestination"):
        report(
            f"State machine '{args.name}' must log its executions to a CloudWatch log group "
            f"(loggingConfiguration: level one of {sorted(STATE_MACHINE_LOG_LEVELS)} and a "
            f"logDestination), got level {level!r}: a failed execution would leave no trace "
            "once its history expires.",
            None,
        )


# --- serverless capacity ------------------------------------------------------------------


def _validate_serverless_capacity(args: ResourceValidationArgs, report: ReportViolation) -> None:
    config = args.get_config()
    props = args.props
    if args.resource_type == ENDPOINT_CONFIGURATION:
        max_memory = int(config.get("maxServerlessMemoryMb", max(SERVERLESS_MEMORY_SIZES_MB)))
        max_concurrency = int(config.get("maxServerlessConcurrency", SERVERLESS_MAX_CONCURRENCY))
        for variant in _as_list(props.get("productionVariants")):
            serverless = variant.get("serverlessConfig")
            name = variant.get("variantName")
            if not serverless:
                report(
                    f"Variant '{name}' of '{args.name}' is not serverless; this stack "
                    "promises a SageMaker Serverless endpoint.",
                    None,
                )
                continue
            memory = _number(serverless.get("memorySizeInMb"))
            if memory not in SERVERLESS_MEMORY_SIZES_MB or (memory or 0) > max_memory:
                report(
                    f"Variant '{name}': memorySizeInMb {memory} must be one of 1024..{max_memory} "
                    "in 1024 MB steps.",
                    None,
                )
            concurrency = _number(serverless.get("maxConcurrency")) or 0
            if not 1 <= concurrency <= max_concurrency:
                report(
                    f"Variant '{name}': maxConcurrency {concurrency:g} must be within "
                    f"1..{max_concurrency}.",
                    None,
                )
            provisioned = _number(serverless.get("provisionedConcurrency"))
            if provisioned is not None and not 1 <= provisioned <= concurrency:
                report(
                    f"Variant '{name}': provisionedConcurrency {provisioned:g} must be within "
                    f"1..maxConcurrency ({concurrency:g}).",
                    None,
                )
    elif args.resource_type == LAMBDA_FUNCTION:
        max_memory = int(config.get("maxLambdaMemoryMb", LAMBDA_MAX_MEMORY_MB))
        memory = _number(props.get("memorySize")) or LAMBDA_DEFAULT_MEMORY_MB
        if not LAMBDA_MIN_MEMORY_MB <= memory <= max_memory:
            report(
                f"Lambda '{args.name}': memorySize {memory:g} MB must be within "
                f"{LAMBDA_MIN_MEMORY_MB}..{max_memory}.",
                None,
            )
        reserved = _number(props.get("reservedConcurrentExecutions"))
        if reserved == 0:
            report(
                f"Lambda '{args.name}': reservedConcurrentExecutions 0 stops every invocation.",
                None,
            )


# --- API Gateway ---------------------------------------------------------------------------


def _validate_stage_throttling(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type != HTTP_API_STAGE:
        return
    defaults = args.props.get("defaultRouteSettings") or {}
    for limit in ("throttlingRateLimit", "throttlingBurstLimit"):
        value = _number(defaults.get(limit))
        if not value or value <= 0:
            report(
                f"Stage '{args.name}' has no defaultRouteSettings.{limit}; without it the "
                "account-wide limit (10,000 requests/s) is all that stands before the endpoint.",
                None,
            )
    for route in _as_list(args.props.get("routeSettings")):
        for limit in ("throttlingRateLimit", "throttlingBurstLimit"):
            value = _number(route.get(limit))
            if value is not None and value <= 0:
                report(f"Route '{route.get('routeKey')}' sets {limit} to {value:g}.", None)


# --- ECR ----------------------------------------------------------------------------------


def _validate_ecr_repository(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type != ECR_REPOSITORY:
        return
    scanning = args.props.get("imageScanningConfiguration") or {}
    if not _is_truthy(scanning.get("scanOnPush")):
        report(
            f"ECR repository '{args.name}' must scan every image on push "
            "(imageScanningConfiguration.scanOnPush true).",
            None,
        )
    # Tag mutability is not judged: the serving image's tag may move, since SageMaker runs
    # it by digest (docs/decisions/0012-serving-image-mutable-tags-unprivileged-user.md).


# --- DynamoDB -------------------------------------------------------------------------------


def _validate_dynamodb_table(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type != DYNAMODB_TABLE:
        return
    recovery = args.props.get("pointInTimeRecovery") or {}
    if not _is_truthy(recovery.get("enabled")):
        report(
            f"DynamoDB table '{args.name}' must have point-in-time recovery "
            "(pointInTimeRecovery.enabled true): without it a bad write or a deleted item "
            "cannot be brought back.",
            None,
        )
    encryption = args.props.get("serverSideEncryption") or {}
    if not _is_truthy(encryption.get("enabled")):
        report(
            f"DynamoDB table '{args.name}' must be encrypted with AWS KMS "
            "(serverSideEncryption.enabled true: the AWS managed key aws/dynamodb or a "
            "customer key, whose every use CloudTrail records).",
            None,
        )


# --- the rules, in the order docs/operations.md lists them -------------------------------------

s3_no_public_access = ResourceValidationPolicy(
    name="s3-no-public-access",
    description="S3 buckets are private: public access fully blocked, no public ACLs or grants, "
    "no bucket policy that admits anyone unconditionally.",
    validate=_validate_s3_no_public_access,
)

s3_encryption_at_rest = ResourceValidationPolicy(
    name="s3-encryption-at-rest",
    description="S3 default encryption uses SSE-S3 or SSE-KMS.",
    validate=_validate_s3_encryption,
)

s3_tls_only = ResourceValidationPolicy(
    name="s3-tls-only",
    description="Bucket policies deny every request made without TLS (aws:SecureTransport).",
    validate=_validate_s3_tls_only,
)

s3_bucket_guards = StackValidationPolicy(
    name="s3-bucket-guards-present",
    description="Every bucket has a public access block, default encryption and a TLS-only "
    "bucket policy in the same stack.",
    validate=_validate_bucket_companions,
)

cloudfront_private_origins = ResourceValidationPolicy(
    name="cloudfront-oac-origins",
    description="CloudFront reaches S3 through Origin Access Control, never a public website "
    "endpoint or a legacy origin access identity.",
    validate=_validate_private_origins,
)

cloudfront_https_only = ResourceValidationPolicy(
    name="cloudfront-https-only",
    description="CloudFront viewers use HTTPS (redirect-to-https or https-only).",
    validate=_validate_https_only,
)

iam_no_wildcard_actions = ResourceValidationPolicy(
    name="iam-no-wildcard-actions",
    description="IAM policies name their actions: no '*' or 'service:*', no NotAction allows, "
    "no managed FullAccess or AdministratorAccess policies.",
    validate=_validate_no_wildcard_actions,
)

cors_no_wildcard = ResourceValidationPolicy(
    name="cors-no-wildcard-origin",
    description="CORS admits named origins only, never '*'.",
    validate=_validate_cors,
)

log_retention_set = ResourceValidationPolicy(
    name="log-retention-set",
    description="CloudWatch log groups expire their logs (retentionInDays set).",
    validate=_validate_log_retention,
)

lambda_log_groups_managed = StackValidationPolicy(
    name="lambda-log-groups-managed",
    description="Every Lambda function writes to a log group the stack manages (so its "
    "retention applies).",
    validate=_validate_functions_have_log_groups,
)

state_machines_log_executions = ResourceValidationPolicy(
    name="stepfunctions-logging-enabled",
    description="Step Functions state machines log their executions to CloudWatch Logs "
    "(level ALL, ERROR or FATAL, with a log group).",
    validate=_validate_state_machine_logging,
)

serverless_capacity_in_range = ResourceValidationPolicy(
    name="serverless-capacity-in-range",
    description="SageMaker Serverless memory is 1-6 GB in 1 GB steps with 1-200 concurrency "
    "(provisioned <= max); Lambda memory and reserved concurrency are within bounds.",
    validate=_validate_serverless_capacity,
    config_schema=PolicyConfigSchema(
        properties={
            "maxServerlessMemoryMb": {"type": "integer", "default": 6144, "minimum": 1024},
            "maxServerlessConcurrency": {"type": "integer", "default": 200, "minimum": 1},
            "maxLambdaMemoryMb": {"type": "integer", "default": 10240, "minimum": 128},
        }
    ),
)

api_stage_throttling = ResourceValidationPolicy(
    name="api-stage-throttling",
    description="HTTP API stages set a positive default rate and burst limit.",
    validate=_validate_stage_throttling,
)

ecr_scanned_on_push = ResourceValidationPolicy(
    name="ecr-scan-on-push",
    description="ECR repositories scan every image pushed.",
    validate=_validate_ecr_repository,
)

cloudfront_api_not_cached = ResourceValidationPolicy(
    name="cloudfront-api-not-cached",
    description="CloudFront never caches the API: its /api/* behaviour uses the CachingDisabled "
    "policy (or TTLs of 0).",
    validate=_validate_api_not_cached,
)

cloudfront_custom_domain_tls = ResourceValidationPolicy(
    name="cloudfront-custom-domain-tls",
    description="A distribution with its own domain names requires TLSv1.2_2021 or newer from "
    "viewers.",
    validate=_validate_custom_domain_tls,
)

waf_common_rules_admit_uploads = ResourceValidationPolicy(
    name="waf-common-rules-admit-uploads",
    description="A web ACL's managed body rules (decision 14) count, so image uploads are not "
    "blocked, and a later rule blocks their labels everywhere but the upload path.",
    validate=_validate_waf_admits_uploads,
)

dynamodb_recoverable_and_encrypted = ResourceValidationPolicy(
    name="dynamodb-pitr-and-encryption",
    description="DynamoDB tables have point-in-time recovery and AWS KMS encryption at rest.",
    validate=_validate_dynamodb_table,
)

POLICIES: list[ResourceValidationPolicy | StackValidationPolicy] = [
    s3_no_public_access,
    s3_encryption_at_rest,
    s3_tls_only,
    s3_bucket_guards,
    cloudfront_private_origins,
    cloudfront_https_only,
    cloudfront_api_not_cached,
    cloudfront_custom_domain_tls,
    waf_common_rules_admit_uploads,
    iam_no_wildcard_actions,
    cors_no_wildcard,
    log_retention_set,
    lambda_log_groups_managed,
    state_machines_log_executions,
    serverless_capacity_in_range,
    api_stage_throttling,
    ecr_scanned_on_push,
    dynamodb_recoverable_and_encrypted,
]

PACK_NAME = "image-classifier-guardrails"
ENFORCEMENT_LEVEL = EnforcementLevel.MANDATORY
