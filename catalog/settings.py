"""Where things are: the catalog home, the project's config folder, and shared helpers."""

from __future__ import annotations

import json
import math
import os
import socket
from functools import cache
from pathlib import Path

import yaml

from catalog.core.operator_texts import OperatorTexts
from catalog.core.parse import whole_number

PROJECT_ROOT = Path(__file__).resolve().parent.parent
CONFIG_DIR = Path(os.environ.get("TAZA_CONFIG_DIR", PROJECT_ROOT / "config"))
# The files and tiles of a dataset version never change, but a rollback, withdrawal or purge
# takes a version down: browsers and proxies may keep it five minutes, not a year. ETags make
# the re-check after that a cheap 304.
VERSION_CACHE_CONTROL = "public, max-age=300"
# URLs that follow the live version (`/tiles/<id>/latest/...`, OGC API - Tiles): a republish
# shows within a minute; the ETag (it changes with the content) keeps re-checks cheap.
LATEST_CACHE_CONTROL = "public, max-age=60"


def home() -> Path:
    """The catalog home: published versions, releases, runtime files (TAZA_HOME, ./var)."""
    return Path(os.environ.get("TAZA_HOME", PROJECT_ROOT / "var")).resolve()


def assets_url() -> str | None:
    """Where published files go: unset for the version folders under the home, or
    s3://bucket/prefix for an S3 bucket (TAZA_ASSETS_URL; docs/deployment.md)."""
    return os.environ.get("TAZA_ASSETS_URL") or None


def node_name() -> str:
    """This app node's name in /healthz and its per-node files (TAZA_NODE, else the host name)."""
    return os.environ.get("TAZA_NODE") or socket.gethostname()


def node_run_dir(home: Path) -> Path:
    """Runtime files of this node's workers (per PID below it). Per node, because nodes that
    share a catalog home must not clear each other's files when one of them starts."""
    return Path(home) / "run" / node_name()


def cache_dir(home: Path) -> Path:
    """Where this node keeps its caches (TAZA_CACHE_DIR, else <home>/cache): a local disk per
    node in a cluster, shared by the nodes of one machine by default."""
    configured = os.environ.get("TAZA_CACHE_DIR")
    return Path(configured).resolve() if configured else Path(home) / "cache"


def backend_name() -> str:
    """`embedded` (files and SQLite) or `postgresql`, as /healthz reports it."""
    return "postgresql" if database_url() else "embedded"


class SettingError(ValueError):
    """A setting in the environment that cannot be used (the message names it, in English).

    `code` and `params` name the same refusal's text in every language (`setting.<code>` of
    settings_texts.yml), which the command line says in the operator's language."""

    def __init__(self, message: str, *, code: str = "", params: dict | None = None):
        super().__init__(message)
        self.code = code
        self.params = dict(params or {})


# The settings' refusals in Kyrgyz, Russian and English (catalog/core/operator_texts.py).
say = OperatorTexts(Path(__file__).with_name("settings_texts.yml"))


def column_loads_in_background() -> bool:
    """TAZA_COLUMN_LOADS: when a large feature layer's column arrays are first read from its
    engine (catalog/core/columns.py). `background` (the default): by a thread of their own,
    while SQL answers the requests that need them, so no request waits for the read (10
    million parcels: about 40 s). `request`: by the first request that needs them (the
    benchmarks, which time the arrays from their first request)."""
    raw = os.environ.get("TAZA_COLUMN_LOADS", "").strip() or "background"
    if raw not in ("background", "request"):
        raise SettingError(f"TAZA_COLUMN_LOADS: expected background or request, got {raw!r}",
                           code="column_loads", params={"value": raw})
    return raw == "background"


def trusted_proxies() -> int:
    """TAZA_TRUSTED_PROXIES: how many reverse proxies in front set X-Forwarded-For/-Proto (0:
    none, the default; the cluster's nginx is 1). Only then is the client address taken from
    the header: without a proxy, anyone could write it."""
    raw = os.environ.get("TAZA_TRUSTED_PROXIES", "0").strip() or "0"
    proxies = whole_number(raw, 0, 5)
    if proxies is None:
        raise SettingError(f"TAZA_TRUSTED_PROXIES: a number of proxies from 0 to 5, got {raw!r}",
                           code="trusted_proxies", params={"value": raw})
    return proxies


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
        raise SettingError("TAZA_DATABASE_URL: expected a postgresql:// URL",
                           code="database_url")
    return url


def database_pool_size() -> int:
    """TAZA_DATABASE_POOL_SIZE: connections each worker process may hold (default 4)."""
    text = os.environ.get("TAZA_DATABASE_POOL_SIZE", str(DEFAULT_DATABASE_POOL_SIZE))
    try:
        size = int(text)
    except ValueError:
        size = 0
    if size < 1:
        raise SettingError(f"TAZA_DATABASE_POOL_SIZE: expected a positive integer, got {text!r}",
                           code="pool_size", params={"value": text})
    return size


def database_wait_seconds() -> float:
    """TAZA_DATABASE_WAIT_SECONDS: how long a request waits for a database connection (a free
    one, or a reconnection after a database restart) before it fails (default 10)."""
    return seconds_setting("TAZA_DATABASE_WAIT_SECONDS", 10.0, 0.1, 600)


CLIP_MAX_BYTES = 64 * 1024 * 1024  # the whole sample DEM (int16) is 5 MiB


def clip_max_bytes() -> int:
    """TAZA_CLIP_MAX_BYTES: the largest raster clip (catalog.portal.clip) in uncompressed
    bytes, from 1 KiB to 1 GiB (default 64 MiB): a clip is built in memory."""
    raw = os.environ.get("TAZA_CLIP_MAX_BYTES", "").strip()
    if not raw:
        return CLIP_MAX_BYTES
    size = whole_number(raw, 1024, 1024 ** 3)
    if size is None:
        raise SettingError(f"TAZA_CLIP_MAX_BYTES: expected bytes from 1024 to {1024 ** 3}, "
                           f"got {raw!r}", code="clip_max_bytes",
                           params={"highest": 1024 ** 3, "value": raw})
    return size


def seconds_setting(name: str, default: float, lowest: float, highest: float) -> float:
    """The seconds in environment variable `name` (`default` when unset or blank), from
    `lowest` to `highest`; a SettingError naming the variable, the range and the value for
    anything else (words, nan, inf, out of range)."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        seconds = float(raw)
    except ValueError:
        seconds = math.nan  # refused below with the same message
    if not lowest <= seconds <= highest:
        raise SettingError(f"{name}: expected seconds from {lowest:g} to {highest:g}, "
                           f"got {raw!r}", code="seconds",
                           params={"name": name, "lowest": lowest, "highest": highest,
                                   "value": raw})
    return seconds


def count_setting(name: str, default: int, lowest: int, highest: int) -> int:
    """The whole number in environment variable `name` (`default` when unset or blank), from
    `lowest` to `highest`; a SettingError naming the variable, the range and the value else."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    value = whole_number(raw, lowest, highest)
    if value is None:
        raise SettingError(f"{name}: expected a whole number from {lowest} to {highest}, "
                           f"got {raw!r}", code="count",
                           params={"name": name, "lowest": lowest, "highest": highest,
                                   "value": raw})
    return value


def process_seconds() -> float:
    """TAZA_PROCESS_SECONDS: the time budget of a synchronous process execution (default 30,
    below gunicorn's 60 s worker timeout), from 0 to 55; past it, 503 `over_budget` (0: every
    synchronous computation is refused so; only background jobs compute)."""
    return seconds_setting("TAZA_PROCESS_SECONDS", 30.0, 0, 55)


def compute_slots() -> int:
    """TAZA_COMPUTE_SLOTS: process computations at once in one server process, synchronous
    and background together (default 2; 0 runs none: every execution answers 503
    `no_compute_slot` after its budget, or its job fails so)."""
    return count_setting("TAZA_COMPUTE_SLOTS", 2, 0, 64)


def queued_jobs() -> int:
    """TAZA_QUEUED_JOBS: background process jobs per server process, the running one included
    (default 8; 0 accepts none: every asynchronous execution answers 503 `job_queue_full`)."""
    return count_setting("TAZA_QUEUED_JOBS", 8, 0, 1000)
