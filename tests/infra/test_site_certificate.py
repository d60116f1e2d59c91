"""ACM's 72-hour validation window in the two-step domain flow (issue 19, item 8): the
warning that starts the window says so, and a certificate whose window has passed
(`VALIDATION_TIMED_OUT`, as a refresh reads it) is named with its way out."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from components.site_certificate import VALIDATION_WINDOW_HOURS, timed_out_problem
from tests.infra.conftest import PROJECT, StackRun

CERTIFICATE = "aws:acm/certificate:Certificate"
DOMAIN = "classify.classifier-team.io"
URN = f"urn:pulumi:dev::{PROJECT}::{CERTIFICATE}::domain-certificate"


@pytest.fixture(scope="module")
def unzoned(run_stack: Callable[[dict[str, str]], StackRun]) -> StackRun:
    run = run_stack({f"{PROJECT}:domainName": DOMAIN})
    assert run.error is None, run.error
    return run


def test_acm_gives_up_after_72_hours():
    """AWS: "Requests for ACM certificates time out if they are not validated within 72
    hours" (ACM User Guide, troubleshooting certificate requests)."""
    assert VALIDATION_WINDOW_HOURS == 72


def test_the_first_step_says_how_long_the_record_may_take(unzoned: StackRun):
    (warning,) = unzoned.warnings
    assert "within 72 hours" in warning
    assert "VALIDATION_TIMED_OUT" in warning
    assert "docs/operations.md" in warning


def test_a_timed_out_certificate_is_named_with_its_way_out():
    problem = timed_out_problem(DOMAIN, "VALIDATION_TIMED_OUT", URN)
    assert problem is not None
    assert DOMAIN in problem
    assert "72 hours" in problem
    # The way out: a new certificate for the same domain, whose record is the same one.
    assert f"pulumi up --replace '{URN}'" in problem
    assert "pulumi stack output certificate_validation_records" in problem


@pytest.mark.parametrize("status", ["PENDING_VALIDATION", "ISSUED", None])
def test_any_other_status_is_no_problem(status):
    assert timed_out_problem(DOMAIN, status, URN) is None


def test_the_mocked_pending_certificate_adds_no_second_warning(unzoned: StackRun):
    """The dev mocks' certificate is PENDING_VALIDATION: only the first step's warning."""
    assert unzoned.one(CERTIFICATE).state["status"] == "PENDING_VALIDATION"
    assert len(unzoned.warnings) == 1
