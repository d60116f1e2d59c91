"""`SiteCertificate`: the ACM certificate CloudFront serves the site's own domain with.

CloudFront takes certificates from us-east-1 only, whatever the stack's region. Each
resource here names that region itself (pulumi-aws's per-resource `region`) rather than
going through a second, explicit provider: an explicit provider reads none of the stack's
`aws:*` config, so it would drop `aws:profile`, `aws:assumeRoles` and
`aws:allowedAccountIds` and could act in another account.

The certificate is validated by DNS, in one of two ways:

- With the domain's Route 53 hosted zone (`hosted_zone_id`), the validation record is
  created there and `CertificateValidation` waits until ACM has issued the certificate:
  one `pulumi up` serves the site at its domain.
- Without one (the domain's DNS is elsewhere), `pulumi up` requests the certificate and
  exports its validation record, and the site stays at its CloudFront address: CloudFront
  refuses a certificate that is not issued yet. Once the operator has created the record,
  `validated` (config `domainValidated`) makes the next `pulumi up` wait for the issued
  certificate and attach it. No step of this runs unattended for long: the first `up`
  never waits on DNS that someone else has to create. ACM waits `VALIDATION_WINDOW_HOURS`
  for the record, then gives up for good (`VALIDATION_TIMED_OUT`): the way out is a new
  certificate (`timed_out_problem` says how). A plain preview cannot see that (the state
  keeps the status of the last read); a refresh reads it, and the program then warns.

ACM renews the certificate by itself as long as the validation record stays in DNS.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.monitoring import RESERVED_DOMAINS, RESERVED_TOP_LEVEL

TYPE = "image-classifier:site_certificate:SiteCertificate"
CLOUDFRONT_REGION = "us-east-1"
"""Where CloudFront reads certificates and CLOUDFRONT-scope web ACLs from."""
MAX_DOMAIN_LENGTH = 64
"""ACM's limit for a certificate's first domain name (its subject's common name)."""
VALIDATION_RECORD_TTL = 300
VALIDATION_WINDOW_HOURS = 72
"""How long ACM waits for a certificate's validation record before it stops trying
(`VALIDATION_TIMED_OUT`): "Requests for ACM certificates time out if they are not
validated within 72 hours" (ACM User Guide, troubleshooting certificate requests)."""
TIMED_OUT = "VALIDATION_TIMED_OUT"
OPERATIONS_SECTION = "docs/operations.md, Access at the edge"

_LABEL = r"(?!-)[a-z0-9-]{1,63}(?<!-)"
_DOMAIN = re.compile(rf"{_LABEL}(\.{_LABEL})*\.(?:[a-z]{{2,63}}|xn--[a-z0-9-]{{1,59}})")
_HOSTED_ZONE_ID = re.compile(r"Z[A-Z0-9]{1,31}")


def domain_problems(
    domain_name: str | None, hosted_zone_id: str | None, validated: bool
) -> dict[str, str]:
    """What is wrong with the custom domain's settings, by `SiteCertificateArgs` field;
    empty when valid (no domain at all is valid: the site keeps its CloudFront address)."""
    problems = {}
    if domain_name is None:
        if hosted_zone_id is not None:
            problems["hosted_zone_id"] = "is set but domainName is empty"
        if validated:
            problems["validated"] = "is true but domainName is empty"
        return problems
    if len(domain_name) > MAX_DOMAIN_LENGTH or not _DOMAIN.fullmatch(domain_name):
        problems["domain_name"] = (
            f"{domain_name!r} is not a DNS name ACM can issue a certificate for: lower-case "
            f"labels of letters, digits and '-', at most {MAX_DOMAIN_LENGTH} characters, "
            "no wildcard (e.g. classify.your-company.com)"
        )
    elif _is_reserved(domain_name):
        problems["domain_name"] = (
            f"{domain_name!r} is a domain reserved for examples and tests (RFC 2606, RFC "
            "6761): nobody can create its validation record, so ACM would never issue it"
        )
    if hosted_zone_id is not None and not _HOSTED_ZONE_ID.fullmatch(hosted_zone_id):
        problems["hosted_zone_id"] = (
            f"{hosted_zone_id!r} is not a Route 53 hosted zone ID (Z followed by capital "
            "letters and digits, e.g. Z0123456789ABCDEFGHIJ)"
        )
    if hosted_zone_id is not None and validated:
        problems["validated"] = (
            "is only for a domain without hostedZoneId; with the zone the stack validates "
            "the certificate itself: leave domainValidated false"
        )
    return problems


def timed_out_problem(domain: str, status: str | None, urn: str) -> str | None:
    """What to do about a certificate ACM stopped validating (`status` as the state holds
    it, fresh after a refresh); None for any other status."""
    if status != TIMED_OUT:
        return None
    return (
        f"The certificate for {domain} is {TIMED_OUT}: ACM stopped waiting for its validation "
        f"record after {VALIDATION_WINDOW_HOURS} hours and will never issue it. Make sure the "
        "record of `pulumi stack output certificate_validation_records` is in DNS (a new "
        f"certificate for the same domain has the same record), then request a new one: "
        f"`pulumi up --replace '{urn}'` ({OPERATIONS_SECTION})."
    )


def _is_reserved(domain: str) -> bool:
    # The same reserved names the alarm email is checked against, from one list.
    return domain.rpartition(".")[2] in RESERVED_TOP_LEVEL or any(
        domain == name or domain.endswith(f".{name}") for name in RESERVED_DOMAINS
    )


@dataclass
class SiteCertificateArgs:
    domain_name: str
    """The site's own domain, e.g. `classify.your-company.com` (checked by `domain_problems`)."""
    hosted_zone_id: str | None = None
    """Its Route 53 hosted zone: the stack creates the validation record there and waits."""
    validated: bool = False
    """Without a zone: the operator has created the validation record, so `pulumi up` may
    wait for the issued certificate and attach it."""
    tags: pulumi.Input[Mapping[str, str]] | None = None


class SiteCertificate(pulumi.ComponentResource):
    certificate_arn: pulumi.Output[str] | None
    """The issued certificate (available once ACM issued it), or None while the operator
    still has to create the validation record."""
    validation_records: pulumi.Output[list[dict[str, str]]]
    """The DNS records that validate the certificate: `name`, `type`, `value`."""

    def __init__(
        self, name: str, args: SiteCertificateArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(TYPE, name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        certificate = aws.acm.Certificate(
            f"{name}-certificate",
            domain_name=args.domain_name,
            validation_method="DNS",
            region=CLOUDFRONT_REGION,
            tags=args.tags,
            opts=child,
        )
        pulumi.Output.all(certificate.status, certificate.urn).apply(
            lambda found: self._warn_if_timed_out(args.domain_name, found[0], found[1])
        )
        # One domain, so exactly one validation option: known in shape before AWS answers,
        # so its record is created here, not inside an `apply`.
        option = certificate.domain_validation_options[0]
        self.validation_records = pulumi.Output.all(
            option.resource_record_name, option.resource_record_type, option.resource_record_value
        ).apply(lambda record: [{"name": record[0], "type": record[1], "value": record[2]}])

        self.certificate_arn = None
        if args.hosted_zone_id is not None:
            record = aws.route53.Record(
                f"{name}-validation-record",
                zone_id=args.hosted_zone_id,
                name=option.resource_record_name,
                type=option.resource_record_type,
                records=[option.resource_record_value],
                ttl=VALIDATION_RECORD_TTL,
                # ACM derives the record from the account and the domain alone: a certificate
                # requested again for the same domain needs the very same record.
                allow_overwrite=True,
                opts=child,
            )
            self.certificate_arn = aws.acm.CertificateValidation(
                f"{name}-validation",
                certificate_arn=certificate.arn,
                validation_record_fqdns=[record.fqdn],
                region=CLOUDFRONT_REGION,
                opts=child,
            ).certificate_arn
        elif args.validated:
            # Waits until ACM has seen the record the operator created, then issues.
            self.certificate_arn = aws.acm.CertificateValidation(
                f"{name}-validation",
                certificate_arn=certificate.arn,
                region=CLOUDFRONT_REGION,
                opts=child,
            ).certificate_arn
        else:
            pulumi.log.warn(
                f"domainName {args.domain_name} has no hostedZoneId, so the site stays at its "
                "CloudFront address for now. Create the DNS record of `pulumi stack output "
                f"certificate_validation_records` where {args.domain_name} is served within "
                f"{VALIDATION_WINDOW_HOURS} hours of the certificate's request (ACM then gives "
                f"up: {TIMED_OUT}, see {OPERATIONS_SECTION}), then "
                "`pulumi config set domainValidated true` and `pulumi up` again.",
                resource=self,
            )
        self.register_outputs(
            {"certificate_arn": self.certificate_arn, "validation_records": self.validation_records}
        )

    def _warn_if_timed_out(self, domain: str, status: str | None, urn: str) -> None:
        problem = timed_out_problem(domain, status, urn)
        if problem is not None:
            pulumi.log.warn(problem, resource=self)
