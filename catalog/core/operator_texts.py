"""What the command line says to the person running it, in that person's language.

Every `taza` command speaks Kyrgyz, Russian or English: its help, its reports and its errors.
The language is the operator's locale (LANGUAGE, LC_ALL, LC_MESSAGES, LANG, in the order
gettext reads them), English when the locale names none of the catalog's languages. Each
command's words live in a YAML file beside it, one entry per text:

    code: {ky: "... {param} ...", ru: "...", en: "..."}

`OperatorTexts(path)("code", param=value)` says one of them. `problems()` lists what a file
gets wrong (a language missing or empty, placeholders that differ between languages): the
tests run it on every such file, so a text cannot be added in English alone.

Lower floors (the store, the STAC index, the publish) do not print: `warn_operator` logs a
warning in English, as every server log line is, carrying its code, and `taza` says it in the
operator's language (`OperatorWarnings`, which catalog/cli.py installs for its one-shot
commands).
"""

from __future__ import annotations

import functools
import logging
import os
import re
import sys
from collections.abc import Callable
from pathlib import Path

import yaml

from catalog.core.languages import FALLBACK_LANGUAGE, LANGUAGES, format_number

LANGUAGE_VARIABLES = ("LANGUAGE", "LC_ALL", "LC_MESSAGES", "LANG")
PLACEHOLDER = re.compile(r"\{(\w*)[^{}]*\}")
# An error in the operator's language, or its English message where it has no texts: the
# top command (catalog/cli.py, which sees every floor's texts) hands one to its subcommands.
SayError = Callable[[BaseException], str]


def operator_language() -> str:
    """The first language the locale settings name that the catalog speaks, else English.
    LANGUAGE may list several (`ky:ru`); the others name one locale (`ru_RU.UTF-8`), and
    the first of them that is set decides, as in gettext (`C` and `POSIX` are English)."""
    for name in LANGUAGE_VARIABLES:
        for choice in os.environ.get(name, "").split(":"):
            code = choice.split("_")[0].split(".")[0].lower()
            if code in LANGUAGES:
                return code
            if choice and name != "LANGUAGE":
                return FALLBACK_LANGUAGE
    return FALLBACK_LANGUAGE


class OperatorTexts:
    """The texts of one YAML file, said in the operator's language."""

    def __init__(self, path: Path):
        self.path = path

    @functools.cached_property
    def table(self) -> dict[str, dict[str, str]]:
        return yaml.safe_load(self.path.read_text(encoding="utf-8"))

    def __call__(self, code: str, **params: object) -> str:
        return self.table[code][operator_language()].format(**params)

    def english(self, code: str, **params: object) -> str:
        return self.table[code][FALLBACK_LANGUAGE].format(**params)

    def from_code(self, err: BaseException, prefix: str) -> str | None:
        """An error said from its `code` (the text `<prefix><code>`, filled with its
        `params`); None when it has no code with a text here (the caller says it otherwise)."""
        return self.from_parts(prefix, getattr(err, "code", None), getattr(err, "params", {}))

    def from_parts(self, prefix: str, code: str | None, params: dict) -> str | None:
        """from_code for an error kept as its code and params (a harvest run's, stored)."""
        if not code or f"{prefix}{code}" not in self.table:
            return None
        try:
            return self(f"{prefix}{code}", **params)
        except (KeyError, IndexError):  # params stored by an older version: say it otherwise
            return None

    def problems(self) -> list[str]:
        """What is wrong with the file: a text without every language, an empty one, or
        languages whose placeholders differ (a translation that drops `{path}`)."""
        found = []
        for code, texts in self.table.items():
            if not isinstance(texts, dict) or set(texts) != set(LANGUAGES):
                found.append(f"{code}: needs exactly {', '.join(LANGUAGES)}")
                continue
            if not all(isinstance(t, str) and t.strip() for t in texts.values()):
                found.append(f"{code}: an empty text")
                continue
            placeholders = {language: sorted(PLACEHOLDER.findall(text))
                            for language, text in texts.items()}
            if len({tuple(p) for p in placeholders.values()}) > 1:
                found.append(f"{code}: placeholders differ: {placeholders}")
        return found


common = OperatorTexts(Path(__file__).with_name("operator_texts.yml"))


def number(value: int | float) -> str:
    """A number as the operator's language writes it (1,234 in English, 1 234 in ky and ru)."""
    return format_number(value, operator_language())


def error_line(message: str) -> str:
    """'error: <message>' with 'error' in the operator's language."""
    return f"{common('error')}: {message}"


def warning_line(message: str) -> str:
    """'warning: <message>' with 'warning' in the operator's language."""
    return f"{common('warning')}: {message}"


def warn_operator(texts: OperatorTexts, code: str, logger: logging.Logger,
                  **params: object) -> None:
    """A warning for whoever runs the operation (the release is live, derived data lags): an
    English log line, with the code `taza` says it from in the operator's language."""
    logger.warning(texts.english(code, **params), extra={OPERATOR_TEXT: (texts, code, params)})


OPERATOR_TEXT = "operator_text"


class OperatorWarnings(logging.Handler):
    """A command line's log: each warning on stderr as one `warning: ...` line, in the
    operator's language when it carries a text code (warn_operator), else its English message;
    never a traceback (a log record's exc_info is for a server's log, not an operator). Other
    libraries' warnings are left out (a connection pool's every retry while the database is
    down: the command's own error line says the outcome); their errors are said."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno < logging.ERROR and record.name.split(".")[0] != "catalog":
            return
        try:
            said = getattr(record, OPERATOR_TEXT, None)
            text = said[0](said[1], **said[2]) if said else record.getMessage()
            sys.stderr.write(warning_line(text) + "\n")
        except Exception:  # noqa: BLE001 - logging's own contract: a handler never raises
            self.handleError(record)

    @classmethod
    def install(cls) -> None:
        """On the root logger, once per process (main can run more than once in a test)."""
        root = logging.getLogger()
        if not any(isinstance(handler, cls) for handler in root.handlers):
            root.addHandler(cls())
