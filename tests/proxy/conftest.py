import botocore.session
import pytest
from moto import mock_aws

from tests.proxy.support import ENDPOINT

PATH = "/image-classifier-dev/api-keys"
"""The API keys' SSM path in the dev stack."""
REGION = "eu-west-1"


@pytest.fixture
def aws_env(monkeypatch):
    """Dummy credentials and region, and nothing from the developer's own AWS setup."""
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    monkeypatch.setenv("SAGEMAKER_ENDPOINT_NAME", ENDPOINT)
    return monkeypatch


@pytest.fixture(scope="module")
def session():
    """One botocore session for the module: it loads the SSM model once."""
    return botocore.session.get_session()


@pytest.fixture
def ssm(aws_env, session):
    """A moto SSM Parameter Store, and a client on it."""
    with mock_aws():
        yield session.create_client("ssm", region_name=REGION)
