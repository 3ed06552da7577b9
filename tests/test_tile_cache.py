"""The tile cache is bounded: tiles outside a layer are never rendered nor stored, empty tiles
are not stored, and stored tiles stay under a size cap shared by the server's workers, the
least recently used going first (catalog/store/tile_cache.py)."""

from __future__ import annotations

import random
import shutil
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from catalog.portal.tiles import TileBounds
from catalog.store.tile_cache import CacheSizeError, TileCache, TileKey, cache_path
from catalog.store.tile_cache import drop_version as drop_cached_version
from tests.conftest import start_server, stop_server, taza

KYRGYZSTAN = (69.2, 39.1, 80.3, 43.3)  # every sample layer lies inside this box
CAP = 2_000_000  # bytes: a few dozen relief tiles
OUTSIDE = "outside the layer's extent"


@pytest.fixture()
def capped_server(published_home: Path, tmp_path: Path):
    """The sample catalog on its own home (an empty cache), with a 2 MB tile cache."""
    home = tmp_path / "home"
    shutil.copytree(published_home, home, ignore=shutil.ignore_patterns("cache", "run", "*.log"))
    server = start_server(home, env={"TAZA_TILE_CACHE_MAX_BYTES": str(CAP)})
    yield server
    stop_server(server)


def far_away_tiles(count: int, seed: int = 11) -> list[TileBounds]:
    """Random tiles at zooms 2-18 more than a degree away from Kyrgyzstan."""
    rng, found = random.Random(seed), []
    west, south, east, north = KYRGYZSTAN
    while len(found) < count:
        z = rng.randint(2, 18)
        tile = TileBounds.checked(z, rng.randrange(2**z), rng.randrange(2**z))
        t_west, t_south, t_east, t_north = tile.lonlat
        if t_east < west - 1 or t_west > east + 1 or t_north < south - 1 or t_south > north + 1:
            found.append(tile)
    return found


def fetch_all(server, paths: list[str], threads: int = 4) -> list[requests.Response]:
    """GET every path over a few concurrent connections (both workers take part)."""
    def fetch(chunk: list[str]) -> list[requests.Response]:
        with requests.Session() as session:
            return [session.get(server.url + p, timeout=60) for p in chunk]

    chunks = [paths[i::threads] for i in range(threads)]
    with ThreadPoolExecutor(threads) as pool:
        return [r for answers in pool.map(fetch, chunks) for r in answers]


def cache_rows(home: Path) -> tuple[int, int]:
    """(rows in the tile table, the entry count the workers keep), read with plain SQLite."""
    path = cache_path(home)
    if not path.exists():
        return 0, 0
    with sqlite3.connect(path) as db:
        return (db.execute("SELECT count(*) FROM tiles").fetchone()[0],
                db.execute("SELECT entries FROM state").fetchone()[0])


def disk_bytes(home: Path) -> int:
    """Everything under the home's cache folder (the tile database and its journal)."""
    return sum(p.stat().st_size for p in (home / "cache").rglob("*") if p.is_file())


def test_thousands_of_far_away_tiles_are_neither_rendered_nor_stored(capped_server):
    tiles = far_away_tiles(2000)
    layers = ["elevation/1/relief", "elevation/1/values", "slope/1/values"]
    paths = [f"/tiles/{layers[i % 3]}/{t.z}/{t.x}/{t.y}.png" if i % 2 else
             f"/tiles/{('settlements', 'kyrgyzstan-boundary')[i % 4 // 2]}/1/"
             f"{min(t.z, 14)}/{t.x >> max(t.z - 14, 0)}/{t.y >> max(t.z - 14, 0)}.mvt"
             for i, t in enumerate(tiles)]
    answers = fetch_all(capped_server, paths)
    assert all(a.status_code == 200 for a in answers), {a.status_code for a in answers}
    assert all(OUTSIDE in a.headers["Server-Timing"] for a in answers)
    pngs = {a.content for a in answers if a.headers["Content-Type"] == "image/png"}
    assert len(pngs) == 1  # the one transparent tile
    assert all(a.content == b"" for a in answers if a.headers["Content-Type"].endswith("tile"))
    assert cache_rows(capped_server.home) == (0, 0)
    assert disk_bytes(capped_server.home) < 100_000  # no tiles, only the empty tables


def test_empty_tiles_inside_a_layers_extent_are_not_stored(capped_server):
    # Zoom-12 tiles around Osh, well inside the settlements' extent: most hold none.
    paths = [f"/tiles/settlements/1/12/{x}/{y}.mvt" for x in range(2873, 2879)
             for y in range(1539, 1545)]
    answers = fetch_all(capped_server, paths)
    drawn = [a for a in answers if a.content]
    empty = [a for a in answers if not a.content]
    assert len(empty) > 20 and drawn
    assert all(a.headers["Server-Timing"] == 'tile;desc="rendered, nothing drawn: not cached"'
               for a in empty)  # inside the extent: rendered, found empty
    assert cache_rows(capped_server.home) == (len(drawn), len(drawn))


def relief_tiles(zooms: tuple[int, ...]) -> list[str]:
    """Relief tile paths over Kyrgyzstan (most drawn, 20-120 KB each)."""
    return [f"/tiles/elevation/1/relief/{z}/{x}/{y}.png" for z in zooms
            for x in range(int(2**z * 249.2 / 360), int(2**z * 260.3 / 360) + 1)
            for y in range(int(2**z * 0.358), int(2**z * 0.383) + 1)]


def test_tiles_beyond_the_cap_are_evicted_and_the_cache_stays_under_it(capped_server):
    # Both workers, four connections at once: the cap and the count hold across workers.
    together = fetch_all(capped_server, relief_tiles((9,)), threads=4)
    assert sum(len(a.content) for a in together) > 2 * CAP
    assert disk_bytes(capped_server.home) <= CAP
    rows, entries = cache_rows(capped_server.home)
    assert 0 < rows == entries < len(together)
    # Then in order, so which tiles are the newest is known.
    stored = []
    relief = relief_tiles((7, 8))
    for start in range(0, len(relief), 20):  # checking the footprint between batches
        batch = relief[start:start + 20]
        answers = fetch_all(capped_server, batch, threads=1)
        stored += [p for p, a in zip(batch, answers, strict=True)
                   if a.headers["Server-Timing"] == 'tile;desc="rendered and cached"']
        assert disk_bytes(capped_server.home) <= CAP
    rows, entries = cache_rows(capped_server.home)
    assert 0 < rows == entries < len(stored)  # evicted; the workers' shared count stayed exact
    again = fetch_all(capped_server, stored[-5:])  # the newest survived eviction
    assert all(a.headers["Server-Timing"] == 'tile;desc="from the tile cache"' for a in again)
    first = capped_server.get(stored[0])  # the oldest did not
    assert first.headers["Server-Timing"] == 'tile;desc="rendered and cached"'
    assert disk_bytes(capped_server.home) <= CAP


# --- the cache itself, on a real SQLite file ---------------------------------------------------


def tile_bytes(n: int, size: int = 20_000) -> bytes:
    return random.Random(n).randbytes(size)  # incompressible, like PNG


def test_least_recently_used_tiles_go_first(tmp_path):
    cache = TileCache(tmp_path, 1_000_000)
    keys = [TileKey("dem", 1, "relief", 9, i, 0) for i in range(60)]
    for n, key in enumerate(keys[:20]):
        assert cache.put(key, tile_bytes(n))
    for n, key in enumerate(keys[20:], start=20):
        if n % 10 == 0:
            assert cache.get(keys[0]) == tile_bytes(0)  # the oldest keeps being used
        cache.put(key, tile_bytes(n))
        assert cache.footprint().disk_bytes <= 1_000_000
    assert 25 < cache.footprint().entries < 40  # about 35 fit: most were evicted
    assert cache.get(keys[0]) == tile_bytes(0)  # kept: used recently
    assert all(cache.get(key) is None for key in keys[1:21])  # evicted: least recently used
    assert cache.get(keys[-1]) == tile_bytes(59)


def test_dropping_one_version_leaves_the_others(tmp_path):
    cache = TileCache(tmp_path, 10_000_000)
    for version in (1, 2):
        for x in range(3):
            cache.put(TileKey("parcels", version, "mvt", 10, x, 5), tile_bytes(x))
    assert drop_cached_version(tmp_path, "parcels", 1) == 3
    assert cache.get(TileKey("parcels", 1, "mvt", 10, 0, 5)) is None
    assert cache.get(TileKey("parcels", 2, "mvt", 10, 0, 5)) == tile_bytes(0)
    assert cache_rows(tmp_path) == (3, 3)
    assert drop_cached_version(tmp_path / "elsewhere", "parcels", 2) == 0


def test_the_cap_is_configured_in_bytes(monkeypatch, tmp_path):
    from catalog.store.tile_cache import DEFAULT_MAX_BYTES, max_bytes_from_environment

    monkeypatch.delenv("TAZA_TILE_CACHE_MAX_BYTES", raising=False)
    assert max_bytes_from_environment() == DEFAULT_MAX_BYTES == 512 * 1024**2
    monkeypatch.setenv("TAZA_TILE_CACHE_MAX_BYTES", "0")
    assert max_bytes_from_environment() == 0
    off = TileCache(tmp_path, 0)
    assert not off.put(TileKey("dem", 1, "relief", 1, 0, 0), b"png") and not cache_path(
        tmp_path).exists()
    for wrong in ("lots", "-5", "1.5GB"):
        monkeypatch.setenv("TAZA_TILE_CACHE_MAX_BYTES", wrong)
        with pytest.raises(CacheSizeError, match="TAZA_TILE_CACHE_MAX_BYTES"):
            max_bytes_from_environment()


def test_taza_serve_refuses_a_cap_that_is_not_a_number(scratch_home, monkeypatch):
    monkeypatch.setenv("TAZA_TILE_CACHE_MAX_BYTES", "1GB")
    # An address no interface has: were the setting let through, gunicorn would fail to bind
    # and exit rather than serve.
    refused = taza("serve", "--host", "203.0.113.1", home=scratch_home, check=False)
    assert refused.returncode == 2
    assert "TAZA_TILE_CACHE_MAX_BYTES: expected a number of bytes" in refused.stderr
