"""A `taza restore` killed while it switched the home: finished or undone.

The switch (restore.Swap) renames the home's previous entries into `.replaced-<token>/` and
the staged ones in from `.restoring-<token>/`. Before the first rename it writes the journal
`.replaced-<token>/swap.json`: the names of the previous entries, and whether a database
transaction is part of the restore. The restore commits

- with a database: when its one transaction commits; that transaction also sets the comment
  of schema `taza_state` to `taza restore <token>`, so the database itself says whether the
  commit happened;
- without one: when the marker `.replaced-<token>/switched` is written, after the last rename.

A SIGKILL (or a power cut) anywhere leaves the journal behind. `recover` reads it: a committed
restore is finished (the previous entries go), any other is undone (the staged entries go and
the previous ones come back). psql, left without its client, rolls the open transaction back
on its own; `recover` waits for that session to end before it asks the database.

`taza restore` recovers first, before anything else; `taza restore --recover` only recovers;
`taza serve` refuses a home with a journal, rather than serve a half-switched catalog.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import psycopg

from catalog.backups import BackupError
from catalog.store.files import fsync_path

JOURNAL = "swap.json"
SWITCHED = "switched"
ASIDE_PREFIX = ".replaced-"
STAGING_PREFIX = ".restoring-"
SCRIPT_PREFIX = ".restore-sql."
RESTORE_PREFIXES = (ASIDE_PREFIX, STAGING_PREFIX, SCRIPT_PREFIX)
# psql's session of a restore names itself so (PGAPPNAME), so `recover` can wait for it.
APPLICATION_PREFIX = "taza-restore-"
SESSION_WAIT_S = 30.0


def commit_comment(token: str) -> str:
    """The comment of schema taza_state that the restore's transaction sets."""
    return f"taza restore {token}"


@dataclass(frozen=True)
class Interrupted:
    """One restore that did not finish: its aside folder and journal."""

    aside: Path
    token: str
    previous: frozenset[str]  # the home's entries before the switch
    database: bool  # a database transaction was part of it

    @property
    def staging(self) -> Path:
        return self.aside.parent / f"{STAGING_PREFIX}{self.token}"


def write_journal(aside: Path, previous: list[Path], database: bool) -> None:
    """The journal of a switch, durable before its first rename."""
    path = aside / JOURNAL
    with path.open("w", encoding="utf-8") as out:
        json.dump({"previous": sorted(p.name for p in previous), "database": database}, out)
        out.flush()
        os.fsync(out.fileno())
    fsync_path(aside)


def mark_switched(aside: Path) -> None:
    """The switch is committed (written after the database's commit, or the last rename)."""
    (aside / SWITCHED).touch()
    fsync_path(aside)


def interrupted(home: Path) -> list[Interrupted]:
    """The restores of `home` that a kill left unfinished (an aside folder with a journal)."""
    found = []
    for aside in sorted(Path(home).glob(ASIDE_PREFIX + "*")):
        journal = aside / JOURNAL
        if not aside.is_dir() or not journal.is_file():
            continue
        try:
            data = json.loads(journal.read_text(encoding="utf-8"))
            previous = frozenset(str(name) for name in data["previous"])
            database = bool(data["database"])
        except (OSError, ValueError, KeyError, TypeError) as err:
            raise BackupError(f"{journal} is damaged ({err}): cannot tell what the "
                              "interrupted restore changed; compare the home with "
                              f"{aside} by hand", code="journal_damaged",
                              params={"journal": journal, "reason": str(err),
                                      "aside": aside}) from err
        found.append(Interrupted(aside, aside.name[len(ASIDE_PREFIX):], previous, database))
    return found


# What `recover` may have done to an interrupted restore or its leftovers (Recovered.what).
RECOVERED_KINDS = ("finished", "undone", "leftover")


@dataclass(frozen=True)
class Recovered:
    """One thing `recover` did: `finished` or `undone` an interrupted restore (`name` is its
    token), or removed a `leftover` of a restore killed before its switch (`name`: the file)."""

    what: str
    name: str


def recover(home: Path, database_url: str | None) -> list[Recovered]:
    """Finish or undo every interrupted restore of `home`, and remove what restores killed
    before their switch left; what was done, in order."""
    home = Path(home)
    done = []
    for restore in interrupted(home):
        if _committed(restore, database_url):
            _finish(restore)
            done.append(Recovered("finished", restore.token))
        else:
            _undo(home, restore)
            done.append(Recovered("undone", restore.token))
    for leftover in sorted(home.glob("*")):
        if leftover.name.startswith(RESTORE_PREFIXES):  # killed before its switch began
            _remove(leftover)
            done.append(Recovered("leftover", leftover.name))
    if done:
        fsync_path(home)
    return done


def _committed(restore: Interrupted, database_url: str | None) -> bool:
    if (restore.aside / SWITCHED).exists():
        return True
    if not restore.database:
        return False  # without a database the marker is the commit
    if not database_url:
        raise BackupError("an interrupted restore of this home included the database: set "
                          "TAZA_DATABASE_URL to it, so that its state decides whether the "
                          "restore is finished or undone", code="recover_needs_database_url")
    return database_committed(database_url, restore.token)


def database_committed(database_url: str, token: str) -> bool:
    """Whether the transaction of restore `token` committed, as the database says (after the
    restore's psql session has ended); BackupError when the database cannot be asked."""
    try:
        with psycopg.connect(database_url, connect_timeout=10, autocommit=True) as connection:
            _wait_for_session(connection, token)
            comment = connection.execute(
                "SELECT obj_description(to_regnamespace('taza_state'), 'pg_namespace')"
            ).fetchone()[0]
    except psycopg.Error as err:
        raise BackupError(f"cannot reach the database to tell whether the interrupted restore "
                          f"committed; nothing was changed: {err}",
                          code="recover_database_unreachable",
                          params={"reason": str(err)}) from err
    return comment == commit_comment(token)


def _wait_for_session(connection: psycopg.Connection, token: str) -> None:
    """The killed restore's psql rolls back when it sees its input close; until its session
    has ended, a COMMIT sent just before the kill may still land."""
    deadline = time.monotonic() + SESSION_WAIT_S
    while connection.execute("SELECT count(*) FROM pg_stat_activity WHERE application_name = %s",
                             (APPLICATION_PREFIX + token,)).fetchone()[0]:
        if time.monotonic() > deadline:
            raise BackupError(f"the session of restore {token} is still open after "
                              f"{SESSION_WAIT_S:.0f} s; is that restore still running?",
                              code="restore_session_open",
                              params={"token": token, "seconds": f"{SESSION_WAIT_S:.0f}"})
        time.sleep(0.2)


def _finish(restore: Interrupted) -> None:
    shutil.rmtree(restore.aside)
    shutil.rmtree(restore.staging, ignore_errors=True)


def _undo(home: Path, restore: Interrupted) -> None:
    """Staged entries out of the home, the previous ones back in."""
    moved_out = {p.name for p in restore.aside.iterdir()} - {JOURNAL, SWITCHED}
    for entry in sorted(home.iterdir()):
        if entry.name.startswith(RESTORE_PREFIXES):
            continue
        # Moved in: the switch moved every previous entry out before moving any in.
        if entry.name in moved_out or entry.name not in restore.previous:
            _remove(entry)
    for name in sorted(moved_out):
        os.rename(restore.aside / name, home / name)
    fsync_path(home)
    shutil.rmtree(restore.aside)
    shutil.rmtree(restore.staging, ignore_errors=True)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink()
