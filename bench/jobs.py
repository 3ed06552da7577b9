"""Following a publish of the stewards' API to its end: the API answers 202 with the job
(`Location: /api/jobs/{id}`), and the publish is done when the job has succeeded."""

from __future__ import annotations

import time
from collections.abc import Callable

import requests


def finished_job(answer: requests.Response, get: Callable[[str], requests.Response],
                 poll_seconds: float = 0.2, timeout: float = 7200) -> dict:
    """The job of a publish's 202 answer once it has succeeded (else AssertionError)."""
    assert answer.status_code == 202, answer.text[:2000]
    location = answer.headers["Location"]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = get(location).json()
        if job["state"] in ("succeeded", "failed"):
            assert job["state"] == "succeeded", job
            return job
        time.sleep(poll_seconds)
    raise AssertionError(f"the job {location} did not finish within {timeout} s")
