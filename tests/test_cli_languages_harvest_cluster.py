"""`taza harvest` and `taza cluster` speak the operator's language (Kyrgyz, Russian, English
from the locale): their help, what they did and their refusals, the "error" word included;
English is unchanged. The real command line, in subprocesses, on the embedded profile (no
cluster is started: that is slow). The harvest refusals' codes say their English message
byte for byte."""

from __future__ import annotations

import contextlib
import http.server
import json
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from catalog.cluster import cli as cluster_cli
from catalog.harvest import cli as harvest_cli
from catalog.harvest import registry
from catalog.harvest.run import kind_of
from catalog.harvest.schedule import every_seconds
from tests.conftest import run_taza

BAD_NAME = ("harvest", "add", "http://127.0.0.1:9/", "--type", "ckan", "--name", "Bad Name",
            "--org", "peer-agency", "--email", "a@example.org")


def test_the_texts_files_have_every_language() -> None:
    assert harvest_cli.say.problems() == []
    assert cluster_cli.say.problems() == []


@pytest.mark.parametrize("language, expected", [
    ("ru_RU.UTF-8", "ошибка: --name: 3-32 символа, строчные латинские буквы, цифры и '-'\n"),
    ("ky_KG.UTF-8", "ката: --name: 3-32 белги, кичине латын тамгалары, сандар жана '-'\n"),
    ("en_GB.UTF-8", "error: --name: 3-32 characters, lowercase letters, digits and '-'\n"),
])
def test_a_bad_source_name_is_refused_in_the_operators_language(tmp_path, language, expected):
    done = run_taza("--home", str(tmp_path / "home"), *BAD_NAME, language=language)
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stderr == expected


def test_adding_and_removing_a_source_is_said_in_the_operators_language(tmp_path) -> None:
    home = str(tmp_path / "home")
    added = run_taza("--home", home, "harvest", "add", "http://127.0.0.1:9/", "--type", "ckan",
                     "--name", "hdx", "--org", "peer-agency", "--email", "a@example.org",
                     "--every", "1d", language="ru_RU.UTF-8")
    assert added.returncode == 0, added.stderr
    assert added.stdout == ("добавлен источник сбора hdx (ckan http://127.0.0.1:9/), "
                            "`taza worker` запускает его каждые 1d\n")
    removed = run_taza("--home", home, "harvest", "remove", "hdx", language="ky_KG.UTF-8")
    assert removed.returncode == 0, removed.stderr
    assert removed.stdout == ("hdx чогултуу булагы өчүрүлдү (анын черновиктери маалымат "
                              "кароочуларда калат)\n")


def test_the_list_is_in_kyrgyz_with_its_values_as_they_are(tmp_path) -> None:
    home = str(tmp_path / "home")
    added = run_taza("--home", home, "harvest", "add", "http://127.0.0.1:9/", "--type", "ckan",
                     "--name", "hdx", "--org", "peer-agency", "--email", "a@example.org",
                     "--every", "1d", language="ky_KG.UTF-8")
    assert added.returncode == 0, added.stderr
    listed = run_taza("--home", home, "harvest", "list", language="ky_KG.UTF-8")
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout == ("hdx\tckan\thttp://127.0.0.1:9/\tpeer-agency\tар 1d сайын\t"
                             "эч качан иштетилген эмес\n")


def test_a_last_run_is_said_in_the_operators_language_and_english_as_before(monkeypatch):
    """The last-run column: English exactly as `harvest list` printed it before its texts."""
    ran = {"finished": "2026-05-01T10:00:00+00:00", "error": None, "new": ["a", "b"],
           "changed": ["c"], "gone": [], "failed": [{"remote_id": "x"}]}
    failed = {**ran, "error": "'http://h/': unreachable"}
    monkeypatch.setenv("LANGUAGE", "en")
    assert harvest_cli._last_run(ran) == \
        "last run 2026-05-01T10:00:00+00:00: 2 new, 1 changed, 0 gone, 1 failed"
    assert harvest_cli._last_run(failed) == \
        "last run 2026-05-01T10:00:00+00:00: error: 'http://h/': unreachable"
    assert harvest_cli._last_run(None) == "never run"
    assert harvest_cli.say("list.by_hand") == "by hand"
    monkeypatch.setenv("LANGUAGE", "ru")
    assert harvest_cli._last_run(ran) == ("последний запуск 2026-05-01T10:00:00+00:00: "
                                          "новых: 2, изменённых: 1, исчезнувших: 0, "
                                          "с ошибками: 1")
    assert harvest_cli._last_run(failed) == ("последний запуск 2026-05-01T10:00:00+00:00: "
                                             "ошибка: 'http://h/': unreachable")
    assert harvest_cli.say("list.by_hand") == "вручную"


def test_the_cluster_help_is_in_the_operators_language() -> None:
    helped = run_taza("cluster", "--help", language="ky_KG.UTF-8")
    assert helped.returncode == 0, helped.stderr
    for text in ("түйүндөрдү жана nginx'ти иштетүү", "`up` иштеткендин баарын токтотуу",
                 "JSON түрүндө"):
        assert text in helped.stdout, helped.stdout
    assert "start the nodes" not in helped.stdout


def test_a_bad_listen_address_is_refused_in_the_operators_language() -> None:
    refused = run_taza("cluster", "nginx-config", "--upstream", "app-a:5000", "--listen", "bad",
                       language="ru_RU.UTF-8")
    assert refused.returncode == 2
    assert refused.stdout == ""
    assert refused.stderr == "ошибка: --listen: нужно ADDRESS:PORT, получено 'bad'\n"


def _refusals(home: Path) -> list[registry.HarvestError]:
    """One HarvestError of each kind the commands can meet without a remote."""
    found = []
    for attempt in (
            lambda: registry.add(home, "http://h/", "wfs", "ok-name", "o", "e", None, "t"),
            lambda: registry.add(home, "http://h/", "ckan", "No", "o", "e", None, "t"),
            lambda: registry.add(home, "http://h/", "ckan", "ok-name", "o", "e", "sea", "t"),
            lambda: registry.remove(home, "nothing"),
            lambda: every_seconds("1s"),
            lambda: kind_of({"type": "wfs"})):
        with pytest.raises(registry.HarvestError) as raised:
            attempt()
        found.append(raised.value)
    return found


def test_the_codes_say_the_english_message_byte_for_byte(tmp_path, monkeypatch) -> None:
    monkeypatch.delenv("TAZA_DATABASE_URL", raising=False)
    monkeypatch.setenv("LANGUAGE", "en")
    refusals = _refusals(tmp_path)
    assert all(err.code for err in refusals)
    assert [harvest_cli.say(f"error.{err.code}", **err.params) for err in refusals] == \
        [str(err) for err in refusals]
    monkeypatch.setenv("LANGUAGE", "ru")
    assert harvest_cli.say("error.unknown_source", **refusals[3].params) == \
        "источника сбора 'nothing' нет (taza harvest list)"


# --- a remote answer that cannot be used (catalog/harvest/fetch.py FetchError.code) ---------

def test_every_fetch_failure_has_a_code_with_texts():
    import ast

    from tests.conftest import ROOT

    raised, uncoded = 0, []
    for path in sorted((ROOT / "catalog" / "harvest").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call) \
                    and getattr(node.exc.func, "id", None) == "FetchError":
                raised += 1
                code = next((k.value for k in node.exc.keywords if k.arg == "code"), None)
                if not isinstance(code, ast.Constant) or \
                        f"error.fetch.{code.value}" not in harvest_cli.say.table:
                    uncoded.append(f"{path.name}:{node.lineno}")
    assert (raised, uncoded) == (12, [])


@contextlib.contextmanager
def remote(status: int, body: bytes):
    """A catalog on a free loopback port that answers every GET with `status` and `body`."""
    class Answer(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (http.server's name)
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Answer)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def _failures() -> list[tuple[str, Callable[[], object]]]:
    """A fetch failure of each kind the fetcher and the CKAN reader make, over loopback."""
    from catalog.harvest.fetch import Fetcher, check_url
    from catalog.harvest.kinds.ckan import CkanKind

    def over(status: int, body: bytes, read: Callable[[Fetcher, str], object], **limits):
        def run() -> object:
            with remote(status, body) as url:
                return read(Fetcher(**limits), url)
        return run

    return [("scheme", lambda: check_url("ftp://example.org/")),
            ("credentials", lambda: check_url("http://user:secret@example.org/")),
            ("requests", over(200, b"{}", lambda f, url: f.json(url), max_requests=0)),
            ("status", over(404, b"{}", lambda f, url: f.json(url))),
            ("too_large", over(200, b"[" + b"1," * 100 + b"1]", lambda f, url: f.json(url),
                               max_bytes=64)),
            ("xml", over(200, b"<a><b></a>", lambda f, url: f.xml(url))),
            ("not_ckan", over(200, b"{}", lambda f, url: list(CkanKind().datasets(f, url))))]


@pytest.mark.parametrize("case", range(len(_failures())),
                         ids=[code for code, _ in _failures()])
def test_a_fetch_failures_english_text_is_its_message(monkeypatch, case):
    from catalog.harvest.fetch import FetchError

    code, fail = _failures()[case]
    with pytest.raises(FetchError) as failed:
        fail()
    assert failed.value.code == code
    monkeypatch.setenv("LANG", "en_GB.UTF-8")
    assert harvest_cli.say(f"error.fetch.{code}", **failed.value.params) == str(failed.value)
    monkeypatch.setenv("LANG", "ru_RU.UTF-8")
    said = harvest_cli.say(f"error.fetch.{code}", **failed.value.params)
    assert code == "status" or said != str(failed.value)


def test_a_url_that_is_not_http_is_refused_in_russian(tmp_path):
    done = run_taza("--home", str(tmp_path / "home"), "harvest", "add", "ftp://example.org/",
                    "--type", "ckan", "--name", "peer", "--org", "peer-agency", "--email",
                    "a@example.org", language="ru_RU.UTF-8")
    assert (done.returncode, done.stderr) == (
        2, "ошибка: 'ftp://example.org/': собираются только адреса http(s) с именем хоста\n")


def test_a_runs_stored_error_is_listed_in_the_operators_language(tmp_path):
    """A remote that could not be read: the run keeps its English error and its code, and
    `harvest list` says it in the operator's language (English as the run recorded it)."""
    home = str(tmp_path / "home")
    with remote(200, b"{}") as url:
        added = run_taza("--home", home, "harvest", "add", url, "--type", "ckan", "--name",
                         "peer", "--org", "peer-agency", "--email", "a@example.org")
        assert added.returncode == 0, added.stderr
        ran = run_taza("--home", home, "harvest", "run")
    assert ran.returncode == 1, ran.stderr
    report = json.loads(ran.stdout)
    asked = f"{url}api/3/action/package_search"  # the CKAN reader's own address
    english = f"{asked}: not a CKAN package_search answer"
    assert (report["error"], report["error_code"]) == (english, "not_ckan")
    listed = {language: run_taza("--home", home, "harvest", "list", language=language)
              for language in ("ru_RU.UTF-8", "en_GB.UTF-8")}
    assert listed["ru_RU.UTF-8"].stdout.endswith(
        f"ошибка: {asked}: это не ответ CKAN package_search\n"), listed["ru_RU.UTF-8"].stdout
    assert listed["en_GB.UTF-8"].stdout.endswith(f": error: {english}\n")


def test_a_stored_error_without_a_code_is_listed_as_recorded(monkeypatch):
    """A run recorded before runs kept their error's code, or with params that no longer fit
    its text: the English it recorded, never a traceback."""
    monkeypatch.setenv("LANGUAGE", "ru")
    old = {"finished": "2026-05-01T10:00:00+00:00", "error": "'http://h/': unreachable"}
    unfit = {**old, "error_code": "status", "error_params": {"url": "http://h/"}}
    for last in (old, unfit):
        assert harvest_cli._last_run(last) == ("последний запуск 2026-05-01T10:00:00+00:00: "
                                               "ошибка: 'http://h/': unreachable")
