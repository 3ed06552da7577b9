"""The stewards' commands of `taza`: users, versions, rollback, withdraw, audit.

The command line runs on the server with filesystem access, so it acts as an admin; every
change it makes is recorded in the audit log as `cli:<operating-system user>`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable

from catalog.store import CatalogStore

StoreFactory = Callable[[argparse.Namespace], CatalogStore]
DEFAULT_PUBLIC_URL = "http://127.0.0.1:5000"


def add_commands(commands, store_of: StoreFactory) -> None:
    """Add the subcommands to `taza`'s subparsers."""
    users = commands.add_parser("users", help="accounts, passwords and API tokens of the "
                                "stewards' service")
    actions = users.add_subparsers(required=True, metavar="ACTION")
    add = actions.add_parser("add", help="create an account and print a one-time link to set "
                             "its password (or read the password from standard input)")
    add.add_argument("name")
    add.add_argument("--role", required=True, choices=("steward", "reviewer", "admin"))
    add.add_argument("--org", help="organisation id (required for stewards)")
    add.add_argument("--email")
    _password_arguments(add)
    add.set_defaults(handler=lambda args: _users_add(args, store_of(args)))
    link = actions.add_parser("link", help="print a new one-time link to set a password "
                              "(earlier unused links stop working)")
    link.add_argument("name")
    link.add_argument("--public-url", help=f"the site's URL (default $TAZA_PUBLIC_URL or "
                      f"{DEFAULT_PUBLIC_URL})")
    link.set_defaults(handler=lambda args: _users_link(args, store_of(args)),
                      existing_home=True)
    password = actions.add_parser("password", help="set a password read from standard input "
                                  "(the account's sessions end)")
    password.add_argument("name")
    password.add_argument("--password-stdin", action="store_true", required=True,
                          help="read the password from the first line of standard input")
    password.set_defaults(handler=lambda args: _users_password(args, store_of(args)),
                          existing_home=True)
    listing = actions.add_parser("list", help="list accounts")
    listing.set_defaults(handler=lambda args: _users_list(store_of(args)),
                         existing_home=True)
    token = actions.add_parser("token", help="issue a new API token for an account (for "
                               "scripts); it expires")
    token.add_argument("name")
    token.add_argument("--revoke-others", action="store_true",
                       help="revoke the account's earlier tokens")
    token.add_argument("--days", type=float,
                       help="lifetime in days (default $TAZA_TOKEN_LIFETIME_DAYS or 90)")
    token.add_argument("--label", help="what the token is for (shown in GET /api/tokens)")
    token.set_defaults(handler=lambda args: _users_token(args, store_of(args)),
                       existing_home=True)
    disable = actions.add_parser("disable", help="disable an account: its tokens, sessions and "
                                 "links stop working")
    disable.add_argument("name")
    disable.set_defaults(handler=lambda args: _users_disable(args, store_of(args)),
                         existing_home=True)

    versions = commands.add_parser("versions", help="list the released versions of a dataset")
    versions.add_argument("dataset")
    versions.set_defaults(handler=lambda args: _versions(args, store_of(args)),
                          existing_home=True)
    rollback = commands.add_parser("rollback", help="make an earlier version live again")
    rollback.add_argument("dataset")
    rollback.add_argument("version", type=int)
    rollback.set_defaults(handler=lambda args: _rollback(args, store_of(args)),
                          existing_home=True)
    withdraw = commands.add_parser("withdraw", help="take a dataset out of the live catalog")
    withdraw.add_argument("dataset")
    withdraw.set_defaults(handler=lambda args: _withdraw(args, store_of(args)),
                          existing_home=True)

    audit_log = commands.add_parser("audit", help="print the audit log and check its chain")
    audit_log.add_argument("--after", type=int, default=0)
    audit_log.add_argument("--limit", type=int, default=1000)
    audit_log.add_argument("--verify", action="store_true",
                           help="only check the chain (exit 1 when broken)")
    audit_log.add_argument("--migrate", action="store_true",
                           help="seal a log of unkeyed entries under the audit key, once")
    audit_log.add_argument("--reset-head", action="store_true",
                           help="take the chain as it is as its head (after a restore)")
    audit_log.set_defaults(handler=lambda args: _audit(args, store_of(args)),
                           existing_home=True)


def _password_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--password-stdin", action="store_true",
                        help="set the password from the first line of standard input instead "
                        "of printing a one-time link")
    parser.add_argument("--public-url", help=f"the site's URL in the link (default "
                        f"$TAZA_PUBLIC_URL or {DEFAULT_PUBLIC_URL})")


def password_link(args, code: str) -> str:
    """The one-time link: the code rides in the fragment, which browsers never send to a
    server, so it appears in no access log; the stewards' page posts it in a body."""
    base = (args.public_url or os.environ.get("TAZA_PUBLIC_URL") or DEFAULT_PUBLIC_URL)
    return f"{base.rstrip('/')}/stewards#set-password={code}"


def _read_password() -> str:
    line = sys.stdin.readline()
    return line[:-1] if line.endswith("\n") else line


def cli_admin():
    """The command line's identity: an admin named after the operating-system user."""
    from catalog.stewards.accounts import User
    from catalog.store.audit import os_actor

    return User(id=0, name=os_actor(), role="admin", organisation=None)


def _guarded(action: Callable[[], int]) -> int:
    from catalog.stewards.accounts import AccountError
    from catalog.stewards.config import SettingError
    from catalog.stewards.errors import ServiceError
    from catalog.store.audit import AuditError

    try:
        return action()
    except (AccountError, ServiceError, SettingError, AuditError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1


def _users_add(args, store: CatalogStore) -> int:
    from catalog.stewards import accounts

    def run() -> int:
        password = _read_password() if args.password_stdin else None
        user, code = accounts.add_user(store.home, args.name, args.role, args.org, args.email,
                                       cli_admin().name, password)
        print(f"added {user.name} ({user.role}, {user.organisation or 'no organisation'})")
        if code is None:
            print("password set")
        else:
            _print_link(args, code)
        return 0

    return _guarded(run)


def _users_link(args, store: CatalogStore) -> int:
    from catalog.stewards import accounts

    def run() -> int:
        _print_link(args, accounts.new_password_link(store.home, args.name, cli_admin().name))
        return 0

    return _guarded(run)


def _users_password(args, store: CatalogStore) -> int:
    from catalog.stewards import accounts

    def run() -> int:
        accounts.set_password(store.home, args.name, _read_password(), cli_admin().name)
        print(f"password set for {args.name}; its sessions ended")
        return 0

    return _guarded(run)


def _print_link(args, code: str) -> None:
    from catalog.stewards.config import StewardSettings

    hours = StewardSettings.from_environment().password_link_hours
    print(f"password link: {password_link(args, code)}")
    print(f"the link sets the password once, within {hours:g} hours; give it to the person "
          "privately", file=sys.stderr)


def _users_list(store: CatalogStore) -> int:
    from catalog.stewards import accounts

    for user in accounts.list_users(store.home):
        state = "disabled" if user.disabled else "active"
        print(f"{user.name:24} {user.role:9} {user.organisation or '-':32} {state}")
    return 0


def _users_token(args, store: CatalogStore) -> int:
    from catalog.stewards import accounts

    def run() -> int:
        if args.days is not None and not args.days > 0:
            print("error: --days takes a number of days above 0", file=sys.stderr)
            return 2
        token, expires = accounts.new_token(store.home, args.name, cli_admin().name,
                                            args.revoke_others, args.days, args.label)
        print(token)
        print(f"the token is shown once and expires at {expires}", file=sys.stderr)
        return 0

    return _guarded(run)


def _users_disable(args, store: CatalogStore) -> int:
    from catalog.stewards import accounts

    def run() -> int:
        accounts.disable_user(store.home, args.name, cli_admin().name)
        print(f"disabled {args.name}; its tokens, sessions and links no longer work")
        return 0

    return _guarded(run)


def _versions(args, store: CatalogStore) -> int:
    from catalog.stewards import releases

    def run() -> int:
        listing = releases.list_versions(store.home, store, cli_admin(), args.dataset)
        for entry in listing["versions"]:
            live = "live" if entry["live"] else ""
            by = entry["published_by"] or "-"
            print(f"version {entry['version']:<4} {entry['published_at']}  {by:16} {live}")
        if listing["live_version"] is None:
            print(f"{args.dataset} is withdrawn: `taza rollback {args.dataset} N` restores it")
        return 0

    return _guarded(run)


def _rollback(args, store: CatalogStore) -> int:
    from catalog.stewards import releases

    def run() -> int:
        result = releases.rollback(store.home, store, cli_admin(), args.dataset, args.version)
        print(f"{args.dataset} version {result['version']} is live (release {result['release']})")
        return 0

    return _guarded(run)


def _withdraw(args, store: CatalogStore) -> int:
    from catalog.stewards import releases

    def run() -> int:
        result = releases.withdraw(store.home, store, cli_admin(), args.dataset)
        print(f"{args.dataset} withdrawn (release {result['release']}); its versions are kept")
        return 0

    return _guarded(run)


def _audit(args, store: CatalogStore) -> int:
    from catalog.store import audit

    if args.migrate:
        return _guarded(lambda: _audit_migrate(store))
    if args.reset_head:
        return _guarded(lambda: _audit_reset_head(store))
    check = audit.verify(store.home)
    if not args.verify:
        for entry in audit.entries(store.home, args.after, args.limit):
            detail = json.dumps(entry["detail"], ensure_ascii=False, sort_keys=True)
            print(f"{entry['seq']:>6} {entry['at']} {entry['actor']:20} {entry['action']:22} "
                  f"{entry['dataset_id'] or '-':24} {detail}")
    if check.ok:
        unkeyed = (f"; {check.unkeyed_entries} unkeyed entries from before keying"
                   if check.unkeyed_entries else "")
        print(f"audit chain ok: {check.entries} entries, {check.anchors_checked} recorded "
              f"heads checked{unkeyed}", file=sys.stderr)
        return 0
    print(f"AUDIT CHAIN BROKEN at entry {check.first_bad_seq}: {check.reason}", file=sys.stderr)
    return 1


def _audit_reset_head(store: CatalogStore) -> int:
    from catalog.store import audit

    anchor, replaced = audit.reset_head(store.home, cli_admin().name)
    if replaced is not None and replaced.seq >= anchor.seq:
        print(f"the head file named entry {replaced.seq}; entries {anchor.seq}-{replaced.seq}"
              " of that log are not in this database (recorded in entry "
              f"{anchor.seq}, audit.head_reset)")
    print(f"audit head: entry {anchor.seq}")
    return 0


def _audit_migrate(store: CatalogStore) -> int:
    from catalog.store import audit

    anchor = audit.migrate(store.home, cli_admin().name)
    if anchor is None:
        print("nothing to migrate: the log's entries are keyed")
    else:
        print(f"sealed {anchor.seq - 1} unkeyed entries under the key {audit.key_path(store.home)}"
              f" (entry {anchor.seq}); new entries are keyed")
    return 0
