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
from pathlib import Path

from catalog.core.operator_texts import OperatorTexts, SayError, error_line
from catalog.store import CatalogStore

StoreFactory = Callable[[argparse.Namespace], CatalogStore]
DEFAULT_PUBLIC_URL = "http://127.0.0.1:5000"

# The words these commands say, in the operator's language (cli_texts.yml beside this file).
say = OperatorTexts(Path(__file__).with_name("cli_texts.yml"))


def add_commands(commands, store_of: StoreFactory, say_error: SayError) -> None:
    """Add the subcommands to `taza`'s subparsers. `say_error` says an error the commands
    catch (a refusal of the service, a setting, the audit log) in the operator's language."""
    users = commands.add_parser("users", help=say("help.users"))
    actions = users.add_subparsers(required=True, metavar="ACTION")
    add = actions.add_parser("add", help=say("help.users.add"))
    add.add_argument("name")
    add.add_argument("--role", required=True, choices=("steward", "reviewer", "admin"))
    add.add_argument("--org", help=say("help.users.org"))
    add.add_argument("--email")
    _password_arguments(add)
    add.set_defaults(handler=lambda args: _users_add(args, store_of(args), say_error))
    link = actions.add_parser("link", help=say("help.users.link"))
    link.add_argument("name")
    link.add_argument("--public-url", help=say("help.users.public_url",
                                                default=DEFAULT_PUBLIC_URL))
    link.set_defaults(handler=lambda args: _users_link(args, store_of(args), say_error),
                      existing_home=True)
    password = actions.add_parser("password", help=say("help.users.password"))
    password.add_argument("name")
    password.add_argument("--password-stdin", action="store_true", required=True,
                          help=say("help.users.password_stdin"))
    password.set_defaults(handler=lambda args: _users_password(args, store_of(args),
                                                               say_error),
                          existing_home=True)
    listing = actions.add_parser("list", help=say("help.users.list"))
    listing.set_defaults(handler=lambda args: _users_list(store_of(args)),
                         existing_home=True)
    token = actions.add_parser("token", help=say("help.users.token"))
    token.add_argument("name")
    token.add_argument("--revoke-others", action="store_true",
                       help=say("help.users.revoke_others"))
    token.add_argument("--days", type=float, help=say("help.users.days"))
    token.add_argument("--label", help=say("help.users.label"))
    token.set_defaults(handler=lambda args: _users_token(args, store_of(args), say_error),
                       existing_home=True)
    disable = actions.add_parser("disable", help=say("help.users.disable"))
    disable.add_argument("name")
    disable.set_defaults(handler=lambda args: _users_disable(args, store_of(args), say_error),
                         existing_home=True)

    versions = commands.add_parser("versions", help=say("help.versions"))
    versions.add_argument("dataset")
    versions.set_defaults(handler=lambda args: _versions(args, store_of(args), say_error),
                          existing_home=True)
    rollback = commands.add_parser("rollback", help=say("help.rollback"))
    rollback.add_argument("dataset")
    rollback.add_argument("version", type=int)
    rollback.set_defaults(handler=lambda args: _rollback(args, store_of(args), say_error),
                          existing_home=True)
    withdraw = commands.add_parser("withdraw", help=say("help.withdraw"))
    withdraw.add_argument("dataset")
    withdraw.set_defaults(handler=lambda args: _withdraw(args, store_of(args), say_error),
                          existing_home=True)

    audit_log = commands.add_parser("audit", help=say("help.audit"))
    audit_log.add_argument("--after", type=int, default=0)
    audit_log.add_argument("--limit", type=int, default=1000)
    audit_log.add_argument("--verify", action="store_true", help=say("help.audit.verify"))
    audit_log.add_argument("--migrate", action="store_true", help=say("help.audit.migrate"))
    audit_log.add_argument("--reset-head", action="store_true",
                           help=say("help.audit.reset_head"))
    audit_log.set_defaults(handler=lambda args: _audit(args, store_of(args), say_error),
                           existing_home=True)


def _password_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--password-stdin", action="store_true",
                        help=say("help.users.password_stdin_add"))
    parser.add_argument("--public-url", help=say("help.users.public_url_link",
                                                 default=DEFAULT_PUBLIC_URL))


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


def say_account_error(err: BaseException) -> str:
    """A refusal about accounts (accounts.AccountError) in the operator's language, from its
    code (`error.<code>` of cli_texts.yml); its English message when it has none."""
    return say.from_code(err, "error.") or str(err)


def say_audit_reason(code: str | None, params: dict, english: str | None) -> str | None:
    """Why the audit chain is broken (audit.ChainCheck's reason_code and reason_params) in
    the operator's language: `audit.reason.<code>`, or for a key that cannot be read the
    AuditError's `error.audit.<code>`; the English reason when the code has no text."""
    params = dict(params)
    if "place" in params:  # a head recorded outside the database: say where
        params["where"] = say(f"audit.place.{params['place']}", **params)
    for text in (f"audit.reason.{code}", f"error.audit.{code}"):
        if code and text in say.table:
            return say(text, **params)
    return english


def say_audit_error(err: BaseException) -> str:
    """An error of the audit log (audit.AuditError) in the operator's language, from its code
    (`error.audit.<code>` of cli_texts.yml; a broken chain's reason said with it); its
    English message when it has none."""
    code = getattr(err, "code", "")
    if not code or f"error.audit.{code}" not in say.table:
        return str(err)
    params = dict(err.params)
    if "reason_code" in params:
        params["reason"] = say_audit_reason(params.pop("reason_code"),
                                            params.pop("reason_params", {}),
                                            params.get("reason"))
    return say(f"error.audit.{code}", **params)


def _guarded(action: Callable[[], int], say_error: SayError) -> int:
    from catalog.stewards.accounts import AccountError
    from catalog.stewards.config import SettingError
    from catalog.stewards.errors import ServiceError
    from catalog.store.audit import AuditError

    try:
        return action()
    except AccountError as err:
        print(error_line(say_account_error(err)), file=sys.stderr)
        return 1
    except AuditError as err:
        print(error_line(say_audit_error(err)), file=sys.stderr)
        return 1
    except (ServiceError, SettingError) as err:
        print(error_line(say_error(err)), file=sys.stderr)
        return 1


def _users_add(args, store: CatalogStore, say_error: SayError) -> int:
    from catalog.stewards import accounts

    def run() -> int:
        password = _read_password() if args.password_stdin else None
        user, code = accounts.add_user(store.home, args.name, args.role, args.org, args.email,
                                       cli_admin().name, password)
        print(say("done.users.add", name=user.name, role=user.role,
                  organisation=user.organisation or say("users.no_organisation")))
        if code is None:
            print(say("done.users.password_set"))
        else:
            _print_link(args, code)
        return 0

    return _guarded(run, say_error)


def _users_link(args, store: CatalogStore, say_error: SayError) -> int:
    from catalog.stewards import accounts

    def run() -> int:
        _print_link(args, accounts.new_password_link(store.home, args.name, cli_admin().name))
        return 0

    return _guarded(run, say_error)


def _users_password(args, store: CatalogStore, say_error: SayError) -> int:
    from catalog.stewards import accounts

    def run() -> int:
        accounts.set_password(store.home, args.name, _read_password(), cli_admin().name)
        print(say("done.users.password", name=args.name))
        return 0

    return _guarded(run, say_error)


def _print_link(args, code: str) -> None:
    from catalog.stewards.config import StewardSettings

    hours = StewardSettings.from_environment().password_link_hours
    print(say("users.link", link=password_link(args, code)))
    print(say("users.link_note", hours=hours), file=sys.stderr)


def _users_list(store: CatalogStore) -> int:
    from catalog.stewards import accounts

    for user in accounts.list_users(store.home):
        state = say("users.state.disabled" if user.disabled else "users.state.active")
        print(f"{user.name:24} {user.role:9} {user.organisation or '-':32} {state}")
    return 0


def _users_token(args, store: CatalogStore, say_error: SayError) -> int:
    from catalog.stewards import accounts

    def run() -> int:
        if args.days is not None and not args.days > 0:
            print(error_line(say("error.days")), file=sys.stderr)
            return 2
        token, expires = accounts.new_token(store.home, args.name, cli_admin().name,
                                            args.revoke_others, args.days, args.label)
        print(token)
        print(say("done.users.token", expires=expires), file=sys.stderr)
        return 0

    return _guarded(run, say_error)


def _users_disable(args, store: CatalogStore, say_error: SayError) -> int:
    from catalog.stewards import accounts

    def run() -> int:
        accounts.disable_user(store.home, args.name, cli_admin().name)
        print(say("done.users.disable", name=args.name))
        return 0

    return _guarded(run, say_error)


def _versions(args, store: CatalogStore, say_error: SayError) -> int:
    from catalog.stewards import releases

    def run() -> int:
        listing = releases.list_versions(store.home, store, cli_admin(), args.dataset)
        for entry in listing["versions"]:
            live = say("versions.live") if entry["live"] else ""
            print(say("versions.line", version=entry["version"],
                      published_at=entry["published_at"], by=entry["published_by"] or "-",
                      live=live))
        if listing["live_version"] is None:
            print(say("versions.withdrawn", dataset=args.dataset))
        return 0

    return _guarded(run, say_error)


def _rollback(args, store: CatalogStore, say_error: SayError) -> int:
    from catalog.stewards import releases

    def run() -> int:
        result = releases.rollback(store.home, store, cli_admin(), args.dataset, args.version)
        print(say("done.rollback", dataset=args.dataset, version=result["version"],
                  release=result["release"]))
        return 0

    return _guarded(run, say_error)


def _withdraw(args, store: CatalogStore, say_error: SayError) -> int:
    from catalog.stewards import releases

    def run() -> int:
        result = releases.withdraw(store.home, store, cli_admin(), args.dataset)
        print(say("done.withdraw", dataset=args.dataset, release=result["release"]))
        return 0

    return _guarded(run, say_error)


def _audit(args, store: CatalogStore, say_error: SayError) -> int:
    from catalog.store import audit

    if args.migrate:
        return _guarded(lambda: _audit_migrate(store), say_error)
    if args.reset_head:
        return _guarded(lambda: _audit_reset_head(store), say_error)
    check = audit.verify(store.home)
    if not args.verify:
        for entry in audit.entries(store.home, args.after, args.limit):
            detail = json.dumps(entry["detail"], ensure_ascii=False, sort_keys=True)
            print(f"{entry['seq']:>6} {entry['at']} {entry['actor']:20} {entry['action']:22} "
                  f"{entry['dataset_id'] or '-':24} {detail}")
    if check.ok:
        if check.unkeyed_entries:
            print(say("audit.ok_unkeyed", entries=check.entries, anchors=check.anchors_checked,
                      unkeyed=check.unkeyed_entries), file=sys.stderr)
        else:
            print(say("audit.ok", entries=check.entries, anchors=check.anchors_checked),
                  file=sys.stderr)
        return 0
    reason = say_audit_reason(check.reason_code, check.reason_params, check.reason)
    print(say("audit.broken", seq=check.first_bad_seq, reason=reason), file=sys.stderr)
    return 1


def _audit_reset_head(store: CatalogStore) -> int:
    from catalog.store import audit

    anchor, replaced = audit.reset_head(store.home, cli_admin().name)
    if replaced is not None and replaced.seq >= anchor.seq:
        print(say("audit.head_replaced", replaced=replaced.seq, first=anchor.seq))
    print(say("audit.head", seq=anchor.seq))
    return 0


def _audit_migrate(store: CatalogStore) -> int:
    from catalog.store import audit

    anchor = audit.migrate(store.home, cli_admin().name)
    if anchor is None:
        print(say("audit.nothing_to_migrate"))
    else:
        print(say("audit.sealed", count=anchor.seq - 1, key=audit.key_path(store.home),
                  seq=anchor.seq))
    return 0
