"""The stewards' commands of `taza` (users, versions, rollback, withdraw, audit) speak the
operator's language: their help, their reports and their refusals, in Kyrgyz and Russian from
the locale, and English as before under an English locale (catalog/stewards/cli_texts.yml).
The real command line, in subprocesses, on the embedded profile."""

from __future__ import annotations

import os

import pytest

from catalog.core.operator_texts import error_line
from catalog.stewards import accounts
from catalog.stewards.cli import say, say_account_error
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
                     if code.startswith("error.") and code != "error.days"}
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
