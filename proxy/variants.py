"""Which endpoint answers a request: the model variants, their weights, and the pick.

A variant is a name, a weight and a SageMaker endpoint. The stack describes them in one
environment variable, a JSON list:

    VARIANTS='[{"name": "main", "weight": 95, "endpoint": "image-classifier-prod"},
               {"name": "canary", "weight": 5, "endpoint": "image-classifier-prod-canary"}]'

Without it there is one variant, `main`, on `SAGEMAKER_ENDPOINT_NAME`.

Each request goes to a variant with a probability of its weight over the sum of the
weights; a weight of 0 keeps a variant deployed but sends it nothing (a canary on hold, or
the previous model kept for an instant rollback). A browser sends a client id it keeps in
its local storage (`x-client-id`): the same id always lands on the same variant, so one
person does not see two models answer by turns, and their feedback is about one of them.
The id is hashed with SHA-256 (stable across processes, unlike Python's `hash`) to a point
in [0, 1), and the variants share that interval in their configured order. So when a weight
changes, only the clients between the old and the new boundary move: ramping a canary that
comes last from 5 to 10 moves about 5 % of the clients, all of them from the variant before
it to the canary. A request without a valid id goes to a variant at random.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from proxy.config import ENDPOINT_NAME, ConfigError
from shared.variants import MAIN, MAX_VARIANTS, VARIANT_NAME

VARIABLE = "VARIANTS"
ENDPOINT_VARIABLE = "SAGEMAKER_ENDPOINT_NAME"
CLIENT_ID_HEADER = "x-client-id"
# What the site generates (crypto.randomUUID() or base64url of random bytes) fits: 8 to 64
# URL-safe characters, nothing that could be a header injection or a huge key.
_CLIENT_ID = re.compile(r"[A-Za-z0-9_-]{8,64}")
_KEYS = frozenset({"name", "weight", "endpoint"})
_EXAMPLE = '[{"name": "main", "weight": 95, "endpoint": "..."}, ...]'
_TOO_MANY = (
    "each variant is a SageMaker Serverless endpoint of its own, with its own cold starts, "
    "its own share of the account's serverless concurrency, and its own provisioned "
    "concurrency billed while idle, if set"
)
# A double holds 53 bits exactly: more would round the largest points up to 1.0.
_UNIT_BITS = 53
# A private generator: seeding the global `random` elsewhere must not steer the split.
_RANDOM = random.Random()  # noqa: S311  (not a secret: a traffic split)


class VariantsError(ConfigError):
    """`VARIANTS` (or `SAGEMAKER_ENDPOINT_NAME`) is missing or invalid; the message names it."""


@dataclass(frozen=True)
class Variant:
    name: str
    weight: float
    endpoint: str


@dataclass(frozen=True)
class Variants:
    """The variants in their configured order (which decides who moves when weights change)."""

    variants: tuple[Variant, ...]

    def __post_init__(self) -> None:
        problem = _problem(self.variants)
        if problem:
            raise VariantsError(problem)

    @property
    def total(self) -> float:
        return sum(variant.weight for variant in self.variants)

    def pick(self, client_id: str | None, rng: random.Random | None = None) -> Variant:
        """The variant for a request: by `client_id` (validated, see `client_id_from`) when
        there is one, else by a draw from `rng`."""
        unit = _unit(client_id) if client_id is not None else (rng or _RANDOM).random()
        point = unit * self.total
        boundary = 0.0
        for variant in self.variants:
            boundary += variant.weight
            if point < boundary and variant.weight > 0:
                return variant
        # Only rounding gets here (a point just under a total the sum missed by an ulp).
        return next(v for v in reversed(self.variants) if v.weight > 0)


def client_id_from(headers: Mapping[str, Any] | None) -> str | None:
    """The request's client id (payload 2.0 headers are lower case), or None when it is
    absent or not 8 to 64 characters of letters, digits, `_` and `-`."""
    value = (headers or {}).get(CLIENT_ID_HEADER)
    if isinstance(value, str) and _CLIENT_ID.fullmatch(value):
        return value
    return None


def load_variants(environ: Mapping[str, str]) -> Variants:
    """`VARIANTS` when set, else the single variant `main` on `SAGEMAKER_ENDPOINT_NAME`."""
    raw = environ.get(VARIABLE, "").strip()
    if raw:
        return parse_variants(raw)
    endpoint = environ.get(ENDPOINT_VARIABLE, "").strip()
    if not endpoint:
        raise VariantsError(
            f"{ENDPOINT_VARIABLE} or {VARIABLE} is required: the endpoint to invoke, or the "
            f"variants to share the requests ({_EXAMPLE})"
        )
    if not ENDPOINT_NAME.fullmatch(endpoint):
        raise VariantsError(
            f"{ENDPOINT_VARIABLE}={endpoint!r} is not a valid SageMaker endpoint name "
            "(letters, digits and hyphens, at most 63 characters)"
        )
    return Variants((Variant(MAIN, 1, endpoint),))


def parse_variants(raw: str) -> Variants:
    """The variants `raw` (the JSON of `VARIANTS`) describes; `VariantsError` names the
    variable and what to fix."""
    try:
        document = json.loads(raw)
    except (ValueError, RecursionError) as error:
        raise VariantsError(f"{VARIABLE} is not JSON ({error}); expected {_EXAMPLE}") from None
    if not isinstance(document, list) or not document:
        raise VariantsError(f"{VARIABLE} must be a non-empty JSON list: {_EXAMPLE}")
    variants = []
    for position, entry in enumerate(document, 1):
        where = f"{VARIABLE} variant {position}"
        if not isinstance(entry, dict) or set(entry) != _KEYS:
            raise VariantsError(
                f"{where} must be an object with exactly name, weight and endpoint: "
                f'{{"name": "canary", "weight": 5, "endpoint": "..."}}'
            )
        variants.append(Variant(entry["name"], entry["weight"], entry["endpoint"]))
    try:
        return Variants(tuple(variants))
    except VariantsError as error:
        raise VariantsError(f"{VARIABLE}: {error}") from None


def _problem(variants: tuple[Variant, ...]) -> str | None:
    """What is wrong with a list of variants, or None."""
    if not variants:
        return "there must be at least one variant"
    if len(variants) > MAX_VARIANTS:
        return f"{len(variants)} variants, at most {MAX_VARIANTS}: {_TOO_MANY}"
    names: set[str] = set()
    for variant in variants:
        name, weight, endpoint = variant.name, variant.weight, variant.endpoint
        if not isinstance(name, str) or not VARIANT_NAME.fullmatch(name):
            return (
                f"the name {name!r} must be 1 to 32 lower-case letters, digits and hyphens, "
                "starting with a letter or digit"
            )
        if name in names:
            return f"two variants are named {name!r}; names must be unique"
        names.add(name)
        if (
            isinstance(weight, bool)
            or not isinstance(weight, int | float)
            or not math.isfinite(weight)
            or weight < 0
        ):
            return f"variant {name!r}: the weight {weight!r} must be a number, 0 or more"
        if not isinstance(endpoint, str) or not ENDPOINT_NAME.fullmatch(endpoint):
            return (
                f"variant {name!r}: {endpoint!r} is not a SageMaker endpoint name (letters, "
                "digits and hyphens, at most 63 characters)"
            )
    if not sum(variant.weight for variant in variants) > 0:
        return "every weight is 0: at least one variant must receive the requests"
    return None


def _unit(client_id: str) -> float:
    """A client id's fixed point in [0, 1): the first 53 bits of its SHA-256."""
    digest = hashlib.sha256(client_id.encode("utf-8")).digest()
    return (int.from_bytes(digest[:8], "big") >> (64 - _UNIT_BITS)) / 2**_UNIT_BITS
