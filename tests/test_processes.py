"""OGC API - Processes (site-screening, coverage-statistics, zonal-statistics) against the real
server, through OWSLib's Processes client, each checked against an independent calculation
with numpy, shapely and pyproj on the source data (datasets/sources)."""

from __future__ import annotations

import concurrent.futures
import json
import multiprocessing
import os
import signal
import string
import threading
import time
import uuid
from functools import cache

import numpy as np
import pytest
import rasterio
import requests
import shapely
from owslib.ogcapi.processes import Processes
from pygeoapi.process.base import ProcessorExecuteError
from pyproj import Geod, Transformer
from shapely.geometry import shape

from catalog.portal import i18n
from catalog.processes import JOB_MANAGER, jobs, process_resources
from catalog.processes.inputs import MESSAGES
from catalog.store import CatalogStore
from tests.conftest import NUMERIC_RASTER_IDS, SOURCES, start_server, stop_server

GEOD = Geod(ellps="WGS84")
# Equal-area projection for reference areas (the server measures geodesic areas).
TO_LAEA = Transformer.from_crs("EPSG:4326", "+proj=laea +lat_0=41.2 +lon_0=74.75 +datum=WGS84",
                               always_xy=True)
POLYGON = {"type": "Polygon", "coordinates": [[
    [74.01, 42.13], [75.37, 42.05], [75.81, 42.71], [74.93, 43.02], [74.11, 42.79],
    [74.01, 42.13]]]}
# Units with a polygon in the oblasts layer (a region input), and every unit the settlements
# name (rows of coverage statistics): Osh City (KG-GO) has no polygon of its own.
REGION_CODES = ["KG-B", "KG-C", "KG-GB", "KG-J", "KG-N", "KG-O", "KG-T", "KG-Y"]
ROW_CODES = sorted([*REGION_CODES, "KG-GO"])


def client(server) -> Processes:
    # Explicit headers: OWSLib shares one default headers dict between client instances.
    return Processes(f"{server.url}/ogc", headers={})


def execute(server, process: str, inputs: dict, **body) -> requests.Response:
    return requests.post(f"{server.url}/ogc/processes/{process}/execution",
                         json={"inputs": inputs, **body}, timeout=60)


# -- the source data, read independently of the server -------------------------------------

@cache
def raster(name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(values, valid, lon of cell centres, lat of cell centres) of a source raster."""
    with rasterio.open(SOURCES / f"{name}.tif") as source:
        values = source.read(1)
        valid = values != source.nodata
        cols, rows = np.meshgrid(np.arange(source.width), np.arange(source.height))
        lon, lat = rasterio.transform.xy(source.transform, rows, cols)
    return (values, valid, np.asarray(lon).reshape(values.shape),
            np.asarray(lat).reshape(values.shape))


@cache
def vector(name: str) -> list[dict]:
    return json.loads((SOURCES / f"{name}.geojson").read_text())["features"]


def country():
    return shapely.union_all([shape(f["geometry"]) for f in vector("kyrgyzstan-boundary")])


def coverage_polygon(name: str):
    return next(shape(f["geometry"]) for f in vector("mobile-coverage")
                if f["properties"]["coverage_class"] == name)


def coverage_class(lon, lat) -> np.ndarray:
    classes = np.full(np.shape(lon), "none", dtype=object)
    classes[shapely.intersects_xy(coverage_polygon("3G"), lon, lat)] = "3G"
    classes[shapely.intersects_xy(coverage_polygon("4G"), lon, lat)] = "4G"
    return classes


def equal_area_km2(geometry) -> float:
    return shapely.transform(geometry, lambda xy: np.column_stack(
        TO_LAEA.transform(*xy.T))).area / 1e6


def settlements():
    features = vector("settlements")
    lon = np.array([f["geometry"]["coordinates"][0] for f in features])
    lat = np.array([f["geometry"]["coordinates"][1] for f in features])
    return [f["properties"] for f in features], lon, lat


# -- descriptions ---------------------------------------------------------------------------

def test_processes_are_described_with_input_schemas(server):
    processes = client(server)
    assert {p["id"] for p in processes.processes()} == {
        "site-screening", "coverage-statistics", "zonal-statistics"}
    screening = processes.process("site-screening")
    assert "async-execute" in screening["jobControlOptions"]
    assert screening["inputs"]["region"]["schema"]["enum"] == REGION_CODES
    assert screening["inputs"]["coverage"]["schema"]["enum"] == ["4G", "3G", "any"]
    assert screening["outputs"]["candidates"]["schema"]["contentMediaType"] == \
        "application/geo+json"
    zonal = processes.process("zonal-statistics")
    assert zonal["inputs"]["raster"]["schema"]["enum"] == list(NUMERIC_RASTER_IDS)
    classes = server.get("/ogc/conformance").json()["conformsTo"]
    assert "http://www.opengis.net/spec/ogcapi-processes-1/1.0/conf/core" in classes
    assert not [c for c in classes if c.endswith("/conf/callback")]  # subscribers are refused


# -- zonal-statistics -----------------------------------------------------------------------

@pytest.mark.parametrize("name, bins, low, high", [("elevation", 12, None, None),
                                                   ("slope", 9, 0, 45)])
def test_zonal_statistics_match_numpy_over_a_polygon(server, name, bins, low, high):
    inputs = {"raster": name, "area": POLYGON, "bins": bins}
    if low is not None:
        inputs.update(histogram_min=low, histogram_max=high)
    result = client(server).execute("zonal-statistics", inputs=inputs)
    stats = result["statistics"]["value"]
    values, valid, lon, lat = raster(name)
    inside = shapely.contains_xy(shape(POLYGON).intersection(country()), lon, lat)
    expected = values[inside & valid].astype(np.float64)
    assert stats["count"] == expected.size > 10000
    assert stats["nodata_count"] == int((inside & ~valid).sum())
    assert stats["min"] == expected.min() and stats["max"] == expected.max()
    assert stats["mean"] == pytest.approx(expected.mean(), abs=1e-5)
    assert stats["std"] == pytest.approx(expected.std(), abs=1e-5)
    counts, edges = np.histogram(expected, bins=bins, range=(
        expected.min() if low is None else low, expected.max() if high is None else high))
    assert stats["histogram"]["counts"] == counts.tolist()
    assert stats["histogram"]["edges"] == pytest.approx(edges, abs=1e-5)


def test_zonal_statistics_of_the_whole_country(server):
    response = execute(server, "zonal-statistics", {"raster": "elevation"})
    assert response.status_code == 200, response.text
    stats = response.json()
    values, valid, lon, lat = raster("elevation")
    inside = shapely.contains_xy(country(), lon, lat)
    assert stats["count"] == int((inside & valid).sum())
    assert stats["mean"] == pytest.approx(values[inside & valid].mean(), abs=1e-5)


def test_zonal_statistics_of_an_oblast_use_its_polygon_and_name_the_layers(server):
    """A region is the oblasts layer's polygon (Talas), and the answer names the datasets the
    values and the area came from (was: the raster only)."""
    response = execute(server, "zonal-statistics", {"raster": "slope", "region": "KG-T"})
    assert response.status_code == 200, response.text
    stats = response.json()
    talas = next(shape(f["geometry"]) for f in vector("oblasts")
                 if f["properties"]["region_iso"] == "KG-T")
    values, valid, lon, lat = raster("slope")
    inside = shapely.contains_xy(talas, lon, lat)
    assert stats["count"] == int((inside & valid).sum()) > 10000
    assert stats["mean"] == pytest.approx(values[inside & valid].mean(), abs=1e-5)
    assert stats["sources"] == {"values": "slope", "area": "oblasts"}
    country_stats = execute(server, "zonal-statistics", {"raster": "elevation"}).json()
    assert country_stats["sources"] == {"values": "elevation", "area": "kyrgyzstan-boundary"}


# -- coverage-statistics --------------------------------------------------------------------

def test_coverage_statistics_for_a_polygon_match_shapely(server):
    result = client(server).execute("coverage-statistics", inputs={"area": POLYGON},
                                    response="raw")
    row = result["table"]["area"]
    props, lon, lat = settlements()
    inside = shapely.contains_xy(shape(POLYGON), lon, lat)
    classes = coverage_class(lon, lat)
    population = np.array([p["population"] for p in props])
    for name in ("4G", "3G", "none"):
        chosen = inside & (classes == name)
        assert row[f"settlements_{name.lower()}"] == chosen.sum()
        assert row[f"population_{name.lower()}"] == population[chosen].sum()
    assert row["settlements_total"] == inside.sum() > 5
    clipped = shape(POLYGON).intersection(country())
    assert row["area_km2"] == pytest.approx(equal_area_km2(clipped), rel=1e-3)
    for name in ("4G", "3G"):
        expected = equal_area_km2(clipped.intersection(coverage_polygon(name)))
        assert row[f"area_{name.lower()}_km2"] == pytest.approx(expected, rel=1e-3, abs=0.05)
    covered = (row["area_4g_km2"] + row["area_3g_km2"]) / row["area_km2"]
    assert row["area_covered_share"] == pytest.approx(covered, abs=1e-4)
    for raster_name, key, digits in (("elevation", "elevation_mean_m", 0.05),
                                     ("slope", "slope_mean_deg", 0.005)):
        values, valid, clon, clat = raster(raster_name)
        cells = shapely.contains_xy(clipped, clon, clat) & valid
        assert row[key] == pytest.approx(values[cells].mean(), abs=digits)
    features = result["features"]
    assert features["type"] == "FeatureCollection"
    assert [f["properties"]["role"] for f in features["features"]].count("area") == 1


def test_coverage_statistics_per_region_from_the_region_attribute(server):
    response = execute(server, "coverage-statistics", {})
    assert response.status_code == 200, response.text
    result = response.json()
    rows = {r["region"]: r for r in result["table"]["regions"]}
    assert sorted(rows) == ROW_CODES
    props, lon, lat = settlements()
    classes = coverage_class(lon, lat)
    for code, row in rows.items():
        members = [i for i, p in enumerate(props) if p["region_iso"] == code]
        for name in ("4G", "3G", "none"):
            chosen = [i for i in members if classes[i] == name]
            assert row[f"settlements_{name.lower()}"] == len(chosen), code
            assert row[f"population_{name.lower()}"] == sum(props[i]["population"]
                                                            for i in chosen), code
        assert row["outline"] == ("none" if code == "KG-GO" else "regions-layer")
    assert sum(r["population_total"] for r in rows.values()) == \
        result["table"]["area"]["population_total"] == sum(p["population"] for p in props)
    boundary = country()
    total = sum(r["area_km2"] for r in rows.values() if r["area_km2"] is not None)
    assert total == pytest.approx(equal_area_km2(boundary), rel=5e-3)
    # The outlines are the oblasts layer's polygons, each with its own area.
    oblasts = {f["properties"]["region_iso"]: shape(f["geometry"]) for f in vector("oblasts")}
    for code, outline in oblasts.items():
        assert rows[code]["area_km2"] == pytest.approx(equal_area_km2(outline), rel=2e-3)
    # Osh City is the city it is: people from the attribute, no area, its point, inside KG-O.
    osh = rows["KG-GO"]
    assert osh["within"] == "KG-O" and osh["area_km2"] is None and osh["settlements_total"] >= 1
    features = {f["id"]: f for f in result["features"]["features"]}
    assert features["KG-GO"]["geometry"]["type"] == "Point"
    assert oblasts["KG-O"].contains(shape(features["KG-GO"]["geometry"]))
    # Each outline holds its own region's settlements (those inside the country boundary).
    outlines = {code: shape(f["geometry"]) for code, f in features.items()
                if f["properties"]["role"] == "region" and code != "KG-GO"}
    for p, x, y in zip(props, lon, lat, strict=True):
        if boundary.contains(shapely.Point(x, y)):
            code = "KG-O" if p["region_iso"] == "KG-GO" else p["region_iso"]
            assert outlines[code].intersects(shapely.Point(x, y)), p["name"]
    # The figures say what they count and which layers they came from.
    notes = result["table"]["notes"]
    assert "not the population of a region" in notes["settlements"]
    assert "by construction" in notes["by_construction"]
    assert result["table"]["sources"]["area_km2 (regions)"] == "oblasts"
    assert result["table"]["sources"]["settlements_*, population_*"] == "settlements"


def test_osh_city_is_a_city_not_an_area(server):
    city = execute(server, "coverage-statistics", {"region": "KG-GO", "include_regions": False})
    assert city.status_code == 200, city.text
    row = city.json()["table"]["area"]
    props, _, _ = settlements()
    listed = [p for p in props if p["region_iso"] == "KG-GO"]
    assert row["population_total"] == sum(p["population"] for p in listed)
    assert row["area_km2"] is None
    for process, inputs in (("zonal-statistics", {"raster": "slope", "region": "KG-GO"}),
                            ("site-screening", {"region": "KG-GO"})):
        refused = execute(server, process, inputs)
        assert refused.status_code == 400, refused.text
        assert "KG-GO has no published outline" in refused.json()["description"]


# -- site-screening -------------------------------------------------------------------------

CRITERIA = {"area": [74.2, 42.6, 75.2, 43.0], "max_slope_deg": 6, "min_elevation_m": 600,
            "max_elevation_m": 1500, "coverage": "3G", "max_settlement_distance_km": 15,
            "min_settlement_population": 20000, "max_airport_distance_km": 60,
            "min_area_km2": 0, "limit": 500}


def reference_cells(criteria: dict) -> dict[str, np.ndarray]:
    """Every suitable cell by the documented rules, with geodesic distances."""
    elevation, valid, lon, lat = raster("elevation")
    slope, slope_valid, _, _ = raster("slope")
    west, south, east, north = criteria["area"]
    cells = valid & slope_valid & (lon > west) & (lon < east) & (lat > south) & (lat < north)
    cells &= shapely.contains_xy(country(), lon, lat)
    cells &= (slope <= criteria["max_slope_deg"]) & (elevation >= criteria["min_elevation_m"])
    cells &= elevation <= criteria["max_elevation_m"]
    lon, lat = lon[cells], lat[cells]
    found = {"lon": lon, "lat": lat, "slope": slope[cells], "elevation": elevation[cells]}
    found["coverage"] = coverage_class(lon, lat)
    props, town_lon, town_lat = settlements()
    big = np.array([p["population"] >= criteria["min_settlement_population"] for p in props])
    found["town_m"] = nearest_m(lon, lat, town_lon[big], town_lat[big])
    airports = vector("airports")
    found["airport_m"] = nearest_m(lon, lat, *np.array(
        [f["geometry"]["coordinates"] for f in airports]).T)
    return found


def nearest_m(lon, lat, to_lon, to_lat) -> np.ndarray:
    best = np.full(lon.size, np.inf)
    for x, y in zip(to_lon, to_lat, strict=True):
        _, _, d = GEOD.inv(lon, lat, np.full(lon.size, x), np.full(lon.size, y))
        best = np.minimum(best, d)
    return best


def test_site_screening_matches_a_cell_by_cell_reference(server):
    result = client(server).execute("site-screening", inputs=CRITERIA, response="raw")
    assert result["numberReturned"] == result["numberMatched"] > 3
    ref = reference_cells(CRITERIA)
    town_limit = CRITERIA["max_settlement_distance_km"] * 1000
    airport_limit = CRITERIA["max_airport_distance_km"] * 1000
    meets = ((ref["coverage"] != "none") & (ref["town_m"] <= town_limit)
             & (ref["airport_m"] <= airport_limit))
    # The server measures cell distances in a projection within 0.05 % of geodesic: cells
    # that close to a limit may go either way.
    borderline = (np.abs(ref["town_m"] - town_limit) < 5e-4 * town_limit) | (
        np.abs(ref["airport_m"] - airport_limit) < 5e-4 * airport_limit)
    claimed = np.zeros(ref["lon"].size, dtype=int)
    scores = []
    for feature in result["features"]:
        props = feature["properties"]
        assert props["outline"] == "exact"
        mine = shapely.contains_xy(shape(feature["geometry"]), ref["lon"], ref["lat"])
        claimed += mine
        assert props["cells"] == mine.sum()
        assert props["slope_max_deg"] == pytest.approx(ref["slope"][mine].max(), abs=0.006)
        assert props["slope_mean_deg"] == pytest.approx(ref["slope"][mine].mean(), abs=0.006)
        assert props["elevation_min_m"] == ref["elevation"][mine].min()
        assert props["elevation_max_m"] == ref["elevation"][mine].max()
        assert props["elevation_mean_m"] == pytest.approx(ref["elevation"][mine].mean(), abs=0.06)
        assert props["score"] == pytest.approx(reference_score(ref, mine).mean(), abs=1e-3)
        check_site(props, CRITERIA["min_settlement_population"])
        scores.append(props["score"])
    assert claimed.max() == 1  # candidates do not overlap
    disagree = (claimed == 1) != meets
    assert meets.sum() > 500 and not (disagree & ~borderline).any()
    assert scores == sorted(scores, reverse=True)
    assert [f["properties"]["rank"] for f in result["features"]] == list(
        range(1, len(scores) + 1))


def reference_score(ref: dict, cells: np.ndarray) -> np.ndarray:
    """docs/processes.md: default weights, reach = the maximum distances given."""
    coverage = np.select([ref["coverage"][cells] == "4G", ref["coverage"][cells] == "3G"],
                         [1.0, 0.5], 0.0)
    return (0.35 * (1 - ref["slope"][cells] / CRITERIA["max_slope_deg"])
            + 0.25 * coverage
            + 0.25 * np.clip(1 - ref["town_m"][cells] / 15000, 0, 1)
            + 0.15 * np.clip(1 - ref["airport_m"][cells] / 60000, 0, 1))


def check_site(props: dict, min_population: int) -> None:
    """The nearest settlement and airport of the candidate's site, geodesically."""
    x, y = props["site_lon"], props["site_lat"]
    towns = [f for f in vector("settlements")
             if f["properties"]["population"] >= min_population]
    distances = [GEOD.inv(x, y, *f["geometry"]["coordinates"])[2] for f in towns]
    nearest = towns[int(np.argmin(distances))]["properties"]
    assert props["settlement_name"] == nearest["name"]
    # the names in Russian and Kyrgyz too (issue 17: screening outputs in the page's language)
    assert (props["settlement_name_ru"], props["settlement_name_ky"]) == (
        nearest["name_ru"], nearest["name_ky"])
    assert (props["settlement_region_ru"], props["settlement_region_ky"]) == (
        nearest["region_ru"], nearest["region_ky"])
    assert props["settlement_distance_km"] == pytest.approx(min(distances) / 1000, abs=6e-4)
    ports = vector("airports")
    distances = [GEOD.inv(x, y, *f["geometry"]["coordinates"])[2] for f in ports]
    port = ports[int(np.argmin(distances))]["properties"]
    assert (props["airport_icao"], props["airport_name_ru"], props["airport_name_ky"]) == (
        port["icao"], port["name_ru"], port["name_ky"])
    assert props["airport_distance_km"] == pytest.approx(min(distances) / 1000, abs=6e-4)


def test_site_screening_over_the_whole_country_ranks_candidates(server):
    response = execute(server, "site-screening", {"coverage": "4G", "limit": 20})
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"].startswith("application/geo+json")
    result = response.json()
    features = result["features"]
    assert 0 < len(features) <= 20 and result["numberMatched"] >= len(features)
    assert result["criteria"]["area"]["kind"] == "country"
    for feature in features:
        props = feature["properties"]
        assert feature["geometry"]["type"] == "Polygon"
        assert props["coverage_4g_share"] == 1.0 and props["area_km2"] >= 1.0
        assert props["slope_max_deg"] <= 15


# -- jobs -----------------------------------------------------------------------------------

def wait_for_job(server, job_id: str, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = server.get(f"/ogc/jobs/{job_id}").json()
        if status["status"] not in ("accepted", "running"):
            return status
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} still {status['status']} after {timeout} s")


def test_async_job_status_results_and_dismissal(server):
    processes = client(server)
    inputs = {"raster": "slope", "region": "KG-T", "bins": 5}
    accepted = processes.execute("zonal-statistics", inputs=inputs, async_=True)
    assert accepted["status"] == "accepted"
    location = processes.response_headers["Location"]
    job_id = accepted["jobID"]
    assert location.endswith(f"/ogc/jobs/{job_id}")
    assert wait_for_job(server, job_id)["status"] == "successful"
    assert uuid.UUID(job_id).version == 4  # random: a job's URL is the key to it
    results = server.get(f"/ogc/jobs/{job_id}/results").json()
    sync = execute(server, "zonal-statistics", inputs).json()
    assert results["statistics"]["value"] == sync  # OWSLib asked for a document response
    dismissed = requests.delete(location, timeout=10)
    assert dismissed.status_code == 200 and dismissed.json()["status"] == "dismissed"
    assert server.get(f"/ogc/jobs/{job_id}").status_code == 404


def test_async_job_with_bad_input_fails_with_the_message(server):
    response = requests.post(f"{server.url}/ogc/processes/zonal-statistics/execution",
                             json={"inputs": {"raster": "population"}}, timeout=10,
                             headers={"Prefer": "respond-async"})
    assert response.status_code == 201
    status = wait_for_job(server, response.json()["jobID"])
    assert status["status"] == "failed" and "unknown raster 'population'" in status["message"]


def test_running_jobs_end_failed_with_a_message_after_a_crash(published_copy):
    first = start_server(published_copy, workers=1)
    try:
        submitted = [requests.post(
            f"{first.url}/ogc/processes/site-screening/execution", timeout=30,
            json={"inputs": {"max_slope_deg": 10 + i}}, headers={"Prefer": "respond-async"}
        ).json()["jobID"] for i in range(4)]
    finally:
        os.killpg(first.process.pid, signal.SIGKILL)  # a crash: no graceful shutdown
        first.process.wait(timeout=10)
    second = start_server(published_copy, workers=1)
    try:
        states = [second.get(f"/ogc/jobs/{job}").json() for job in submitted]
        assert all(s["status"] in ("successful", "failed") for s in states), states
        failed = [s for s in states if s["status"] == "failed"]
        assert failed and all("stopped (restart or crash)" in s["message"] for s in failed)
        assert second.get(f"/ogc/jobs/{failed[0]['jobID']}/results").status_code == 400
    finally:
        stop_server(second)


# -- executions at the same time -------------------------------------------------------------

SMALL_AREA = {"type": "Polygon", "coordinates": [[[74.5, 42.5], [74.6, 42.5], [74.6, 42.6],
                                                  [74.5, 42.6], [74.5, 42.5]]]}
# Two processes whose answers tell them apart: zonal statistics has a histogram, coverage
# statistics a table.
TWO_PROCESSES = (("zonal-statistics", {"raster": "slope", "area": SMALL_AREA}, "histogram"),
                 ("coverage-statistics", {"area": SMALL_AREA}, "table"))


def test_concurrent_executions_of_different_processes_get_their_own_results(server):
    """Regression: pygeoapi's manager kept the running processor on itself, shared by a
    worker's threads, so two executions at once could run each other's process (10 of 40
    answers were another process's, or an error about its inputs)."""
    executions = [TWO_PROCESSES[i % 2] for i in range(40)]

    def run(execution: tuple[str, dict, str]) -> tuple[str, int, list[str]]:
        process, inputs, _ = execution
        response = execute(server, process, inputs)
        return process, response.status_code, sorted(response.json())

    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(run, executions))
    wrong = [(process, status, keys) for (process, status, keys), (_, _, member)
             in zip(answers, executions, strict=True) if status != 200 or member not in keys]
    assert wrong == []


class MeetingJobManager(jobs.SQLiteJobManager):
    """The real job manager, made to hold each execution while it registers its job until the
    other one has reached the same point: the interleaving that mixed executions up."""

    def __init__(self, manager_def: dict, meeting: threading.Barrier):
        super().__init__(manager_def)
        self.meeting = meeting

    def add_job(self, job_metadata: dict) -> str:
        identifier = super().add_job(job_metadata)
        self.meeting.wait(timeout=60)
        return identifier


def test_one_manager_runs_two_executions_at_once_each_with_its_own_process(published_home,
                                                                            tmp_path):
    """The same regression, without timing luck: both executions are in flight together on one
    manager (as in one worker's threads), each gets its own process's answer."""
    store = CatalogStore(published_home)
    manager = MeetingJobManager({"name": JOB_MANAGER, "connection": str(tmp_path / "j.sqlite"),
                                 "processes": process_resources(store)}, threading.Barrier(2))

    def run(execution: tuple[str, dict, str]) -> tuple[str, object]:
        process, inputs, _ = execution
        try:
            _, _, outputs, status, _ = manager.execute_process(process, inputs)
        except ProcessorExecuteError as err:
            return "error", err.message
        return status.value, outputs

    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        answers = list(pool.map(run, TWO_PROCESSES))
    for (process, _, member), (status, outputs) in zip(TWO_PROCESSES, answers, strict=True):
        assert status == "successful", (process, outputs)
        assert member in outputs, (process, sorted(outputs))


# -- bad input ------------------------------------------------------------------------------

SELF_INTERSECTING = {"type": "Polygon", "coordinates": [[[74, 42], [75, 43], [75, 42],
                                                         [74, 43], [74, 42]]]}
BAD_INPUTS = [
    ("zonal-statistics", {"raster": "elevation", "area": SELF_INTERSECTING}, "self-intersection"),
    ("site-screening", {"area": [10, 10, 11, 11]}, "outside kyrgyzstan"),
    ("coverage-statistics", {"area": {"type": "Polygon", "coordinates": [[
        [10, 10], [11, 10], [11, 11], [10, 10]]]}}, "outside kyrgyzstan"),
    ("zonal-statistics", {"raster": "landcover"}, "unknown raster"),
    ("zonal-statistics", {}, "raster: missing"),
    ("zonal-statistics", {"raster": "elevation", "bins": 0}, "bins"),
    ("site-screening", {"min_elevation_m": 3000, "max_elevation_m": 1000}, "greater than"),
    ("site-screening", {"max_slope_deg": 120}, "max_slope_deg"),
    ("site-screening", {"max_slope_deg": 10**400}, "out of range"),
    ("site-screening", {"coverage": "5G"}, "coverage"),
    ("site-screening", {"weights": {"slope": -1}}, "slope"),
    ("site-screening", {"max_sloop": 5}, "unknown input 'max_sloop'"),
    ("site-screening", {"area": [75, 42, 74, 43]}, "west must be less than east"),
    ("site-screening", {"area": [74, 42, 75, 43], "region": "KG-C"}, "either area or region"),
    ("coverage-statistics", {"region": "KG-X"}, "not a region code"),
    ("coverage-statistics", {"area": {"type": "Point", "coordinates": [74, 42]}}, "polygon"),
]


@pytest.mark.parametrize("process, inputs, words", BAD_INPUTS)
def test_invalid_inputs_answer_400_with_a_message(server, process, inputs, words):
    response = execute(server, process, inputs)
    assert response.status_code == 400, response.text
    assert words in response.json()["description"].lower()


# Refusals a person can provoke from the analysis form carry a message code and its params,
# for the portal to say them in the page's language; the description stays English.
CODED_REFUSALS = [
    ("site-screening", {"min_elevation_m": 3000, "max_elevation_m": 1000, "region": "KG-T"},
     "range_order", {"low": "min_elevation_m", "low_value": 3000, "high": "max_elevation_m",
                     "high_value": 1000}),
    ("site-screening", {"max_slope_deg": 120, "region": "KG-T"}, "out_of_range",
     {"name": "max_slope_deg", "value": 120, "low": 0, "high": 90}),
    ("coverage-statistics", {"area": [10, 10, 11, 11]}, "outside_country", {}),
]


@pytest.mark.parametrize("process, inputs, code, params", CODED_REFUSALS)
def test_refusals_the_portal_shows_carry_a_message_code_and_params(server, process, inputs,
                                                                    code, params):
    response = execute(server, process, inputs)
    assert response.status_code == 400, response.text
    body = response.json()
    assert (body["messageCode"], body["params"]) == (code, params)
    assert body["code"] == "InvalidParameterValue"
    assert body["description"] == MESSAGES[code].format(**params)


def test_every_message_code_is_said_in_each_language_with_its_params():
    """A code the portal has no text for would show the English description on ky/ru pages."""
    table = i18n.strings()
    for code, english in MESSAGES.items():
        texts = table.get(f"problem.{code}")
        assert texts and set(texts) == set(i18n.LANGUAGES), code
        names = {name for _, name, _, _ in string.Formatter().parse(english) if name}
        for language, text in texts.items():
            used = {name for _, name, _, _ in string.Formatter().parse(text) if name}
            assert used == names, (code, language, used, names)


@pytest.mark.parametrize("path, body, words", [
    ("/ogc/processes/site-screening/execution", [1, 2], "json object"),
    ("/ogc/processes/site-screening/execution", {"inputs": {}, "mode": "async"}, "unknown member"),
    ("/ogc/processes/site-screening/execution",
     {"inputs": {}, "subscriber": {"successUri": "http://127.0.0.1:9/"}}, "callbacks"),
    ("/ogc/processes/site-screening/execution", {"inputs": {}, "response": "zip"}, "response"),
    ("/ogc/processes/zonal-statistics/execution",
     {"inputs": {"raster": "slope"}, "outputs": {"histogram": {}}}, "unknown output"),
    ("/ogc/processes/site-screening/execution?dry-run=1", {"inputs": {}}, "unknown query"),
])
def test_malformed_execute_requests_answer_400(server, path, body, words):
    response = requests.post(server.url + path, json=body, timeout=30)
    assert response.status_code == 400, response.text
    assert words in response.json()["description"].lower()


def test_unknown_job_and_process_answer_404_and_filters_400(server):
    assert server.get("/ogc/jobs/no-such-job").status_code == 404
    assert server.get("/ogc/processes/no-such-process").status_code == 404
    listing = server.get("/ogc/jobs")  # jobs are never listed: their URLs are capabilities
    assert listing.status_code == 404 and "does not list jobs" in listing.json()["description"]


# -- parts ----------------------------------------------------------------------------------

def test_connected_components_match_a_flood_fill():
    from catalog.processes.labels import label_components

    rng = np.random.default_rng(7)
    for shape_, share in (((40, 60), 0.55), ((1, 50), 0.5), ((50, 1), 0.5), ((30, 30), 0.8)):
        mask = rng.random(shape_) < share
        labels, count = label_components(mask)
        expected, expected_count = flood_fill(mask)
        assert count == expected_count and (labels == expected).all()


def flood_fill(mask: np.ndarray) -> tuple[np.ndarray, int]:
    """4-connected components numbered in row-major order of their first cell."""
    labels = np.zeros(mask.shape, dtype=int)
    count = 0
    for start in zip(*np.nonzero(mask), strict=True):
        if labels[start]:
            continue
        count += 1
        labels[start] = count
        todo = [start]
        while todo:
            row, col = todo.pop()
            for r, c in ((row + 1, col), (row - 1, col), (row, col + 1), (row, col - 1)):
                if 0 <= r < mask.shape[0] and 0 <= c < mask.shape[1] and mask[r, c] \
                        and not labels[r, c]:
                    labels[r, c] = count
                    todo.append((r, c))
    return labels, count


def test_job_store_forgets_the_oldest_results_beyond_its_bounds(tmp_path, monkeypatch):
    from catalog.processes import jobs

    monkeypatch.setattr(jobs, "KEEP_RESULT_BYTES", 2500)
    manager = jobs.SQLiteJobManager({"name": "jobs", "connection": str(tmp_path / "j.sqlite")})
    now = time.time()

    def created(minutes_ago: int) -> str:
        return time.strftime("%Y-%m-%dT%H:%M:%S.000000Z", time.gmtime(now - minutes_ago * 60))

    for number in range(5):
        manager.add_job({"identifier": f"job-{number}", "process_id": "p",
                         "status": "successful", "created": created(10 - number)})
        manager.update_job(f"job-{number}", {"result": b"x" * 1000,
                                             "mimetype": "application/geo+json"})
    manager.add_job({"identifier": "job-5", "process_id": "p", "status": "accepted",
                     "created": created(1)})
    kept = [j["identifier"] for j in manager.get_jobs()["jobs"]]
    # job-5 is live and job-4, job-3 fit the bound; job-5 itself was added by this process,
    # which is alive, so it stays accepted.
    assert kept == ["job-5", "job-4", "job-3"]
    assert manager.get_job("job-5")["status"] == "accepted"
    assert manager.get_job_result("job-4") == ("application/geo+json", b"x" * 1000)


def _boot_job_manager(connection: str, barrier, answers) -> None:
    barrier.wait(timeout=30)
    try:
        jobs.SQLiteJobManager({"name": JOB_MANAGER, "connection": connection,
                               "output_dir": None})
        answers.put("ok")
    except Exception as error:  # noqa: BLE001 - the answer is what the test compares
        answers.put(repr(error))


def test_workers_booting_at_once_all_get_the_job_manager(tmp_path):
    """gunicorn's workers build the job manager at the same moment on a fresh home. SQLite
    answered "database is locked" to concurrent switches to WAL (13 of 180 boots here), and
    pygeoapi's OpenAPI builder then left every process out of /ogc/openapi without a word."""
    # forkserver, not fork: pytest's process has threads by now (servers, pools), and a child
    # forked while one of them held a lock hung for ever (seen in CI), which also kept the
    # interpreter from exiting. The fork server is a fresh single-threaded process.
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["tests.test_processes"])
    failures = []
    for attempt in range(40):
        connection = str(tmp_path / str(attempt) / "jobs" / "jobs.sqlite")
        barrier, answers = context.Barrier(3), context.Queue()
        workers = [context.Process(target=_boot_job_manager, args=(connection, barrier, answers),
                                   daemon=True)
                   for _ in range(3)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(timeout=60)
        hung = [worker for worker in workers if worker.is_alive()]
        for worker in hung:
            worker.kill()
        assert not hung, f"{len(hung)} of 3 workers still booting after 60 s"
        failures += [answer for answer in (answers.get(timeout=10) for _ in workers)
                     if answer != "ok"]
    assert failures == []
