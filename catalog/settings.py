"""Where things are: the catalog home, the project's config folder, and shared helpers."""

from __future__ import annotations

import json
import os
from functools import cache
from pathlib import Path

import yaml

PROJECT_ROOT = Path(__file__).resolve().parent.parent
CONFIG_DIR = Path(os.environ.get("TAZA_CONFIG_DIR", PROJECT_ROOT / "config"))
# The files and tiles of a dataset version never change, but a rollback, withdrawal or purge
# takes a version down: browsers and proxies may keep it five minutes, not a year. ETags make
# the re-check after that a cheap 304.
VERSION_CACHE_CONTROL = "public, max-age=300"


def home() -> Path:
    """The catalog home: published versions, releases, runtime files (TAZA_HOME, ./var)."""
    return Path(os.environ.get("TAZA_HOME", PROJECT_ROOT / "var")).resolve()


@cache
def themes() -> dict:
    """Theme titles and descriptions (en/ru/ky) from config/themes.yaml."""
    return yaml.safe_load((CONFIG_DIR / "themes.yaml").read_text(encoding="utf-8"))


def portal_config() -> dict:
    """The portal's map settings (config/portal.yaml): basemap datasets, layer styles."""
    return yaml.safe_load((CONFIG_DIR / "portal.yaml").read_text(encoding="utf-8"))


def to_json(data: object) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False, sort_keys=False, default=str)


DEFAULT_DATABASE_POOL_SIZE = 4


def database_url() -> str | None:
    """TAZA_DATABASE_URL: a postgresql:// URL moves published features to PostGIS; unset (the
    default) serves them from the GeoPackages with no service. Other schemes are refused."""
    url = os.environ.get("TAZA_DATABASE_URL", "").strip()
    if not url:
        return None
    if not url.startswith(("postgresql://", "postgres://")):
        raise ValueError("TAZA_DATABASE_URL: expected a postgresql:// URL")
    return url


def database_pool_size() -> int:
    """TAZA_DATABASE_POOL_SIZE: connections each worker process may hold (default 4)."""
    text = os.environ.get("TAZA_DATABASE_POOL_SIZE", str(DEFAULT_DATABASE_POOL_SIZE))
    try:
        size = int(text)
    except ValueError:
        size = 0
    if size < 1:
        raise ValueError(f"TAZA_DATABASE_POOL_SIZE: expected a positive integer, got {text!r}")
    return size


def database_wait_seconds() -> float:
    """TAZA_DATABASE_WAIT_SECONDS: how long a request waits for a database connection (a free
    one, or a reconnection after a database restart) before it fails (default 10)."""
    text = os.environ.get("TAZA_DATABASE_WAIT_SECONDS", "10")
    try:
        seconds = float(text)
    except ValueError:
        seconds = 0.0
    if not 0 < seconds <= 600:
        raise ValueError(f"TAZA_DATABASE_WAIT_SECONDS: expected seconds in (0, 600], got {text!r}")
    return seconds
