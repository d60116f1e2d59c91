"""The program under Pulumi's mocks: no engine, no AWS. `python -m pytest` in this folder,
with the `image-classifier` wheel installed (tests/package/test_wheel.py runs it so, from
a copy of this folder outside the repository).

The mocks answer what AWS would: ids, ARNs and the addresses the components read (the
API's endpoint, the distribution's domain, the bucket's regional domain), the ECR
repository and image, the caller's account and region.
"""

import io
import json
import runpy
import tarfile
from pathlib import Path
from typing import Any

import pulumi
import pytest

HERE = Path(__file__).resolve().parent
PROJECT = "classifier-program"
ACCOUNT = "123456789012"
REGION = "eu-west-1"
VERSION = "0123abcd4567"
REPOSITORY_URL = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/image-classifier-serving"
DIGEST = "sha256:" + "5e" * 32


class Mocks(pulumi.runtime.Mocks):
    def __init__(self) -> None:
        self.resources: list[pulumi.runtime.MockResourceArgs] = []

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict]:
        self.resources.append(args)
        resource_id = f"{args.name}-id"
        arn = f"arn:aws:service:{REGION}:{ACCOUNT}:{args.name}"
        state: dict[str, Any] = {"arn": arn, "name": args.inputs.get("name", resource_id)}
        if args.typ == "aws:apigatewayv2/api:Api":
            state["apiEndpoint"] = f"https://{resource_id}.execute-api.{REGION}.amazonaws.com"
            state["executionArn"] = f"arn:aws:execute-api:{REGION}:{ACCOUNT}:{resource_id}"
        elif args.typ == "aws:cloudfront/distribution:Distribution":
            state["domainName"] = "d111111abcdef8.cloudfront.net"
        elif args.typ == "aws:s3/bucket:Bucket":
            state["bucket"] = resource_id
            state["regionalDomainName"] = f"{resource_id}.s3.{REGION}.amazonaws.com"
        elif args.typ == "random:index/randomPassword:RandomPassword":
            state["result"] = "s3cretF0rTests" + "x" * (int(args.inputs["length"]) - 14)
        elif args.typ == "aws:lambda/function:Function":
            state["invokeArn"] = f"{arn}/invocations"
        return resource_id, {**args.inputs, **state}

    def call(self, args: pulumi.runtime.MockCallArgs) -> dict[str, Any]:
        answers: dict[str, dict[str, Any]] = {
            "aws:index/getCallerIdentity:getCallerIdentity": {
                "accountId": ACCOUNT,
                "arn": f"arn:aws:iam::{ACCOUNT}:user/ci",
                "userId": "AIDAEXAMPLE",
                "id": ACCOUNT,
            },
            "aws:index/getPartition:getPartition": {"partition": "aws", "id": "aws"},
            "aws:index/getRegion:getRegion": {"region": REGION, "name": REGION, "id": REGION},
            "aws:ecr/getRepository:getRepository": {
                "name": args.args.get("name"),
                "arn": f"arn:aws:ecr:{REGION}:{ACCOUNT}:repository/{args.args.get('name')}",
                "repositoryUrl": REPOSITORY_URL,
                "registryId": ACCOUNT,
                "id": args.args.get("name"),
            },
            "aws:ecr/getImage:getImage": {"imageDigest": DIGEST, "id": DIGEST},
        }
        return answers[args.token]


MOCKS = Mocks()
pulumi.runtime.set_mocks(MOCKS, project=PROJECT, stack="dev", preview=False)


def write_archive(path: Path) -> Path:
    """A model archive as `python -m model.package` lays it out (its metadata is what the
    components read), with a stand-in for the network."""
    metadata = {
        "name": "mobilenet_v2",
        "version": VERSION,
        "weights": "random",
        "labels": ["cat", "dog"],
    }
    with tarfile.open(path, "w:gz") as archive:
        for name, data in {
            "metadata.json": json.dumps(metadata).encode(),
            "model.onnx": b"a stand-in",
        }.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return path


@pytest.fixture
def configured(tmp_path: Path):
    pulumi.runtime.set_all_config(
        {
            f"{PROJECT}:archive": str(write_archive(tmp_path / "model.tar.gz")),
            f"{PROJECT}:imageRepository": "image-classifier-serving",
            f"{PROJECT}:imageTag": "0123456789abcdef",
        }
    )
    MOCKS.resources.clear()
    yield
    pulumi.runtime.set_all_config({})


def registered(typ: str) -> list[pulumi.runtime.MockResourceArgs]:
    return [args for args in MOCKS.resources if args.typ == typ]


def test_the_program_serves_the_model_behind_the_api_and_the_site(configured):
    outputs: dict[str, str] = {}

    @pulumi.runtime.test
    def run() -> pulumi.Output[Any]:
        program = runpy.run_path(str(HERE / "__main__.py"))
        return pulumi.Output.all(program["site"].url, program["endpoint"].endpoint_name).apply(
            lambda values: outputs.update(site_url=values[0], endpoint_name=values[1])
        )

    run()  # returns once every resource is registered

    assert outputs == {
        "site_url": "https://d111111abcdef8.cloudfront.net",
        "endpoint_name": f"{PROJECT}-dev",
    }
    (model,) = registered("aws:sagemaker/model:Model")
    assert model.inputs["primaryContainer"]["image"] == f"{REPOSITORY_URL}@{DIGEST}"
    (function,) = registered("aws:lambda/function:Function")
    code = function.inputs["code"]
    # The proxy's code comes with the components, and the model's labels beside it.
    assert "proxy/handler.py" in code.assets
    assert f"model_labels/{VERSION}.json" in code.assets
    keys = {args.inputs["key"] for args in registered("aws:s3/bucketObjectv2:BucketObjectv2")}
    assert {"index.html", "app.js", "config.js", f"models/{VERSION}/model.tar.gz"} <= keys
