"""What each prediction was, and what users said about it: the record, its two stores.

One record per answered prediction (a 200), keyed by its request id, written by the proxy
after the model has answered: the variant and model version that answered, the top-1 label
and probability, `needs_review`, the latency and the time. The image is never stored, nor
anything else from the request. A later `POST` of feedback names the request id and says
whether the answer was `correct` or `wrong` (with, optionally, the right label); a second
verdict on the same prediction replaces the first. `python -m admin.report` reads the
records to compare variants.

The stores (the `PredictionStore` protocol), with one contract:

- `DynamoPredictionStore(table)`: the cloud's. A DynamoDB table with the partition key
  `request_id` (S) and TTL on `expires_at`; the stack creates it (on demand, point-in-time
  recovery, encrypted). Attributes: `request_id` S, `variant` S, `model_version` S,
  `label` S (absent when the model returned no classes), `probability` N, `needs_review`
  BOOL, `latency_ms` N, `created_at` S (UTC ISO 8601, milliseconds), `created_epoch` N
  (Unix seconds), `expires_at` N (Unix seconds), and after feedback `verdict` S,
  `feedback_label` S (only with a label), `feedback_at` S, `feedback_epoch` N.
- the local runtime's, for `PREDICTIONS_FILE`: an SQLite file kept across restarts,
  supplied by the local runtime (`proxy.local_stores`), never in the Lambda's zip.

A record is gone once its `expires_at` has passed, in both stores alike: DynamoDB deletes
expired items only within a few days, so reads and feedback filter them out themselves.

Standard library and botocore only, like the rest of `proxy/`.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

import botocore.session
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, NoRegionError

from proxy.config import ConfigError, ProxyConfig
from shared.predictions import PARTITION_KEY, TTL_ATTRIBUTE

if TYPE_CHECKING:
    from proxy.local_stores import LocalStores

VERDICTS = ("correct", "wrong")
DEFAULT_RETENTION_DAYS = 90
"""How long a record is kept: long enough to compare a variant over weeks of traffic."""
MAX_LABEL_LENGTH = 200

# API Gateway's request ids are base64 ("JKJaXmPLvHcESHA="), Lambda's are UUIDs, the proxy's
# own fallback is hex: all fit, and nothing that could not be a key reaches a store.
_REQUEST_ID = re.compile(r"[A-Za-z0-9+/=_-]{1,128}")
_FEEDBACK_KEYS = frozenset({"request_id", "verdict", "label"})
_USER_AGENT = "image-classifier-predictions"
_DAY_SECONDS = 86_400


class StoreError(Exception):
    """The store could not be reached, refused us, or holds something unreadable."""


class PredictionNotFound(LookupError):
    """Feedback on a request id the store does not hold (never predicted, or expired)."""

    def __init__(self, request_id: str) -> None:
        super().__init__(f"no prediction has the request id {request_id!r} (or it has expired)")
        self.request_id = request_id


class InvalidFeedback(ValueError):
    """A feedback document that is not one; the message says what to fix."""


@dataclass(frozen=True)
class Prediction:
    """One stored prediction, with the latest feedback on it if any."""

    request_id: str
    variant: str
    model_version: str
    label: str | None
    """The top-1 label; None when the model returned no classes."""
    probability: float | None
    needs_review: bool
    latency_ms: float
    created_epoch: float
    expires_at: int
    verdict: str | None = None
    feedback_label: str | None = None
    feedback_epoch: float | None = None

    @classmethod
    def from_response(
        cls,
        body: Mapping[str, Any],
        *,
        variant: str,
        latency_ms: float,
        now: float | None = None,
        retention_days: int = DEFAULT_RETENTION_DAYS,
    ) -> Prediction:
        """The record of a 200 body (`proxy.responses.prediction_body` plus `request_id`).

        `now` is Unix seconds (the current time by default).
        """
        created = time.time() if now is None else now
        top = max(
            (p for p in body.get("predictions", []) if isinstance(p, dict)),
            key=lambda p: p.get("probability", 0.0),
            default={},
        )
        label = top.get("label")
        probability = top.get("probability")
        version = body.get("model", {}).get("version")
        return cls(
            request_id=str(body["request_id"]),
            variant=variant,
            model_version=version if isinstance(version, str) and version else "unknown",
            label=label if isinstance(label, str) else None,
            probability=float(probability) if isinstance(probability, int | float) else None,
            needs_review=bool(body.get("needs_review")),
            latency_ms=round(float(latency_ms), 3),
            created_epoch=round(created, 3),
            expires_at=math.ceil(created) + retention_days * _DAY_SECONDS,
        )

    @property
    def created_at(self) -> str:
        return iso_time(self.created_epoch)

    def as_record(self) -> dict[str, Any]:
        """Every stored field, in the stores' order, None where absent; the times are both
        ISO 8601 (for people) and Unix seconds (for queries)."""
        return {
            "request_id": self.request_id,
            "variant": self.variant,
            "model_version": self.model_version,
            "label": self.label,
            "probability": self.probability,
            "needs_review": self.needs_review,
            "latency_ms": self.latency_ms,
            "created_at": self.created_at,
            "created_epoch": self.created_epoch,
            "expires_at": self.expires_at,
            "verdict": self.verdict,
            "feedback_label": self.feedback_label,
            "feedback_at": self.feedback_at,
            "feedback_epoch": self.feedback_epoch,
        }

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> Prediction:
        """The prediction `as_record` gave (the ISO times are derived, so not read)."""
        return cls(
            request_id=record["request_id"],
            variant=record["variant"],
            model_version=record["model_version"],
            label=record["label"],
            probability=record["probability"],
            needs_review=bool(record["needs_review"]),
            latency_ms=record["latency_ms"],
            created_epoch=record["created_epoch"],
            expires_at=int(record["expires_at"]),
            verdict=record["verdict"],
            feedback_label=record["feedback_label"],
            feedback_epoch=record["feedback_epoch"],
        )

    @property
    def feedback_at(self) -> str | None:
        return None if self.feedback_epoch is None else iso_time(self.feedback_epoch)


@dataclass(frozen=True)
class Feedback:
    """A checked feedback document."""

    request_id: str
    verdict: str
    label: str | None = None


def iso_time(epoch: float) -> str:
    """Unix seconds as UTC ISO 8601 with milliseconds, e.g. `2026-03-01T12:00:00.123Z`."""
    moment = datetime.fromtimestamp(epoch, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def parse_feedback(document: Any, labels: Collection[str] | None = None) -> Feedback:
    """Check a feedback request's JSON: `{"request_id", "verdict", "label"?}`.

    `labels` are the model's labels: when given, a label must be one of them. Raises
    `InvalidFeedback` with a sentence a client can act on.
    """
    if not isinstance(document, dict):
        raise InvalidFeedback(
            'Send a JSON object: {"request_id": "...", "verdict": "correct" or "wrong"}.'
        )
    unknown = sorted(set(document) - _FEEDBACK_KEYS)
    if unknown:
        raise InvalidFeedback(
            f"Unknown field {unknown[0]!r}; feedback has request_id, verdict and label."
        )
    request_id = document.get("request_id")
    if not isinstance(request_id, str) or not _REQUEST_ID.fullmatch(request_id):
        raise InvalidFeedback(
            "request_id must be the request_id of a prediction (its response has it)."
        )
    verdict, label = check_verdict(document.get("verdict"), document.get("label"), labels)
    return Feedback(request_id, verdict, label)


def check_verdict(
    verdict: Any, label: Any = None, labels: Collection[str] | None = None
) -> tuple[str, str | None]:
    """The verdict and the label, checked; `InvalidFeedback` otherwise.

    A label names the right answer, so it goes with `wrong` only. With `labels` (the
    model's), it must be one of them.
    """
    if verdict not in VERDICTS:
        raise InvalidFeedback(f"verdict must be {' or '.join(map(repr, VERDICTS))}.")
    if label is None:
        return verdict, None
    if verdict != "wrong":
        raise InvalidFeedback("A label names the right answer: send it with the verdict 'wrong'.")
    if not isinstance(label, str) or not label.strip() or len(label) > MAX_LABEL_LENGTH:
        raise InvalidFeedback(f"label must be a label of the model, 1 to {MAX_LABEL_LENGTH} long.")
    if labels is not None and label not in labels:
        raise InvalidFeedback(f"{label!r} is not one of the model's {len(labels)} labels.")
    return verdict, label


class PredictionStore(Protocol):
    def put(self, prediction: Prediction) -> None:
        """Store a prediction (replacing one with the same request id); `StoreError`."""
        ...

    def get(self, request_id: str) -> Prediction:
        """The stored prediction with this request id, feedback included (read after the
        latest write); `PredictionNotFound` for an unknown or expired id, `StoreError` on
        failure."""
        ...

    def record_feedback(
        self, request_id: str, verdict: str, label: str | None = None
    ) -> Prediction:
        """Set the verdict (and label, or none) of a stored prediction, replacing any
        earlier one; the record as it now is. `PredictionNotFound` for an unknown or expired
        id, `InvalidFeedback` for a bad verdict or label, `StoreError` on failure."""
        ...

    def records(
        self, since: float | None = None, until: float | None = None
    ) -> Iterator[Prediction]:
        """Every unexpired record created in [since, until) (Unix seconds; open ends by
        default), in no particular order; `StoreError` on failure."""
        ...

    def describe(self) -> str:
        """Where the records are, for messages."""
        ...


def open_store(
    config: ProxyConfig, session: Any = None, local: LocalStores | None = None
) -> PredictionStore | None:
    """The store `config` names (`PREDICTIONS_TABLE` or `PREDICTIONS_FILE`), or None.

    `session` is the botocore session for DynamoDB's client (the container's). A file is
    opened with what `local` supplies (`proxy.local_stores`); a file with nothing supplied,
    or one that cannot be opened, is a `ConfigError` naming the variable.
    """
    if config.predictions_table is not None:
        return DynamoPredictionStore(config.predictions_table, session=session)
    if config.predictions_file is None:
        return None
    if local is None:
        raise ConfigError(
            f"PREDICTIONS_FILE={config.predictions_file!r} is a local file, which only the local "
            "runtime can open (on AWS the stack sets PREDICTIONS_TABLE)"
        )
    try:
        return local.predictions(config.predictions_file)
    except StoreError as error:
        raise ConfigError(f"PREDICTIONS_FILE={config.predictions_file!r}: {error}") from None


class DynamoPredictionStore:
    """A DynamoDB table, through the low-level client (no boto3 resource layer to import)."""

    def __init__(
        self,
        table: str,
        *,
        region: str | None = None,
        client: Any = None,
        session: Any = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """`client` is a DynamoDB client to use; else one is made from `session` (a botocore
        session; a new one by default) when first needed. `clock` is Unix seconds."""
        self.table = table
        self._region = region
        self._client = client
        self._session = session
        self._clock = clock

    def describe(self) -> str:
        return f"DynamoDB table {self.table}"

    def put(self, prediction: Prediction) -> None:
        self._call("put_item", TableName=self.table, Item=_item(prediction))

    def get(self, request_id: str) -> Prediction:
        answer = self._call(
            "get_item",
            TableName=self.table,
            Key={PARTITION_KEY: {"S": request_id}},
            # Feedback often follows its prediction by seconds: an eventually consistent
            # read could miss the item just written.
            ConsistentRead=True,
        )
        item = answer.get("Item")
        if not item:
            raise PredictionNotFound(request_id)
        prediction = _from_item(item)
        # DynamoDB deletes expired items only within a few days.
        if prediction.expires_at <= math.floor(self._clock()):
            raise PredictionNotFound(request_id)
        return prediction

    def record_feedback(
        self, request_id: str, verdict: str, label: str | None = None
    ) -> Prediction:
        verdict, label = check_verdict(verdict, label)
        now = self._clock()
        names = {
            "#id": PARTITION_KEY,
            "#expires": TTL_ATTRIBUTE,
            "#verdict": "verdict",
            "#label": "feedback_label",
            "#at": "feedback_at",
            "#epoch": "feedback_epoch",
        }
        values: dict[str, Any] = {
            ":verdict": {"S": verdict},
            ":at": {"S": iso_time(now)},
            ":epoch": {"N": _number(round(now, 3))},
            ":now": {"N": _number(math.floor(now))},
        }
        update = "SET #verdict = :verdict, #at = :at, #epoch = :epoch"
        if label is None:
            update += " REMOVE #label"
        else:
            update += ", #label = :label"
            values[":label"] = {"S": label}
        try:
            answer = self._call(
                "update_item",
                TableName=self.table,
                Key={PARTITION_KEY: {"S": request_id}},
                UpdateExpression=update,
                # Without the condition, UpdateItem would create an item for any id it is
                # given; an expired item may linger for days until DynamoDB deletes it.
                ConditionExpression="attribute_exists(#id) AND #expires > :now",
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
                ReturnValues="ALL_NEW",
            )
        except _Refused as refused:
            if refused.code == "ConditionalCheckFailedException":
                raise PredictionNotFound(request_id) from None
            raise
        return _from_item(answer["Attributes"])

    def records(
        self, since: float | None = None, until: float | None = None
    ) -> Iterator[Prediction]:
        names = {"#expires": TTL_ATTRIBUTE}
        values: dict[str, Any] = {":now": {"N": _number(math.floor(self._clock()))}}
        conditions = ["#expires > :now"]
        if since is not None:
            names["#created"] = "created_epoch"
            values[":since"] = {"N": _number(since)}
            conditions.append("#created >= :since")
        if until is not None:
            names["#created"] = "created_epoch"
            values[":until"] = {"N": _number(until)}
            conditions.append("#created < :until")
        request: dict[str, Any] = {
            "TableName": self.table,
            "FilterExpression": " AND ".join(conditions),
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": values,
        }
        while True:
            page = self._call("scan", **request)
            for item in page.get("Items", []):
                yield _from_item(item)
            last = page.get("LastEvaluatedKey")
            if not last:
                return
            request["ExclusiveStartKey"] = last

    def _call(self, operation: str, **request: Any) -> dict[str, Any]:
        try:
            return getattr(self._dynamodb(), operation)(**request)
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "Unknown")
            message = error.response.get("Error", {}).get("Message", "")
            raise _Refused(
                code, f"DynamoDB {operation} on {self.table}: {code}: {message}"
            ) from None
        except BotoCoreError as error:
            raise StoreError(f"DynamoDB {operation} on {self.table}: {error}") from None

    def _dynamodb(self) -> Any:
        if self._client is None:
            try:
                session = self._session or botocore.session.get_session()
                self._client = session.create_client(
                    "dynamodb",
                    region_name=self._region,
                    # Short: the proxy writes while a client waits for its answer, and a
                    # record is worth less than the prediction it describes.
                    config=Config(
                        connect_timeout=1.0,
                        read_timeout=2.0,
                        retries={"mode": "standard", "total_max_attempts": 2},
                        user_agent_extra=_USER_AGENT,
                    ),
                )
            except NoRegionError:
                raise StoreError(
                    "no AWS region for DynamoDB: pass --region or set AWS_REGION"
                ) from None
            except BotoCoreError as error:
                raise StoreError(f"DynamoDB: {error}") from None
        return self._client


class _Refused(StoreError):
    """An AWS error response, with its code (one means PredictionNotFound)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def _item(prediction: Prediction) -> dict[str, Any]:
    """The DynamoDB item: typed attributes, an absent value left out (DynamoDB has no null
    worth storing)."""
    item: dict[str, Any] = {}
    for name, value in prediction.as_record().items():
        if value is None:
            continue
        if isinstance(value, bool):
            item[name] = {"BOOL": value}
        elif isinstance(value, int | float):
            item[name] = {"N": _number(value)}
        else:
            item[name] = {"S": value}
    return item


def _from_item(item: Mapping[str, Any]) -> Prediction:
    """The record an item holds; `StoreError` for an item the proxy did not write."""

    def attribute(name: str, kind: str) -> Any:
        value = item.get(name)
        return value.get(kind) if isinstance(value, dict) else None

    def number(name: str) -> float | None:
        value = attribute(name, "N")
        return None if value is None else float(value)

    try:
        fields = {
            "request_id": attribute(PARTITION_KEY, "S"),
            "variant": attribute("variant", "S"),
            "model_version": attribute("model_version", "S"),
            "needs_review": attribute("needs_review", "BOOL"),
            "latency_ms": number("latency_ms"),
            "created_epoch": number("created_epoch"),
            "expires_at": number("expires_at"),
        }
        missing = sorted(name for name, value in fields.items() if value is None)
        if missing:
            raise ValueError(f"no {', '.join(missing)}")
        fields["expires_at"] = int(fields["expires_at"])
        return Prediction(
            **fields,
            label=attribute("label", "S"),
            probability=number("probability"),
            verdict=attribute("verdict", "S"),
            feedback_label=attribute("feedback_label", "S"),
            feedback_epoch=number("feedback_epoch"),
        )
    except (TypeError, ValueError) as error:
        raise StoreError(
            f"unreadable prediction record {attribute(PARTITION_KEY, 'S')!r}: {error}"
        ) from None


def _number(value: float) -> str:
    """A DynamoDB number: integers without a fraction, floats as Python writes them."""
    if isinstance(value, int) or float(value).is_integer():
        return str(int(value))
    return repr(float(value))
