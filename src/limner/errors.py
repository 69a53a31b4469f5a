"""Limner's errors: one small hierarchy, each class carrying the HTTP status it maps to.

Every entry point raises these; the HTTP layer turns them into the OpenAI error envelope (one
handler, ``server/errors.py``) and the CLI prints their message. Messages say what was wrong and
what to do about it. ``code`` and ``param`` follow the OpenAI envelope; a class gives the default
code, a raise may name a more precise one.
"""

from __future__ import annotations


class LimnerError(Exception):
    """Base class: an error of the server itself (500) unless a subclass says otherwise."""

    status = 500
    type = "server_error"
    code: str | None = None

    def __init__(self, message: str, *, param: str | None = None, code: str | None = None):
        super().__init__(message)
        self.message = message
        self.param = param
        if code is not None:
            self.code = code


class InvalidRequest(LimnerError):
    """The request itself is wrong: a missing or out-of-range parameter."""

    status = 400
    type = "invalid_request_error"


class Unauthorized(LimnerError):
    """No credentials, or wrong ones."""

    status = 401
    type = "invalid_request_error"


class Forbidden(LimnerError):
    status = 403
    type = "invalid_request_error"


class NotFound(LimnerError):
    status = 404
    type = "invalid_request_error"


class UnknownModel(InvalidRequest):
    """A ``model`` parameter naming no model this server has (404, as OpenAI answers)."""

    status = 404
    code = "model_not_found"


class Conflict(LimnerError):
    """The request contradicts the state of the thing it acts on (e.g. a second vote)."""

    status = 409
    type = "invalid_request_error"


class TooLarge(LimnerError):
    status = 413
    type = "invalid_request_error"


class ModerationBlocked(InvalidRequest):
    type = "image_generation_user_error"
    code = "moderation_blocked"

    def __init__(self, message: str, *, stage: str = "input", category: str | None = None):
        super().__init__(message)
        self.stage = stage
        self.category = category


class RateLimited(LimnerError):
    """A limit of the caller's was reached; ``retry_after`` seconds until it resets."""

    status = 429
    type = "requests"
    code = "rate_limit_exceeded"

    def __init__(self, message: str, *, retry_after: int, code: str | None = None):
        super().__init__(message, code=code)
        self.retry_after = retry_after


class Busy(LimnerError):
    """Every slot for new work is taken; the caller should retry after ``retry_after`` seconds."""

    status = 503
    type = "server_error"
    code = "engine_overloaded"

    def __init__(self, message: str, *, retry_after: int = 5):
        super().__init__(message)
        self.retry_after = retry_after


class Cancelled(LimnerError):
    status = 499
    type = "cancelled"


class SourceUnavailable(LimnerError):
    """A corpus source could not be fetched or read; the message names the package or file."""


class CheckpointError(LimnerError):
    """A checkpoint file is missing, corrupt, or was written for another model."""
