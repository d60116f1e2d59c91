"""`python -m batch run s3://... --on sagemaker` and `attach`, end to end, as a user runs
them: S3 is moto server, SageMaker the stand-in of `tests.batch.transform_standin`, whose
jobs run the real `python -m serving.serve` under Batch Transform's environment on the
test archive. What is checked: the outcomes (a bad file in the middle included), the
summary, the manifest of a second run (only what is left), and Ctrl-C, SIGTERM, `attach`
and `--stop` in a subprocess (exit statuses, the re-attach line, no traceback)."""

from __future__ import annotations

import json
import os
import pty
import signal
import subprocess
import time

import pytest

from batch.transform_job import GENERIC_CONTENT_TYPE
from tests.batch.support import photo
from tests.batch.transform_standin import StandIn
from tests.batch.transform_support import (
    EXPECTED,
    PHOTOS,
    WORK,
    Cloud,
)

pytestmark = pytest.mark.slow

SOURCE = f"s3://{PHOTOS}/team/"
OUT = f"s3://{PHOTOS}/classified/"
"""Where the `cloud` fixture (tests/batch/conftest.py) put the images, and the outcomes."""


def manifest_of(cloud: Cloud, job: str) -> list[str]:
    return cloud.read_json(WORK, f"transform/{job}/manifest.json")[1:]


def started_job(err: str) -> str:
    line = next(line for line in err.splitlines() if line.startswith("started transform job"))
    return line.split()[3].rstrip(":")


def test_every_image_ends_in_its_folder_with_the_apis_codes(cloud: Cloud):
    done = cloud.transform(SOURCE, OUT)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    outcomes = cloud.outcomes(PHOTOS, "classified/")
    found = {
        name: (folder, (document.get("error") or {}).get("code"))
        for name, (folder, document) in outcomes.items()
    }
    assert found == EXPECTED
    # Refused by their first bytes: never sent to the job.
    (job,) = [name for name in cloud.plane.jobs]
    assert sorted(manifest_of(cloud, job)) == sorted(
        ["cats/1.jpg", "coffee.png", "broken.jpg", "holiday photo+1.jpg", "huge.png", "cats/2.webp"]
    )
    request = cloud.plane.jobs[job].request
    assert request["TransformInput"]["ContentType"] == GENERIC_CONTENT_TYPE  # JPEG, PNG, WebP
    assert request["MaxPayloadInMB"] == 3
    summary = cloud.read_json(PHOTOS, "classified/summary.json")
    assert summary["files"] == 9
    assert summary["counts"] == {"results": 0, "review": 4, "failed": 5, "pending": 0}
    assert summary["model_version"] == cloud.version
    assert summary["this_run"]["processed"] == 9
    assert summary["model_server"].startswith(f"sagemaker transform job {job} (1 x ml.c5.xlarge)")
    labels = cloud.read_json(PHOTOS, f"classified/model_labels/{cloud.version}.json")
    assert len(labels) == 1000
    source = outcomes["holiday photo+1.jpg"][1]["source"]
    assert source["location"] == f"s3://{PHOTOS}"
    assert source["key"] == "team/holiday photo+1.jpg"
    assert source["media_type"] == "image/jpeg"


def test_a_second_run_resumes_instead_of_repeating(cloud: Cloud):
    assert cloud.transform(SOURCE, OUT).returncode == 0
    again = cloud.transform(SOURCE, OUT)
    assert again.returncode == 0, again.stderr
    assert "9 already have an outcome" in again.stderr
    assert len(cloud.plane.jobs) == 1, "nothing left: no second job"
    cloud.upload(PHOTOS, "team/", {"new/3.jpg": photo("camera")})
    third = cloud.transform(SOURCE, OUT)
    assert third.returncode == 0, third.stderr
    newest = started_job(third.stderr)
    assert manifest_of(cloud, newest) == ["new/3.jpg"]
    assert cloud.plane.jobs[newest].request["TransformInput"]["ContentType"] == "image/jpeg"
    assert cloud.read_json(PHOTOS, "classified/summary.json")["counts"]["review"] == 5


def wait_for_start(process: subprocess.Popen[str], plane: StandIn, timeout: float = 120) -> str:
    """The job's name once it is running (the stand-in knows it as soon as it is created)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        assert process.poll() is None, process.communicate()
        running = [name for name, job in plane.jobs.items() if job.status == "InProgress"]
        if running:
            time.sleep(1.5)  # into the watch loop
            return running[0]
        time.sleep(0.1)
    raise AssertionError("no job started")


@pytest.mark.parametrize(("sig", "status"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_leaves_the_job_running_and_attach_sorts_it(cloud: Cloud, sig, status):
    cloud.plane.delay = 1.0
    process = cloud.batch(
        "run",
        SOURCE,
        "--out",
        OUT,
        "--on",
        "sagemaker",
        "--stack-outputs",
        str(cloud.outputs),
        stdin=subprocess.DEVNULL,
    )
    job = wait_for_start(process, cloud.plane)
    process.send_signal(sig)
    _out, err = process.communicate(timeout=60)
    assert process.returncode == status, err
    assert "Traceback" not in err
    assert f"python -m batch attach {job} --region eu-west-1" in err
    assert f"python -m batch attach {job} --region eu-west-1 --stop" in err
    assert cloud.plane.jobs[job].status == "InProgress", "left running"
    cloud.plane.delay = 0.0
    attached = cloud.run("attach", job, "--region", "eu-west-1")
    assert attached.returncode == 0, attached.stderr
    assert len(cloud.outcomes(PHOTOS, "classified/")) == 9


def test_attach_stop_keeps_what_was_done_and_a_run_resumes_the_rest(cloud: Cloud):
    cloud.plane.delay = 2.0
    process = cloud.batch(
        "run",
        SOURCE,
        "--out",
        OUT,
        "--on",
        "sagemaker",
        "--stack-outputs",
        str(cloud.outputs),
        stdin=subprocess.DEVNULL,
    )
    job = wait_for_start(process, cloud.plane)
    process.send_signal(signal.SIGTERM)
    assert process.wait(60) == 143
    stopped = cloud.run("attach", job, "--region", "eu-west-1", "--stop", "--quiet")
    assert stopped.returncode == 1, stopped.stderr
    assert cloud.plane.jobs[job].status == "Stopped"
    summary = cloud.read_json(PHOTOS, "classified/summary.json")
    assert summary["counts"]["pending"] > 0
    assert "run again to resume" in stopped.stderr
    cloud.plane.delay = 0.0
    resumed = cloud.transform(SOURCE, OUT)
    assert resumed.returncode == 0, resumed.stderr
    assert len(manifest_of(cloud, started_job(resumed.stderr))) == summary["counts"]["pending"]
    assert len(cloud.outcomes(PHOTOS, "classified/")) == 9


def test_a_run_into_the_same_out_as_a_running_job_is_refused(cloud: Cloud):
    cloud.plane.delay = 1.0
    process = cloud.batch(
        "run",
        SOURCE,
        "--out",
        OUT,
        "--on",
        "sagemaker",
        "--stack-outputs",
        str(cloud.outputs),
        stdin=subprocess.DEVNULL,
    )
    job = wait_for_start(process, cloud.plane)
    try:
        second = cloud.transform(SOURCE, OUT)
        assert second.returncode == 2
        assert f"transform job {job} is still transforming into --out {OUT}" in second.stderr
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(60)


def test_ctrl_c_on_a_terminal_asks_and_yes_stops_the_job(cloud: Cloud):
    cloud.plane.delay = 2.0
    leader, follower = pty.openpty()
    try:
        process = cloud.batch(
            "run",
            SOURCE,
            "--out",
            OUT,
            "--on",
            "sagemaker",
            "--stack-outputs",
            str(cloud.outputs),
            stdin=follower,
        )
        job = wait_for_start(process, cloud.plane)
        process.send_signal(signal.SIGINT)
        deadline = time.monotonic() + 30
        while cloud.plane.jobs[job].status == "InProgress" and time.monotonic() < deadline:
            os.write(leader, b"y\n")
            time.sleep(1)
        _out, err = process.communicate(timeout=120)
    finally:
        os.close(leader)
        os.close(follower)
    assert "Stop transform job" in err
    assert cloud.plane.jobs[job].status == "Stopped"
    assert process.returncode == 130, err
    assert "Traceback" not in err
    assert "stopped:" in err
    assert "run again to resume" in err
    summary = cloud.read_json(PHOTOS, "classified/summary.json")
    assert summary["interrupted"] == "SIGINT"
    assert json.dumps(summary)  # written whole
