"""Service errors, each with the HTTP status the API answers (the CLI prints the message).

Every refusal carries a stable `message_code` and its `params` beside the English message:
the API answers them as `messageCode` and `params`, and the stewards' page says the refusal
in its language from them (catalog/portal/strings.yml `problem.<messageCode>`, filled with
the params; tests/test_stewards_messages.py checks every code raised here has its texts).
"""

from __future__ import annotations


class ServiceError(Exception):
    status = 400
    code = "BadRequest"

    def __init__(self, message: str, *, message_code: str = "", params: dict | None = None,
                 **extra):
        super().__init__(message)
        self.message = message
        self.message_code = message_code
        self.params = dict(params or {})
        self.extra = extra

    def as_dict(self) -> dict:
        data = {"code": self.code, "description": self.message, "status": self.status,
                **self.extra}
        if self.message_code:
            data.update(messageCode=self.message_code, params=dict(self.params))
        return data


class BadRequest(ServiceError):
    pass


class Unauthenticated(ServiceError):
    status, code = 401, "Unauthorized"


class Forbidden(ServiceError):
    status, code = 403, "Forbidden"


class NotFound(ServiceError):
    status, code = 404, "NotFound"


class Conflict(ServiceError):
    status, code = 409, "Conflict"


class RangeNotSatisfiable(ServiceError):
    status, code = 416, "RangeNotSatisfiable"


class TooLarge(ServiceError):
    status, code = 413, "ContentTooLarge"


class Unsupported(ServiceError):
    status, code = 415, "UnsupportedMediaType"


class Unprocessable(ServiceError):
    status, code = 422, "UnprocessableContent"


class TooManyRequests(ServiceError):
    """Too many failed sign-ins; retry_after seconds until the next attempt is heard."""

    status, code = 429, "TooManyRequests"

    def __init__(self, message: str, retry_after: int, **extra):
        super().__init__(message, retry_after=retry_after, **extra)
        self.retry_after = retry_after


class DraftQuotaExceeded(ServiceError):
    status, code = 409, "QuotaExceeded"


class UploadQuotaExceeded(ServiceError):
    status, code = 413, "QuotaExceeded"


class Unavailable(ServiceError):
    status, code = 503, "ServiceUnavailable"
