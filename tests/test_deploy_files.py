"""The production description (deploy/) stays in step with the code that `make cluster` runs.

No container engine runs here, so the compose file is checked for what can drift: the settings
it passes exist, its commands are `taza` commands, and its nginx configuration is the one
`taza cluster nginx-config` writes, which nginx itself accepts.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import yaml

from tests.conftest import ROOT

DEPLOY = ROOT / "deploy"
NGINX_CONFIG = [sys.executable, "-m", "catalog.cli", "cluster", "nginx-config",
                "--upstream", "app-a:5000", "--upstream", "app-b:5000"]


def compose() -> dict:
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text(encoding="utf-8"))


def catalog_source() -> str:
    return "\n".join(path.read_text(encoding="utf-8") for path in (ROOT / "catalog").rglob("*.py"))


def test_every_setting_the_compose_file_passes_is_read_by_the_catalog() -> None:
    source = catalog_source()
    names = set()
    for service in compose()["services"].values():
        names |= {name for name in service.get("environment", {}) if name.startswith("TAZA_")}
    assert {"TAZA_DATABASE_URL", "TAZA_ASSETS_URL", "TAZA_NODE"} <= names
    unread = sorted(name for name in names if name not in source)
    assert unread == []


def test_the_app_services_run_taza_commands_that_exist() -> None:
    for name, service in compose()["services"].items():
        command = service.get("command")
        if not command or command[0] != "taza":
            continue
        helped = subprocess.run([sys.executable, "-m", "catalog.cli", command[1], "--help"],
                                cwd=ROOT, capture_output=True, text=True)
        assert helped.returncode == 0, (name, helped.stderr)
        for option in (part for part in command[2:] if part.startswith("--")):
            assert option in helped.stdout, (name, option)


def test_nginx_conf_is_what_the_cluster_writes() -> None:
    written = subprocess.run(NGINX_CONFIG, cwd=ROOT, capture_output=True, text=True, check=True)
    assert (DEPLOY / "nginx.conf").read_text() == written.stdout, \
        "regenerate: taza cluster nginx-config --upstream app-a:5000 --upstream app-b:5000"


def test_nginx_accepts_the_configuration(tmp_path: Path) -> None:
    text = (DEPLOY / "nginx.conf").read_text()
    # Here the containers' names and folder do not exist: point them at loopback and tmp_path.
    text = re.sub(r"app-[ab]:5000", "127.0.0.1:9", text)
    text = text.replace("/var/lib/taza-nginx", str(tmp_path)).replace("user nginx;\n", "")
    (tmp_path / "nginx.conf").write_text(text)
    checked = subprocess.run(["/usr/sbin/nginx", "-t", "-p", str(tmp_path), "-e",
                              str(tmp_path / "error.log"), "-c", str(tmp_path / "nginx.conf")],
                             capture_output=True, text=True)
    assert checked.returncode == 0, checked.stderr
