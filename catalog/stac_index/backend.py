"""What the STAC API asks of a search backend, so another store (pgstac) can stand in.

The web layer parses and checks every request into the plain values below, then calls a
`StacBackend`. A backend answers with STAC dictionaries whose structural links (self, root,
parent, collection, items, next) are left to the web layer, and whose asset and link hrefs may
start with `catalog.stac.VIRTUAL_ROOT` (the web layer makes them absolute).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from shapely.geometry.base import BaseGeometry


@dataclass(frozen=True)
class TimeRange:
    """A closed UTC interval in Julian days; None is an open end."""

    start: float | None
    end: float | None


@dataclass(frozen=True)
class SortKey:
    field: str  # a queryable name: 'datetime', 'id', 'collection', or an item property
    descending: bool


@dataclass(frozen=True)
class ItemSearch:
    """An item search, already validated (values are typed, names are checked)."""

    limit: int
    collections: tuple[str, ...] = ()
    ids: tuple[str, ...] = ()
    bbox: tuple[float, float, float, float] | None = None
    intersects: BaseGeometry | None = None
    datetime: TimeRange | None = None
    filter: Any = None  # a pygeofilter AST, or None
    sortby: tuple[SortKey, ...] = ()
    q: tuple[str, ...] = ()  # free-text terms, OR-ed; the words of a term are AND-ed
    token: str | None = None  # opaque position from a previous page's `next`


@dataclass(frozen=True)
class CollectionSearch:
    limit: int
    bbox: tuple[float, float, float, float] | None = None
    datetime: TimeRange | None = None
    q: tuple[str, ...] = ()
    themes: tuple[str, ...] = ()
    offset: int = 0


@dataclass
class Page:
    """A page of STAC dictionaries and the token of the next page (None on the last)."""

    features: list[dict]
    next_token: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    # Instead of `features` when a search asked for them (`StacBackend.search(rendered=True)`)
    # and the backend has them: each item as the API writes it, the public URL left as
    # catalog.stac_index.documents.RENDERED_BASE.
    rendered: list[str] | None = None


class InvalidQuery(ValueError):
    """A request the backend cannot answer as asked: the message names the parameter.

    A refusal a person can cause from the portal's search also has a stable `message_code`
    and its `params` (the portal says it in the page's language: strings.yml `problem.*`)."""

    def __init__(self, message: str, message_code: str | None = None,
                 params: dict[str, Any] | None = None):
        super().__init__(message)
        self.message_code = message_code
        self.params = dict(params or {})

    @classmethod
    def of(cls, err: Any) -> InvalidQuery:
        """The refusal of a parser's error (catalog.core.parse.ParameterError), its message
        code and params kept."""
        return cls(str(err), getattr(err, "message_code", None), getattr(err, "params", None))


class StacBackend(Protocol):
    """Search and browse over indexed collections and items."""

    def indexed_release(self) -> int | None:
        """The catalog release the index reflects (None when empty or never built)."""

    def indexed_versions(self) -> dict[str, int]:
        """Dataset id -> the version whose collection and items are indexed."""

    def apply(self, release: int, upserts: Sequence[tuple[str, int, dict, Iterable[dict]]],
              removals: Sequence[str], expected_release: int | None = -1) -> bool:
        """Atomically replace (dataset id, version, collection, items) entries, drop the
        datasets in `removals`, and record `release` as indexed. With `expected_release`
        given, write nothing and return False unless the index is still at that release."""

    def scrub(self) -> None:
        """Leave no trace of removed entries in storage (after a purge)."""

    def search(self, query: ItemSearch, rendered: bool = False) -> Page:
        """Items matching every criterion, in `sortby` order (default: newest first). With
        `rendered`, the backend may answer Page.rendered instead of Page.features."""

    def item(self, collection_id: str, item_id: str) -> dict | None: ...

    def collections(self, query: CollectionSearch) -> Page: ...

    def collection(self, collection_id: str) -> dict | None: ...

    def queryables(self, collection_id: str | None) -> dict[str, dict]:
        """Property name -> JSON Schema of the properties a filter or sortby may name."""
