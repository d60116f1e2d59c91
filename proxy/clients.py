"""`RuntimeClients`: the container's `sagemaker-runtime` clients, one per read timeout.

botocore fixes a client's read timeout when it is created, and each attempt must fit in what
is left of the Lambda's time. So the clients are cached by whole seconds of read timeout:
in practice one (the configured timeout), plus a shorter one now and then for a late retry,
each created once per container from a single botocore session (about 2 ms after the first).
`AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME` is honoured by botocore itself.
"""

from __future__ import annotations

import math
from typing import Any

import botocore.session
from botocore.config import Config

_USER_AGENT = "image-classifier-proxy"


class RuntimeClients:
    def __init__(self, read_timeout: float, connect_timeout: float) -> None:
        self._read_timeout = read_timeout
        self._connect_timeout = connect_timeout
        self._session: Any = None
        self._clients: dict[float, Any] = {}

    def __call__(self, read_timeout: float) -> Any:
        """A client whose read timeout is at most `read_timeout` (and at least 1 s)."""
        key = min(self._read_timeout, max(1.0, float(math.floor(read_timeout))))
        client = self._clients.get(key)
        if client is None:
            client = self._clients[key] = self._create(key)
        return client

    def warm(self) -> None:
        """Create the usual client now, during the Lambda's init phase."""
        self(self._read_timeout)

    def _create(self, read_timeout: float) -> Any:
        if self._session is None:
            self._session = botocore.session.get_session()
        return self._session.create_client(
            "sagemaker-runtime",
            config=Config(
                connect_timeout=self._connect_timeout,
                read_timeout=read_timeout,
                # The proxy's own retries are budgeted; botocore's would not be.
                retries={"total_max_attempts": 1},
                tcp_keepalive=True,
                user_agent_extra=_USER_AGENT,
            ),
        )
