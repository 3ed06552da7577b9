"""The audit log: who did what, when, to which dataset, in a keyed chain that can be proven.

It lives in the store layer so the release switch (catalog.publish) records its intent and its
outcome without importing the stewards' service. The table sits in the stewards' SQLite file
(TAZA_HOME/stewards/stewards.sqlite), so the stewards record an entry in the same transaction
as the change it describes.

Every entry carries the MAC of the entry before it and its own MAC: HMAC-SHA256 under a key
kept outside the database (a file of mode 0600: TAZA_AUDIT_KEY_FILE, default
TAZA_HOME/keys/audit.key). Whoever can write the database but not read the key can neither
edit, remove, reorder nor add an entry without `verify` noticing. Cutting entries off the end
would leave a valid shorter chain, so the chain's head (seq and MAC) is also kept outside the
database: in a head file beside the key (TAZA_AUDIT_HEAD_FILE), advanced after every commit,
and in each release.json. `verify` checks the chain against both.

A log written before keying (unkeyed SHA-256 entries) keeps verifying as it is. `migrate`
appends one keyed entry over its last hash, which seals it; new entries are refused until then,
so no entry is ever written that cannot be proven.

Append-only: the code only INSERTs, and SQLite triggers refuse UPDATE and DELETE (which stops
mistakes, not someone who drops the triggers: the MACs do that).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import getpass
import hashlib
import hmac
import json
import logging
import os
import secrets
import sqlite3
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

from catalog import settings
from catalog.core.operator_texts import OperatorTexts, warn_operator
from catalog.postgis import database
from catalog.store import state_postgresql
from catalog.store.files import atomic_write, fsync_path
from catalog.store.release_records import release_records

LOGGER = logging.getLogger(__name__)
SAY = OperatorTexts(Path(__file__).with_name("texts.yml"))
GENESIS = "0" * 64
KEYED = "hmac-sha256"  # the scheme of entries written by this version
KEY_ID_LABEL = b"taza audit key id"
BUSY_TIMEOUT_MS = 15_000
INTENT = "release.intent"  # written before a release switch (and a purge); see catalog.publish

SCHEMA = """
CREATE TABLE IF NOT EXISTS audit (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    at TEXT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    dataset_id TEXT,
    detail TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL,
    scheme TEXT,
    key_id TEXT
);
CREATE TRIGGER IF NOT EXISTS audit_no_update BEFORE UPDATE ON audit
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_no_delete BEFORE DELETE ON audit
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
"""
# Columns added to logs created before keyed entries (NULL scheme: an unkeyed entry).
ADDED_COLUMNS = {"scheme": "TEXT", "key_id": "TEXT"}


class AuditError(Exception):
    """The log cannot take or check entries as things stand (the message says what to do).

    `str(err)` is the English message (logs, the API); `code` and `params` name the same
    problem for the command line, which says `error.audit.<code>` of
    catalog/stewards/cli_texts.yml in the operator's language (this floor only sets codes)."""

    def __init__(self, message: str, *, code: str = "", params: dict | None = None):
        super().__init__(message)
        self.code = code
        self.params = dict(params or {})


# What writing or reading the log can raise on either engine.
LOG_ERRORS = (AuditError, sqlite3.Error, psycopg.Error, database.DatabaseError,
              database.PoolTimeout)


@dataclass(frozen=True)
class Anchor:
    """A position in the chain: an entry's seq and its MAC."""

    seq: int
    mac: str

    def as_dict(self) -> dict:
        return {"seq": self.seq, "mac": self.mac}


# Why verify finds a chain broken: its reason code -> the English reason (ChainCheck.reason),
# filled from the reason's params. The command line says `audit.reason.<code>` of
# catalog/stewards/cli_texts.yml instead; a key that cannot be read gives the AuditError's
# code (`error.audit.<code>`). A `where` param (a head recorded outside the database) comes
# with `place`, naming how to say it: `audit.place.<place>`, filled from the same params.
REASONS = {
    "entry_missing": "entry {entry} is missing",
    "not_linked": "does not follow the entry before",
    "head_differs": "differs from the chain head recorded in {where}",
    "no_key": "the audit key is missing: keyed entries cannot be checked",
    "other_key": "written under another key than the audit key",
    "mac_differs": "content does not match its MAC",
    "unkeyed_after_keyed": "an unkeyed entry after keyed ones",
    "hash_differs": "content does not match its hash",
    "cut_short": "entry {entry}, recorded in {where}, is missing: the log was cut short",
    "no_head_file": "the head file is missing: the chain's end cannot be checked",
}


@dataclass(frozen=True)
class Reason:
    """Why an entry breaks the chain: a code of REASONS and its params."""

    code: str
    params: dict = field(default_factory=dict)

    @property
    def text(self) -> str:
        return REASONS[self.code].format(**self.params)


@dataclass(frozen=True)
class ChainCheck:
    ok: bool
    entries: int
    first_bad_seq: int | None = None
    reason: str | None = None  # in English (logs, the API); reason_code names it
    unkeyed_entries: int = 0
    anchors_checked: int = 0
    reason_code: str | None = None  # a code of REASONS, or an AuditError's code
    reason_params: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {"ok": self.ok, "entries": self.entries, "first_bad_seq": self.first_bad_seq,
                "reason": self.reason, "unkeyed_entries": self.unkeyed_entries,
                "anchors_checked": self.anchors_checked, "reason_code": self.reason_code,
                "reason_params": self.reason_params}

    def broken_params(self) -> dict:
        """The params of an AuditError that quotes this check's reason."""
        return {"seq": self.first_bad_seq, "reason": self.reason,
                "reason_code": self.reason_code, "reason_params": self.reason_params}


# -- where things are ----------------------------------------------------------------------

def database_path(home: Path) -> Path:
    """The stewards' database, which holds the audit table."""
    return Path(home) / "stewards" / "stewards.sqlite"


def key_path(home: Path) -> Path:
    configured = os.environ.get("TAZA_AUDIT_KEY_FILE")
    return Path(configured) if configured else Path(home) / "keys" / "audit.key"


def head_path(home: Path) -> Path:
    configured = os.environ.get("TAZA_AUDIT_HEAD_FILE")
    return Path(configured) if configured else key_path(home).with_name("audit.head")


def now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")


def os_actor() -> str:
    """The actor of commands run on the server: `cli:<operating-system user>`."""
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli:unknown"


# -- the table -----------------------------------------------------------------------------

def ensure_schema(connection: sqlite3.Connection) -> None:
    """Create the table, or add the keyed columns to a log made before them (idempotent)."""
    columns = {row[1] for row in connection.execute("PRAGMA table_info(audit)")}
    if columns and not set(ADDED_COLUMNS) - columns:
        return
    connection.execute("BEGIN IMMEDIATE")
    try:
        columns = {row[1] for row in connection.execute("PRAGMA table_info(audit)")}
        if not columns:
            for statement in sqlite_statements(SCHEMA):
                connection.execute(statement)
        for name, kind in ADDED_COLUMNS.items():
            if name not in columns and columns:
                connection.execute(f"ALTER TABLE audit ADD COLUMN {name} {kind}")
        connection.execute("COMMIT")
    except BaseException:
        connection.execute("ROLLBACK")
        raise


# The PostgreSQL profile's audit table (catalog.store.state_postgresql): same columns, and
# a trigger that refuses UPDATE and DELETE as SQLite's do.
POSTGRESQL_MIGRATIONS = (
    """
    CREATE TABLE audit (
        seq BIGINT PRIMARY KEY,
        at TEXT NOT NULL,
        actor TEXT NOT NULL,
        action TEXT NOT NULL,
        dataset_id TEXT,
        detail TEXT NOT NULL,
        prev_hash TEXT NOT NULL,
        hash TEXT NOT NULL,
        scheme TEXT,
        key_id TEXT
    );
    CREATE FUNCTION audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN RAISE EXCEPTION 'the audit log is append-only'; END $$;
    CREATE TRIGGER audit_no_change BEFORE UPDATE OR DELETE OR TRUNCATE ON audit
        FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only();
    """,
)
MIGRATIONS = (("audit", POSTGRESQL_MIGRATIONS),)


@contextlib.contextmanager
def connect(home: Path, write: bool = True) -> Iterator[sqlite3.Connection]:
    """A connection for the log's own entries and reads; advances the head after a write."""
    url = settings.database_url()
    if url:
        with state_postgresql.connect(url, home, write, MIGRATIONS) as connection:
            yield connection
        if write:
            advance_head_after_commit(url, home)
        return
    path = database_path(home)
    path.parent.mkdir(parents=True, exist_ok=True)
    connection = sqlite3.connect(path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
    connection.row_factory = sqlite3.Row
    try:
        connection.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        if connection.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
            connection.execute("PRAGMA journal_mode = WAL")
        ensure_schema(connection)
        connection.execute("BEGIN IMMEDIATE" if write else "BEGIN")
        try:
            yield connection
        except BaseException:
            connection.execute("ROLLBACK")
            raise
        connection.execute("COMMIT")
        if write:
            advance_head(home, connection)
    finally:
        connection.close()


# -- writing -------------------------------------------------------------------------------

def append(connection: sqlite3.Connection, actor: str, action: str,
           dataset_id: str | None = None, **detail) -> Anchor:
    """Add an entry inside the caller's write transaction (so it commits with the change).

    After the commit, call advance_head (catalog.stewards.db.connect and connect do).
    """
    home = _home_of(connection)
    last = connection.execute(
        "SELECT seq, hash, scheme, key_id FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
    if last is not None and last["scheme"] != KEYED:
        raise AuditError("the audit log holds unkeyed entries from before keyed MACs; run "
                         "`taza audit --migrate` once (docs/stewards.md, 'The audit log')",
                         code="unkeyed_log")
    if last is None and isinstance(connection, state_postgresql.StateConnection) \
            and read_head(home) is not None:
        raise AuditError("the audit head file names entries this database does not hold: "
                         "move the catalog's log with `taza migrate --to ...` first "
                         "(docs/deployment.md); nothing was changed",
                         code="head_elsewhere")
    key = load_key(home)
    if key is None and last is None:
        key = create_key(home)  # a new log starts keyed
    if key is None:
        raise AuditError(f"the audit key {key_path(home)} is missing; restore it from your "
                         "copy (entries cannot be written or checked without it)",
                         code="key_missing", params={"path": str(key_path(home))})
    if last is not None and last["key_id"] != key_id(key):
        raise AuditError(f"the audit key {key_path(home)} is not the key this log was "
                         "written with; restore the right key",
                         code="key_wrong", params={"path": str(key_path(home))})
    return _insert(connection, key, last, actor, action, dataset_id, detail)


def record(home: Path, actor: str, action: str, dataset_id: str | None = None,
           **detail) -> Anchor:
    """Append one entry in its own transaction."""
    with connect(home) as connection:
        return append(connection, actor, action, dataset_id, **detail)


def advance_head(home: Path, connection: sqlite3.Connection) -> None:
    """After a commit: move the head file to the last keyed entry (never backwards)."""
    row = connection.execute(
        "SELECT seq, hash FROM audit WHERE scheme = ? ORDER BY seq DESC LIMIT 1",
        (KEYED,)).fetchone()
    if row is None:
        return
    try:
        _write_head(home, Anchor(row["seq"], row["hash"]), forward_only=True)
    except OSError as err:  # the entry is committed: a lagging head only weakens the check
        warn_operator(SAY, "audit_head_not_updated", LOGGER, path=head_path(home), reason=err)


def advance_head_after_commit(url: str, home: Path) -> None:
    """advance_head for the PostgreSQL profile, whose connection went back to its pool at
    COMMIT: read the last entry in a unit of its own (a later one is as good: it is committed)."""
    with state_postgresql.connect(url, home, write=False, migrations=MIGRATIONS) as reader:
        advance_head(home, reader)


def reset_head(home: Path, actor: str) -> tuple[Anchor, Anchor | None]:
    """Take the chain as it is now as the head, when the head file names an entry the
    database does not have (a restored backup, with the head kept outside the home) or is
    lost. The chain must verify without it; an entry records the head it replaces.
    Returns the new head and the one replaced."""
    replaced = read_head(home)
    check = verify(home, head_file=False)
    if not check.ok:
        raise AuditError(f"the chain is broken at entry {check.first_bad_seq} "
                         f"({check.reason}); the head is left as it is",
                         code="reset_chain_broken", params=check.broken_params())
    with connect(home) as connection:
        anchor = append(connection, actor, "audit.head_reset", None,
                        replaced_head=replaced.as_dict() if replaced else None,
                        entries_before=check.entries)
    _write_head(home, anchor, forward_only=False)
    return anchor, replaced


def _write_head(home: Path, anchor: Anchor, forward_only: bool) -> None:
    path = head_path(home)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    with open(path.with_name(path.name + ".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # writers in several processes: keep it monotonic
        head = read_head(home)
        if not forward_only or head is None or head.seq < anchor.seq:
            atomic_write(path, json.dumps(anchor.as_dict()))


def migrate(home: Path, actor: str) -> Anchor | None:
    """Seal a log of unkeyed entries under a key (made if missing); None if nothing to do."""
    check = verify(home)
    with connect(home) as connection:
        last = connection.execute(
            "SELECT seq, hash, scheme FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
        if last is None or last["scheme"] == KEYED:
            return None
        if not check.ok:
            raise AuditError(f"the unkeyed chain is broken at entry {check.first_bad_seq} "
                             f"({check.reason}); it cannot be sealed as it is",
                             code="migrate_chain_broken", params=check.broken_params())
        key = load_key(home) or create_key(home)
        return _insert(connection, key, last, actor, "audit.migrate", None,
                       {"unkeyed_entries": last["seq"], "unkeyed_head": last["hash"]})


def _insert(connection: sqlite3.Connection, key: bytes, last: sqlite3.Row | None, actor: str,
            action: str, dataset_id: str | None, detail: dict) -> Anchor:
    seq, prev_hash = (last["seq"] + 1, last["hash"]) if last else (1, GENESIS)
    row = {"seq": seq, "at": now(), "actor": actor, "action": action,
           "dataset_id": dataset_id, "detail": _canonical(detail), "scheme": KEYED,
           "key_id": key_id(key)}
    mac = _mac(key, prev_hash, row)
    connection.execute(
        "INSERT INTO audit (seq, at, actor, action, dataset_id, detail, prev_hash, hash, "
        "scheme, key_id) VALUES (:seq, :at, :actor, :action, :dataset_id, :detail, "
        ":prev_hash, :hash, :scheme, :key_id)", {**row, "prev_hash": prev_hash, "hash": mac})
    return Anchor(seq, mac)


# -- the key and the head ------------------------------------------------------------------

def load_key(home: Path) -> bytes | None:
    path = key_path(home)
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return None
    if mode & 0o077:
        raise AuditError(f"the audit key {path} is open to other users (mode "
                         f"{oct(mode & 0o777)}); make it mode 0600",
                         code="key_exposed", params={"path": str(path),
                                                     "mode": oct(mode & 0o777)})
    try:
        key = bytes.fromhex(path.read_text(encoding="ascii").strip())
    except ValueError as err:
        raise AuditError(f"the audit key {path} is not 64 hexadecimal digits",
                         code="key_malformed", params={"path": str(path)}) from err
    if len(key) != 32:
        raise AuditError(f"the audit key {path} is not 64 hexadecimal digits",
                         code="key_malformed", params={"path": str(path)})
    return key


def create_key(home: Path) -> bytes:
    """Make a random key file (mode 0600); if another process made one first, keep that."""
    path = key_path(home)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex}")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(descriptor, (secrets.token_hex(32) + "\n").encode("ascii"))
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
    try:
        os.link(temporary, path)  # unlike a rename, never replaces an existing key
    except FileExistsError:
        pass
    finally:
        os.unlink(temporary)
    fsync_path(path.parent)
    return load_key(home)


def key_id(key: bytes) -> str:
    """Names the key without revealing it."""
    return hmac.new(key, KEY_ID_LABEL, hashlib.sha256).hexdigest()[:16]


def read_head(home: Path) -> Anchor | None:
    try:
        data = json.loads(head_path(home).read_text())
    except FileNotFoundError:
        return None
    return Anchor(int(data["seq"]), str(data["mac"]))


# -- reading -------------------------------------------------------------------------------

def entries(home: Path, after: int = 0, limit: int = 100, dataset_id: str | None = None,
            actor: str | None = None) -> list[dict]:
    """Entries with seq > after, oldest first, optionally for one dataset or actor."""
    clauses, params = ["seq > ?"], [after]
    if dataset_id is not None:
        clauses.append("dataset_id = ?")
        params.append(dataset_id)
    if actor is not None:
        clauses.append("actor = ?")
        params.append(actor)
    params.append(limit)
    sql = ("SELECT * FROM audit WHERE " + " AND ".join(clauses)  # noqa: S608 (fixed clauses)
           + " ORDER BY seq LIMIT ?")
    with connect(home, write=False) as connection:
        return [_as_dict(row) for row in connection.execute(sql, params)]


def unresolved_intents(home: Path) -> list[dict]:
    """Intent entries no outcome answered (their operation was killed), oldest first.

    Operations run one at a time under the publish lock and each one resolves what it finds
    first, so only intents after the newest outcome can be open: read back to it.
    """
    found = []
    with connect(home, write=False) as connection:
        for row in connection.execute("SELECT * FROM audit ORDER BY seq DESC"):
            entry = _as_dict(row)
            if entry["action"] == INTENT:
                found.append(entry)
            elif "intent" in entry["detail"]:
                break
    return found[::-1]


def verify(home: Path, head_file: bool = True) -> ChainCheck:
    """Walk the chain from the first entry: every link and MAC (or, for entries from before
    keying, hash) must match, and the chain must reach every head recorded outside it (the
    head file's too, unless head_file=False)."""
    try:
        key = load_key(home)
        anchors = _anchors(home, head_file)
    except AuditError as err:
        return ChainCheck(False, 0, None, str(err), reason_code=err.code or None,
                          reason_params=err.params)
    walk = _ChainWalk(key, anchors, head_present=not head_file or read_head(home) is not None)
    with connect(home, write=False) as connection:
        for row in connection.execute("SELECT * FROM audit ORDER BY seq"):
            problem = walk.check(row)
            if problem:
                return ChainCheck(False, walk.count, row["seq"], problem.text, walk.unkeyed,
                                  walk.anchors_checked, problem.code, problem.params)
    problem = walk.finish()
    if problem:
        seq, reason = problem
        return ChainCheck(False, walk.count, seq, reason.text, walk.unkeyed,
                          walk.anchors_checked, reason.code, reason.params)
    return ChainCheck(True, walk.count, None, None, walk.unkeyed, walk.anchors_checked)


class _ChainWalk:
    """The state of verify's walk over the entries in seq order."""

    def __init__(self, key: bytes | None, anchors: dict[int, list[tuple[str, dict]]],
                 head_present: bool):
        self.key, self.anchors, self.head_present = key, anchors, head_present
        self.prev_hash, self.count, self.unkeyed, self.keyed = GENESIS, 0, 0, 0
        self.anchors_checked = 0

    def check(self, row: sqlite3.Row) -> Reason | None:
        self.count += 1
        if row["seq"] != self.count:
            return Reason("entry_missing", {"entry": self.count})
        if row["prev_hash"] != self.prev_hash:
            return Reason("not_linked")
        problem = self._check_keyed(row) if row["scheme"] == KEYED else self._check_unkeyed(row)
        if problem:
            return problem
        for mac, where in self.anchors.pop(row["seq"], []):
            self.anchors_checked += 1
            if row["hash"] != mac:
                return Reason("head_differs", dict(where))
        self.prev_hash = row["hash"]
        return None

    def _check_keyed(self, row: sqlite3.Row) -> Reason | None:
        if self.key is None:
            return Reason("no_key")
        if row["key_id"] != key_id(self.key):
            return Reason("other_key")
        self.keyed += 1
        if not hmac.compare_digest(_mac(self.key, row["prev_hash"], dict(row)), row["hash"]):
            return Reason("mac_differs")
        return None

    def _check_unkeyed(self, row: sqlite3.Row) -> Reason | None:
        if self.keyed:
            return Reason("unkeyed_after_keyed")
        self.unkeyed += 1
        if _legacy_hash(row["prev_hash"], _as_dict(row)) != row["hash"]:
            return Reason("hash_differs")
        return None

    def finish(self) -> tuple[int, Reason] | None:
        if self.anchors:  # heads recorded outside the database that the chain no longer has
            seq = min(self.anchors)
            return seq, Reason("cut_short", {"entry": seq, **self.anchors[seq][0][1]})
        if self.keyed and not self.head_present:
            return self.count, Reason("no_head_file")
        return None


def _anchors(home: Path, head_file: bool) -> dict[int, list[tuple[str, dict]]]:
    """seq -> [(MAC, where it was recorded)]: the head file and every release record.

    Where: {"where": the place in English, "place": how to say it in another language
    (head_file, release_file, release_row), and that text's params (path or number)}."""
    from catalog.store.release_records_files import FileReleaseRecords

    anchors: dict[int, list[tuple[str, dict]]] = {}
    head = read_head(home) if head_file else None
    if head is not None:
        path = str(head_path(home))
        anchors.setdefault(head.seq, []).append(
            (head.mac, {"where": f"the head file {path}", "place": "head_file", "path": path}))
    records = release_records(Path(home), settings.database_url())
    for number in records.numbers():
        recorded = records.read(number).get("audit")
        if recorded:
            where = records.where(number)
            place = {"place": "release_file", "path": where} \
                if isinstance(records, FileReleaseRecords) \
                else {"place": "release_row", "number": number}
            anchors.setdefault(int(recorded["seq"]), []).append(
                (recorded["mac"], {"where": where, **place}))
    return anchors


def _home_of(connection: sqlite3.Connection) -> Path:
    """The catalog home of the database a connection writes to (see database_path)."""
    if isinstance(connection, state_postgresql.StateConnection):
        return connection.home
    main = next(row for row in connection.execute("PRAGMA database_list") if row[1] == "main")
    return Path(main[2]).parent.parent


def _mac(key: bytes, prev_hash: str, row: dict) -> str:
    fields = [row[name] for name in ("seq", "at", "actor", "action", "dataset_id", "detail",
                                     "scheme", "key_id")]
    message = f"{prev_hash}\n{json.dumps(fields, ensure_ascii=False, separators=(',', ':'))}"
    return hmac.new(key, message.encode(), hashlib.sha256).hexdigest()


def _legacy_hash(prev_hash: str, entry: dict) -> str:
    """The unkeyed SHA-256 of entries written before keyed MACs (still verified as such)."""
    fields = {key: entry[key] for key in ("seq", "at", "actor", "action", "dataset_id", "detail")}
    return hashlib.sha256(f"{prev_hash}\n{_canonical(fields)}".encode()).hexdigest()


def _as_dict(row: sqlite3.Row) -> dict:
    return {"seq": row["seq"], "at": row["at"], "actor": row["actor"], "action": row["action"],
            "dataset_id": row["dataset_id"], "detail": json.loads(row["detail"]),
            "prev_hash": row["prev_hash"], "hash": row["hash"], "scheme": row["scheme"]}


def _canonical(data: object) -> str:
    return json.dumps(data, sort_keys=True, ensure_ascii=False, separators=(",", ":"),
                      default=str)


def sqlite_statements(script: str) -> list[str]:
    """Split a script into statements (triggers hold ';' inside BEGIN ... END)."""
    statements, current = [], []
    for line in script.strip().splitlines():
        current.append(line)
        text = "\n".join(current)
        if sqlite3.complete_statement(text):
            statements.append(text)
            current = []
    return statements
