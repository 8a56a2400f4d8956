"""Domain errors raised by services; the web layer maps each class to one HTTP status.

    AppError
    ├── AuthenticationError       credentials or token missing, invalid or expired  (401)
    ├── PermissionDeniedError     authenticated, but not allowed                     (403)
    ├── NotFoundError             missing, or not visible to the caller              (404)
    ├── ConflictError             uniqueness or state conflict, concurrent change    (409)
    ├── PreconditionFailedError   a stale If-Match                                   (412)
    ├── InvalidInputError         well-formed input a business rule rejects          (422)
    ├── RateLimitedError          over a request budget                              (429)
    └── ServiceUnavailableError   a dependency is down                               (503)

None of them knows about HTTP: statuses live in one table in ``app.core.problems``.
"""

from collections.abc import Sequence


class AppError(Exception):
    """Base class: ``detail`` is safe to show to the client."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class AuthenticationError(AppError):
    def __init__(self, detail: str = "Could not validate credentials", *, token_sent: bool = False):
        super().__init__(detail)
        self.token_sent = token_sent


class PermissionDeniedError(AppError):
    pass


class NotFoundError(AppError):
    pass


class ConflictError(AppError):
    pass


class PreconditionFailedError(AppError):
    pass


class InvalidInputError(AppError):
    """A validation failure found by a rule, reported like a schema error at ``loc``."""

    def __init__(self, detail: str, *, loc: Sequence[str | int], error_type: str) -> None:
        super().__init__(detail)
        self.loc = tuple(loc)
        self.error_type = error_type


class RateLimitedError(AppError):
    def __init__(self, detail: str, *, retry_after: int) -> None:
        super().__init__(detail)
        self.retry_after = retry_after


class ServiceUnavailableError(AppError):
    def __init__(self, detail: str, *, retry_after: int = 1) -> None:
        super().__init__(detail)
        self.retry_after = retry_after
