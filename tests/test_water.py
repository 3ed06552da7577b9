"""Lakes and rivers (datasets/derive_water.py) against known facts, and site screening's water
rules (never a lake, distance to rivers and lakes) against an independent calculation on the
source files, through the real server."""

from __future__ import annotations

import numpy as np
import pytest
import requests
import shapely
from pyproj import Transformer
from rasterio.io import MemoryFile
from shapely.geometry import shape
from shapely.ops import nearest_points

from catalog.core.webmercator import WORLD, lonlat_to_mercator
from catalog.portal.tiles import WATER_RGB
from tests.test_processes import GEOD, raster, vector

# Surface areas (km²) of the lakes: Issyk-Kul 6,236 (Encyclopaedia Britannica, "Issyk-Kul");
# Song-Kul 270 and Chatyr-Kul 175 (Great Soviet Encyclopedia, "Сонкёль", "Чатыр-Куль").
LAKE_KM2 = {"issyk-kul": 6236, "song-kul": 270, "chatyr-kul": 175}
# The Balykchy and Tossor shores of Issyk-Kul, where the DEM's flat lake surface made
# candidates 11-64 % water before the lakes layer was used.
LAKE_SHORES = {"Balykchy": [75.9, 42.2, 76.6, 42.7], "Tossor": [77.2, 42.0, 77.8, 42.4]}
# An azimuthal equidistant projection centred on the test area: distances within 0.1 %.
TO_AEQD = Transformer.from_crs("EPSG:4326", "+proj=aeqd +lat_0=42.45 +lon_0=76.25 "
                               "+datum=WGS84", always_xy=True)


def screen(server, inputs: dict) -> dict:
    response = requests.post(f"{server.url}/ogc/processes/site-screening/execution",
                             json={"inputs": inputs}, timeout=120)
    assert response.status_code == 200, response.text
    return response.json()


def lakes():
    return {f["properties"]["lake_id"]: shape(f["geometry"]) for f in vector("lakes")}


def km2(geometry) -> float:
    return abs(GEOD.geometry_area_perimeter(geometry)[0]) / 1e6


def cells_of(feature, lon, lat, valid) -> np.ndarray:
    return shapely.contains_xy(shape(feature["geometry"]), lon, lat) & valid


def grid_in(area: list[float]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(valid, lon, lat) of the DEM cells whose centre lies in the bbox area."""
    _, valid, lon, lat = raster("elevation")
    west, south, east, north = area
    inside = (lon > west) & (lon < east) & (lat > south) & (lat < north)
    return valid[inside], lon[inside], lat[inside]


def test_lakes_match_their_known_areas_and_places(server):
    found = lakes()
    assert sorted(found) == ["chatyr-kul", "issyk-kul", "song-kul", "toktogul"]
    for lake_id, official in LAKE_KM2.items():
        assert km2(found[lake_id]) == pytest.approx(official, rel=0.08), lake_id
    assert found["issyk-kul"].contains(shapely.Point(77.30, 42.45))
    assert not found["issyk-kul"].contains(shapely.Point(76.19, 42.46))  # Balykchy, on shore
    served = server.get("/ogc/collections/lakes/items", params={"f": "json"}).json()
    assert sorted(f["properties"]["name_ky"] for f in served["features"]) == sorted(
        ["Ысык-Көл", "Соң-Көл", "Чатыр-Көл", "Токтогул суу сактагычы"])


def test_rivers_pass_the_river_towns():
    rivers = shapely.union_all([shape(f["geometry"]) for f in vector("rivers")])
    # Naryn and Tash-Kumyr stand on the Naryn river, Talas on the Talas.
    for lon, lat, km in ((75.9911, 41.4287, 1.0), (72.217, 41.346, 1.0), (72.2425, 42.5228, 3)):
        nearest = nearest_points(rivers, shapely.Point(lon, lat))[0]
        assert GEOD.inv(lon, lat, nearest.x, nearest.y)[2] < km * 1000
    assert len(vector("rivers")) == 30


@pytest.mark.parametrize("shore", sorted(LAKE_SHORES))
def test_site_screening_never_proposes_water(server, shore):
    result = screen(server, {"area": LAKE_SHORES[shore], "limit": 100})
    assert result["numberReturned"] > 3
    water = shapely.union_all(list(lakes().values()))
    valid, lon, lat = grid_in(LAKE_SHORES[shore])
    in_lake = shapely.contains_xy(water, lon, lat)
    for feature in result["features"]:
        assert not (cells_of(feature, lon, lat, valid) & in_lake).any(), feature["id"]
        props = feature["properties"]
        assert not water.contains(shapely.Point(props["site_lon"], props["site_lat"]))
    assert result["sources"]["water"] == ["lakes", "rivers"]
    assert "never candidates" in result["notes"]["water"]


def test_distance_to_rivers_and_lakes_criterion(server):
    area = LAKE_SHORES["Balykchy"]
    free = screen(server, {"area": area, "limit": 500, "min_area_km2": 0})
    near = screen(server, {"area": area, "limit": 500, "min_area_km2": 0,
                           "max_water_distance_km": 2})
    water = shapely.union_all([*lakes().values(), *(shape(f["geometry"])
                                                    for f in vector("rivers"))])
    projected = shapely.transform(water, lambda xy: np.column_stack(TO_AEQD.transform(*xy.T)))
    shapely.prepare(projected)
    valid, lon, lat = grid_in(area)

    def distances(result) -> np.ndarray:
        chosen = np.zeros(valid.shape, dtype=bool)
        for feature in result["features"]:
            chosen |= cells_of(feature, lon, lat, valid)
        x, y = TO_AEQD.transform(lon[chosen], lat[chosen])
        return shapely.distance(projected, shapely.points(x, y))

    assert distances(near).max() <= 2000 * 1.002
    assert distances(free).max() > 2000  # the criterion removed cells
    # The cells within 2 km are kept: near's cells are free's cells closer than 2 km.
    free_near = (distances(free) < 2000 * 0.998).sum()
    assert free_near <= distances(near).size <= (distances(free) <= 2000 * 1.002).sum()
    for feature in near["features"]:
        site = feature["properties"]
        x, y = TO_AEQD.transform(site["site_lon"], site["site_lat"])
        assert site["site_water_distance_km"] == pytest.approx(
            shapely.distance(projected, shapely.Point(x, y)) / 1000, abs=0.01)


def basemap_pixel(server, lon: float, lat: float, zoom: int = 9) -> tuple[int, ...]:
    """The colour of the relief basemap at a place, fetched the way the /ogc pages' maps fetch
    it (/ogc/basemap redirects to the live DEM's relief tiles, which the portal draws too)."""
    x, y = lonlat_to_mercator(np.array([lon]), np.array([lat]))
    size = 2 * WORLD / 2 ** zoom
    column, row = (x[0] + WORLD) / size, (WORLD - y[0]) / size
    response = requests.get(f"{server.url}/ogc/basemap/{zoom}/{int(column)}/{int(row)}.png",
                            timeout=60)
    assert response.status_code == 200, response.text
    with MemoryFile(response.content) as memory, memory.open() as png:
        rgba = png.read()
    pixel = (int((row % 1) * 256), int((column % 1) * 256))
    return tuple(int(band[pixel]) for band in rgba)


@pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning")  # a PNG
def test_the_relief_basemap_draws_lakes_as_water(server):
    """The DEM's flat lake surfaces were tinted as low land on every map drawing the relief
    (the /ogc pages' maps have no other water layer): the lakes layer is painted over it."""
    water = (*WATER_RGB, 255)
    assert basemap_pixel(server, 77.3, 42.45) == water  # the middle of Issyk-Kul
    assert basemap_pixel(server, 75.2, 41.85) == water  # Song-Kul
    assert basemap_pixel(server, 74.6, 42.87) != water  # Bishkek
