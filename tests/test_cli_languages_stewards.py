"""The stewards' commands of `taza` (users, versions, rollback, withdraw, audit) speak the
operator's language: their help, their reports and their refusals, in Kyrgyz and Russian from
the locale, and English as before under an English locale (catalog/stewards/cli_texts.yml).
The real command line, in subprocesses, on the embedded profile."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest

from catalog.core.operator_texts import error_line
from catalog.stewards import accounts
from catalog.stewards.cli import say, say_account_error, say_audit_error, say_audit_reason
from catalog.store import audit
from tests.conftest import run_taza

ADD = ("users", "add", "aigul", "--role", "steward", "--org", "ministry-a")


def test_the_texts_have_every_language_and_the_same_placeholders():
    assert say.problems() == []


def test_an_account_refusal_says_in_english_exactly_its_message(tmp_path, monkeypatch):
    """`str(err)` stays the English message (logs, the harvest command), and the English of
    each `error.<code>` says the same words, so an English operator reads what they read
    before the codes."""
    for name in [name for name in os.environ if name.startswith(("TAZA_", "LC_", "LANGUAGE"))]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("LANG", "C")
    home = tmp_path / "home"
    refusals = []
    for arguments in [("Aigul", "steward", "ministry-a"), ("aigul", "owner", None),
                      ("aigul", "steward", None), ("aigul", "reviewer", "M")]:
        with pytest.raises(accounts.AccountError) as refused:
            accounts.add_user(home, *arguments, None, "cli:test", "a password 1")
        refusals.append(refused.value)
    accounts.add_user(home, "aigul", "steward", "ministry-a", None, "cli:test", "a password 1")
    accounts.disable_user(home, "aigul", "cli:test")
    for call in [lambda: accounts.add_user(home, "aigul", "admin", None, None, "cli:test"),
                 lambda: accounts.new_token(home, "aigul", "cli:test"),
                 lambda: accounts.new_password_link(home, "aigul", "cli:test"),
                 lambda: accounts.disable_user(home, "nobody", "cli:test")]:
        with pytest.raises(accounts.AccountError) as refused:
            call()
        refusals.append(refused.value)
    codes = {err.code for err in refusals}
    assert codes == {code.removeprefix("error.") for code in say.table
                     if code.startswith("error.") and code != "error.days"
                     and not code.startswith("error.audit.")}
    for err in refusals:
        assert say_account_error(err) == str(err), err.code
    monkeypatch.setenv("LANG", "ky_KG.UTF-8")
    unknown = next(err for err in refusals if err.code == "user_unknown")
    assert error_line(say_account_error(unknown)) == "ката: «nobody» колдонуучусу жок"


def test_users_speak_russian(tmp_path):
    home = str(tmp_path / "home")
    added = run_taza("--home", home, *ADD, language="ru_RU.UTF-8")
    assert added.returncode == 0, added.stderr
    assert added.stdout.startswith("учётная запись aigul добавлена (steward, ministry-a)\n"
                                   "ссылка для пароля: http://127.0.0.1:5000/stewards#")
    assert added.stderr.startswith("ссылка задаёт пароль один раз, в течение ")
    again = run_taza("--home", home, *ADD, language="ru_RU.UTF-8")
    assert (again.returncode, again.stderr) == (
        1, "ошибка: пользователь «aigul» уже существует\n")
    audit = run_taza("--home", home, "audit", "--verify", language="ru_RU.UTF-8")
    assert audit.returncode == 0
    assert audit.stderr == ("цепочка аудита в порядке: записей — 2, проверено сохранённых "
                            "вершин цепочки — 1\n")


def test_users_speak_kyrgyz(tmp_path):
    home = str(tmp_path / "home")
    added = run_taza("--home", home, "users", "add", "aigul", "--role", "steward", "--org",
                     "ministry-b", language="ky_KG.UTF-8")
    assert added.stdout.startswith("aigul каттоо эсеби кошулду (steward, ministry-b)\n"
                                   "сырсөз шилтемеси: http://127.0.0.1:5000/stewards#")
    assert added.stderr.startswith("шилтеме сырсөздү бир гана жолу, ")
    listing = run_taza("--home", home, "users", "list", language="ky_KG.UTF-8")
    assert listing.stdout == f"{'aigul':24} {'steward':9} {'ministry-b':32} иштейт\n"


def test_the_help_speaks_kyrgyz():
    helped = run_taza("users", "--help", language="ky_KG.UTF-8")
    assert helped.returncode == 0
    assert "каттоо эсебин түзүп, анын сырсөзүн коюу үчүн бир жолку шилтемени" in helped.stdout
    assert "каттоо эсебин өчүрүү: анын токендери, сеанстары" in helped.stdout


def test_english_is_unchanged(tmp_path):
    home = str(tmp_path / "home")
    added = run_taza("--home", home, *ADD, language="en_GB.UTF-8")
    assert added.stdout.startswith("added aigul (steward, ministry-a)\npassword link: http://")
    assert added.stderr.startswith("the link sets the password once, within ")
    assert added.stderr.endswith(" hours; give it to the person privately\n")
    again = run_taza("--home", home, *ADD, language="en_GB.UTF-8")
    assert (again.returncode, again.stderr) == (1, "error: user 'aigul' exists already\n")


# -- the audit log: why a chain is broken, and its errors (catalog/store/audit.py's codes) --

def _english_in_process(monkeypatch) -> None:
    """This process on the embedded profile, in English (the locale `C`)."""
    for name in [name for name in os.environ if name.startswith(("TAZA_", "LC_", "LANGUAGE"))]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("LANG", "C")


def _logged_home(home: Path) -> None:
    """A home whose audit log holds two keyed entries (user.add, user.password_link)."""
    accounts.add_user(home, "aigul", "steward", "ministry-a", None, "cli:test")


def _tamper(home: Path, statement: str) -> None:
    """What an attacker with the sqlite3 shell can do (see tests/test_audit_chain.py)."""
    with sqlite3.connect(home / "stewards" / "stewards.sqlite") as connection:
        connection.executescript("DROP TRIGGER IF EXISTS audit_no_update; "
                                 f"DROP TRIGGER IF EXISTS audit_no_delete; {statement}")


def test_the_audit_codes_say_the_english_reason_and_message_byte_for_byte(tmp_path,
                                                                          monkeypatch):
    """The English of every `audit.reason.<code>` is the reason verify gives, and of each
    `error.audit.<code>` the AuditError's own message, so English is unchanged."""
    _english_in_process(monkeypatch)
    assert {code: say.table[f"audit.reason.{code}"]["en"] for code in audit.REASONS} == \
        audit.REASONS
    home = tmp_path / "home"
    _logged_home(home)
    _tamper(home, "DELETE FROM audit WHERE seq = 2;")
    cut = audit.verify(home)
    assert (cut.reason_code, cut.reason_params["place"]) == ("cut_short", "head_file")
    assert cut.as_dict()["reason_code"] == "cut_short"
    _tamper(home, "UPDATE audit SET actor = 'mallory' WHERE seq = 1;")
    checks = [cut, audit.verify(home)]
    key = audit.key_path(home)
    errors = []
    for change, call in [
            (lambda: None, lambda: audit.reset_head(home, "cli:test")),
            (lambda: key.chmod(0o644), lambda: audit.load_key(home)),
            (lambda: (key.chmod(0o600), key.write_text("not hex\n")),
             lambda: audit.load_key(home)),
            (lambda: key.write_text("ab" * 32 + "\n"),
             lambda: audit.record(home, "cli:test", "test")),
            (lambda: key.unlink(), lambda: audit.record(home, "cli:test", "test"))]:
        change()
        with pytest.raises(audit.AuditError) as raised:
            call()
        errors.append(raised.value)
        checks.append(audit.verify(home))
    assert [err.code for err in errors] == [
        "reset_chain_broken", "key_exposed", "key_malformed", "key_wrong", "key_missing"]
    for err in errors:
        assert say_audit_error(err) == str(err), err.code
    for check in checks:
        assert not check.ok and check.reason_code, check
        assert say_audit_reason(check.reason_code, check.reason_params, None) == check.reason
    assert [check.reason_code for check in checks] == [
        "cut_short", "mac_differs", "mac_differs", "key_exposed", "key_malformed", "other_key",
        "no_key"]
    monkeypatch.setenv("LANG", "ru_RU.UTF-8")
    assert error_line(say_audit_error(errors[1])) == (
        f"ошибка: ключ аудита {key} доступен другим пользователям (режим 0o644); установите "
        "ему режим 0600")


def test_a_broken_audit_chain_is_said_in_russian_and_kyrgyz(tmp_path, monkeypatch):
    _english_in_process(monkeypatch)
    home = tmp_path / "home"
    _logged_home(home)
    _tamper(home, "DELETE FROM audit WHERE seq = 2;")  # cut short: the head file names it
    head = home / "keys" / "audit.head"
    russian = run_taza("--home", str(home), "audit", "--verify", language="ru_RU.UTF-8")
    assert (russian.returncode, russian.stderr) == (
        1, f"ЦЕПОЧКА АУДИТА НАРУШЕНА на записи 2: запись 2, отмеченная в файле вершины {head}, "
           "отсутствует: журнал укорочен\n")
    english = run_taza("--home", str(home), "audit", "--verify", language="en_GB.UTF-8")
    assert (english.returncode, english.stderr) == (
        1, f"AUDIT CHAIN BROKEN at entry 2: entry 2, recorded in the head file {head}, is "
           "missing: the log was cut short\n")
    _tamper(home, "UPDATE audit SET actor = 'mallory' WHERE seq = 1;")
    kyrgyz = run_taza("--home", str(home), "audit", "--reset-head", language="ky_KG.UTF-8")
    assert (kyrgyz.returncode, kyrgyz.stdout, kyrgyz.stderr) == (
        1, "", "ката: чынжыр 1-жазууда бузулган (мазмуну анын MAC кодуна дал келбейт); "
               "чынжырдын учу өзгөртүлгөн жок\n")
