"""Refusals of the /ogc Features routes, as clients of /ogc have always received them.

Two shapes, kept because clients and the golden answers (tests/golden) read them:

- a parameter refused by the checks that run first (unknown parameters, malformed bbox,
  datetime and filter, request bodies): `{"code", "description"}`, JSON only, no
  Content-Language (`refused`);
- every later refusal: `{"code", "type", "description"}` with Content-Language, rendered as an
  HTML page when HTML was asked for (`ApiProblem`).

A refusal a person can cause from the portal also carries `messageCode` and `params` beside
the English description: the portal says it in the page's language from them
(catalog/portal/strings.yml `problem.<code>`, tests/test_message_codes.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from catalog.core.parse import ParameterError


class Refusal(Exception):
    """A refusal answered as it is: status, code and description."""

    def __init__(self, status: int, code: str, description: str,
                 message_code: str | None = None, params: Mapping[str, Any] | None = None):
        super().__init__(description)
        self.status = status
        self.code = code
        self.description = description
        self.message_code = message_code
        self.params = dict(params or {})

    def body(self) -> dict[str, Any]:
        """The JSON fields every refusal has: code, description, and its message code."""
        body: dict[str, Any] = {"code": self.code, "description": self.description}
        if self.message_code is not None:
            body.update(messageCode=self.message_code, params=self.params)
        return body


def coded(err: ParameterError) -> dict[str, Any]:
    """The message code and params of a parser's error, as keywords of the functions below."""
    return {"message_code": err.message_code, "params": err.params}


def refused(description: str, status: int = 400, code: str = "InvalidParameterValue",
            message_code: str | None = None,
            params: Mapping[str, Any] | None = None) -> Refusal:
    """A request refused by the first checks (JSON, without a language)."""
    return Refusal(status, code, description, message_code, params)


class ApiProblem(Refusal):
    """A refusal of the API proper: typed, with Content-Language and the headers set so far
    (Content-Crs once the output CRS is known); HTML when HTML was asked for."""

    def __init__(self, status: int, code: str, description: str,
                 headers: dict[str, str] | None = None, message_code: str | None = None,
                 params: Mapping[str, Any] | None = None):
        super().__init__(status, code, description, message_code, params)
        self.headers = dict(headers or {})


def bad_parameter(description: str, code: str = "InvalidParameterValue",
                  headers: dict[str, str] | None = None, message_code: str | None = None,
                  params: Mapping[str, Any] | None = None) -> ApiProblem:
    return ApiProblem(400, code, description, headers, message_code, params)


def not_found(description: str, headers: dict[str, str] | None = None) -> ApiProblem:
    return ApiProblem(404, "NotFound", description, headers)
