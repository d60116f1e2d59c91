"""The operator CLIs' stores are the proxy's: the same dummy AWS environment."""

from tests.proxy.conftest import aws_env

__all__ = ["aws_env"]
