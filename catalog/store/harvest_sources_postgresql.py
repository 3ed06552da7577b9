"""Harvest sources in PostgreSQL (TAZA_DATABASE_URL): `taza_state.harvest_sources` (one row per
source, its definition as JSON text) and `taza_state.harvest_state` (one row per source that
ran: what its runs saw and its last run's report, as JSON text), so a source added through any
node is listed, run and scheduled by every node and worker, whatever its home.

Every statement binds its values. An add is one `INSERT ... ON CONFLICT DO NOTHING`: of two
nodes adding the same name at once, one gets the name and the other is told it is taken. The
harvest lock (held by a change of the sources and by a run until its state is saved) is the
advisory lock `harvest-sources` of the database (catalog/store/locks.py), so runs of a source
never interleave across nodes, and the scheduler of every `taza worker` checks what is due
under it: a scheduled source is queued once across the nodes, not once per node.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path

import psycopg

from catalog.postgis import database
from catalog.store import locks, state_postgresql
from catalog.store.harvest_sources import (
    HarvestSources,
    HarvestSourcesConflict,
    HarvestSourcesUnavailable,
    empty_state,
    ran_later,
)

STEP_1 = """
CREATE TABLE harvest_sources (
    name TEXT PRIMARY KEY,
    source TEXT NOT NULL,
    recorded_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE TABLE harvest_state (
    name TEXT PRIMARY KEY REFERENCES harvest_sources (name) ON DELETE CASCADE,
    state TEXT NOT NULL,
    saved_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
"""
MIGRATIONS = (("harvest", (STEP_1,)),)
LOCK_NAME = "harvest-sources"


class PostgresHarvestSources:
    def __init__(self, url: str, home: Path):
        self.url, self.home = url, Path(home)

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        with contextlib.ExitStack() as stack:
            try:
                stack.enter_context(locks.held_lock(self.home / "harvest" / "harvest.lock",
                                                    LOCK_NAME, True, self.url))
            except (database.DatabaseError, psycopg.OperationalError) as err:
                raise HarvestSourcesUnavailable(
                    f"the harvest lock cannot be taken: {err}") from err
            yield

    def sources(self) -> dict[str, dict]:
        with self._unit(write=False) as unit:
            return {row[0]: json.loads(row[1]) for row in
                    unit.execute("SELECT name, source FROM harvest_sources ORDER BY name")}

    def insert(self, source: dict) -> bool:
        with self._unit(write=True) as unit:
            return unit.execute("INSERT INTO harvest_sources (name, source) VALUES (?, ?) "
                                "ON CONFLICT (name) DO NOTHING RETURNING name",
                                (source["name"], _text(source))).fetchone() is not None

    def delete(self, name: str) -> bool:
        with self._unit(write=True) as unit:  # its state goes with it (ON DELETE CASCADE)
            return unit.execute("DELETE FROM harvest_sources WHERE name = ? RETURNING name",
                                (name,)).fetchone() is not None

    def state(self, name: str) -> dict:
        with self._unit(write=False) as unit:
            row = unit.execute("SELECT state FROM harvest_state WHERE name = ?",
                               (name,)).fetchone()
        return json.loads(row[0]) if row is not None else empty_state()

    def save_state(self, name: str, data: dict) -> None:
        with self._unit(write=True) as unit:
            unit.execute("INSERT INTO harvest_state (name, state) VALUES (?, ?) "
                         "ON CONFLICT (name) DO UPDATE SET state = EXCLUDED.state, "
                         "saved_at = now() RETURNING name", (name, _text(data)))

    def copy_from(self, other: HarvestSources) -> tuple[int, int]:
        """Bring `other`'s sources in (what `taza migrate` does), in one transaction: a source
        the database lacks is inserted with its state; one it holds with the same definition
        takes `other`'s state when `other` ran it later (the newer last run wins, so a run made
        through the database's nodes is never undone); one it holds with another definition is
        HarvestSourcesConflict. Sources only in the database stay. Returns (sources inserted,
        states copied)."""
        mine = other.sources()
        inserted = states = 0
        with self._unit(write=True) as unit:
            held = {row[0]: (json.loads(row[1]), json.loads(row[2]) if row[2] else None)
                    for row in unit.execute(
                        "SELECT s.name, s.source, t.state FROM harvest_sources s "
                        "LEFT JOIN harvest_state t ON t.name = s.name")}
            for name, source in sorted(mine.items()):
                state = other.state(name)
                if name not in held:
                    unit.execute("INSERT INTO harvest_sources (name, source) VALUES (?, ?) "
                                 "RETURNING name", (name, _text(source)))
                    inserted += 1
                elif held[name][0] != source:
                    raise HarvestSourcesConflict(
                        f"harvest source {name!r}: the target holds another definition")
                elif not ran_later(state, held[name][1]):
                    continue
                if state == empty_state():
                    continue
                unit.execute("INSERT INTO harvest_state (name, state) VALUES (?, ?) "
                             "ON CONFLICT (name) DO UPDATE SET state = EXCLUDED.state, "
                             "saved_at = now() RETURNING name", (name, _text(state)))
                states += 1
        return inserted, states

    def _unit(self, write: bool) -> contextlib.AbstractContextManager[
            state_postgresql.StateConnection]:
        return _unit(self.url, self.home, write)


@contextlib.contextmanager
def _unit(url: str, home: Path, write: bool) -> Iterator[state_postgresql.StateConnection]:
    try:
        with state_postgresql.connect(url, home, write, MIGRATIONS) as unit:
            yield unit
    except (database.DatabaseError, psycopg.OperationalError) as err:
        raise HarvestSourcesUnavailable(f"the harvest sources cannot be read: {err}") from err


def _text(data: dict) -> str:
    return json.dumps(data, ensure_ascii=False, sort_keys=True)
