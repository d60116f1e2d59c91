"""Variants: the VARIANTS variable, the weighted split, sticky clients, the client id header.

The split tests count draws of a fixed seed (so they are deterministic) and accept a count
within 4 standard deviations of its binomial expectation, n*p +/- 4*sqrt(n*p*(1-p)): a
correct split falls outside it with a probability of about 6e-5, a split off by a few
points of percentage falls outside it for certain at these sizes.
"""

from __future__ import annotations

import json
import math
import os
import random
import string
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from proxy.config import ConfigError
from proxy.variants import (
    CLIENT_ID_HEADER,
    Variant,
    Variants,
    VariantsError,
    client_id_from,
    load_variants,
    parse_variants,
)
from shared.variants import MAX_VARIANTS

ROOT = Path(__file__).resolve().parents[2]
DRAWS = 20_000
CANARY = '[{"name": "main", "weight": 95, "endpoint": "ic-prod"}, {"name": "canary", "weight": 5, "endpoint": "ic-prod-canary"}]'  # noqa: E501


def client_ids(count: int, seed: int = 1) -> list[str]:
    """Ids as the site makes them: random URL-safe strings."""
    rng = random.Random(seed)
    alphabet = string.ascii_letters + string.digits + "_-"
    return ["".join(rng.choices(alphabet, k=22)) for _ in range(count)]


def tolerance(n: int, p: float) -> float:
    return 4 * math.sqrt(n * p * (1 - p))


def assert_binomial(count: int, n: int, p: float) -> None:
    assert abs(count - n * p) <= tolerance(n, p), (count, n * p, tolerance(n, p))


def variants(*weights: float) -> Variants:
    return Variants(tuple(Variant(f"v{i}", w, f"endpoint-{i}") for i, w in enumerate(weights)))


# -- the split ------------------------------------------------------------------------------


def test_random_draws_follow_the_weights():
    split = parse_variants(CANARY)
    rng = random.Random(7)
    counts = Counter(split.pick(None, rng).name for _ in range(DRAWS))
    assert_binomial(counts["canary"], DRAWS, 0.05)
    assert counts["main"] + counts["canary"] == DRAWS


def test_client_ids_follow_the_weights():
    split = parse_variants(CANARY)
    counts = Counter(split.pick(cid).name for cid in client_ids(DRAWS))
    assert_binomial(counts["canary"], DRAWS, 0.05)


def test_three_variants_each_get_their_share():
    split = variants(50, 30, 20)
    rng = random.Random(11)
    by_draw = Counter(split.pick(None, rng).name for _ in range(DRAWS))
    by_client = Counter(split.pick(cid).name for cid in client_ids(DRAWS, seed=2))
    for counts in (by_draw, by_client):
        for name, share in (("v0", 0.5), ("v1", 0.3), ("v2", 0.2)):
            assert_binomial(counts[name], DRAWS, share)


def test_weights_need_not_sum_to_100():
    split = variants(0.25, 0.75)
    counts = Counter(split.pick(cid).name for cid in client_ids(DRAWS))
    assert_binomial(counts["v0"], DRAWS, 0.25)


def test_a_client_sticks_to_its_variant_whatever_the_draws():
    split = variants(1, 1, 1, 1)
    for cid in client_ids(50):
        first = split.pick(cid)
        rng = random.Random(cid)
        assert {split.pick(cid, rng) for _ in range(20)} == {first}


def test_the_same_client_gets_the_same_variant_in_another_process():
    """SHA-256, not Python's `hash`, which is salted per process (PYTHONHASHSEED)."""
    ids = client_ids(300)
    here = [parse_variants(CANARY).pick(cid).name for cid in ids]
    program = (
        "import json, sys\n"
        "from proxy.variants import parse_variants\n"
        "split = parse_variants(sys.argv[1])\n"
        "print(json.dumps([split.pick(cid).name for cid in json.loads(sys.stdin.read())]))\n"
    )
    there = subprocess.run(
        [sys.executable, "-c", program, CANARY],
        input=json.dumps(ids),
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONHASHSEED": "4242"},
    )
    assert json.loads(there.stdout) == here
    # Pinned: a new hash or layout would move every client at the next deploy.
    assert parse_variants(CANARY).pick("client-0000000000").name == "main"
    assert here[:200].count("canary") == 11


def test_weight_zero_receives_nothing():
    split = Variants(
        (
            Variant("main", 1, "ic-prod"),
            Variant("parked", 0, "ic-prod-previous"),
            Variant("canary", 1, "ic-prod-canary"),
        )
    )
    rng = random.Random(3)
    picked = {split.pick(None, rng).name for _ in range(5000)}
    picked |= {split.pick(cid).name for cid in client_ids(5000)}
    assert picked == {"main", "canary"}


def test_zero_weights_at_the_edges_receive_nothing_either():
    split = variants(0, 1, 0)
    rng = random.Random(5)
    assert {split.pick(None, rng).name for _ in range(2000)} == {"v1"}


def test_ramping_the_last_variant_moves_only_the_clients_it_must():
    before = parse_variants(CANARY)
    after = parse_variants(CANARY.replace('"weight": 95', '"weight": 90').replace("5,", "10,"))
    assert [v.weight for v in after.variants] == [90, 10]
    moves = Counter((before.pick(cid).name, after.pick(cid).name) for cid in client_ids(DRAWS))
    assert moves[("canary", "main")] == 0
    assert_binomial(moves[("main", "canary")], DRAWS, 0.05)


# -- the client id header -------------------------------------------------------------------


@pytest.mark.parametrize(
    "value", ["abcdEFGH", "x" * 64, "3f2a9c1e-7b4d-4e8a-9f01-2c3d4e5f6a7b", "Zq3v9Xb1_-LkP0sW"]
)
def test_a_well_formed_client_id_is_used(value):
    assert client_id_from({CLIENT_ID_HEADER: value, "accept": "*/*"}) == value


@pytest.mark.parametrize(
    "value", ["", "short", "x" * 65, "has space1", "abcdefgh\n", "abcdefgh=", "äbcdefgh", 12345678]
)
def test_anything_else_is_treated_as_absent(value):
    assert client_id_from({CLIENT_ID_HEADER: value}) is None


def test_no_headers_or_no_header_is_absent():
    assert client_id_from(None) is None
    assert client_id_from({"X-Client-Id": "abcdEFGH"}) is None  # payload 2.0 is lower case


# -- configuration --------------------------------------------------------------------------


def test_variants_come_from_the_variable_in_order():
    split = load_variants({"VARIANTS": CANARY, "SAGEMAKER_ENDPOINT_NAME": "ignored-here"})
    assert split.variants == (
        Variant("main", 95, "ic-prod"),
        Variant("canary", 5, "ic-prod-canary"),
    )
    assert split.total == 100


def test_without_the_variable_the_endpoint_is_the_one_variant_main():
    split = load_variants({"SAGEMAKER_ENDPOINT_NAME": "image-classifier-dev", "VARIANTS": " "})
    assert split.variants == (Variant("main", 1, "image-classifier-dev"),)


def test_without_either_variable_the_error_names_both():
    with pytest.raises(VariantsError, match="SAGEMAKER_ENDPOINT_NAME or VARIANTS is required"):
        load_variants({})
    with pytest.raises(VariantsError, match="SAGEMAKER_ENDPOINT_NAME='bad_name'"):
        load_variants({"SAGEMAKER_ENDPOINT_NAME": "bad_name"})


def test_a_bad_variable_fails_the_proxy_init_like_any_config_error():
    assert issubclass(VariantsError, ConfigError)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("{not json", "VARIANTS is not JSON"),
        ('{"name": "main"}', "non-empty JSON list"),
        ("[]", "non-empty JSON list"),
        ('["main"]', "variant 1 must be an object with exactly name, weight and endpoint"),
        ('[{"name": "main", "weight": 1}]', "variant 1 must be an object"),
        ('[{"name": "main", "weight": 1, "endpoint": "e", "extra": 1}]', "exactly name"),
        ('[{"name": "Main", "weight": 1, "endpoint": "e"}]', "'Main' must be 1 to 32 lower-case"),
        ('[{"name": "", "weight": 1, "endpoint": "e"}]', "name '' must be"),
        ('[{"name": 7, "weight": 1, "endpoint": "e"}]', "name 7 must be"),
        ('[{"name": "main", "weight": -1, "endpoint": "e"}]', "weight -1 must be a number, 0 or"),
        ('[{"name": "main", "weight": "5", "endpoint": "e"}]', "weight '5' must be"),
        ('[{"name": "main", "weight": true, "endpoint": "e"}]', "weight True must be"),
        ('[{"name": "main", "weight": NaN, "endpoint": "e"}]', "weight nan must be"),
        ('[{"name": "main", "weight": Infinity, "endpoint": "e"}]', "weight inf must be"),
        ('[{"name": "main", "weight": 1, "endpoint": "bad_name"}]', "'bad_name' is not a Sage"),
        ('[{"name": "main", "weight": 1, "endpoint": ""}]', "'' is not a SageMaker endpoint"),
        (
            '[{"name": "a", "weight": 1, "endpoint": "e"}, {"name": "a", "weight": 1, "endpoint": "f"}]',  # noqa: E501
            "two variants are named 'a'",
        ),
        (
            '[{"name": "a", "weight": 0, "endpoint": "e"}, {"name": "b", "weight": 0, "endpoint": "f"}]',  # noqa: E501
            "every weight is 0",
        ),
        ("[" * 5000, "VARIANTS is not JSON"),
    ],
)
def test_a_bad_variable_says_what_to_fix(raw, message):
    with pytest.raises(VariantsError, match=message) as caught:
        load_variants({"VARIANTS": raw, "SAGEMAKER_ENDPOINT_NAME": "fine"})
    assert str(caught.value).startswith("VARIANTS")


def test_too_many_variants_says_what_each_costs():
    entries = ", ".join(
        f'{{"name": "v{i}", "weight": 1, "endpoint": "e{i}"}}' for i in range(MAX_VARIANTS + 1)
    )
    with pytest.raises(VariantsError) as caught:
        parse_variants(f"[{entries}]")
    message = str(caught.value)
    assert message.startswith(f"VARIANTS: {MAX_VARIANTS + 1} variants, at most {MAX_VARIANTS}")
    assert "endpoint of its own" in message
    assert "provisioned concurrency billed while idle" in message
    assert len(parse_variants(f"[{entries.rsplit(', {', 1)[0]}]").variants) == MAX_VARIANTS


def test_variants_built_in_code_are_checked_too():
    with pytest.raises(VariantsError, match="at least one variant"):
        Variants(())
    with pytest.raises(VariantsError, match="every weight is 0"):
        variants(0, 0)
