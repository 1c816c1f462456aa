"""Errors that reach clients, in OpenAI's envelope.

Every failure a client can cause or observe is an ``APIError``; anything else is a bug, logged
with its request id and answered with a generic 500 (no stack trace ever leaves the server).
"""

from __future__ import annotations

from typing import Any


class APIError(Exception):
    """An error answered as ``{"error": {"message", "type", "param", "code"}}``."""

    status = 400
    type = "invalid_request_error"
    code: str | None = None

    def __init__(
        self,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        if code is not None:
            self.code = code
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        return {
            "error": {
                "message": self.message,
                "type": self.type,
                "param": self.param,
                "code": self.code,
            }
        }


class InvalidRequest(APIError):
    status = 400


class ContextLengthExceeded(APIError):
    status = 400
    code = "context_length_exceeded"


class AuthenticationFailed(APIError):
    status = 401
    code = "invalid_api_key"


class PermissionDenied(APIError):
    status = 403
    type = "permission_error"
    code = "permission_denied"


class NotFound(APIError):
    status = 404


class ModelNotFound(NotFound):
    code = "model_not_found"


class Conflict(APIError):
    status = 409
    code = "conflict"


class MethodNotAllowed(APIError):
    status = 405
    code = "method_not_allowed"


class RateLimited(APIError):
    status = 429
    type = "requests"
    code = "rate_limit_exceeded"


class InsufficientQuota(APIError):
    """A quota or the credits cannot cover the request: OpenAI's 429 of the same name."""

    status = 429
    type = "insufficient_quota"
    code = "insufficient_quota"
    quota = ""  # which: daily_tokens, monthly_tokens, monthly_credits or credits


class PayloadTooLarge(APIError):
    status = 413
    code = "request_too_large"


class Overloaded(APIError):
    status = 503
    type = "server_error"
    code = "engine_overloaded"


class UpstreamError(APIError):
    """A deployment failed; ``retryable`` when another attempt may succeed (connection errors,
    timeouts, 429 and 5xx before any output), not when the upstream judged the request bad."""

    status = 502
    type = "server_error"
    code = "upstream_error"

    def __init__(self, message: str, *, retryable: bool = True, status: int = 502) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.status = status


class ServerError(APIError):
    status = 500
    type = "server_error"
    code = "internal_error"
