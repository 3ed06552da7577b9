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
from pathlib import Path

from catalog.core.operator_texts import OperatorTexts, SayError, error_line
from catalog.harvest import registry
from catalog.harvest.fetch import FetchError
from catalog.stewards.accounts import AccountError
from catalog.store import CatalogStore
from catalog.store.harvest_sources import HarvestSourcesUnavailable

StoreFactory = Callable[[argparse.Namespace], CatalogStore]

# What these commands say, in the operator's language (catalog/core/operator_texts.py).
say = OperatorTexts(Path(__file__).with_name("cli_texts.yml"))


def add_commands(commands, store_of: StoreFactory, say_error: SayError) -> None:
    """`say_error` says an error of another package (a URL refused, an account, a database
    that cannot answer) in the operator's language where it carries a text (catalog/cli.py)."""

    def guarded(action: Callable[[argparse.Namespace, CatalogStore], int]):
        return lambda args: _guarded(lambda: action(args, store_of(args)), say_error)

    harvest = commands.add_parser("harvest", help=say("help.harvest"),
                                  description=say("description.harvest"))
    actions = harvest.add_subparsers(required=True, metavar="ACTION")
    add = actions.add_parser("add", help=say("help.add"))
    add.add_argument("url", help=say("help.add.url"))
    add.add_argument("--type", required=True, choices=registry.KINDS, dest="kind")
    add.add_argument("--name", required=True, help=say("help.add.name"))
    add.add_argument("--org", required=True, help=say("help.add.org"))
    add.add_argument("--email", required=True, help=say("help.add.email"))
    add.add_argument("--theme", choices=registry.THEMES, help=say("help.add.theme"))
    add.add_argument("--every", help=say("help.add.every"))
    add.set_defaults(handler=guarded(_add))
    listing = actions.add_parser("list", help=say("help.list"))
    listing.set_defaults(handler=guarded(_list), existing_home=True)
    remove = actions.add_parser("remove", help=say("help.remove"))
    remove.add_argument("name")
    remove.set_defaults(handler=guarded(_remove), existing_home=True)
    run = actions.add_parser("run", help=say("help.run"))
    run.add_argument("name", nargs="?")
    run.set_defaults(handler=guarded(_run), existing_home=True)


def _guarded(action: Callable[[], int], say_error: SayError) -> int:
    """Command errors (bad arguments, unknown source, a kind not supported yet) exit 2; a
    database that cannot answer (PostgreSQL profile) exits 1."""
    try:
        return action()
    except registry.HarvestError as err:
        print(error_line(say.from_code(err, "error.") or str(err)), file=sys.stderr)
        return 2
    except FetchError as err:
        print(error_line(say.from_code(err, "error.fetch.") or str(err)), file=sys.stderr)
        return 2
    except AccountError as err:
        print(error_line(say_error(err)), file=sys.stderr)
        return 2
    except HarvestSourcesUnavailable as err:
        print(error_line(say_error(err)), file=sys.stderr)
        return 1


def _add(args, store: CatalogStore) -> int:
    from catalog.harvest.run import harvester_account
    from catalog.harvest.schedule import every_seconds

    every = every_seconds(args.every) if args.every is not None else None
    added = registry.add(store.home, args.url, args.kind, args.name, args.org, args.email,
                         args.theme, dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                         every)
    harvester_account(store.home, added)
    said = {"name": added["name"], "kind": added["type"], "url": added["url"]}
    print(say("done.add_every", every=args.every, **said) if every else say("done.add", **said))
    return 0


def _list(args, store: CatalogStore) -> int:
    """One line per source, tab-separated: its name, kind, URL, organisation, schedule and
    last run. The values stay as they are; the words around them are the operator's language
    (under an English locale exactly the words scripts read)."""
    from catalog.harvest.schedule import every_text

    for name, source in sorted(registry.sources(store.home).items()):
        every = source.get("every_seconds")
        schedule = say("list.every", every=every_text(every)) if every else say("list.by_hand")
        print(f"{name}\t{source['type']}\t{source['url']}\t{source['organisation']}\t"
              f"{schedule}\t{_last_run(registry.state(store.home, name)['last_run'])}")
    return 0


def _last_run(last: dict | None) -> str:
    """What a source's last run saw (its report, registry.state's `last_run`), for the list.
    A remote that could not be read gives its error from the code the run recorded, or as
    the run recorded it (in English) when it has none (a run of an older version)."""
    if last is None:
        return say("list.never_run")
    if last["error"]:
        said = say.from_parts("error.fetch.", last.get("error_code"),
                              last.get("error_params") or {})
        return say("list.last_run", finished=last["finished"],
                   outcome=error_line(said or last["error"]))
    return say("list.last_run", finished=last["finished"],
               outcome=say("list.counts", new=len(last["new"]), changed=len(last["changed"]),
                           gone=len(last["gone"]), failed=len(last["failed"])))


def _remove(args, store: CatalogStore) -> int:
    registry.remove(store.home, args.name)
    print(say("done.remove", name=args.name))
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
