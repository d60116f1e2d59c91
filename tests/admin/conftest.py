"""The operator CLIs' stores are the proxy's: the same dummy AWS environment and SSM."""

from tests.proxy.conftest import aws_env, session, ssm

__all__ = ["aws_env", "session", "ssm"]
