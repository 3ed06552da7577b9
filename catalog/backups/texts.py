"""The words `taza restore`, `taza backup` and `taza migrate` say to the operator, in the
operator's language (texts.yml; catalog/core/operator_texts.py)."""

from __future__ import annotations

from pathlib import Path

from catalog.backups import REASON_CODES, CodedText
from catalog.core.operator_texts import OperatorTexts, SayError

text = OperatorTexts(Path(__file__).with_name("texts.yml"))


def failure_text(step: str) -> str:
    """'The restore failed at the step ...' in the operator's language."""
    return text("restore_failed", step=text(f"step.{step}"))


def reason_word() -> str:
    return text("restore_reason")


def recovered_text(done) -> str:
    """What `recover` did (a recovery.Recovered), in the operator's language."""
    return text(f"restore_recovered.{done.what}", name=done.name)


def say_text(value: object) -> object:
    """A CodedText (catalog/backups/__init__.py) in the operator's language, its params said
    too (a list of them joined by "; "); any other value as it is."""
    if isinstance(value, CodedText):
        return text(value.code, **{name: say_text(param)
                                   for name, param in value.params.items()})
    if isinstance(value, list | tuple) and all(isinstance(v, CodedText) for v in value):
        return "; ".join(str(say_text(each)) for each in value)
    return value


def say_backup_error(err: BaseException, say_error: SayError) -> str:
    """A BackupError or MigrationRefused in the operator's language (`error.<code>`); one
    without a code as `say_error` says it (catalog/cli.py: its English message, mostly)."""
    code = getattr(err, "code", "")
    if not code:
        return say_error(err)
    return text(f"error.{code}", **{name: say_text(param)
                                    for name, param in err.params.items()})


def say_reason(reason: str) -> str:
    """Why a file is not in a backup, as backup.json stores it (English), in the operator's
    language; a reason this version does not know (an older backup's) as it is."""
    code = REASON_CODES.get(reason)
    return text(f"reason.{code}") if code else reason
