"""Golden answers: today's answers of every public surface, kept to prove a redesign changes none.

- tests/golden/cases.py: the fixed requests (a few hundred, over the sample catalog).
- tests/golden/answers.py: an answer as a golden entry (normalised; the masking rules are
  `answers.MASKS`, `DROPPED_HEADERS` and the ETag/Last-Modified rule, each with its reason)
  and the field-by-field comparison.
- tests/golden/<group>.json: the golden entries, one file per group of requests, keyed by
  the request line ("GET /ogc/collections?f=html [Accept-Language: ru]").
- tests/test_golden.py: every request against the real server, compared with its entry.

Re-record, on purpose, after a deliberate change of an answer (then review `git diff
tests/golden`):

    .venv/bin/python -m tests.golden record            # every group
    .venv/bin/python -m tests.golden record portal     # some groups
    .venv/bin/python -m tests.golden check             # compare against a fresh server

Both publish the sample datasets into a fresh temporary home and start `taza serve` on a free
127.0.0.1 port, as the tests do.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

from tests.golden import answers
from tests.golden.cases import Case

GOLDEN_DIR = Path(__file__).resolve().parent


def golden_path(group: str) -> Path:
    return GOLDEN_DIR / f"{group}.json"


def load(group: str) -> dict | None:
    path = golden_path(group)
    if not path.exists():
        return None
    return json.loads(path.read_text(encoding="utf-8"))


def observe(base_url: str, cases: Iterable[Case]) -> dict[str, dict]:
    """The golden entry of each case's answer from the server at base_url, by key.

    One request at a time: golden answers must not depend on timing. (Recording them found
    that two executions of different processes at once in one worker could get each other's
    answers; catalog/processes/jobs.py now runs each execution with its own processor,
    tests/test_processes.py.)"""
    session = answers.new_session()
    run = answers.Run(base_url, answers.publish_instants(session, base_url))
    return {case.key: answers.entry(case, answers.send(session, base_url, case), run)
            for case in cases}
