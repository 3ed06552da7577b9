"""The words `taza restore` and the home's other commands say to the operator, in the
operator's language (texts.yml)."""

from __future__ import annotations

import functools
import os
from pathlib import Path

import yaml

from catalog.core.languages import FALLBACK_LANGUAGE, LANGUAGES

TEXTS_FILE = Path(__file__).with_name("texts.yml")
LANGUAGE_VARIABLES = ("LANGUAGE", "LC_ALL", "LC_MESSAGES", "LANG")


@functools.cache
def texts() -> dict[str, dict[str, str]]:
    return yaml.safe_load(TEXTS_FILE.read_text(encoding="utf-8"))


def operator_language() -> str:
    """The first language the locale settings name that the catalog speaks, else English."""
    for name in LANGUAGE_VARIABLES:
        for choice in os.environ.get(name, "").split(":"):
            code = choice.split("_")[0].split(".")[0].lower()
            if code in LANGUAGES:
                return code
            if choice and name != "LANGUAGE":
                return FALLBACK_LANGUAGE
    return FALLBACK_LANGUAGE


def text(code: str, **params: str) -> str:
    return texts()[code][operator_language()].format(**params)


def failure_text(step: str) -> str:
    """'The restore failed at the step ...' in the operator's language."""
    return text("restore_failed", step=text(f"step.{step}"))


def reason_word() -> str:
    return text("restore_reason")


def recovered_text(done) -> str:
    """What `recover` did (a recovery.Recovered), in the operator's language."""
    return text(f"restore_recovered.{done.what}", name=done.name)
