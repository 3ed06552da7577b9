"""`python -m tests.golden record [GROUP ...]` writes the golden files from a fresh server;
`python -m tests.golden check [GROUP ...]` compares a fresh server with them (exit 1 on any
difference). See tests/golden/__init__.py."""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.conftest import Server, start_server, stop_server, taza
from tests.golden import answers, golden_path, load, observe
from tests.golden.cases import CASES, GROUPS


@contextmanager
def fresh_server() -> Iterator[Server]:
    """The sample catalog published into a new home, served on a free port."""
    home = Path(tempfile.mkdtemp(prefix="taza-golden-"))
    try:
        taza("publish", "--all", home=home)
        server = start_server(home)
        try:
            yield server
        finally:
            stop_server(server)
    finally:
        shutil.rmtree(home, ignore_errors=True)


def record(groups: list[str]) -> int:
    cases = [case for case in CASES if case.group in groups]
    with fresh_server() as server:
        observed = observe(server.url, cases)
    for group in groups:
        entries = {case.key: observed[case.key] for case in cases if case.group == group}
        path = golden_path(group)
        path.write_text(answers.dumps(answers.golden_file(entries, group)), encoding="utf-8")
        print(f"recorded {len(entries):3d} answers in {path.relative_to(Path.cwd())}")
    return 0


def check(groups: list[str]) -> int:
    cases = [case for case in CASES if case.group in groups]
    with fresh_server() as server:
        observed = observe(server.url, cases)
    failed = 0
    for case in cases:
        document = load(case.group)
        expected = None if document is None else answers.expected_entry(document, case.key)
        if expected is None:
            print(f"{case.key}: not recorded (python -m tests.golden record {case.group})")
            failed += 1
            continue
        found = answers.differences(expected, observed[case.key])
        if found:
            failed += 1
            print(f"{case.key} ({case.group}):\n  " + "\n  ".join(found))
    print(f"{len(cases) - failed} of {len(cases)} answers as recorded")
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.golden", description=__doc__)
    parser.add_argument("command", choices=("record", "check"))
    parser.add_argument("groups", nargs="*", metavar="GROUP",
                        help=f"groups (default: all): {', '.join(GROUPS)}")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.groups) - set(GROUPS))
    if unknown:
        parser.error(f"unknown group(s) {unknown}; groups are {GROUPS}")
    groups = args.groups or GROUPS
    return record(groups) if args.command == "record" else check(groups)


if __name__ == "__main__":
    sys.exit(main())
