"""`ApiError`: a failure that already knows the HTTP answer the client gets."""

from __future__ import annotations


class ApiError(Exception):
    """Raised anywhere in a request; `PredictProxy` turns it into the JSON error response."""

    def __init__(
        self, status: int, code: str, message: str, *, retry_after: int | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.retry_after = retry_after
