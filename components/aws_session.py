"""The AWS session of the dynamic providers: the stack's AWS provider settings, checked.

pulumi-aws authenticates from the stack's config (`aws:profile`, `aws:assumeRoles`,
`aws:region`). boto3 in a dynamic provider knows none of that: left alone it takes
whatever the default credential chain finds, possibly another account's credentials.
So every dynamic resource takes an `aws` input, made by `provider_session`, and its
provider builds its session with `checked_session` from exactly those settings:

- the profile, then each role of `aws:assumeRoles` in turn, in the stack's region;
- then STS `GetCallerIdentity`, before any other call, and a `WrongAccountError` unless
  the session is in the account the stack's AWS provider deploys to (the provider's own
  `get_caller_identity`, which pulumi-aws has already held against `aws:allowedAccountIds`
  and `aws:forbiddenAccountIds`; so those are honoured too, without a second copy).

Nothing secret is passed, because the `aws` input is stored in the stack's state: a
profile's name, role ARNs, session names and external IDs (a confused-deputy guard, not
a credential). Static keys in the stack config (`aws:accessKey`, `aws:secretKey`) are never
passed on; where they are the AWS provider's only credentials, the dynamic providers find
other credentials or none, and the account check stops them with what to set.

An assumed role's credentials are refreshed before they expire (botocore's assume-role
fetcher, as for a profile with `role_arn`), so a rollout that waits longer than one role
session still has credentials at the end.
"""

import re
from collections.abc import Mapping, Sequence
from typing import Any, NotRequired, TypedDict

import boto3
import botocore.credentials
import botocore.session
import pulumi
import pulumi_aws as aws

DEFAULT_SESSION_NAME = "image-classifier-dynamic-provider"
"""STS session name when `aws:assumeRoles` gives none (CloudTrail shows it)."""
ROLE_FIELDS = {"roleArn": "role_arn", "sessionName": "session_name", "externalId": "external_id"}
"""The fields of an `aws:assumeRoles` entry the dynamic providers take, by config name."""
IGNORED_ROLE_FIELDS = frozenset({"duration"})
"""Harmless to leave out: the dynamic providers refresh an assumed role's credentials."""
_ROLE_ARN = re.compile(r"arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]+")


class WrongAccountError(Exception):
    """The dynamic provider's credentials are not for the stack's account; nothing was done."""


# Plain dicts (`TypedDict`s), as component inputs are: the component provider passes them
# so, and the stack state stores them so (no annotations from `__future__` here: the
# provider reads these types at run time to infer its schema).
class AssumedRole(TypedDict):
    """A role to assume, as an entry of `aws:assumeRoles` names it (the fields the dynamic
    providers honour)."""

    role_arn: str
    """The role's ARN."""
    session_name: NotRequired[str]
    """The STS session name CloudTrail shows (by default the dynamic providers' own)."""
    external_id: NotRequired[str]
    """The external ID the role's trust policy asks for, if any."""


class AwsSessionSettings(TypedDict, total=False):
    """How the stack's AWS provider authenticates, minus anything secret: the dynamic
    providers (endpoint rollout, CloudFront invalidation) authenticate the same way. Empty:
    the default credential chain."""

    profile: str
    """A profile of the AWS config files (`aws:profile`)."""
    assume_roles: Sequence[AssumedRole]
    """Roles assumed in turn, each with the previous one's credentials (`aws:assumeRoles`)."""


def read_assume_roles(entries: Any) -> tuple[list[AssumedRole], dict[str, str]]:
    """`aws:assumeRoles` as pulumi-aws reads it (a list of objects), and what is wrong with
    it by key suffix (`""`, `"[0].roleArn"`). A field the dynamic providers cannot honour
    (`policy`, `tags`, ...) is refused rather than dropped: their session would differ
    from the AWS provider's."""
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        return [], {"": "must be a list of roles: [{roleArn: arn:aws:iam::ACCOUNT:role/NAME}]"}
    roles: list[AssumedRole] = []
    problems: dict[str, str] = {}
    for index, entry in enumerate(entries):
        unsupported = sorted(set(entry) - set(ROLE_FIELDS) - IGNORED_ROLE_FIELDS)
        if unsupported:
            problems[f"[{index}]"] = (
                f"{', '.join(unsupported)} is not supported by the dynamic providers "
                f"(they honour {', '.join(ROLE_FIELDS)}); remove it or deploy without it"
            )
        arn = entry.get("roleArn")
        if not arn:
            problems[f"[{index}].roleArn"] = "must be set"
        elif not _ROLE_ARN.fullmatch(str(arn)):
            problems[f"[{index}].roleArn"] = f"{arn!r} is not a role ARN"
        else:
            role = AssumedRole(role_arn=str(arn))
            if "sessionName" in entry:
                role["session_name"] = str(entry["sessionName"])
            if "externalId" in entry:
                role["external_id"] = str(entry["externalId"])
            roles.append(role)
    return roles, problems


def provider_session(
    parent: pulumi.Resource,
    settings: AwsSessionSettings,
    region: pulumi.Input[str] | None = None,
) -> dict[str, pulumi.Input[Any]]:
    """The `aws` input of a dynamic resource created under `parent`: `settings`, `region`
    (None: the AWS provider's) and the account to insist on, the one the stack's AWS
    provider works in."""
    invoke = pulumi.InvokeOutputOptions(parent=parent)
    return {
        "region": region if region is not None else aws.get_region_output(opts=invoke).region,
        "profile": settings.get("profile"),
        "assume_roles": [
            {
                "role_arn": role["role_arn"],
                "session_name": role.get("session_name"),
                "external_id": role.get("external_id"),
            }
            for role in settings.get("assume_roles", ())
        ],
        "account_id": aws.get_caller_identity_output(opts=invoke).account_id,
    }


def checked_session(spec: Mapping[str, Any]) -> boto3.Session:
    """A boto3 session from a `provider_session` input, once STS confirms its account."""
    session = boto3.Session(profile_name=spec.get("profile") or None, region_name=spec["region"])
    for role in spec.get("assume_roles") or ():
        session = _assumed(session, role, spec["region"])
    expected = str(spec["account_id"])
    identity = session.client("sts").get_caller_identity()
    if identity["Account"] != expected:
        raise WrongAccountError(
            f"refusing to act: the dynamic providers' AWS credentials are for account "
            f"{identity['Account']} ({identity['Arn']}), but this stack deploys to account "
            f"{expected}. They use aws:profile ({spec.get('profile') or 'not set'}), "
            f"aws:assumeRoles ({_roles(spec.get('assume_roles') or ())}) and otherwise the "
            "default credential chain (AWS_PROFILE, AWS_* variables); static keys in the "
            "stack config are never passed to them. Make those reach the stack's account."
        )
    return session


def _roles(roles: Sequence[Mapping[str, Any]]) -> str:
    return ", ".join(str(role["role_arn"]) for role in roles) or "none"


class _Fixed(botocore.credentials.CredentialProvider):
    """Hands a botocore session exactly these (refreshing) credentials."""

    METHOD = "assume-role"

    def __init__(self, credentials: botocore.credentials.Credentials) -> None:
        super().__init__()
        self._credentials = credentials

    def load(self) -> botocore.credentials.Credentials:
        return self._credentials


def _assumed(source: boto3.Session, role: Mapping[str, Any], region: str) -> boto3.Session:
    """A session that is `role`, assumed with `source`'s credentials, refreshed as needed."""
    extra = {"RoleSessionName": role.get("session_name") or DEFAULT_SESSION_NAME}
    if role.get("external_id"):
        extra["ExternalId"] = role["external_id"]
    fetcher = botocore.credentials.AssumeRoleCredentialFetcher(
        client_creator=source.client,
        source_credentials=source.get_credentials(),
        role_arn=role["role_arn"],
        extra_args=extra,
    )
    credentials = botocore.credentials.DeferredRefreshableCredentials(
        refresh_using=fetcher.fetch_credentials, method="assume-role"
    )
    assumed = botocore.session.Session()
    assumed.register_component(
        "credential_provider", botocore.credentials.CredentialResolver([_Fixed(credentials)])
    )
    return boto3.Session(botocore_session=assumed, region_name=region)
