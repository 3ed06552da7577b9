"""The words `taza restore`, `taza backup` and `taza migrate` say to the operator, in the
operator's language (texts.yml; catalog/core/operator_texts.py)."""

from __future__ import annotations

from pathlib import Path

from catalog.core.operator_texts import OperatorTexts

text = OperatorTexts(Path(__file__).with_name("texts.yml"))


def failure_text(step: str) -> str:
    """'The restore failed at the step ...' in the operator's language."""
    return text("restore_failed", step=text(f"step.{step}"))


def reason_word() -> str:
    return text("restore_reason")


def recovered_text(done) -> str:
    """What `recover` did (a recovery.Recovered), in the operator's language."""
    return text(f"restore_recovered.{done.what}", name=done.name)
