"""Fetching a remote catalog's JSON (or a CSW's XML): every answer is hostile input.

Bounded in every way a remote server could stretch a run: http(s) URLs only, at most
`MAX_REDIRECTS` redirects, a connect and a read timeout, at most `MAX_RESPONSE_BYTES` per answer
(counted while streaming, whatever Content-Length says), at most `MAX_REQUESTS` requests per
run, JSON parsed by catalog.safe_parse (nesting depth, integer size, lone surrogates) and
XML by defusedxml (no DTD, no entities, no external references).
No credentials or cookies are sent. Problems raise `FetchError` naming the URL.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit
from xml.etree.ElementTree import Element

import requests
from defusedxml import DefusedXmlException
from defusedxml.ElementTree import ParseError, fromstring

from catalog.safe_parse import UnsafeInput, parse_json

CONNECT_TIMEOUT_S = 5
READ_TIMEOUT_S = 20
MAX_RESPONSE_BYTES = 8 * 1024**2
MAX_REQUESTS = 200
MAX_REDIRECTS = 3
USER_AGENT = "taza-koom-harvester/1"


class FetchError(Exception):
    """A remote answer that cannot be used (unreachable, too large, not JSON, refused).

    `str(err)` is the English message (stored with a run, in its report, with its code and
    params, so that `taza harvest list` says it too); `code` and `params`
    name the same failure's text in every language (`error.fetch.<code>` of
    catalog/harvest/cli_texts.yml), which `taza harvest` says. A library's own words (an HTTP
    client's, a JSON or XML parser's) stay English inside it, as `reason`."""

    def __init__(self, message: str, *, code: str = "", params: dict | None = None):
        super().__init__(message)
        self.code = code
        self.params = dict(params or {})


def check_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise FetchError(f"{url!r}: only http(s) URLs with a host are harvested",
                         code="scheme", params={"url": url})
    if parts.username or parts.password:
        raise FetchError(f"{url!r}: credentials in URLs are not accepted",
                         code="credentials", params={"url": url})
    return url


@dataclass
class Fetcher:
    """One run's HTTP client: counts requests against the run's budget."""

    max_requests: int = MAX_REQUESTS
    max_bytes: int = MAX_RESPONSE_BYTES
    requests_made: int = 0
    session: requests.Session = field(default_factory=requests.Session)

    def __post_init__(self) -> None:
        self.session.max_redirects = MAX_REDIRECTS
        self.session.trust_env = False  # no proxies or .netrc credentials from the environment
        self.session.headers.update({"User-Agent": USER_AGENT})

    def json(self, url: str, params: dict | None = None) -> Any:
        body = self._get(url, params, "application/json, application/geo+json")
        try:
            return parse_json(body, what=f"answer of {url}")
        except UnsafeInput as err:
            raise FetchError(f"{url}: {err}", code="unsafe_json",
                             params={"url": url, "reason": str(err)}) from None

    def xml(self, url: str, params: dict | None = None) -> Element:
        """The root element of an XML answer."""
        body = self._get(url, params, "application/xml, text/xml")
        try:
            return fromstring(body, forbid_dtd=True)
        except (ParseError, DefusedXmlException) as err:
            raise FetchError(f"{url}: not acceptable XML: {err}", code="xml",
                             params={"url": url, "reason": str(err)}) from None

    def _get(self, url: str, params: dict | None, accept: str) -> bytes:
        check_url(url)
        if self.requests_made >= self.max_requests:
            raise FetchError(f"more than {self.max_requests} requests in one run: stopped",
                             code="requests", params={"most": self.max_requests})
        self.requests_made += 1
        try:
            with self.session.get(url, params=params, stream=True, headers={"Accept": accept},
                                  timeout=(CONNECT_TIMEOUT_S, READ_TIMEOUT_S)) as response:
                check_url(response.url)  # a redirect must not leave http(s)
                if response.status_code != 200:
                    raise FetchError(f"{response.url}: HTTP {response.status_code}",
                                     code="status", params={"url": response.url,
                                                            "status": response.status_code})
                return self._read(response)
        except requests.RequestException as err:
            raise FetchError(f"{url}: {type(err).__name__}: {err}", code="unreachable",
                             params={"url": url, "reason": f"{type(err).__name__}: {err}"}
                             ) from None

    def _read(self, response: requests.Response) -> bytes:
        chunks, size = [], 0
        for chunk in response.iter_content(64 * 1024):
            size += len(chunk)
            if size > self.max_bytes:
                raise FetchError(f"{response.url}: answer larger than {self.max_bytes} bytes",
                                 code="too_large",
                                 params={"url": response.url, "most": self.max_bytes})
            chunks.append(chunk)
        return b"".join(chunks)
