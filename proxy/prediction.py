"""The 200 body: the model's top-5 and identity, plus `needs_review`.

`needs_review` follows the human-in-the-loop design of the reference project: a prediction
whose top-1 probability is below the threshold should go to a person.
"""

from __future__ import annotations

import json
from typing import Any

from proxy.errors import ApiError


def prediction_body(payload: bytes, review_threshold: float) -> dict[str, Any]:
    """The client's body from the model's JSON, or a 502 if the model answered nonsense."""
    try:
        document = json.loads(payload)
    except ValueError:
        raise _bad_answer() from None
    if not isinstance(document, dict):
        raise _bad_answer()
    predictions = document.get("predictions")
    model = document.get("model")
    if not isinstance(predictions, list) or not isinstance(model, dict):
        raise _bad_answer()
    probabilities = [p.get("probability") for p in predictions if isinstance(p, dict)]
    if len(probabilities) != len(predictions) or not all(
        isinstance(p, int | float) and not isinstance(p, bool) for p in probabilities
    ):
        raise _bad_answer()
    top1 = max(probabilities, default=0.0)
    return {
        "predictions": predictions,
        "model": model,
        "needs_review": top1 < review_threshold,
    }


def _bad_answer() -> ApiError:
    return ApiError(502, "bad_model_response", "The model returned an answer we cannot read.")
