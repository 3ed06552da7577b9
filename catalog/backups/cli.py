"""The `taza backup` and `taza restore` commands (thin: the work is in snapshot.py and
restore.py)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from catalog.store import CatalogStore

StoreFactory = Callable[[argparse.Namespace], CatalogStore]


def add_commands(commands, store_of: StoreFactory) -> None:
    """Add `backup` and `restore` to `taza`'s subparsers."""
    backup = commands.add_parser(
        "backup", help="snapshot the catalog home into a new folder (safe while it serves)",
        description="Copy versions, releases, current.json, the STAC index, the stewards' "
                    "database and drafts, and the jobs into DEST, consistently, while the "
                    "server runs; on the PostgreSQL profile the database too, and with "
                    "TAZA_ASSETS_URL the bucket's objects it refers to. See "
                    "docs/operations.md.")
    backup.add_argument("dest", type=Path, help="a new (or empty) folder, ideally on another disk")
    backup.add_argument("--copy", action="store_true",
                        help="copy version files even where they could be hard-linked")
    backup.add_argument("--lock-timeout", type=float, default=600, metavar="SECONDS",
                        help="give up when the catalog stays busy this long (default 600)")
    backup.add_argument("--previous", type=Path, metavar="OLD_BACKUP",
                        help="an earlier backup: the bucket's objects it holds already are "
                             "hard-linked from it instead of downloaded again")
    backup.set_defaults(handler=lambda args: _backup(args, store_of(args)),
                        existing_home=True)

    restore = commands.add_parser(
        "restore", help="rebuild a catalog home (--home or $TAZA_HOME) from a backup",
        description="Check every file of the backup against its recorded SHA-256, then "
                    "rebuild the home (and the database and the bucket's objects it holds) "
                    "from it, all or nothing. Stop the server first. A restore that was "
                    "killed while it switched the home is finished or undone first.")
    restore.add_argument("source", type=Path, nargs="?",
                         help="a folder written by `taza backup`")
    restore.add_argument("--force", action="store_true",
                         help="replace the contents of a home that is not empty")
    restore.add_argument("--check", action="store_true",
                         help="only check the backup's checksums; change nothing")
    restore.add_argument("--recover", action="store_true",
                         help="only finish or undo a restore of the home that was killed "
                              "while it switched the home (what its journal says)")
    restore.set_defaults(handler=lambda args: _restore(args, store_of(args)))

    migrate = commands.add_parser(
        "migrate", help="copy an embedded catalog's state into PostgreSQL (TAZA_DATABASE_URL)",
        description="Copy the stewards' accounts, sessions, sign-in failures, drafts and the "
                    "audit chain into the database, and load every vector version into "
                    "PostGIS; then serve the same home with TAZA_DATABASE_URL set. Run again "
                    "after the home changed, it copies what changed since; it refuses a "
                    "database that holds another catalog or changed on its own. See "
                    "docs/deployment.md.")
    migrate.add_argument("--to", required=True, metavar="postgresql://...",
                         help="the PostgreSQL profile's database (PostGIS installed)")
    migrate.add_argument("--assets", metavar="s3://bucket/prefix",
                         help="also copy every version's files to this bucket (endpoint and "
                              "keys from AWS_*); then serve with TAZA_ASSETS_URL set to it")
    migrate.add_argument("--verify", action="store_true",
                         help="only compare the two; exit 1 naming every difference")
    migrate.set_defaults(handler=lambda args: _migrate(args, store_of(args)),
                         existing_home=True)


def _backup(args, store: CatalogStore) -> int:
    from catalog.backups import BackupError
    from catalog.backups.restore import content_summary
    from catalog.backups.snapshot import take_backup

    try:
        manifest = take_backup(store.home, args.dest, link=not args.copy,
                               lock_timeout=args.lock_timeout, log=_note,
                               previous=args.previous)
    except BackupError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(f"backed up {store.home} into {args.dest}: {content_summary(manifest)}")
    print(f"publishing was held for {manifest['locked_seconds']:.2f} s")
    _mention_skipped(manifest)
    return 0


def _restore(args, store: CatalogStore) -> int:
    from catalog.backups import BackupError
    from catalog.backups.restore import (
        CommitUnknown,
        RestoreFailed,
        content_summary,
        read_manifest,
        restore,
        verify,
    )
    from catalog.backups.texts import failure_text, reason_word, recovered_text, text

    if args.recover:
        return _recover(store)
    if args.source is None:
        print("error: name the backup to restore (a folder written by `taza backup`), or "
              "give --recover", file=sys.stderr)
        return 2
    try:
        if args.check:
            manifest = read_manifest(args.source)
            problems = verify(args.source, manifest)
            for problem in problems:
                print(f"  {problem}", file=sys.stderr)
            if problems:
                print(f"error: {len(problems)} file(s) do not match the backup's checksums",
                      file=sys.stderr)
                return 1
            print(f"ok: {content_summary(manifest)}; every file matches its SHA-256")
            return 0
        manifest = restore(args.source, store.home, force=args.force,
                           database_url=store.database_url,
                           log=lambda done: _note(recovered_text(done)))
    except RestoreFailed as err:
        print(f"error: {failure_text(err.step)}\n  {reason_word()}: {err.reason}",
              file=sys.stderr)
        return 1
    except CommitUnknown as err:
        print(f"error: {text('restore_commit_unknown')}\n  {reason_word()}: {err.reason}",
              file=sys.stderr)
        return 1
    except BackupError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(f"restored {store.home} from {args.source}: {content_summary(manifest)}")
    _mention_skipped(manifest)
    return 0


def _recover(store: CatalogStore) -> int:
    from catalog.backups import BackupError
    from catalog.backups.recovery import recover
    from catalog.backups.texts import recovered_text, text

    try:
        done = recover(store.home, store.database_url) if store.home.is_dir() else []
    except BackupError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    for each in done:
        print(recovered_text(each))
    if not done:
        print(text("restore_nothing_to_recover"))
    return 0


def _mention_skipped(manifest: dict) -> None:
    for path, reason in manifest.get("skipped", {}).items():
        print(f"not in the backup: {path} ({reason})", file=sys.stderr)


def _note(message: str) -> None:
    print(message, file=sys.stderr)


def _migrate(args: argparse.Namespace, store: CatalogStore) -> int:
    from catalog.backups import migrate

    if not args.to.startswith(("postgresql://", "postgres://")):
        print("error: --to: expected a postgresql:// URL", file=sys.stderr)
        return 2
    try:
        if args.verify:
            differences = migrate.verify(store, args.to, args.assets)
            for difference in differences:
                print(f"differs: {difference}", file=sys.stderr)
            print("the same" if not differences else f"{len(differences)} difference(s)")
            return 1 if differences else 0
        outcome = migrate.migrate(store, args.to, args.assets)
    except migrate.MigrationRefused as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    copied = ", ".join(f"{table} {count}" for table, count in outcome.copied_rows.items())
    removed = ", ".join(f"{table} {count}" for table, count in outcome.removed_rows.items())
    print(f"copied rows: {copied or 'none (the target already held them)'}; "
          f"{f'removed rows (gone from the home): {removed}; ' if removed else ''}"
          f"release records copied: {outcome.copied_releases}; "
          f"PostGIS layers loaded: {len(outcome.loaded_layers)}; "
          f"versions copied to the bucket: {outcome.versions_to_bucket}; "
          f"drafts copied to the bucket: {outcome.drafts_to_bucket}; "
          f"version records copied: {outcome.copied_versions}; "
          f"static STAC trees copied: {outcome.copied_stac_trees}; "
          f"harvest sources copied: {outcome.harvest_sources} "
          f"(states: {outcome.harvest_states})")
    return 0
