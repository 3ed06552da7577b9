"""Service errors, each with the HTTP status the API answers (the CLI prints the message)."""

from __future__ import annotations


class ServiceError(Exception):
    status = 400
    code = "BadRequest"

    def __init__(self, message: str, **extra):
        super().__init__(message)
        self.message = message
        self.extra = extra

    def as_dict(self) -> dict:
        return {"code": self.code, "description": self.message, "status": self.status,
                **self.extra}


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
