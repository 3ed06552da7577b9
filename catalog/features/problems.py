"""Refusals of the /ogc Features routes, as clients of /ogc have always received them.

Two shapes, kept because clients and the golden answers (tests/golden) read them:

- a parameter refused by the checks that run first (unknown parameters, malformed bbox,
  datetime and filter, request bodies): `{"code", "description"}`, JSON only, no
  Content-Language (`refused`);
- every later refusal: `{"code", "type", "description"}` with Content-Language, rendered as an
  HTML page when HTML was asked for (`ApiProblem`).
"""

from __future__ import annotations


class Refusal(Exception):
    """A refusal answered as it is: status, code and description."""

    def __init__(self, status: int, code: str, description: str):
        super().__init__(description)
        self.status = status
        self.code = code
        self.description = description


def refused(description: str, status: int = 400, code: str = "InvalidParameterValue") -> Refusal:
    """A request refused by the first checks (JSON, without a language)."""
    return Refusal(status, code, description)


class ApiProblem(Refusal):
    """A refusal of the API proper: typed, with Content-Language and the headers set so far
    (Content-Crs once the output CRS is known); HTML when HTML was asked for."""

    def __init__(self, status: int, code: str, description: str,
                 headers: dict[str, str] | None = None):
        super().__init__(status, code, description)
        self.headers = dict(headers or {})


def bad_parameter(description: str, code: str = "InvalidParameterValue",
                  headers: dict[str, str] | None = None) -> ApiProblem:
    return ApiProblem(400, code, description, headers)


def not_found(description: str, headers: dict[str, str] | None = None) -> ApiProblem:
    return ApiProblem(404, "NotFound", description, headers)
