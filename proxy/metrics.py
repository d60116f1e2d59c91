"""CloudWatch metrics per variant, in Embedded Metric Format (EMF) inside the log line.

The request's one JSON log line carries the metrics too: CloudWatch Logs extracts them from
the `_aws` member, so publishing costs no API call, no latency and no extra permission.
`EmfMetrics.request(...)` and `.feedback(...)` return the members to add to the line
(`proxy.logs.append_keys(**members)`):

    {"_aws": {"Timestamp": <Unix ms>,
              "CloudWatchMetrics": [{"Namespace": "ImageClassifier",
                                     "Dimensions": [["Service", "Variant"]],
                                     "Metrics": [{"Name": "Requests", "Unit": "Count"}, ...]}]},
     "Service": "image-classifier-prod", "Variant": "canary", "Requests": 1, ...}

Metrics, in the namespace `ImageClassifier` with the dimensions `Service` (one per stack)
and `Variant`:

- a request that reached a variant: `Requests` (Count, 1), `Errors` (Count, 1 for a 5xx,
  else 0: its Average is the error rate), `Latency` (Milliseconds, the whole request), and
  for an answered prediction `NeedsReview` (Count, 1 or 0: its Average is the share sent to
  a person). Requests refused before a variant is picked (access, validation) have none.
- feedback on a prediction: `FeedbackCorrect` and `FeedbackWrong` (Count) count each
  prediction's verdict once, as the store keeps only its last: a first verdict is a 1 and a
  0, a changed one moves the count (-1 from the old, +1 to the new), and a repeated one
  (the page's "wrong" and then "wrong" with the label) has none. The Sums therefore count
  the predictions judged correct and wrong, and `FeedbackCorrect / (FeedbackCorrect +
  FeedbackWrong)` of the Sums is the accuracy users report, as `python -m admin.report`
  gives it.

Only the per-variant dimension set: each set is billed as custom metrics of its own, and a
service total is the sum of its variants in metric math (a dashboard's or an alarm's).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from proxy.predictions import VERDICTS
from shared.metrics import NAMESPACE, SERVICE_DIMENSION, VARIANT_DIMENSION

# The EMF specification's limit on a dimension value, and CloudWatch's on a namespace.
MAX_DIMENSION_VALUE = 1024
MAX_NAMESPACE = 255

COUNT = "Count"
MILLISECONDS = "Milliseconds"


@dataclass(frozen=True)
class EmfMetrics:
    """Builds the EMF members of one stack's log lines."""

    service: str
    """The stack's proxy, e.g. its function name: dev and prod in one account stay apart."""
    namespace: str = NAMESPACE
    clock: Callable[[], float] = time.time
    """Unix seconds."""

    def __post_init__(self) -> None:
        if not isinstance(self.service, str) or not 0 < len(self.service) <= MAX_DIMENSION_VALUE:
            raise ValueError(
                f"the metrics' service {self.service!r} must be 1 to {MAX_DIMENSION_VALUE} "
                "characters"
            )
        if (
            not isinstance(self.namespace, str)
            or not 0 < len(self.namespace) <= MAX_NAMESPACE
            or self.namespace.startswith("AWS/")
        ):
            raise ValueError(
                f"the metrics' namespace {self.namespace!r} must be 1 to {MAX_NAMESPACE} "
                "characters and not start with AWS/ (reserved for AWS's own)"
            )

    def request(
        self, variant: str, *, status: int, latency_ms: float, needs_review: bool | None = None
    ) -> dict[str, Any]:
        """A request a variant handled: its status, its whole latency, and for a 200 whether
        the prediction needs review (None otherwise)."""
        metrics: list[tuple[str, str, float]] = [
            ("Requests", COUNT, 1),
            ("Errors", COUNT, 1 if status >= 500 else 0),
            ("Latency", MILLISECONDS, round(latency_ms, 3)),
        ]
        if needs_review is not None:
            metrics.append(("NeedsReview", COUNT, 1 if needs_review else 0))
        return self._members(variant, metrics)

    def feedback(self, variant: str, verdict: str, previous: str | None = None) -> dict[str, Any]:
        """A verdict (`correct` or `wrong`) on a prediction `variant` made, which had the
        verdict `previous` before (None: none); no members when the verdict is unchanged."""
        if verdict not in VERDICTS or previous not in (None, *VERDICTS):
            raise ValueError(
                f"verdicts must be 'correct' or 'wrong', not {verdict!r} after {previous!r}"
            )
        if verdict == previous:
            return {}
        counts = {name: int(name == verdict) - int(name == previous) for name in VERDICTS}
        return self._members(
            variant,
            [
                ("FeedbackCorrect", COUNT, counts["correct"]),
                ("FeedbackWrong", COUNT, counts["wrong"]),
            ],
        )

    def _members(self, variant: str, metrics: list[tuple[str, str, float]]) -> dict[str, Any]:
        if not isinstance(variant, str) or not 0 < len(variant) <= MAX_DIMENSION_VALUE:
            raise ValueError(
                f"the variant {variant!r} must be 1 to {MAX_DIMENSION_VALUE} characters"
            )
        members: dict[str, Any] = {
            "_aws": {
                "Timestamp": int(self.clock() * 1000),
                "CloudWatchMetrics": [
                    {
                        "Namespace": self.namespace,
                        "Dimensions": [[SERVICE_DIMENSION, VARIANT_DIMENSION]],
                        "Metrics": [{"Name": name, "Unit": unit} for name, unit, _ in metrics],
                    }
                ],
            },
            SERVICE_DIMENSION: self.service,
            VARIANT_DIMENSION: variant,
        }
        members.update((name, value) for name, _, value in metrics)
        return members
