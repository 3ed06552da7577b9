"""The `taza` command: validate, publish, list and serve the catalog.

It speaks the operator's language (catalog/core/operator_texts.py): its words are in
cli_texts.yml beside it, and its subcommands' beside theirs.
"""

from __future__ import annotations

import argparse
import gettext
import logging
import os
import shutil
import signal
import sys
import threading
from pathlib import Path

from catalog import settings
from catalog.backups import cli as backup_cli
from catalog.cluster import cli as cluster_cli
from catalog.core.languages import FALLBACK_LANGUAGE
from catalog.core.operator_texts import (
    OperatorTexts,
    OperatorWarnings,
    error_line,
    number,
    operator_language,
    warning_line,
)
from catalog.core.parse import whole_number
from catalog.harvest import cli as harvest_cli
from catalog.postgis.database import DatabaseError
from catalog.problems import Problem, PublishError, ValidationFailed
from catalog.stewards import cli as stewards_cli
from catalog.store import CatalogStore
from catalog.store.harvest_sources import HarvestSourcesUnavailable
from catalog.store.release_records import RecordsUnavailable

DEFAULT_DATASETS_DIR = settings.PROJECT_ROOT / "datasets"
# A command on the PostgreSQL profile whose database does not answer: an error line, exit 1.
DATABASE_UNREACHABLE = (DatabaseError, RecordsUnavailable, HarvestSourcesUnavailable)
MAX_WORKERS = 256  # gunicorn's processes of `serve`, threads of `worker`
say = OperatorTexts(Path(__file__).with_name("cli_texts.yml"))
# argparse's own words (usage:, the headings, its errors) in ky and ru, for gettext
# (compiled by scripts/compile-messages).
LOCALE_DIR = Path(__file__).with_name("locale")
TEXT_DOMAIN = "taza"


class HomeMissing(Exception):
    """A command that reads or changes a catalog was pointed at a home that does not exist."""


def main(argv: list[str] | None = None) -> int:
    # argparse says its words through gettext's current domain: make it ours. gettext picks
    # the language from the same locale variables as the operator's texts.
    gettext.bindtextdomain(TEXT_DOMAIN, LOCALE_DIR)
    gettext.textdomain(TEXT_DOMAIN)
    try:
        try:
            return _run(argv)
        finally:  # also after --help's exit: a reader gone away is caught here, not at exit
            sys.stdout.flush()
    except BrokenPipeError:
        return _reader_gone()


def _run(argv: list[str] | None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.handler not in (_serve, _worker):  # services keep their log, tracebacks and all
        OperatorWarnings.install()
    try:
        return args.handler(args)
    except (HomeMissing, settings.SettingError) as err:
        print(error_line(say_error(err)), file=sys.stderr)
        return 2
    except DATABASE_UNREACHABLE as err:  # the PostgreSQL profile's database is down
        print(error_line(say_error(err)), file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(say("interrupted"), file=sys.stderr)
        return 130


def _reader_gone() -> int:
    """The reader of our output closed it (`taza list | head -1`): stop quietly, as a
    command killed by SIGPIPE does, and answer its status (128 + 13). Python ignores
    SIGPIPE, so the write raised instead; the output still buffered is dropped by pointing
    stdout at /dev/null, else Python's flush at exit would fail again and say so."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    return 128 + signal.SIGPIPE


def say_error(err: BaseException) -> str:
    """An error in the operator's language where it carries a text code: a failed publish
    (catalog/sources/finding_texts.yml), a setting refused (catalog/settings_texts.yml), a
    refusal about accounts or the audit log (the stewards' commands' texts), about a backup,
    restore or migration (catalog/backups/texts.yml), or of the stewards' service (the
    portal's `problem.<messageCode>`, which its pages show). Others, mostly technical (a
    database, S3, a process), keep their English message, as every tool's error does."""
    from catalog.backups import BackupError
    from catalog.backups.migrate import MigrationRefused
    from catalog.backups.texts import say_backup_error
    from catalog.portal.i18n import strings, translator
    from catalog.sources.findings import finding_text
    from catalog.stewards.accounts import AccountError
    from catalog.stewards.errors import ServiceError
    from catalog.store.audit import AuditError

    language = operator_language()
    if language == FALLBACK_LANGUAGE:  # the error's own message, which scripts may read
        return str(err)
    if isinstance(err, PublishError) and err.code:
        return finding_text({"code": err.code, "params": err.params, "message": str(err)},
                            language)
    if isinstance(err, settings.SettingError):
        return settings.say.from_code(err, "setting.") or str(err)
    if isinstance(err, AccountError):  # `taza harvest add` refuses a harvester's account
        return stewards_cli.say_account_error(err)
    if isinstance(err, AuditError):
        return stewards_cli.say_audit_error(err)
    if isinstance(err, BackupError | MigrationRefused) and err.code:  # `taza serve` too
        return say_backup_error(err, str)
    if isinstance(err, DATABASE_UNREACHABLE):
        return say("database.unreachable", reason=str(err))
    if isinstance(err, ServiceError) and f"problem.{err.message_code}" in strings():
        return translator(language)(f"problem.{err.message_code}", **err.params)
    return str(err)


def say_problem(problem: Problem) -> str:
    """A validation problem with its place, its message in the operator's language."""
    from catalog.sources.findings import finding_text

    # In English the problem's own message, which can say more than its code's text.
    language = operator_language()
    message = finding_text(problem.as_dict(), language) \
        if problem.code and language != FALLBACK_LANGUAGE else problem.message
    return problem.said(message, line_word=say("line"))


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="taza", description=say("description"))
    parser.add_argument("--home", help=say("help.home"))
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    validate = commands.add_parser("validate", help=say("help.validate"))
    validate.add_argument("manifests", nargs="+", type=Path)
    validate.set_defaults(handler=_validate)

    publish = commands.add_parser("publish", help=say("help.publish"))
    publish.add_argument("manifests", nargs="*", type=Path)
    publish.add_argument("--all", action="store_true",
                         help=say("help.publish.all", folder=DEFAULT_DATASETS_DIR))
    publish.add_argument("--datasets-dir", type=Path, default=DEFAULT_DATASETS_DIR,
                         help=say("help.publish.datasets_dir"))
    publish.set_defaults(handler=_publish)

    listing = commands.add_parser("list", help=say("help.list"))
    listing.set_defaults(handler=_list, existing_home=True)

    serve = commands.add_parser("serve", help=say("help.serve"))
    serve.add_argument("--host", default="127.0.0.1", help=say("help.serve.host"))
    serve.add_argument("--port", type=_whole_number(1, 65_535), default=5000,
                       help=say("help.serve.port"))
    # Default: TAZA_WORKERS, read in _serve (a bad value is a refused setting, not a crash
    # of every command while the parser is built).
    serve.add_argument("--workers", type=_whole_number(1, MAX_WORKERS),
                       help=say("help.serve.workers"))
    serve.add_argument("--public-url", help=say("help.serve.public_url"))
    serve.set_defaults(handler=_serve)
    worker = commands.add_parser("worker", help=say("help.worker"))
    worker.add_argument("--threads", type=_whole_number(1, MAX_WORKERS), default=1,
                        help=say("help.worker.threads"))
    worker.set_defaults(handler=_worker)
    purge = commands.add_parser("purge", help=say("help.purge"))
    purge.add_argument("dataset")
    purge.add_argument("version", type=int)
    purge.add_argument("--reason", required=True, help=say("help.purge.reason"))
    purge.set_defaults(handler=_purge, existing_home=True)
    # users, versions, rollback, withdraw, audit (catalog/stewards/cli.py)
    stewards_cli.add_commands(commands, _store, say_error)
    # backup, restore, migrate (catalog/backups/cli.py)
    backup_cli.add_commands(commands, _store, say_error)
    cluster_cli.add_commands(commands, say_error)  # cluster up, down, status (catalog/cluster)
    # harvest add|list|remove|run (catalog/harvest/cli.py)
    harvest_cli.add_commands(commands, _store, say_error)
    return parser


def _store(args) -> CatalogStore:
    """The catalog of --home (or TAZA_HOME). Commands marked `existing_home` refuse a home
    folder that does not exist on the embedded profile, where that folder is the whole
    catalog: a mistyped path would otherwise be created empty, and `taza audit` would call
    its empty chain sound."""
    home = Path(args.home or settings.home())
    if getattr(args, "existing_home", False) and not home.is_dir() \
            and settings.database_url() is None:
        raise HomeMissing(say("home_missing", path=str(home.resolve())))
    return CatalogStore(home)


def _whole_number(lowest: int, highest: int):
    """An argparse type: a whole number from `lowest` to `highest`, else argparse's own
    refusal (usage, exit 2) saying the range in the operator's language."""
    def number_in_range(text: str) -> int:
        value = whole_number(text, lowest, highest)
        if value is None:
            raise argparse.ArgumentTypeError(say("argument.whole_number", lowest=lowest,
                                                 highest=highest, value=text))
        return value
    return number_in_range


def _validate(args) -> int:
    from catalog.publish import validate

    failed = 0
    for path in args.manifests:
        try:
            manifest, _ = validate(path)
        except ValidationFailed as err:
            failed += 1
            print(say("validate.invalid", path=path, count=len(err.problems)), file=sys.stderr)
            _print_problems(err.problems)
        else:
            print(say("validate.ok", path=path, dataset=manifest.id, kind=manifest.kind,
                      theme=manifest.theme))
    return 1 if failed else 0


def _publish(args) -> int:
    from catalog.publish import publish

    manifests = list(args.manifests)
    if args.all:
        manifests += sorted(args.datasets_dir.glob("*.yaml"))
    if not manifests:
        print(error_line(say("publish.none")), file=sys.stderr)
        return 2
    store = _store(args)
    failed = 0
    for path in manifests:
        try:
            result = publish(path, store, context={"via": "taza publish"})
        except ValidationFailed as err:
            failed += 1
            print(say("publish.rejected", path=path, count=len(err.problems)),
                  file=sys.stderr)
            _print_problems(err.problems)
        except PublishError as err:
            failed += 1
            print(say("publish.failed", path=path, reason=say_error(err)), file=sys.stderr)
        else:
            print(say("publish.unchanged" if result.unchanged else "publish.published",
                      dataset=result.dataset_id, version=result.version,
                      release=result.release))
    return 1 if failed else 0


def _print_problems(problems: list[Problem]) -> None:
    for problem in problems:
        print(f"  {say_problem(problem)}", file=sys.stderr)


def _purge(args) -> int:
    from catalog.publish import purge
    from catalog.stewards.releases import forget_published_drafts

    store = _store(args)
    try:
        removed = purge(store, args.dataset, args.version, args.reason,
                        forget=[forget_published_drafts(store.home)])
    except PublishError as err:
        print(error_line(say_error(err)), file=sys.stderr)
        return 1
    rewritten = ", ".join(map(str, removed["releases_rewritten"]))
    print(say("purge.done", dataset=args.dataset, version=args.version,
              files=removed["files"], bytes=number(removed["bytes"]),
              releases=rewritten or say("purge.no_releases")))
    return 0


def _worker(args) -> int:
    """Run jobs until SIGTERM or SIGINT, then finish the jobs in hand and stop (a worker
    killed outright leaves its job to another once the lease runs out)."""
    from catalog.harvest import schedule
    from catalog.jobs import open_jobs
    from catalog.stewards import resume
    from catalog.stewards.releases import job_handlers

    store = _store(args)
    _worker_log()
    try:
        jobs = open_jobs(store.home)
        check_every = schedule.check_seconds()
        resume.parts_max_age()
    except settings.SettingError as err:
        print(error_line(say_error(err)), file=sys.stderr)
        return 2
    stop = threading.Event()
    for signal_number in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signal_number, lambda *_: stop.set())
    # Publishes, and harvests: those scheduled with `taza harvest add --every` are queued
    # by this worker's scheduler thread (catalog/harvest/schedule.py).
    handlers = {**job_handlers(store.home, store), **schedule.harvest_handlers(store.home)}
    schedule.start_scheduler(store.home, jobs, stop, check_every)
    resume.start_sweeper(store.home, stop)  # unfinished uploads past their maximum age
    threads = [threading.Thread(target=jobs.work, args=(handlers, stop), name=f"worker-{n}")
               for n in range(args.threads)]
    for thread in threads:
        thread.start()
    print(say("worker.started", threads=args.threads, home=store.home), flush=True)
    # A job thread that ended on its own died of an error (logged above): stop, and exit 1 so
    # that the supervisor starts a whole worker again, rather than run on with none.
    died = False
    while not stop.wait(1):
        if not all(thread.is_alive() for thread in threads):
            print(error_line(say("worker.thread_died")), file=sys.stderr)
            died = True
            stop.set()
    for thread in threads:
        thread.join()
    return 1 if died else 0


def _worker_log() -> None:
    """The worker's log on stderr as Python's last-resort handler writes it (warnings and
    errors, the message alone), except that a database that is down is said in one line a
    retry, not a traceback (catalog/postgis/database.py). Once per process."""
    from catalog.postgis.database import DatabaseDownInOneLine

    root = logging.getLogger()
    if any(handler.get_name() == "taza-worker" for handler in root.handlers):
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.set_name("taza-worker")
    handler.setLevel(logging.WARNING)
    handler.addFilter(DatabaseDownInOneLine())
    root.addHandler(handler)


def _list(args) -> int:
    store = _store(args)
    release = store.current()
    if release is None:
        print(say("list.nothing"))
        return 0
    print(say("list.release", release=release.number))
    for dataset_id, version in sorted(release.datasets.items()):
        print(say("list.dataset", dataset=dataset_id, version=version,
                  versions=", ".join(map(str, store.released_versions(dataset_id)))))
    return 0


def _interrupted_restore(store: CatalogStore) -> str | None:
    """Why the home must not be served: a `taza restore` killed while it switched the home
    (catalog/backups/recovery.py), in the operator's language; None when there is none."""
    from catalog.backups import BackupError
    from catalog.backups.recovery import interrupted
    from catalog.backups.texts import text

    try:
        found = interrupted(store.home) if store.home.is_dir() else []
    except BackupError as err:
        return say_error(err)
    return text("restore_interrupted_serve", name=found[0].token) if found else None


def _serve(args) -> int:
    from catalog.jobs import QueueSettings
    from catalog.store.release_records import RecordsUnavailable
    from catalog.store.tile_cache import max_bytes_from_environment

    store = _store(args)
    try:
        workers = args.workers or settings.count_setting("TAZA_WORKERS", 2, 1, MAX_WORKERS)
        max_bytes_from_environment()  # refuse a bad setting here, not in every worker
        settings.trusted_proxies()
        settings.clip_max_bytes()
        settings.column_loads_in_background()
        QueueSettings.from_environment()
    except settings.SettingError as err:  # CacheSizeError is one
        print(error_line(say_error(err)), file=sys.stderr)
        return 2
    if interrupted_restore := _interrupted_restore(store):
        print(error_line(interrupted_restore), file=sys.stderr)
        return 1
    try:
        if store.current() is None:
            print(warning_line(say("serve.nothing")), file=sys.stderr)
    except RecordsUnavailable as err:  # the workers serve once the database answers
        print(warning_line(str(err)), file=sys.stderr)
    # Per-worker files of this node's earlier runs (other nodes sharing the home keep theirs).
    shutil.rmtree(settings.node_run_dir(store.home), ignore_errors=True)
    # The unbounded file-per-tile cache of earlier versions (now cache/tiles.sqlite, capped).
    shutil.rmtree(store.home / "cache" / "tiles", ignore_errors=True)
    env = dict(os.environ, TAZA_HOME=str(store.home),
               TAZA_PUBLIC_URL=args.public_url or f"http://{args.host}:{args.port}")
    # glibc gives each thread its own malloc arena and keeps what the processes freed:
    # two arenas cut a worker's resident memory by about a quarter (bench/results/processes-*).
    env.setdefault("MALLOC_ARENA_MAX", "2")
    command = [sys.executable, "-m", "gunicorn",
               "--config", str(settings.CONFIG_DIR / "gunicorn.conf.py"),
               "--bind", f"{args.host}:{args.port}", "--workers", str(workers),
               "catalog.app:create_app()"]
    os.execve(sys.executable, command, env)
    return 0  # not reached


if __name__ == "__main__":
    sys.exit(main())
