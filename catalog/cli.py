"""The `taza` command: validate, publish, list and serve the catalog."""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import sys
import threading
from pathlib import Path

from catalog import settings
from catalog.backups import cli as backup_cli
from catalog.cluster import cli as cluster_cli
from catalog.harvest import cli as harvest_cli
from catalog.problems import PublishError, ValidationFailed
from catalog.stewards import cli as stewards_cli
from catalog.store import CatalogStore

DEFAULT_DATASETS_DIR = settings.PROJECT_ROOT / "datasets"


class HomeMissing(Exception):
    """A command that reads or changes a catalog was pointed at a home that does not exist."""


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        return args.handler(args)
    except (HomeMissing, settings.SettingError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="taza", description=__doc__)
    parser.add_argument("--home", help="catalog home folder (default: $TAZA_HOME or ./var)")
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    validate = commands.add_parser("validate", help="check manifests and their sources")
    validate.add_argument("manifests", nargs="+", type=Path)
    validate.set_defaults(handler=_validate)

    publish = commands.add_parser("publish", help="publish datasets as new versions")
    publish.add_argument("manifests", nargs="*", type=Path)
    publish.add_argument("--all", action="store_true",
                         help=f"publish every manifest in --datasets-dir ({DEFAULT_DATASETS_DIR})")
    publish.add_argument("--datasets-dir", type=Path, default=DEFAULT_DATASETS_DIR)
    publish.set_defaults(handler=_publish)

    listing = commands.add_parser("list", help="list published datasets and their versions")
    listing.set_defaults(handler=_list, existing_home=True)

    serve = commands.add_parser("serve", help="serve the catalog with gunicorn")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=5000)
    serve.add_argument("--workers", type=int, default=int(os.environ.get("TAZA_WORKERS", 2)))
    serve.add_argument("--public-url", help="URL clients use (default http://HOST:PORT)")
    serve.set_defaults(handler=_serve)
    worker = commands.add_parser("worker", help="run queued jobs (publishes, harvests) and "
                                 "queue scheduled harvests, until stopped")
    worker.add_argument("--threads", type=int, default=1, help="jobs run at once (default 1)")
    worker.set_defaults(handler=_worker)
    purge = commands.add_parser(
        "purge", help="remove a version that is not live everywhere (a legal takedown)")
    purge.add_argument("dataset")
    purge.add_argument("version", type=int)
    purge.add_argument("--reason", required=True, help="why (kept in the audit log)")
    purge.set_defaults(handler=_purge, existing_home=True)
    # users, versions, rollback, withdraw, audit (catalog/stewards/cli.py)
    stewards_cli.add_commands(commands, _store)
    backup_cli.add_commands(commands, _store)  # backup, restore (catalog/backups/cli.py)
    cluster_cli.add_commands(commands)  # cluster up, down, status (catalog/cluster/cli.py)
    harvest_cli.add_commands(commands, _store)  # harvest add|list|remove|run (catalog/harvest)
    return parser


def _store(args) -> CatalogStore:
    """The catalog of --home (or TAZA_HOME). Commands marked `existing_home` refuse a home
    folder that does not exist on the embedded profile, where that folder is the whole
    catalog: a mistyped path would otherwise be created empty, and `taza audit` would call
    its empty chain sound."""
    home = Path(args.home or settings.home())
    if getattr(args, "existing_home", False) and not home.is_dir() \
            and settings.database_url() is None:
        from catalog.backups.texts import text

        raise HomeMissing(text("home_missing", path=str(home.resolve())))
    return CatalogStore(home)


def _validate(args) -> int:
    from catalog.publish import validate

    failed = 0
    for path in args.manifests:
        try:
            manifest, _ = validate(path)
        except ValidationFailed as err:
            failed += 1
            print(f"INVALID {path}: {len(err.problems)} problem(s)", file=sys.stderr)
            for problem in err.problems:
                print(f"  {problem}", file=sys.stderr)
        else:
            print(f"ok      {path}: {manifest.id} ({manifest.kind}, theme {manifest.theme})")
    return 1 if failed else 0


def _publish(args) -> int:
    from catalog.publish import publish

    manifests = list(args.manifests)
    if args.all:
        manifests += sorted(args.datasets_dir.glob("*.yaml"))
    if not manifests:
        print("error: name manifests to publish, or use --all", file=sys.stderr)
        return 2
    store = _store(args)
    failed = 0
    for path in manifests:
        try:
            result = publish(path, store, context={"via": "taza publish"})
        except ValidationFailed as err:
            failed += 1
            print(f"REJECTED {path}: {len(err.problems)} problem(s); nothing was published",
                  file=sys.stderr)
            for problem in err.problems:
                print(f"  {problem}", file=sys.stderr)
        except PublishError as err:
            failed += 1
            print(f"FAILED   {path}: {err}; the previous version keeps serving", file=sys.stderr)
        else:
            state = "unchanged" if result.unchanged else "published"
            print(f"{state:9} {result.dataset_id} version {result.version} "
                  f"(release {result.release})")
    return 1 if failed else 0


def _purge(args) -> int:
    from catalog.publish import purge
    from catalog.stewards.releases import forget_published_drafts

    store = _store(args)
    try:
        removed = purge(store, args.dataset, args.version, args.reason,
                        forget=[forget_published_drafts(store.home)])
    except PublishError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(f"purged {args.dataset} version {args.version}: {removed['files']} files "
          f"({removed['bytes']:,} bytes); releases rewritten: "
          f"{', '.join(map(str, removed['releases_rewritten'])) or 'none'}")
    return 0


def _worker(args) -> int:
    """Run jobs until SIGTERM or SIGINT, then finish the jobs in hand and stop (a worker
    killed outright leaves its job to another once the lease runs out)."""
    from catalog.harvest import schedule
    from catalog.jobs import open_jobs
    from catalog.stewards import resume
    from catalog.stewards.releases import job_handlers

    if args.threads < 1:
        print("error: --threads takes a whole number of at least 1", file=sys.stderr)
        return 2
    store = _store(args)
    try:
        jobs = open_jobs(store.home)
        check_every = schedule.check_seconds()
        resume.parts_max_age()
    except settings.SettingError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    stop = threading.Event()
    for number in (signal.SIGTERM, signal.SIGINT):
        signal.signal(number, lambda *_: stop.set())
    # Publishes, and harvests: those scheduled with `taza harvest add --every` are queued
    # by this worker's scheduler thread (catalog/harvest/schedule.py).
    handlers = {**job_handlers(store.home, store), **schedule.harvest_handlers(store.home)}
    schedule.start_scheduler(store.home, jobs, stop, check_every)
    resume.start_sweeper(store.home, stop)  # unfinished uploads past their maximum age
    threads = [threading.Thread(target=jobs.work, args=(handlers, stop), name=f"worker-{n}")
               for n in range(args.threads)]
    for thread in threads:
        thread.start()
    print(f"taza worker: {args.threads} thread(s) on {store.home}", flush=True)
    stop.wait()
    for thread in threads:
        thread.join()
    return 0


def _list(args) -> int:
    store = _store(args)
    release = store.current()
    if release is None:
        print("nothing published yet")
        return 0
    print(f"release {release.number}")
    for dataset_id, version in sorted(release.datasets.items()):
        print(f"  {dataset_id:28} version {version} (versions: "
              f"{', '.join(map(str, store.released_versions(dataset_id)))})")
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
        return str(err)
    return text("restore_interrupted_serve", name=found[0].token) if found else None


def _serve(args) -> int:
    from catalog.jobs import QueueSettings
    from catalog.store.release_records import RecordsUnavailable
    from catalog.store.tile_cache import CacheSizeError, max_bytes_from_environment

    store = _store(args)
    try:
        max_bytes_from_environment()  # refuse a bad setting here, not in every worker
        settings.trusted_proxies()
        settings.clip_max_bytes()
        settings.column_loads_in_background()
        QueueSettings.from_environment()
    except (CacheSizeError, settings.SettingError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if interrupted_restore := _interrupted_restore(store):
        print(f"error: {interrupted_restore}", file=sys.stderr)
        return 1
    try:
        if store.current() is None:
            print("warning: nothing is published yet (run `taza publish --all`)",
                  file=sys.stderr)
    except RecordsUnavailable as err:  # the workers serve once the database answers
        print(f"warning: {err}", file=sys.stderr)
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
               "--bind", f"{args.host}:{args.port}", "--workers", str(args.workers),
               "catalog.app:create_app()"]
    os.execve(sys.executable, command, env)
    return 0  # not reached


if __name__ == "__main__":
    sys.exit(main())
