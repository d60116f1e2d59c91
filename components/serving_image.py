"""`ServingImage`: the container image the SageMaker model runs, pinned by digest.

By default the stack builds `serving/Dockerfile` (`python -m serving.serve`, no install at
start) with BuildKit and pushes it to a private ECR repository of its own. The tag is
`serving.image.image_tag`, a hash of every file the build reads and of the base image, and
the provider rebuilds only when those files (its context hash, which also sees their
modes) or its inputs change, so an unchanged image is never built or pushed again and
the model, which names the image by digest, changes only when the image does. A rebuild
under a tag the repository holds (other file modes, files reverted) pushes and moves the
tag; the image it replaced stays, untagged, for a model that still runs it by digest.

With `image_uri` set (built and pushed elsewhere, e.g. where Docker is available) nothing
is built: the endpoint serves that image and its role may pull from that repository only.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import pulumi
import pulumi_aws as aws
import pulumi_docker_build as docker_build

from serving.image import DOCKERFILE, image_tag

TYPE = "image-classifier:serving_image:ServingImage"

KEEP_IMAGES = 10
"""Images the repository keeps: the one serving and those a rollback may return to."""
PLATFORM = docker_build.Platform.LINUX_AMD64
"""SageMaker Serverless runs x86_64 only."""

_ECR_IMAGE = re.compile(
    r"^(?P<account>\d{12})\.dkr\.ecr\.(?P<region>[a-z0-9-]+)\.amazonaws\.com(?:\.cn)?"
    r"/(?P<repository>[a-z0-9._/-]+)(?::[\w.-]+)?(?:@sha256:[0-9a-f]{64})?$"
)
# A Docker image reference: [registry[:port]/]path[:tag][@sha256:digest].
_IMAGE_REFERENCE = re.compile(
    r"^(?:[a-zA-Z0-9.-]+(?::\d+)?/)?[a-z0-9]+(?:[._/-]+[a-z0-9]+)*"
    r"(?::\w[\w.-]{0,127})?(?:@sha256:[0-9a-f]{64})?$"
)


def image_uri_problem(image_uri: str) -> str | None:
    """Why SageMaker could not serve `image_uri`; None when it is an ECR image."""
    if _ECR_IMAGE.match(image_uri):
        return None
    return (
        f"image URI {image_uri!r} is not an ECR image "
        "(ACCOUNT.dkr.ecr.REGION.amazonaws.com/REPOSITORY:TAG); SageMaker pulls only from ECR"
    )


def base_image_problem(base_image: str) -> str | None:
    """Why `base_image` cannot be the Dockerfile's BASE_IMAGE; None when it can."""
    if _IMAGE_REFERENCE.match(base_image):
        return None
    return (
        f"{base_image!r} is not an image reference "
        "([REGISTRY/]NAME[:TAG][@sha256:DIGEST], e.g. python:3.11-slim-bookworm)"
    )


def serving_image_problems(image_uri: str | None, base_image: str | None) -> dict[str, str]:
    """What is wrong with the image to serve, by field; empty when it is valid."""
    problems = {}
    if image_uri is not None and (problem := image_uri_problem(image_uri)):
        problems["image_uri"] = problem
    if base_image is not None and (problem := base_image_problem(base_image)):
        problems["base_image"] = problem
    elif base_image is not None and image_uri is not None:
        problems["base_image"] = (
            "is set, but so is the image URI: the stack builds no image to base on it"
        )
    return problems


def ecr_repository_arn(image_uri: str, partition: str = "aws") -> str:
    """The ECR repository an image lives in, for a pull permission on exactly that ARN."""
    match = _ECR_IMAGE.match(image_uri)
    if match is None:
        raise ValueError(image_uri_problem(image_uri))
    return (
        f"arn:{partition}:ecr:{match['region']}:{match['account']}:repository/{match['repository']}"
    )


def lifecycle_policy(keep_images: int) -> str:
    """The repository's lifecycle policy: expire all but the `keep_images` newest images,
    tagged or not.

    The stack pushes only when the provider rebuilds, so the newest is the one serving and
    the ones before it are those a model kept for a rollback, or one whose rollout failed,
    may still run by digest. A tag that moved leaves its previous image untagged: it counts
    like any other, never expired for being untagged or old."""
    rule = {
        "rulePriority": 1,
        "description": f"Keep the {keep_images} newest images",
        "selection": {
            "tagStatus": "any",
            "countType": "imageCountMoreThan",
            "countNumber": keep_images,
        },
        "action": {"type": "expire"},
    }
    return json.dumps({"rules": [rule]})


@dataclass
class ServingImageArgs:
    """Plain values: they decide what is built, and are checked before anything is created."""

    repository_name: str
    """The private ECR repository the image is pushed to (lower case)."""
    context_dir: Path
    """The build context: the repository root, holding `serving/Dockerfile`."""
    image_uri: str | None = None
    """An image already in ECR to serve instead; then no repository is created and
    nothing is built."""
    base_image: str | None = None
    """The Dockerfile's `BASE_IMAGE` build arg; None keeps the Dockerfile's own."""
    keep_images: int = KEEP_IMAGES
    build_on_preview: pulumi.Input[bool] = False
    """Off: `pulumi preview` does not build (nor `up` twice, in its preview and again),
    and CI's container tests already build the image for every change."""
    tags: pulumi.Input[Mapping[str, str]] | None = None

    def __post_init__(self) -> None:
        problems = serving_image_problems(self.image_uri, self.base_image)
        if self.keep_images < 1:
            problems["keep_images"] = f"keep_images {self.keep_images} must be at least 1"
        if problems:
            raise ValueError("; ".join(problems.values()))


class ServingImage(pulumi.ComponentResource):
    image_uri: pulumi.Output[str]
    """What SageMaker pulls: `<repository URL>@<digest>`, or `image_uri` as given."""
    repository_arn: pulumi.Output[str]
    """The one repository the execution role may pull from."""

    def __init__(
        self, name: str, args: ServingImageArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(TYPE, name, None, opts)
        if args.image_uri is not None:
            image_uri = args.image_uri
            partition = aws.get_partition_output(opts=pulumi.InvokeOutputOptions(parent=self))
            self.image_uri = pulumi.Output.from_input(image_uri)
            self.repository_arn = partition.partition.apply(
                lambda value: ecr_repository_arn(image_uri, value)
            )
        else:
            self._build(name, args)
        self.register_outputs({"image_uri": self.image_uri, "repository_arn": self.repository_arn})

    def _build(self, name: str, args: ServingImageArgs) -> None:
        child = pulumi.ResourceOptions(parent=self)
        repository = aws.ecr.Repository(
            f"{name}-repository",
            name=args.repository_name,
            # A tag may move: the provider rebuilds when its context hash changes, which
            # covers file modes the tag does not, and must then push under the same tag.
            # The model runs the image by digest, so nothing that runs follows a tag
            # (decision 12).
            image_tag_mutability="MUTABLE",
            image_scanning_configuration={"scan_on_push": True},
            encryption_configurations=[{"encryption_type": "AES256"}],
            # Holds only images this stack pushed (and can build again).
            force_delete=True,
            tags=args.tags,
            opts=child,
        )
        aws.ecr.LifecyclePolicy(
            f"{name}-lifecycle",
            repository=repository.name,
            policy=lifecycle_policy(args.keep_images),
            opts=child,
        )
        token = aws.ecr.get_authorization_token_output(
            registry_id=repository.registry_id, opts=pulumi.InvokeOutputOptions(parent=self)
        )
        # Relative to the program's directory, where the provider runs too: the state keeps
        # these locations and the provider rebuilds when one changes, which an absolute
        # path would do on every machine with its checkout elsewhere.
        context = Path(os.path.relpath(args.context_dir))
        image = docker_build.Image(
            f"{name}-image",
            context={"location": context.as_posix()},
            dockerfile={"location": (context / DOCKERFILE).as_posix()},
            platforms=[PLATFORM],
            build_args={"BASE_IMAGE": args.base_image} if args.base_image else None,
            tags=[
                pulumi.Output.concat(
                    repository.repository_url, ":", image_tag(args.context_dir, args.base_image)
                )
            ],
            # Pushed by this registry export rather than `push`, which would take BuildKit's
            # default media types: OCI since BuildKit 0.31, and SageMaker refuses OCI
            # manifests. (The provider already leaves out provenance attestations, which
            # would make the image an OCI index.)
            push=False,
            exports=[{"registry": {"push": True, "oci_media_types": False}}],
            build_on_preview=args.build_on_preview,
            registries=[
                {
                    "address": repository.repository_url,
                    "username": token.user_name,
                    "password": pulumi.Output.secret(token.password),
                }
            ],
            # Pulumi's delete would delete the pushed image, which a retained model (the
            # previous one, kept for a rollback) still runs. The lifecycle policy expires
            # old images, and destroy deletes the repository with them.
            opts=pulumi.ResourceOptions(parent=self, retain_on_delete=True),
        )
        self.image_uri = pulumi.Output.concat(repository.repository_url, "@", image.digest)
        self.repository_arn = repository.arn
