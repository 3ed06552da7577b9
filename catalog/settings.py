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


def assets_url() -> str | None:
    """Where published files go: unset for the version folders under the home, or
    s3://bucket/prefix for an S3 bucket (TAZA_ASSETS_URL; docs/deployment.md)."""
    return os.environ.get("TAZA_ASSETS_URL") or None


@cache
def themes() -> dict:
    """Theme titles and descriptions (en/ru/ky) from config/themes.yaml."""
    return yaml.safe_load((CONFIG_DIR / "themes.yaml").read_text(encoding="utf-8"))


def portal_config() -> dict:
    """The portal's map settings (config/portal.yaml): basemap datasets, layer styles."""
    return yaml.safe_load((CONFIG_DIR / "portal.yaml").read_text(encoding="utf-8"))


def to_json(data: object) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False, sort_keys=False, default=str)
