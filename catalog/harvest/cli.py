"""`taza harvest add|list|remove|run`: thin commands over registry.py and run.py.

Exit codes: 0 done; 1 a run could not read its remote or some datasets failed (the report says
which); 2 a bad command or a kind of source not supported yet.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from collections.abc import Callable

from catalog.harvest import registry
from catalog.harvest.fetch import FetchError
from catalog.stewards.accounts import AccountError
from catalog.store import CatalogStore
from catalog.store.harvest_sources import HarvestSourcesUnavailable

StoreFactory = Callable[[argparse.Namespace], CatalogStore]


def add_commands(commands, store_of: StoreFactory) -> None:
    harvest = commands.add_parser(
        "harvest", help="bring other catalogs' datasets in as drafts for review",
        description="Read remote catalogs (STAC, OGC API - Features and Records, CSW, CKAN) "
                    "and write a draft "
                    "manifest for each new or changed dataset, for the stewards to review. "
                    "Nothing is published. See docs/harvest.md.")
    actions = harvest.add_subparsers(required=True, metavar="ACTION")
    add = actions.add_parser("add", help="register a remote catalog")
    add.add_argument("url", help="the catalog's root: a STAC API, an OGC API, a CKAN site, "
                     "a CSW endpoint")
    add.add_argument("--type", required=True, choices=registry.KINDS, dest="kind")
    add.add_argument("--name", required=True, help="a short name (3-32: a-z, 0-9, '-'), the "
                     "prefix of the dataset ids it creates")
    add.add_argument("--org", required=True, help="the organisation that owns its drafts")
    add.add_argument("--email", required=True, help="the steward contact in the manifests")
    add.add_argument("--theme", choices=registry.THEMES,
                     help="the theme of its datasets (left for the reviewer when not given)")
    add.add_argument("--every", help="run it on a schedule: 30m, 6h, 1d, 7d (15m to 366d), "
                     "queued as jobs that `taza worker` runs")
    add.set_defaults(handler=lambda args: _guarded(lambda: _add(args, store_of(args))))
    listing = actions.add_parser("list", help="list sources and their last runs")
    listing.set_defaults(handler=lambda args: _guarded(lambda: _list(store_of(args))),
                         existing_home=True)
    remove = actions.add_parser("remove", help="forget a source (its drafts stay)")
    remove.add_argument("name")
    remove.set_defaults(handler=lambda args: _guarded(lambda: _remove(args, store_of(args))),
                        existing_home=True)
    run = actions.add_parser("run", help="harvest one source, or every source")
    run.add_argument("name", nargs="?")
    run.set_defaults(handler=lambda args: _guarded(lambda: _run(args, store_of(args))),
                     existing_home=True)


def _guarded(action: Callable[[], int]) -> int:
    """Command errors (bad arguments, unknown source, a kind not supported yet) exit 2; a
    database that cannot answer (PostgreSQL profile) exits 1."""
    try:
        return action()
    except (registry.HarvestError, FetchError, AccountError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except HarvestSourcesUnavailable as err:
        print(f"error: {err}", file=sys.stderr)
        return 1


def _add(args, store: CatalogStore) -> int:
    from catalog.harvest.run import harvester_account
    from catalog.harvest.schedule import every_seconds

    every = every_seconds(args.every) if args.every is not None else None
    added = registry.add(store.home, args.url, args.kind, args.name, args.org, args.email,
                         args.theme, dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                         every)
    harvester_account(store.home, added)
    print(f"added harvest source {added['name']} ({added['type']} {added['url']})"
          + (f", run every {args.every} by `taza worker`" if every else ""))
    return 0


def _list(store: CatalogStore) -> int:
    from catalog.harvest.schedule import every_text

    for name, source in sorted(registry.sources(store.home).items()):
        last = registry.state(store.home, name)["last_run"]
        summary = "never run" if last is None else (
            f"last run {last['finished']}: " + (f"error: {last['error']}" if last["error"] else
                                               f"{len(last['new'])} new, {len(last['changed'])}"
                                               f" changed, {len(last['gone'])} gone, "
                                               f"{len(last['failed'])} failed"))
        every = source.get("every_seconds")
        schedule = f"every {every_text(every)}" if every else "by hand"
        print(f"{name}\t{source['type']}\t{source['url']}\t{source['organisation']}\t"
              f"{schedule}\t{summary}")
    return 0


def _remove(args, store: CatalogStore) -> int:
    registry.remove(store.home, args.name)
    print(f"removed harvest source {args.name} (its drafts stay with the stewards)")
    return 0


def _run(args, store: CatalogStore) -> int:
    from catalog.harvest.run import run_source

    names = [args.name] if args.name else sorted(registry.sources(store.home))
    status = 0
    for name in names:
        registry.source(store.home, name)  # an unknown name is a command error (2)
        report = run_source(store.home, name)
        print(json.dumps(report.as_json(), ensure_ascii=False))
        if report.error or report.failed:
            status = 1
    return status
