"""`python -m admin.report`: the statistics, and the CLI on records written here, in a local
SQLite file and in DynamoDB (moto). Run with `-s` to see the tables it prints."""

from __future__ import annotations

import dataclasses
import io
import json
import subprocess
import sys
import time
from pathlib import Path

import botocore.session
import pytest
from moto import mock_aws

from admin.report import (
    EXIT_STORE,
    EXIT_USAGE,
    main,
    parse_when,
    wilson_interval,
)
from machine.predictions_sqlite import SqlitePredictionStore
from proxy.predictions import (
    DynamoPredictionStore,
    Prediction,
)
from shared.predictions import PARTITION_KEY

ROOT = Path(__file__).resolve().parents[2]
NOON = 1_772_366_400.0  # 2026-03-01T12:00:00Z
REGION = "eu-west-1"
TABLE = "image-classifier-dev-predictions"
MAIN, CANARY = "3f9a1c2b4d5e", "9e8d7c6b5a41"


def record(
    request_id: str,
    variant: str,
    version: str,
    *,
    latency: float,
    review: bool,
    verdict: str | None,
    at: float,
) -> Prediction:
    body = {
        "predictions": [{"label": "tabby", "index": 281, "probability": 0.5 if review else 0.97}],
        "model": {"version": version},
        "needs_review": review,
        "request_id": request_id,
    }
    made = Prediction.from_response(body, variant=variant, latency_ms=latency, now=at)
    if verdict is None:
        return made
    return dataclasses.replace(made, verdict=verdict, feedback_epoch=at + 5)


def traffic(start: float = NOON) -> list[Prediction]:
    """40 predictions of main (18 judged correct, 2 wrong, 10 needing review, 100 to 490
    ms), 10 of the canary (9 correct, 1 wrong, 1 needing review, 200 to 290 ms), and 5 of
    an older main model a day earlier."""
    records = []
    for i in range(40):
        verdict = "correct" if i < 18 else "wrong" if i < 20 else None
        records.append(
            record(
                f"m{i}",
                "main",
                MAIN,
                latency=100 + 10 * i,
                review=i % 4 == 0,
                verdict=verdict,
                at=start + i,
            )
        )
    for i in range(10):
        records.append(
            record(
                f"c{i}",
                "canary",
                CANARY,
                latency=200 + 10 * i,
                review=i == 0,
                verdict="wrong" if i == 9 else "correct",
                at=start + i,
            )
        )
    for i in range(5):
        records.append(
            record(
                f"o{i}",
                "main",
                "0ld0ld0ld0ld",
                latency=50,
                review=True,
                verdict=None,
                at=start - 86_400 + i,
            )
        )
    return records


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    status = main(list(argv), stdout=out, stderr=err, clock=lambda: NOON + 3600)
    print(out.getvalue() + err.getvalue())  # shown with -s: the report of the records above
    return status, out.getvalue(), err.getvalue()


@pytest.fixture
def sqlite_file(tmp_path):
    path = tmp_path / "local-data" / "predictions.sqlite3"
    with SqlitePredictionStore(path, clock=lambda: NOON) as store:
        for made in traffic():
            store.put(made)
    return path


# -- the statistics -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("successes", "trials", "low", "high"),
    [  # Newcombe (1998), Statistics in Medicine 17:857, table I, method 3 (Wilson score)
        (81, 263, 0.2553, 0.3662),
        (15, 148, 0.0624, 0.1605),
        (0, 20, 0.0, 0.1611),
        (1, 29, 0.0061, 0.1718),
    ],
)
def test_the_wilson_interval_matches_the_published_values(successes, trials, low, high):
    interval = wilson_interval(successes, trials)
    assert interval == (pytest.approx(low, abs=5e-5), pytest.approx(high, abs=5e-5))


def test_the_wilson_interval_stays_in_0_to_1_and_needs_trials():
    assert wilson_interval(20, 20)[1] == 1.0
    assert wilson_interval(0, 20)[0] == 0.0
    assert wilson_interval(0, 0) is None
    with pytest.raises(ValueError, match="successes"):
        wilson_interval(3, 2)


def test_times_are_iso_or_ago():
    now = NOON + 3600
    assert parse_when("2026-03-01", now) == NOON - 12 * 3600
    assert parse_when("2026-03-01T12:00:00Z", now) == NOON
    assert parse_when("2026-03-01T13:00:00+01:00", now) == NOON
    assert parse_when("2026-03-01T12:00", now) == NOON
    assert parse_when("1h", now) == NOON
    assert parse_when("7d", now) == now - 7 * 86_400
    assert parse_when("30m", now) == now - 1800
    with pytest.raises(ValueError, match="neither an ISO 8601"):
        parse_when("last week", now)


# -- the CLI --------------------------------------------------------------------------------


def test_the_table_of_a_local_database(sqlite_file):
    status, out, err = run("--sqlite", str(sqlite_file))
    assert (status, err) == (0, "")
    assert out.splitlines() == [
        "VARIANT  MODEL VERSION  REQUESTS  FEEDBACK    ACCURACY (95% CI)  NEEDS REVIEW  P50 MS  P95 MS",  # noqa: E501
        "canary   9e8d7c6b5a41         10        10  90.0% (59.6%-98.2%)         10.0%     245     286",  # noqa: E501
        "main     0ld0ld0ld0ld          5         0                    -        100.0%      50      50",  # noqa: E501
        "main     3f9a1c2b4d5e         40        20  90.0% (69.9%-97.2%)         25.0%     295     470",  # noqa: E501
    ]


def test_the_json_of_a_local_database_within_a_window(sqlite_file):
    status, out, _ = run("--sqlite", str(sqlite_file), "--since", "2026-03-01", "--json")
    assert status == 0
    document = json.loads(out)
    assert document["source"] == str(sqlite_file)
    assert (document["since"], document["until"]) == ("2026-03-01T00:00:00.000Z", None)
    canary, main_ = document["groups"]
    assert main_ == {
        "variant": "main",
        "model_version": MAIN,
        "requests": 40,
        "feedback": 20,
        "correct": 18,
        "wrong": 2,
        "accuracy": 0.9,
        "accuracy_ci95": [0.699, 0.9721],
        "needs_review_rate": 0.25,
        "latency_ms": {"p50": 295.0, "p95": 470.5},
        "first": "2026-03-01T12:00:00.000Z",
        "last": "2026-03-01T12:00:39.000Z",
    }
    assert (canary["variant"], canary["accuracy_ci95"]) == ("canary", [0.5958, 0.9821])


def test_the_report_of_a_dynamodb_table(aws_env):
    with mock_aws():
        client = botocore.session.get_session().create_client("dynamodb", region_name=REGION)
        client.create_table(
            TableName=TABLE,
            KeySchema=[{"AttributeName": PARTITION_KEY, "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": PARTITION_KEY, "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        store = DynamoPredictionStore(TABLE, client=client, clock=lambda: NOON)
        for made in traffic():
            store.put(made)
        status, out, err = run("--table", TABLE, "--region", REGION, "--until", "2026-03-01")
    assert (status, err) == (0, "")
    assert out.splitlines()[1].split() == [
        "main",
        "0ld0ld0ld0ld",
        "5",
        "0",
        "-",
        "100.0%",
        "50",
        "50",
    ]
    assert len(out.splitlines()) == 2


def test_no_records_is_not_an_error(sqlite_file):
    status, out, err = run("--sqlite", str(sqlite_file), "--since", "2027-01-01")
    assert (status, out) == (0, "")
    assert err.startswith("No predictions in ")


def test_a_store_that_fails_is_exit_1(tmp_path, aws_env):
    status, _, err = run("--sqlite", str(tmp_path / "missing.sqlite3"))
    assert status == EXIT_STORE
    assert "does not exist: the local runtime creates it" in err
    with mock_aws():
        status, _, err = run("--table", "no-such-table", "--region", REGION)
    assert status == EXIT_STORE
    assert "no-such-table: ResourceNotFoundException" in err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--sqlite", "x", "--region", REGION], "--region goes with --table"),
        (["--sqlite", "x", "--since", "yesterday"], "neither an ISO 8601"),
        (["--sqlite", "x", "--since", "1d", "--until", "2d"], "--since must be before --until"),
    ],
)
def test_bad_usage_is_exit_2(argv, message):
    status, _, err = run(*argv)
    assert status == EXIT_USAGE
    assert message in err


def test_a_store_is_required(capsys):
    with pytest.raises(SystemExit) as caught:
        main([])
    assert caught.value.code == EXIT_USAGE
    assert "one of the arguments --sqlite --table is required" in capsys.readouterr().err


def test_it_runs_as_a_module(tmp_path):
    path = tmp_path / "predictions.sqlite3"
    with SqlitePredictionStore(path) as store:
        for made in traffic(start=time.time() - 60):
            store.put(made)
    done = subprocess.run(
        [sys.executable, "-m", "admin.report", "--sqlite", str(path), "--json", "--since", "1h"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert [g["requests"] for g in json.loads(done.stdout)["groups"]] == [10, 40]
