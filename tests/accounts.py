"""`python -m tests.accounts`: the test accounts made with the real `taza users add` and
`taza users token` (catalog.cli.main: the same parser and handlers as the command), all in
one process. Twelve `taza` processes per server of the stewards' tests cost about 6 s of CPU
in imports alone, most of the set-up of a module that starts one.

Reads JSON on standard input, [[name, role, organisation or null, password], ...], with the
home in TAZA_HOME (and its database in TAZA_DATABASE_URL); writes {name: token} as JSON.
"""

from __future__ import annotations

import contextlib
import io
import json
import sys

from catalog.cli import main


def run(args: list[str], stdin: str = "") -> str:
    """One `taza` command line; its standard output, or SystemExit naming what it said."""
    out, err = io.StringIO(), io.StringIO()
    sys.stdin = io.StringIO(stdin)
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = main(args)
    if status != 0:
        raise SystemExit(f"taza {' '.join(args)} exited {status}:\n{out.getvalue()}"
                         f"\n{err.getvalue()}")
    return out.getvalue()


def add_accounts(accounts: list[list]) -> dict[str, str]:
    tokens = {}
    for name, role, organisation, password in accounts:
        args = ["users", "add", name, "--role", role, "--password-stdin"]
        if organisation:
            args += ["--org", organisation]
        run(args, stdin=password + "\n")
        tokens[name] = run(["users", "token", name]).strip()
    return tokens


if __name__ == "__main__":
    print(json.dumps(add_accounts(json.load(sys.stdin))))
