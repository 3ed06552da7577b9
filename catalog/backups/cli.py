"""The `taza backup`, `taza restore` and `taza migrate` commands (thin: the work is in
snapshot.py, restore.py and migrate.py). What they say is in the operator's language
(texts.yml)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from catalog.backups.texts import say_backup_error, say_reason, say_text
from catalog.backups.texts import text as say
from catalog.core.operator_texts import SayError, error_line
from catalog.store import CatalogStore

StoreFactory = Callable[[argparse.Namespace], CatalogStore]


def add_commands(commands, store_of: StoreFactory, say_error: SayError) -> None:
    """Add `backup`, `restore` and `migrate` to `taza`'s subparsers. `say_error` says an
    error the commands catch in the operator's language (catalog/cli.py)."""
    backup = commands.add_parser("backup", help=say("help.backup"),
                                 description=say("description.backup"))
    backup.add_argument("dest", type=Path, help=say("help.backup.dest"))
    backup.add_argument("--copy", action="store_true", help=say("help.backup.copy"))
    backup.add_argument("--lock-timeout", type=float, default=600, metavar="SECONDS",
                        help=say("help.backup.lock_timeout"))
    backup.add_argument("--previous", type=Path, metavar="OLD_BACKUP",
                        help=say("help.backup.previous"))
    backup.set_defaults(handler=lambda args: _backup(args, store_of(args), say_error),
                        existing_home=True)

    restore = commands.add_parser("restore", help=say("help.restore"),
                                  description=say("description.restore"))
    restore.add_argument("source", type=Path, nargs="?", help=say("help.restore.source"))
    restore.add_argument("--force", action="store_true", help=say("help.restore.force"))
    restore.add_argument("--check", action="store_true", help=say("help.restore.check"))
    restore.add_argument("--recover", action="store_true", help=say("help.restore.recover"))
    restore.set_defaults(handler=lambda args: _restore(args, store_of(args), say_error))

    migrate = commands.add_parser("migrate", help=say("help.migrate"),
                                  description=say("description.migrate"))
    migrate.add_argument("--to", required=True, metavar="postgresql://...",
                         help=say("help.migrate.to"))
    migrate.add_argument("--assets", metavar="s3://bucket/prefix",
                         help=say("help.migrate.assets"))
    migrate.add_argument("--verify", action="store_true", help=say("help.migrate.verify"))
    migrate.set_defaults(handler=lambda args: _migrate(args, store_of(args), say_error),
                         existing_home=True)


def _backup(args, store: CatalogStore, say_error: SayError) -> int:
    from catalog.backups import BackupError
    from catalog.backups.restore import content_summary
    from catalog.backups.snapshot import take_backup

    try:
        manifest = take_backup(store.home, args.dest, link=not args.copy,
                               lock_timeout=args.lock_timeout, log=_note,
                               previous=args.previous)
    except BackupError as err:
        print(error_line(say_backup_error(err, say_error)), file=sys.stderr)
        return 1
    print(say("done.backup", home=store.home, dest=args.dest,
              summary=content_summary(manifest)))
    print(say("done.backup.held", seconds=f"{manifest['locked_seconds']:.2f}"))
    _mention_skipped(manifest)
    return 0


def _restore(args, store: CatalogStore, say_error: SayError) -> int:
    from catalog.backups import BackupError
    from catalog.backups.restore import (
        CommitUnknown,
        RestoreFailed,
        content_summary,
        read_manifest,
        restore,
        verify,
    )
    from catalog.backups.texts import failure_text, reason_word, recovered_text

    if args.recover:
        return _recover(store, say_error)
    if args.source is None:
        print(error_line(say("error.no_source")), file=sys.stderr)
        return 2
    try:
        if args.check:
            manifest = read_manifest(args.source)
            problems = verify(args.source, manifest)
            for problem in problems:
                print(f"  {say_text(problem)}", file=sys.stderr)
            if problems:
                print(error_line(say("error.checksums", count=len(problems))),
                      file=sys.stderr)
                return 1
            print(say("done.check", summary=content_summary(manifest)))
            return 0
        manifest = restore(args.source, store.home, force=args.force,
                           database_url=store.database_url,
                           log=lambda done: _note(recovered_text(done)))
    except RestoreFailed as err:  # the technical reason stays English, as every tool's does
        print(f"{error_line(failure_text(err.step))}\n  {reason_word()}: {err.reason}",
              file=sys.stderr)
        return 1
    except CommitUnknown as err:
        print(f"{error_line(say('restore_commit_unknown'))}\n  {reason_word()}: {err.reason}",
              file=sys.stderr)
        return 1
    except BackupError as err:
        print(error_line(say_backup_error(err, say_error)), file=sys.stderr)
        return 1
    print(say("done.restore", home=store.home, source=args.source,
              summary=content_summary(manifest)))
    _mention_skipped(manifest)
    return 0


def _recover(store: CatalogStore, say_error: SayError) -> int:
    from catalog.backups import BackupError
    from catalog.backups.recovery import recover
    from catalog.backups.texts import recovered_text

    try:
        done = recover(store.home, store.database_url) if store.home.is_dir() else []
    except BackupError as err:
        print(error_line(say_backup_error(err, say_error)), file=sys.stderr)
        return 1
    for each in done:
        print(recovered_text(each))
    if not done:
        print(say("restore_nothing_to_recover"))
    return 0


def _mention_skipped(manifest: dict) -> None:
    for path, reason in manifest.get("skipped", {}).items():
        print(say("note.skipped", path=path, reason=say_reason(reason)), file=sys.stderr)


def _note(message: str) -> None:
    """A progress line (a CodedText of snapshot.py or bucket.py, or a text already said)."""
    print(say_text(message), file=sys.stderr)


def _migrate(args: argparse.Namespace, store: CatalogStore, say_error: SayError) -> int:
    from catalog.backups import migrate

    if not args.to.startswith(("postgresql://", "postgres://")):
        print(error_line(say("error.migrate.to")), file=sys.stderr)
        return 2
    try:
        if args.verify:
            differences = migrate.verify(store, args.to, args.assets)
            for difference in differences:
                print(say("note.migrate.differs", difference=say_text(difference)),
                      file=sys.stderr)
            print(say("done.migrate.differences", count=len(differences)) if differences
                  else say("done.migrate.same"))
            return 1 if differences else 0
        outcome = migrate.migrate(store, args.to, args.assets)
    except migrate.MigrationRefused as err:
        print(error_line(say_backup_error(err, say_error)), file=sys.stderr)
        return 1
    print(_migrated(outcome))
    return 0


def _migrated(outcome) -> str:
    """What a migration copied (a migrate.Outcome), one line; the tables' names stay."""
    copied = ", ".join(f"{table} {count}" for table, count in outcome.copied_rows.items())
    removed = ", ".join(f"{table} {count}" for table, count in outcome.removed_rows.items())
    parts = [say("done.migrate.rows", rows=copied or say("done.migrate.no_rows"))]
    if removed:
        parts.append(say("done.migrate.removed_rows", rows=removed))
    parts += [say("done.migrate.releases", count=outcome.copied_releases),
              say("done.migrate.layers", count=len(outcome.loaded_layers)),
              say("done.migrate.bucket_versions", count=outcome.versions_to_bucket),
              say("done.migrate.bucket_drafts", count=outcome.drafts_to_bucket),
              say("done.migrate.versions", count=outcome.copied_versions),
              say("done.migrate.stac_trees", count=outcome.copied_stac_trees),
              say("done.migrate.harvest", count=outcome.harvest_sources,
                  states=outcome.harvest_states)]
    return "; ".join(parts)
