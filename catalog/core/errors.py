"""How an exception is quoted in a message meant for a person: its first line only."""

from __future__ import annotations


def first_line(err: BaseException, limit: int | None = None) -> str:
    """The first line of `err`'s text (at most `limit` characters), or its class's name when it
    has none: drivers and databases put the useful part first and a dump of context after it."""
    lines = str(err).strip().splitlines()
    return lines[0][:limit] if lines else type(err).__name__
