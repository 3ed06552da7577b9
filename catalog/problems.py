"""Validation problems: what is wrong, where, and whether it blocks publication."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a manifest or a source file.

    `where` names the field (``licence``, ``title.en``) or the place in a source
    (``feature 12``, ``band 1``); `line` is the manifest line when known. `code` names the
    message's text in every language (catalog/sources/finding_texts.yml), filled from
    `params`; the English `message` stays for the command line and API clients.
    """

    where: str
    message: str
    line: int | None = None
    file: str | None = None
    code: str = ""
    params: dict = field(default_factory=dict, hash=False)

    def __str__(self) -> str:
        return self.said(self.message)

    def said(self, message: str, line_word: str = "line") -> str:
        """'file:line: where: message', for this problem's message or its translation."""
        location = self.file or ""
        if self.line is not None:
            location = f"{location}:{self.line}" if location else f"{line_word} {self.line}"
        prefix = f"{location}: " if location else ""
        return f"{prefix}{self.where}: {message}"

    def as_dict(self) -> dict:
        data = {"where": self.where, "message": self.message, "line": self.line,
                "file": self.file}
        if self.code:
            data.update(code=self.code, params=dict(self.params))
        return data


class ValidationFailed(Exception):
    """Raised with every problem found, so a steward can fix them all in one go."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


class PublishError(Exception):
    """A publish that could not complete; the previously published version keeps serving.

    Like a Problem, it carries a `code` naming its text in every language
    (catalog/sources/finding_texts.yml) filled from `params`, beside the English message.
    """

    def __init__(self, message: str, *, code: str = "", params: dict | None = None):
        super().__init__(message)
        self.code = code
        self.params = dict(params or {})

    def as_problem(self) -> Problem:
        """The failure as a problem of the publish (what the stewards' API answers)."""
        return Problem("publish", str(self), code=self.code, params=self.params)
