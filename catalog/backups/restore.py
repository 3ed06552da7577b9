"""`taza restore SRC`: rebuild a catalog from a backup, after checking every checksum; all or
nothing.

Nothing is touched until the whole backup (files, database dump, the bucket's objects) has
matched the sizes and SHA-256 recorded in its backup.json. Then, in steps (STEPS):

1. bucket: the backup's objects are put back under their keys (catalog/backups/bucket.py):
   only added, never replaced, so the catalog serving meanwhile is not affected;
2. home: the files are copied into a hidden folder inside the target, checked again;
3. database (a backup of the PostgreSQL profile): pg_restore writes the dump's SQL script and
   psql runs it inside one transaction that is left open (HeldLoad): nothing is visible yet;
4. switch: the target's previous contents are moved aside and the staged ones moved in
   (renames, Swap), then the transaction commits; only then is the previous home removed.

A failure at any step rolls the transaction back, renames the previous home back and raises
RestoreFailed naming the step: the previous catalog serves as before. A kill during the switch
leaves a journal that the next `taza restore` (or `taza restore --recover`) reads to finish or
undo it (catalog/backups/recovery.py); `taza serve` refuses the home until then. A target
that is not empty, or a database that already holds a catalog (schema `taza_state`), is
refused without `--force`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import queue
import shutil
import signal
import subprocess
import threading
import uuid
from pathlib import Path

import psycopg

from catalog import settings
from catalog.backups import (
    DATA_FOLDER,
    DATABASE_DUMP,
    FORMAT,
    MANIFEST,
    BackupError,
    check_file,
    file_problem,
    pg_program,
    safe_relative,
)
from catalog.backups.bucket import object_path, put_objects, verify_objects
from catalog.backups.recovery import (
    APPLICATION_PREFIX,
    ASIDE_PREFIX,
    SCRIPT_PREFIX,
    STAGING_PREFIX,
    commit_comment,
    database_committed,
    mark_switched,
    recover,
    write_journal,
)
from catalog.backups.texts import text as say
from catalog.core.operator_texts import number
from catalog.store.files import fsync_path

MAX_LISTED_PROBLEMS = 20


def read_manifest(source: Path) -> dict:
    """backup.json of a backup folder, checked for shape and safe paths."""
    path = Path(source) / MANIFEST
    if not path.is_file():
        raise BackupError(f"{source} holds no {MANIFEST}: not a backup, or one that was "
                          "interrupted (never restore it)", code="no_manifest",
                          params={"source": source, "manifest": MANIFEST})
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise BackupError(f"{path} is not readable JSON: {err}", code="manifest_json",
                          params={"path": path, "reason": str(err)}) from err
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BackupError(f"{path}: expected a backup in format {FORMAT!r}",
                          code="manifest_format", params={"path": path, "format": repr(FORMAT)})
    files = manifest.get("files")
    if not isinstance(files, list) or not all(_well_formed(entry) for entry in files):
        raise BackupError(f"{path}: its file list is damaged", code="manifest_files",
                          params={"path": path})
    for entry in files:
        safe_relative(entry["path"])
    dump = manifest.get("database_dump")
    if dump is not None and (not _well_formed(dump) or dump["path"] != DATABASE_DUMP):
        raise BackupError(f"{path}: its database dump entry is damaged", code="manifest_dump",
                          params={"path": path})
    bucket = manifest.get("bucket")
    if bucket is not None:
        objects = bucket.get("objects") if isinstance(bucket, dict) else None
        if not isinstance(objects, list) or not all(
                isinstance(entry, dict) and isinstance(entry.get("bucket"), str)
                and isinstance(entry.get("key"), str)
                and isinstance(entry.get("media_type"), str)
                and isinstance(entry.get("size"), int) and isinstance(entry.get("sha256"), str)
                for entry in objects):
            raise BackupError(f"{path}: its list of the bucket's objects is damaged",
                              code="manifest_objects", params={"path": path})
        for entry in objects:
            object_path(entry)
    return manifest


def verify(source: Path, manifest: dict) -> list[str]:
    """Every problem found comparing the backup's files with its manifest (empty: intact):
    '<path>: <problem>', each a CodedText (texts.yml `problem.*`)."""
    problems = []
    for entry in manifest["files"]:
        path = Path(source) / DATA_FOLDER / safe_relative(entry["path"])
        problem = check_file(path, entry)
        if problem:
            problems.append(file_problem(entry["path"], problem))
    dump = manifest.get("database_dump")
    if dump is not None:
        problem = check_file(Path(source) / DATABASE_DUMP, dump)
        if problem:
            problems.append(file_problem(DATABASE_DUMP, problem))
    return problems + verify_objects(Path(source), manifest)


def restore(source: Path, home: Path, force: bool = False,
            database_url: str | None = None, log=lambda line: None) -> dict:
    """Rebuild `home` (and, for a backup of the PostgreSQL profile, the database at
    `database_url`; for one with a bucket, its objects) from the backup in `source`; returns
    the backup's manifest. All or nothing: on any failure the previous home and database are
    as they were (RestoreFailed says at which step). An interrupted restore of `home` is
    finished or undone first; `log` receives each recovery.Recovered of that."""
    source, home = Path(source).resolve(), Path(home).resolve()
    if home.is_dir():
        for line in recover(home, database_url):
            log(line)
    manifest = read_manifest(source)
    problems = verify(source, manifest)
    if problems:
        # `listed`: said one by one, joined by "; " (texts.py say_text)
        listed, more = problems[:MAX_LISTED_PROBLEMS], len(problems) - MAX_LISTED_PROBLEMS
        if more > 0:
            raise BackupError(f"the backup does not match its checksums, nothing was restored: "
                              f"{'; '.join(listed)} (and {more} more)",
                              code="restore_checksums_more",
                              params={"listed": listed, "more": more})
        raise BackupError(f"the backup does not match its checksums, nothing was restored: "
                          f"{'; '.join(listed)}", code="restore_checksums",
                          params={"listed": listed})
    dump = manifest.get("database_dump")
    replace_database = _check_database(database_url, force) if dump is not None else False
    if (manifest.get("bucket") or {}).get("objects") and not settings.assets_url():
        raise BackupError("this backup holds the bucket's objects: set TAZA_ASSETS_URL (and "
                          "the AWS_* settings) to the object store to restore them into",
                          code="needs_assets_url")
    home.mkdir(parents=True, exist_ok=True)
    previous = sorted(home.iterdir())
    if previous and not force:
        raise BackupError(f"{home} is not empty; restore into an empty folder, or replace "
                          "its contents with --force (stop the server first)",
                          code="home_not_empty", params={"home": home})
    token = uuid.uuid4().hex
    staging = home / f"{STAGING_PREFIX}{token}"
    script = home / f"{SCRIPT_PREFIX}{token}"
    load: HeldLoad | None = None
    swap: Swap | None = None
    step = STEPS[0]
    try:
        # 1. The objects: only added (new keys, or the same bytes already there).
        put_objects(source, manifest)
        _fault(step)
        # 2. The home's files, into a hidden folder of the home.
        step = STEPS[1]
        for entry in manifest["files"]:
            relative = safe_relative(entry["path"])
            _copy_checked(source / DATA_FOLDER / relative, staging / relative, entry)
        staging.mkdir(exist_ok=True)
        _fault(step)
        # 3. The database, loaded in one transaction left open (nothing visible yet).
        step = STEPS[2]
        if dump is not None:
            load = HeldLoad(source / DATABASE_DUMP, database_url, replace_database, script,
                            token)
        _fault(step)
        # 4. The switch: the home's contents swapped by renames, then the commit.
        step = STEPS[3]
        swap = Swap(home, staging, previous, token, database=load is not None)
        _fault(step)
        if load is not None:
            _commit(load, database_url, token)
    except CommitUnknown:
        load.rollback()  # psql has ended: this only closes it; the journal stays for recover
        raise
    except BaseException as err:
        if load is not None:
            load.rollback()
        if swap is not None:
            swap.undo()
        shutil.rmtree(staging, ignore_errors=True)
        script.unlink(missing_ok=True)
        if isinstance(err, Exception):
            raise RestoreFailed(step, str(err)) from err
        raise
    # Committed: from here on nothing is undone (a kill is finished by `recover`).
    _kill_point("commit")
    mark_switched(swap.aside)
    _kill_point("switched")
    script.unlink(missing_ok=True)
    swap.finish()
    fsync_path(home)
    return manifest


# The steps of a restore, in order (RestoreFailed names one; TAZA_RESTORE_FAULT injects a
# failure at the end of one, for tests: an environment variable of the `taza restore` process
# only, read nowhere else and reachable from no HTTP request).
STEPS = ("bucket", "home", "database", "switch")
FAULT_VARIABLE = "TAZA_RESTORE_FAULT"
# `kill:<point>` in the same variable SIGKILLs the process there instead, as a power cut would:
# `switch` after the first staged entry moved in, `commit` after the database's commit and
# before the marker, `switched` after the marker, before the previous contents are removed.
KILL_POINTS = ("switch", "commit", "switched")
# `lose:<point>` kills psql and loses its answer: `before-commit` before COMMIT is sent,
# `commit` after the COMMIT landed; `commit-and-database` as `commit`, and then the database
# cannot be asked either.
LOSE_POINTS = ("before-commit", "commit", "commit-and-database")


class RestoreFailed(BackupError):
    """A restore that failed after it began changing things, and was undone: the previous
    catalog (home, database) is as it was. Objects put into the bucket stay (no record the
    serving catalog holds refers to them)."""

    def __init__(self, step: str, reason: str):
        self.step, self.reason = step, reason
        super().__init__(f"the restore failed at step {step!r}; everything it changed was "
                         f"undone and the previous catalog is serving as before: {reason}")


class CommitUnknown(BackupError):
    """psql's answer to the commit was lost and the database could not be asked whether the
    commit landed: the restore is left as a kill leaves it (journal, switched home; `taza
    serve` refuses it) for `taza restore --recover`, which asks the database again."""

    def __init__(self, token: str, reason: str):
        self.token, self.reason = token, reason
        super().__init__(f"the answer to the database's commit was lost, and whether it "
                         f"committed cannot be asked now; run `taza restore --recover` once "
                         f"the database answers: {reason}")


def _commit(load: HeldLoad, database_url: str, token: str) -> None:
    """Commit the load. When psql dies after sending COMMIT, its answer is lost but the
    commit may have landed: the database's own state (the schema comment) decides, so that a
    committed database is never paired with the previous home."""
    try:
        load.commit()
    except BackupError as lost:
        try:
            _fault("lose:commit-and-database")
            landed = database_committed(database_url, token)
        except BackupError as unknown:
            raise CommitUnknown(token, f"{lost}; {unknown}") from lost
        if not landed:
            raise


def _fault(step: str) -> None:
    if os.environ.get(FAULT_VARIABLE) == step:
        raise BackupError(f"a failure injected after step {step!r} ({FAULT_VARIABLE})")


def _kill_point(point: str) -> None:
    if os.environ.get(FAULT_VARIABLE) == f"kill:{point}":
        os.kill(os.getpid(), signal.SIGKILL)


class Swap:
    """The home's previous contents moved aside into `.replaced-<token>` and the staged ones
    moved in, by renames in the home's folder; undone by the reverse renames. The journal
    written first lets a later `recover` finish or undo a switch the process died in."""

    def __init__(self, home: Path, staging: Path, previous: list[Path], token: str,
                 database: bool):
        self.home, self.staging = home, staging
        self.aside = home / f"{ASIDE_PREFIX}{token}"
        self.moved_out: list[str] = []
        self.moved_in: list[str] = []
        self.aside.mkdir()
        try:
            write_journal(self.aside, previous, database)
            for old in previous:
                os.rename(old, self.aside / old.name)
                self.moved_out.append(old.name)
            for child in sorted(staging.iterdir()):
                os.rename(child, home / child.name)
                self.moved_in.append(child.name)
                _kill_point("switch")
            fsync_path(home)
        except BaseException:
            self.undo()
            raise

    def undo(self) -> None:
        for name in reversed(self.moved_in):
            os.rename(self.home / name, self.staging / name)
        for name in reversed(self.moved_out):
            os.rename(self.aside / name, self.home / name)
        self.moved_in, self.moved_out = [], []
        shutil.rmtree(self.aside, ignore_errors=True)
        fsync_path(self.home)

    def finish(self) -> None:
        """The restore is committed: what the home held before goes."""
        shutil.rmtree(self.aside, ignore_errors=True)
        with contextlib.suppress(OSError):
            self.staging.rmdir()


def _check_database(url: str | None, force: bool) -> bool:
    """Whether restoring into `url` replaces a catalog (allowed with `force` only)."""
    if not url:
        raise BackupError("this backup holds the PostgreSQL profile's database: set "
                          "TAZA_DATABASE_URL to the (empty) database to restore it into",
                          code="needs_database_url")
    try:
        with psycopg.connect(url, connect_timeout=10) as connection:
            holds = connection.execute(
                "SELECT to_regnamespace('taza_state') IS NOT NULL").fetchone()[0]
    except psycopg.Error as err:
        raise BackupError(f"cannot reach the database to restore into: {err}",
                          code="database_unreachable", params={"reason": str(err)}) from err
    if holds and not force:
        raise BackupError("the database TAZA_DATABASE_URL names already holds a catalog "
                          "(schema taza_state); restore into an empty database, or replace "
                          "it with --force (stop the servers first)", code="database_not_empty")
    return holds


# Replacing a catalog: everything but PostgreSQL's own schemas goes, in the load's transaction
# (pg_restore --clean drops only what the dump holds, and fails on what depends on it: a
# feature table published after the backup depends on PostGIS, the STAC index's schemas too).
# The dump then creates the extensions and schemas again; `public` is made as initdb makes it.
# Every table is locked first, in one order: the drops reach some objects by other paths (a
# feature table's GiST index through PostGIS's operator class in `public`, before its table),
# and a session holding a table that then opens its indexes (autovacuum's ANALYZE, a reader's
# planner) would wait on the restore while the restore waits on it: "deadlock detected".
CLEAR_DATABASE = """DO $clear$ DECLARE name text; tables text; BEGIN
  SELECT string_agg(format('%I.%I', n.nspname, c.relname), ', ' ORDER BY c.oid) INTO tables
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema')
      AND n.nspname NOT LIKE 'pg\\_%';
  IF tables IS NOT NULL THEN
    EXECUTE 'LOCK TABLE ' || tables || ' IN ACCESS EXCLUSIVE MODE';
  END IF;
  FOR name IN SELECT nspname FROM pg_namespace WHERE nspname NOT IN
      ('pg_catalog', 'information_schema') AND nspname NOT LIKE 'pg\\_%' LOOP
    EXECUTE format('DROP SCHEMA %I CASCADE', name);
  END LOOP;
END $clear$;
CREATE SCHEMA public;
GRANT USAGE ON SCHEMA public TO PUBLIC;
"""


class HeldLoad:
    """The dump loaded into the database in one transaction that stays open until `commit()`
    (or `rollback()`): pg_restore writes its SQL script, psql runs it between BEGIN and a
    marker line, and waits. Until the commit, serving nodes see the previous catalog (and
    wait on the tables the load replaces)."""

    MARKER = "taza-restore-loaded"

    def __init__(self, dump: Path, url: str, replace: bool, script: Path, token: str):
        command = [pg_program("pg_restore"), "--no-owner", f"--file={script}"]
        done = subprocess.run([*command, str(dump)], capture_output=True, text=True,
                              check=False)
        if done.returncode != 0:
            reason = done.stderr.strip()[-2000:]
            raise BackupError(f"pg_restore could not read the dump: {reason}",
                              code="pg_restore", params={"reason": reason})
        # The comment that marks the commit goes in as a psql variable, quoted by psql.
        self.process = subprocess.Popen(
            [pg_program("psql"), "--no-psqlrc", "--quiet", "--set=ON_ERROR_STOP=1",
             f"--set=restore_comment={commit_comment(token)}", f"--dbname={url}"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env=dict(os.environ, PGAPPNAME=APPLICATION_PREFIX + token))
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.errors: list[str] = []
        threading.Thread(target=self._read_output, daemon=True).start()
        threading.Thread(target=self._read_errors, daemon=True).start()
        path = str(script).replace("'", "''")
        self._send(f"BEGIN;\n{CLEAR_DATABASE if replace else ''}\\i '{path}'\n"
                   f"\\echo {self.MARKER}\n")
        self._wait()

    def commit(self) -> None:
        """Commit, marking the database as restored by this restore (recovery.py reads it)."""
        self._lose_answer_at("before-commit")
        self._send("COMMENT ON SCHEMA taza_state IS :'restore_comment';\n"
                   f"COMMIT;\n\\echo {self.MARKER}\n")
        self._wait(committing=True)
        self._lose_answer_at("commit")
        self._lose_answer_at("commit-and-database")
        self._close()

    def _lose_answer_at(self, point: str) -> None:
        """For tests (LOSE_POINTS): psql dies here, and its answer with it."""
        if os.environ.get(FAULT_VARIABLE) == f"lose:{point}":
            self.process.kill()
            self.process.wait()
            raise BackupError(f"psql ended early: killed at lose:{point} ({FAULT_VARIABLE})")

    def rollback(self) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(OSError, BackupError):
                self._send("ROLLBACK;\n")
        self._close()

    def _send(self, text: str) -> None:
        try:
            self.process.stdin.write(text)
            self.process.stdin.flush()
        except (BrokenPipeError, OSError) as err:
            reason = self._stderr()
            raise BackupError(f"psql ended early: {reason}", code="psql_ended",
                              params={"reason": reason}) from err

    def _wait(self, committing: bool = False) -> None:
        """Until psql echoes the marker (after loading the dump, or committing)."""
        while (line := self.lines.get()) is not None:
            if line.strip() == self.MARKER:
                return
        self.process.wait()
        reason = self._stderr()
        if committing:
            raise BackupError(f"committing the restored database failed (nothing was "
                              f"committed): {reason}", code="psql_commit",
                              params={"reason": reason})
        raise BackupError(f"loading the dump failed (nothing was committed): {reason}",
                          code="psql_load", params={"reason": reason})

    def _close(self) -> None:
        with contextlib.suppress(OSError):
            self.process.stdin.close()
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def _read_output(self) -> None:
        for line in self.process.stdout:
            self.lines.put(line)
        self.lines.put(None)

    def _read_errors(self) -> None:
        for line in self.process.stderr:
            self.errors.append(line.rstrip())

    def _stderr(self) -> str:
        return "; ".join(self.errors[-10:])[-2000:] or f"exit status {self.process.poll()}"


def _well_formed(entry: object) -> bool:
    return isinstance(entry, dict) and isinstance(entry.get("path"), str) and \
        isinstance(entry.get("size"), int) and isinstance(entry.get("sha256"), str)


def _copy_checked(source: Path, target: Path, entry: dict) -> None:
    """Copy one file, hashing it on the way (the backup may change after verify())."""
    target.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    with source.open("rb") as reader, target.open("wb") as writer:
        while chunk := reader.read(1 << 20):
            digest.update(chunk)
            writer.write(chunk)
        writer.flush()
        os.fsync(writer.fileno())
    if digest.hexdigest() != entry["sha256"]:
        raise BackupError(f"{entry['path']}: changed while it was being restored; "
                          "nothing was restored", code="file_changed",
                          params={"path": entry["path"]})
    shutil.copystat(source, target)


def content_summary(manifest: dict) -> str:
    """One line saying what a backup holds, in the operator's language (what `taza backup`
    and `taza restore` print; the manifest itself stays as it is)."""
    live = manifest.get("live") or {}
    parts = [say("summary.content", release=manifest.get("release"), live=len(live),
                 files=manifest.get("files_total"),
                 bytes=number(manifest.get("bytes_total", 0)))]
    if objects := _objects_summary(manifest):
        parts.append(objects)
    parts.append(say("summary.databases", databases=_databases_summary(manifest)))
    return ", ".join(parts)


def _databases_summary(manifest: dict) -> str:
    """The embedded profile's SQLite files, and the PostgreSQL profile's dump."""
    names = list(manifest.get("databases", []))
    if dump := manifest.get("database_dump"):
        names.append(say("summary.dump", path=dump["path"], bytes=number(dump["size"])))
    return ", ".join(names) or say("summary.no_databases")


def _objects_summary(manifest: dict) -> str:
    objects = (manifest.get("bucket") or {}).get("objects") or []
    if not objects:
        return ""
    return say("summary.objects", count=len(objects),
               bytes=number(sum(entry["size"] for entry in objects)))
