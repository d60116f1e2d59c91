"""The serving image under Pulumi mocks: its private ECR repository, the image BuildKit
builds and pushes there, the model that runs it by digest and the role that may pull it;
and with `imageUri`, an existing image and nothing built."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from components.serving_image import (
    KEEP_IMAGES,
    TYPE,
    ServingImage,
    ServingImageArgs,
    base_image_problem,
    ecr_repository_arn,
    image_uri_problem,
    lifecycle_policy,
)
from components.stack_config import StackConfigError
from serving.image import CONTEXT_FILES, DOCKERFILE, default_base_image, image_tag
from tests.infra.conftest import (
    ACCOUNT,
    ECR_PASSWORD,
    ECR_REGISTRY,
    IMAGE_DIGEST,
    PROJECT,
    REGION,
    ROOT,
    record,
)

REPOSITORY = "aws:ecr/repository:Repository"
LIFECYCLE = "aws:ecr/lifecyclePolicy:LifecyclePolicy"
IMAGE = "docker-build:index:Image"
MODEL = "aws:sagemaker/model:Model"
REPOSITORY_NAME = f"{PROJECT}-dev-serving"
REPOSITORY_URL = f"{ECR_REGISTRY}/{REPOSITORY_NAME}"
REPOSITORY_ARN = f"arn:aws:ecr:{REGION}:{ACCOUNT}:repository/{REPOSITORY_NAME}"
TAGS = {"project": PROJECT, "stack": "dev", "managed-by": "pulumi"}
PRIVATE_IMAGE = f"111122223333.dkr.ecr.{REGION}.amazonaws.com/team/serving@sha256:" + "a" * 64


def _execution_statements(stack) -> dict[str, dict]:
    policy = stack.one("aws:iam/rolePolicy:RolePolicy", "model-execution-policy")
    return {s["Sid"]: s for s in json.loads(policy.inputs["policy"])["Statement"]}


def _pull_statement(stack) -> dict:
    return _execution_statements(stack)["PullTheServingImage"]


def _ok(run):
    assert run.error is None, run.error
    return run


# -- the repository ---------------------------------------------------------------------------


def test_the_repository_is_private_scanned_and_encrypted_and_its_tags_may_move(dev_stack):
    repository = dev_stack.one(REPOSITORY)
    assert repository.inputs["name"] == REPOSITORY_NAME
    assert repository.inputs["imageScanningConfiguration"] == {"scanOnPush": True}
    # A rebuild the provider decides on pushes under the tag it had (decision 12): the
    # model runs the image by digest, so a tag that moves changes nothing that runs.
    assert repository.inputs["imageTagMutability"] == "MUTABLE"
    assert repository.inputs["encryptionConfigurations"] == [{"encryptionType": "AES256"}]
    # It holds only what the stack pushed: destroy may delete it with its images.
    assert repository.inputs["forceDelete"] is True
    assert repository.inputs["tags"]["stack"] == "dev"
    # No repository policy: the account's own roles pull through their IAM policies.
    assert not dev_stack.of_type("aws:ecr/repositoryPolicy:RepositoryPolicy")


def test_the_lifecycle_policy_keeps_the_newest_images_only(dev_stack):
    lifecycle = dev_stack.one(LIFECYCLE)
    assert lifecycle.inputs["repository"] == REPOSITORY_NAME
    (rule,) = json.loads(lifecycle.inputs["policy"])["rules"]
    assert rule["selection"] == {
        "tagStatus": "any",
        "countType": "imageCountMoreThan",
        "countNumber": KEEP_IMAGES,
    }
    assert rule["action"] == {"type": "expire"}
    assert KEEP_IMAGES == 10


def test_an_image_whose_tag_moved_is_kept_like_any_other():
    """A rebuild under the same tag leaves the previous image untagged, and a model kept
    for a rollback (or one whose rollout failed) may still run it by digest: no rule
    selects untagged images, nor expires images by age; each one is kept until
    KEEP_IMAGES newer ones were pushed."""
    for rule in json.loads(lifecycle_policy(KEEP_IMAGES))["rules"]:
        assert rule["selection"]["tagStatus"] == "any"
        assert rule["selection"]["countType"] == "imageCountMoreThan"


def test_the_lifecycle_policy_keeps_as_many_as_asked():
    (rule,) = json.loads(lifecycle_policy(3))["rules"]
    assert rule["selection"]["countNumber"] == 3


# -- the image ------------------------------------------------------------------------------


def test_the_image_is_model_dockerfile_built_from_the_repository_root_for_x86(dev_stack):
    image = dev_stack.one(IMAGE)
    # Relative to the program's directory (the repository root), so the provider's state
    # does not change with where a checkout lives.
    assert not Path(image.inputs["context"]["location"]).is_absolute()
    assert Path(image.inputs["context"]["location"]).resolve() == ROOT
    assert image.inputs["dockerfile"]["location"] == DOCKERFILE
    assert image.inputs["platforms"] == ["linux/amd64"]
    assert "buildArgs" not in image.inputs
    assert image.inputs["buildOnPreview"] is False


def test_the_image_is_pushed_with_the_media_types_sagemaker_accepts(dev_stack):
    image = dev_stack.one(IMAGE)
    # One registry export that pushes, with Docker's media types (SageMaker refuses OCI
    # ones, BuildKit's default since 0.31); `push` itself would take that default.
    assert image.inputs["push"] is False
    (export,) = image.inputs["exports"]
    assert export == {"registry": {"push": True, "ociMediaTypes": False}}


def test_the_image_is_tagged_with_its_content_hash(dev_stack):
    image = dev_stack.one(IMAGE)
    assert image.inputs["tags"] == [f"{REPOSITORY_URL}:{image_tag(ROOT)}"]


def test_the_registry_login_is_the_ecr_token_kept_secret(dev_stack):
    image = dev_stack.one(IMAGE)
    assert "registries" in image.secrets
    assert image.inputs["registries"] == [
        {"address": REPOSITORY_URL, "username": "AWS", "password": ECR_PASSWORD}
    ]


def test_a_pushed_image_outlives_its_resource_and_the_repository_cleans_up(dev_stack):
    # A retained model (kept for a rollback) may still run an older image, so Pulumi never
    # deletes one; the lifecycle policy expires them, destroy removes the repository.
    assert dev_stack.one(IMAGE).retain_on_delete
    assert not dev_stack.one(REPOSITORY).retain_on_delete


def test_a_checkout_with_other_file_modes_gets_the_same_tag_and_may_push_it(tmp_path):
    """The provider's context hash covers file modes (pulumi-docker-build's hashFile writes
    fileMode.String()); the tag, a hash of the files' bytes, does not. So a checkout made
    with another umask rebuilds under the same tag: the repository must take that push."""
    checkout = tmp_path / "checkout"
    for name in CONTEXT_FILES:
        (checkout / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(ROOT / name, checkout / name)
        (checkout / name).chmod(0o664)  # umask 002, where CI's checkout has 0644
    assert image_tag(checkout) == image_tag(ROOT)

    def program() -> None:
        ServingImage("serving", ServingImageArgs(REPOSITORY_NAME, checkout, tags=TAGS))

    run = _ok(record(program))
    (image,) = run.of_type(IMAGE)
    assert image.inputs["tags"] == [f"{REPOSITORY_URL}:{image_tag(ROOT)}"]
    assert run.one(REPOSITORY).inputs["imageTagMutability"] == "MUTABLE"


def test_a_base_image_is_a_build_arg_and_changes_the_tag():
    """A component input (the stack builds on the Dockerfile's own base: another one is an
    image built elsewhere, config imageUri)."""
    base = "public.ecr.aws/docker/library/python:3.11.14-slim-trixie"

    def program() -> None:
        ServingImage("serving", ServingImageArgs(REPOSITORY_NAME, ROOT, base_image=base, tags=TAGS))

    image = _ok(record(program)).one(IMAGE)
    assert image.inputs["buildArgs"] == {"BASE_IMAGE": base}
    assert image.inputs["tags"] == [f"{REPOSITORY_URL}:{image_tag(ROOT, base)}"]
    assert image_tag(ROOT, base) != image_tag(ROOT)


def test_every_part_belongs_to_the_serving_image_component(dev_stack):
    component = dev_stack.one(TYPE)
    for token in (REPOSITORY, LIFECYCLE, IMAGE):
        assert dev_stack.one(token).parent == component.urn, token


# -- the model and its role -----------------------------------------------------------------


def test_the_model_runs_the_pushed_image_by_digest(dev_stack):
    container = dev_stack.one(MODEL).inputs["primaryContainer"]
    assert container["image"] == f"{REPOSITORY_URL}@{IMAGE_DIGEST}"
    assert dev_stack.outputs["serving_image"] == container["image"]


def test_the_execution_role_may_pull_exactly_that_repository(dev_stack):
    pull = _pull_statement(dev_stack)
    assert pull["Resource"] == REPOSITORY_ARN == dev_stack.one(REPOSITORY).state["arn"]
    assert sorted(pull["Action"]) == [
        "ecr:BatchCheckLayerAvailability",
        "ecr:BatchGetImage",
        "ecr:GetDownloadUrlForLayer",
    ]


def test_the_execution_role_may_publish_endpoint_metrics_in_sagemakers_namespace_only(dev_stack):
    # AWS's minimum policy for a CreateModel execution role has cloudwatch:PutMetricData;
    # PutMetricData has no resource, and cloudwatch:namespace narrows it to the one
    # namespace SageMaker publishes an endpoint's container metrics to from the account.
    metrics = _execution_statements(dev_stack)["PublishEndpointMetrics"]
    assert metrics["Action"] == "cloudwatch:PutMetricData"
    assert metrics["Resource"] == "*"
    assert metrics["Condition"] == {
        "StringEquals": {"cloudwatch:namespace": "/aws/sagemaker/Endpoints"}
    }


# -- an existing image ----------------------------------------------------------------------


def test_with_an_image_uri_nothing_is_built_and_that_image_is_served(run_stack):
    stack = _ok(run_stack({f"{PROJECT}:imageUri": PRIVATE_IMAGE}))
    for token in (REPOSITORY, LIFECYCLE, IMAGE):
        assert not stack.of_type(token), token
    assert stack.one(MODEL).inputs["primaryContainer"]["image"] == PRIVATE_IMAGE
    assert stack.outputs["serving_image"] == PRIVATE_IMAGE
    assert _pull_statement(stack)["Resource"] == (
        f"arn:aws:ecr:{REGION}:111122223333:repository/team/serving"
    )


def test_a_base_image_with_an_image_uri_is_refused():
    with pytest.raises(ValueError, match="is set, but so is the image URI"):
        ServingImageArgs(
            REPOSITORY_NAME, ROOT, image_uri=PRIVATE_IMAGE, base_image="python:3.11-slim"
        )


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"imageUri": "ghcr.io/me/serving:1"}, r"imageUri: .* is not an ECR image"),
        ({"imageUri": "not an image"}, r"imageUri: .* is not an ECR image"),
    ],
)
def test_config_that_cannot_give_an_image_stops_before_anything_is_created(
    run_stack, overrides, expected
):
    run = run_stack({f"{PROJECT}:{key}": value for key, value in overrides.items()})
    assert isinstance(run.error, StackConfigError)
    assert re.search(expected, str(run.error))
    assert run.resources == []


# -- the rules, alone -----------------------------------------------------------------------


def test_an_ecr_image_is_what_sagemaker_can_pull():
    assert image_uri_problem(PRIVATE_IMAGE) is None
    assert image_uri_problem(f"{REPOSITORY_URL}:{image_tag(ROOT)}") is None
    assert "not an ECR image" in image_uri_problem("docker.io/library/python:3.11")


def test_ecr_repository_arn_of_a_private_image():
    assert ecr_repository_arn(PRIVATE_IMAGE, "aws") == (
        f"arn:aws:ecr:{REGION}:111122223333:repository/team/serving"
    )
    with pytest.raises(ValueError, match="not an ECR image"):
        ecr_repository_arn("ghcr.io/me/serving:1")


@pytest.mark.parametrize(
    "reference",
    [
        default_base_image(ROOT),
        "python:3.11-slim-bookworm",
        "localhost:5000/debian-bookworm-python",
        f"{ECR_REGISTRY}/bases/python@sha256:" + "b" * 64,
    ],
)
def test_base_images_are_image_references(reference):
    assert base_image_problem(reference) is None


@pytest.mark.parametrize("reference", ["", "python 3.11", "Python:3.11", "python:", "-x"])
def test_anything_else_is_no_base_image(reference):
    assert "is not an image reference" in base_image_problem(reference)


def test_the_args_refuse_what_cannot_give_an_image():
    with pytest.raises(ValueError, match=r"'ghcr\.io/me/serving:1' is not an ECR image"):
        ServingImageArgs("r", ROOT, image_uri="ghcr.io/me/serving:1")
    with pytest.raises(ValueError, match="keep_images 0 must be at least 1"):
        ServingImageArgs("r", ROOT, keep_images=0)
