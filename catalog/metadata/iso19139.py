"""ISO 19139 (ISO 19115:2003 in XML) for one dataset version, written with pygeometa.

    iso19139_xml(record, urls, assets) -> bytes

The record's manifest becomes pygeometa's metadata control file (MCF); pygeometa renders it in
English. Its template takes one alternate language and names that locale wrongly (`locale-fr`
for any language), so the Russian and Kyrgyz title, abstract and keywords are added afterwards
with lxml as PT_FreeText, each pointing to its own PT_Locale. Keywords are not translations of
one another word for word (the lists differ in length), so each language has its own
gmd:descriptiveKeywords block whose keywords are PT_FreeText in that language only. The
document validates against the ISO 19139 XSDs (tests/test_iso19139.py, offline, with the XSDs
pycsw's wheel carries).
"""

from __future__ import annotations

from lxml import etree
from pygeometa.schemas.iso19139 import ISO19139OutputSchema

from catalog.core.assets import AssetLocator
from catalog.core.languages import FALLBACK_LANGUAGE, LANGUAGES
from catalog.core.record import Record
from catalog.manifest import licence_url
from catalog.metadata import vocabularies as vocab
from catalog.metadata.dcat import provenance_text, published_files
from catalog.metadata.links import CatalogUrls

GMD = "http://www.isotc211.org/2005/gmd"
GCO = "http://www.isotc211.org/2005/gco"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
NS = {"gmd": GMD, "gco": GCO}
LANGUAGE_LIST = "http://www.loc.gov/standards/iso639-2/"
KEYWORD_TYPE_LIST = ("http://www.isotc211.org/2005/resources/Codelist/gmxCodelists.xml"
                     "#MD_KeywordTypeCode")
CHARSET_LIST = ("http://www.isotc211.org/2005/resources/Codelist/gmxCodelists.xml"
                "#MD_CharacterSetCode")

# ISO 19115 topic categories of each theme (several where a theme spans them).
TOPICS = {"land": ("elevation", "boundaries"),
          "infrastructure": ("transportation", "location"),
          "coverage": ("utilitiesCommunication",)}
# OGR geometry types -> ISO 19115 MD_GeometricObjectTypeCode.
GEOMETRY_OBJECTS = {"point": "point", "linestring": "curve", "polygon": "surface"}
DOWNLOAD = "WWW:DOWNLOAD-1.0-http--download"


def iso19139_xml(record: Record, urls: CatalogUrls, assets: AssetLocator) -> bytes:
    """The version's ISO 19139 document (UTF-8)."""
    rendered = ISO19139OutputSchema().write(_mcf(record, urls, assets))
    parser = etree.XMLParser(remove_blank_text=True, resolve_entities=False, no_network=True)
    root = etree.fromstring(rendered.encode("utf-8"), parser)
    _add_translations(root, record)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)


def _iso_language(language: str) -> str:
    return vocab.LANGUAGES[language][0].lower()  # ISO 639-2/B equals 639-3 for these three


def _mcf(record: Record, urls: CatalogUrls, assets: AssetLocator) -> dict:
    manifest = record.manifest
    english = _iso_language(FALLBACK_LANGUAGE)
    extent = manifest.temporal_extent
    steward = {"organization": {english: manifest.steward.organisation},
               "individualname": {english: manifest.steward.name},
               "email": {english: manifest.steward.email}}
    return {
        "mcf": {"version": "1.0"},
        "metadata": {
            "identifier": record.id, "language": english, "charset": "utf8",
            "hierarchylevel": "dataset", "dates": {"creation": record.published},
            "dataseturi": urls.dataset_page(record.id),
        },
        "spatial": _spatial(record),
        "identification": {
            "language": english, "charset": "utf8",
            "title": {english: manifest.title[FALLBACK_LANGUAGE]},
            "abstract": {english: manifest.description[FALLBACK_LANGUAGE].strip()},
            "edition": f"version {record.version}",
            "dates": {"publication": record.published},
            "keywords": {"default": {
                "keywords": {english: list(manifest.keywords.get(FALLBACK_LANGUAGE, []))},
                "keywords_type": "theme"}},
            "topiccategory": list(TOPICS[manifest.theme]),
            "extents": {
                "spatial": [{"bbox": list(record.bbox), "crs": 4326}],
                "temporal": [{"begin": extent.start.isoformat(),
                              "end": extent.end.isoformat() if extent.end else "now"}],
            },
            "accessconstraints": "otherRestrictions",
            "rights": {english: manifest.attribution},
            "license": {"name": manifest.licence, "url": licence_url(manifest.licence)},
            "status": "completed" if extent.end else "onGoing",
            "maintenancefrequency": manifest.update_frequency,  # already an ISO 19115 code
            "url": urls.dataset_page(record.id),
        },
        # The steward wrote the manifest: the metadata's author and the data's contact.
        "contact": {"author": steward, "pointOfContact": steward},
        "distribution": _distribution(record, urls, assets),
        "dataquality": {"scope": {"level": "dataset"},
                        "lineage": {"statement": {english: provenance_text(record)}}},
    }


def _spatial(record: Record) -> dict:
    if not record.is_vector:
        return {"datatype": "grid"}
    kind = record.vector.geometry_type.lower().removeprefix("multi").removeprefix("3d ")
    return {"datatype": "vector", "geomtype": GEOMETRY_OBJECTS.get(kind, "complex")}


def _distribution(record: Record, urls: CatalogUrls, assets: AssetLocator) -> dict:
    english = _iso_language(FALLBACK_LANGUAGE)
    links = {}
    # A time series' or mosaic's items share their asset key: one link per item's file.
    for name, asset in published_files(record):
        file_type = vocab.file_type(asset.media_type)
        title = asset.title if name == asset.key else f"{asset.title} ({name})"
        links[name] = {
            "url": assets.url(record, asset, urls.base), "type": DOWNLOAD,
            "name": {english: _no_commas(title)},
            "description": {english: asset.media_type},
            "function": "download", "format": file_type[1] if file_type else asset.media_type,
        }
    links["ogcapi"] = {"url": urls.ogc_collection(record.id), "type": "OGC:API",
                       "name": {english: "OGC API collection"}, "function": "information"}
    links["stac"] = {"url": urls.stac_collection(record.id), "type": "STAC:Collection",
                     "name": {english: "STAC collection"}, "function": "information"}
    links["dcat"] = {"url": urls.dataset_dcat(record.id), "type": "WWW:LINK",
                     "name": {english: "DCAT-AP 3 (Turtle; RDF/XML; JSON-LD)"},
                     "function": "information"}
    return links


def _no_commas(text: str) -> str:
    """pycsw 2.6 keeps an online resource as 'name,description,protocol,url' in one string,
    so a comma in a name shifts the protocol and URL CSW clients read: none in names."""
    return text.replace(",", ";")


# -- Russian and Kyrgyz: PT_Locale and PT_FreeText ---------------------------------------


def _add_translations(root: etree._Element, record: Record) -> None:
    others = [language for language in LANGUAGES if language != FALLBACK_LANGUAGE]
    _add_locales(root, others)
    citation = root.find("gmd:identificationInfo/gmd:MD_DataIdentification", NS)
    texts = {"gmd:citation/gmd:CI_Citation/gmd:title": record.manifest.title,
             "gmd:abstract": record.manifest.description}
    for path, translations in texts.items():
        element = citation.find(path, NS)
        free_text = etree.SubElement(element, f"{{{GMD}}}PT_FreeText")
        element.set(f"{{{XSI}}}type", "gmd:PT_FreeText_PropertyType")
        for language in others:
            if language in translations:
                _localised(free_text, language, translations[language])
    _add_keywords(citation, record, others)


def _localised(free_text: etree._Element, language: str, text: str) -> None:
    group = etree.SubElement(free_text, f"{{{GMD}}}textGroup")
    string = etree.SubElement(group, f"{{{GMD}}}LocalisedCharacterString",
                              locale=f"#locale-{_iso_language(language)}")
    string.text = text.strip()


def _add_keywords(identification: etree._Element, record: Record,
                  languages: list[str]) -> None:
    """A gmd:descriptiveKeywords block per language after pygeometa's English one (the
    schema's order), each keyword a PT_FreeText in that language."""
    anchor = identification.findall("gmd:descriptiveKeywords", NS)[-1]
    for language in languages:
        words = record.manifest.keywords.get(language) or []
        if not words:
            continue
        block = etree.Element(f"{{{GMD}}}descriptiveKeywords")
        keywords = etree.SubElement(block, f"{{{GMD}}}MD_Keywords")
        for word in words:
            keyword = etree.SubElement(keywords, f"{{{GMD}}}keyword")
            keyword.set(f"{{{XSI}}}type", "gmd:PT_FreeText_PropertyType")
            _localised(etree.SubElement(keyword, f"{{{GMD}}}PT_FreeText"), language, word)
        kind = etree.SubElement(etree.SubElement(keywords, f"{{{GMD}}}type"),
                                f"{{{GMD}}}MD_KeywordTypeCode", codeList=KEYWORD_TYPE_LIST,
                                codeListValue="theme")
        kind.text = "theme"
        anchor.addnext(block)
        anchor = block


def _add_locales(root: etree._Element, languages: list[str]) -> None:
    """gmd:locale elements go after gmd:dataSetURI (the schema's order)."""
    anchor = root.find("gmd:dataSetURI", NS)
    for language in reversed(languages):
        code = _iso_language(language)
        locale = etree.Element(f"{{{GMD}}}locale")
        pt_locale = etree.SubElement(locale, f"{{{GMD}}}PT_Locale", id=f"locale-{code}")
        language_code = etree.SubElement(etree.SubElement(pt_locale, f"{{{GMD}}}languageCode"),
                                         f"{{{GMD}}}LanguageCode", codeList=LANGUAGE_LIST,
                                         codeListValue=code)
        language_code.text = code
        charset = etree.SubElement(etree.SubElement(pt_locale, f"{{{GMD}}}characterEncoding"),
                                   f"{{{GMD}}}MD_CharacterSetCode", codeList=CHARSET_LIST,
                                   codeListValue="utf8")
        charset.text = "utf8"
        anchor.addnext(locale)
