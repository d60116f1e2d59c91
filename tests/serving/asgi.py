"""Starlette's in-process test client, without its notice about a future httpx fork."""

import warnings

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    from starlette.testclient import TestClient

__all__ = ["TestClient"]
