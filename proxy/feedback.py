"""`POST /api/feedback` and `GET /api/labels`: what users say about a prediction, and the
labels they may say it with.

Feedback is `{"request_id": <a prediction's>, "verdict": "correct" | "wrong", "label":
<the right label, optional, with "wrong" only>}`, at most `MAX_FEEDBACK_BYTES`. The
prediction is read from the store first: its model version says which labels a `label`
must be one of (`proxy.labels`), and an unknown or expired id is a 404 before anything is
written. A second verdict on the same prediction replaces the first.

The label `SOMETHING_ELSE` says the image is none of the model's labels (the web UI's
"Something else"); it is taken for any model version and stored as it is.

`GET /api/labels?version=<model_version>` lists a version's labels for the page's "What is
it?" picker. A version's labels never change, so the browser may keep the answer.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any

from proxy.labels import LabelList, LabelsUnavailable, ModelLabels, is_model_version
from proxy.logs import append_keys, log
from proxy.predictions import (
    InvalidFeedback,
    Prediction,
    PredictionNotFound,
    PredictionStore,
    StoreError,
    parse_feedback,
)
from proxy.responses import ApiError

MAX_FEEDBACK_BYTES = 2048
"""A feedback document is a request id, a verdict and a label: 2 KB is plenty."""
RETRY_AFTER_STORE = 5
LABELS_CACHE_CONTROL = "private, max-age=31536000, immutable"
"""A version's labels never change; `private`: the answer passed the access check, so no
shared cache should hand it on."""
SOMETHING_ELSE = "(something else)"
"""The label for "none of the model's labels"; no model's label list is checked for it."""
_HOW = '{"request_id": "<a prediction\'s request_id>", "verdict": "correct" or "wrong"}'


@dataclass(frozen=True)
class FeedbackTaken:
    """A verdict stored: the prediction as it now is, and the verdict it had before (None:
    none), which the feedback metrics need to count each prediction once."""

    prediction: Prediction
    previous_verdict: str | None = None

    def body(self) -> dict[str, Any]:
        return {
            "feedback": {
                "request_id": self.prediction.request_id,
                "verdict": self.prediction.verdict,
                "label": self.prediction.feedback_label,
            }
        }


def disabled() -> ApiError:
    return ApiError(
        404,
        "feedback_disabled",
        "This deployment does not record predictions, so it takes no feedback.",
    )


def read_feedback_document(event: dict[str, Any]) -> Any:
    """The JSON document of a feedback request, whatever its content type (curl's `-d`
    says form data); a 400 or 413 otherwise."""
    body = event.get("body")
    if body is None or body == "" or body == b"":
        raise ApiError(400, "empty_body", f"The request has no body: send {_HOW}.")
    if not isinstance(body, str | bytes):
        raise ApiError(400, "invalid_request", "The event body is not text.")
    raw = body.encode("utf-8", "surrogateescape") if isinstance(body, str) else body
    if event.get("isBase64Encoded"):
        # Base64 is 4/3 of the bytes: refuse from the encoded length, before decoding.
        if len(raw) > 4 * ((MAX_FEEDBACK_BYTES + 2) // 3):
            raise _too_large()
        try:
            raw = base64.b64decode(raw, validate=True)
        except (binascii.Error, ValueError):
            raise _not_json() from None
    if len(raw) > MAX_FEEDBACK_BYTES:
        raise _too_large()
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):
        raise _not_json() from None


def take_feedback(
    event: dict[str, Any], store: PredictionStore, labels: ModelLabels | None
) -> FeedbackTaken:
    """Check and store the feedback `event` carries; an `ApiError` otherwise. The request's
    log line gets the prediction's id (`feedback_for`), `verdict`, `variant` and
    `model_version`."""
    document = read_feedback_document(event)
    try:
        feedback = parse_feedback(document)
    except InvalidFeedback as error:
        raise ApiError(400, "invalid_feedback", str(error)) from None
    append_keys(feedback_for=feedback.request_id, verdict=feedback.verdict)
    try:
        prediction = store.get(feedback.request_id)
        append_keys(variant=prediction.variant, model_version=prediction.model_version)
        if feedback.label is not None:
            _check_label(feedback.label, prediction.model_version, labels)
            append_keys(feedback_label=feedback.label)
        updated = store.record_feedback(feedback.request_id, feedback.verdict, feedback.label)
    except PredictionNotFound:
        raise ApiError(
            404,
            "prediction_not_found",
            "No prediction has this request_id: it is not one this service answered, or it "
            "has expired.",
        ) from None
    except StoreError as error:
        append_keys(detail=str(error))
        raise ApiError(
            503,
            "feedback_unavailable",
            "Feedback cannot be recorded right now; try again in a few seconds.",
            retry_after=RETRY_AFTER_STORE,
        ) from None
    return FeedbackTaken(updated, prediction.verdict)


def _check_label(label: str, version: str, labels: ModelLabels | None) -> None:
    """A 400 unless `label` is one of the labels of model `version` (or `SOMETHING_ELSE`)."""
    if label == SOMETHING_ELSE:
        return
    known = _labels_of(version, labels)
    if known is None:
        raise ApiError(
            400,
            "labels_unavailable",
            f"The labels of model version {version} are not known here, so a label cannot be "
            "checked; send the verdict without one.",
        )
    if label not in known:
        raise ApiError(
            400,
            "unknown_label",
            f"{label!r} is not one of the {len(known)} labels of model version {version} "
            f"(GET /api/labels?version={version} lists them).",
        )


def _labels_of(version: str, labels: ModelLabels | None) -> LabelList | None:
    """The version's labels, or None (logged: a label then cannot be checked)."""
    if labels is None:
        log.warning(
            "model_labels_missing",
            extra={"fields": {"model_version": version, "message": "MODEL_LABELS_DIR is not set"}},
        )
        return None
    try:
        return labels.get(version)
    except LabelsUnavailable as error:
        level = log.warning if error.missing else log.error
        level(
            "model_labels_missing" if error.missing else "model_labels_unreadable",
            extra={"fields": {"model_version": version, "message": str(error)}},
        )
        return None


def list_labels(event: dict[str, Any], labels: ModelLabels | None) -> dict[str, Any]:
    """The body of `GET /api/labels?version=...`; a 400 or 404 otherwise."""
    version = _query(event, "version")
    if not is_model_version(version):
        raise ApiError(
            400,
            "invalid_version",
            "Ask for ?version=<model version>, the model.version of a prediction.",
        )
    append_keys(model_version=version)
    try:
        if labels is None:
            raise LabelsUnavailable(version, "MODEL_LABELS_DIR is not set", missing=True)
        found = labels.get(version)
    except LabelsUnavailable as error:
        append_keys(detail=str(error))
        raise ApiError(
            404, "labels_not_found", f"No labels are known here for model version {version}."
        ) from None
    return {"model_version": version, "labels": list(found.labels)}


def _query(event: dict[str, Any], name: str) -> str | None:
    parameters = event.get("queryStringParameters")
    value = parameters.get(name) if isinstance(parameters, dict) else None
    return value if isinstance(value, str) else None


def _not_json() -> ApiError:
    return ApiError(400, "invalid_json", f"The body is not valid JSON; send {_HOW}.")


def _too_large() -> ApiError:
    return ApiError(
        413,
        "payload_too_large",
        f"Feedback is at most {MAX_FEEDBACK_BYTES} bytes of JSON: {_HOW}.",
        limit_bytes=MAX_FEEDBACK_BYTES,
    )
