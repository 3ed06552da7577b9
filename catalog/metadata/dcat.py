"""DCAT-AP 3 (with GeoDCAT-AP's spatial properties) written with rdflib from published records.

    catalog_graph(records, urls, assets, info)   the whole catalog: a dcat:Catalog, one
                                                  dcat:Dataset per live dataset, the services
    dataset_graph(record, urls, assets)           one dataset, its distributions and services
    serialize(graph, form)                        Turtle, RDF/XML or JSON-LD

Every dataset has its texts in each catalog language as language-tagged literals, its licence,
provenance, spatial extent (the country, and a bounding box as GeoSPARQL WKT) and temporal
extent, a distribution per published file (with size and SHA-256) and one per API that serves
it, and the OGC API and STAC data services. The document validates against the DCAT-AP 3.0.1
SHACL shapes (tests/test_dcat.py runs pyshacl offline).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from rdflib import BNode, Graph, Literal, Namespace, URIRef
from rdflib.namespace import DCTERMS, FOAF, PROV, RDF, RDFS, SKOS, XSD

from catalog.core.assets import AssetLocator
from catalog.core.languages import LANGUAGES
from catalog.core.record import Asset, Record
from catalog.manifest import licence_url
from catalog.metadata import vocabularies as vocab
from catalog.metadata.links import CatalogInfo, CatalogUrls

# rdflib's DCAT namespace is closed at DCAT 2 (no dcat:version): an open one instead.
DCAT = Namespace("http://www.w3.org/ns/dcat#")
LOCN = Namespace("http://www.w3.org/ns/locn#")
GSP = Namespace("http://www.opengis.net/ont/geosparql#")
VCARD = Namespace("http://www.w3.org/2006/vcard/ns#")
SPDX = Namespace("http://spdx.org/rdf/terms#")
DCATAP = Namespace("http://data.europa.eu/r5r/")
CRS84 = URIRef("http://www.opengis.net/def/crs/OGC/1.3/CRS84")
WKT_CRS84 = f"<{CRS84}> "

OGC_API_FEATURES = "http://www.opengis.net/spec/ogcapi-features-1/1.0"
STAC_API = "https://api.stacspec.org/v1.0.0/core"


@dataclass(frozen=True)
class RdfForm:
    """One serialisation: its name in `f=`, media type and rdflib format."""

    name: str
    media_type: str
    rdflib_format: str


FORMS = (RdfForm("ttl", "text/turtle", "turtle"),
         RdfForm("rdf", "application/rdf+xml", "xml"),
         RdfForm("jsonld", "application/ld+json", "json-ld"))


def serialize(graph: Graph, form: RdfForm) -> bytes:
    return graph.serialize(format=form.rdflib_format, encoding="utf-8")


def catalog_graph(records: Sequence[Record], urls: CatalogUrls, assets: AssetLocator,
                  info: CatalogInfo) -> Graph:
    """The whole catalog as DCAT-AP 3."""
    graph = _new_graph()
    catalog = URIRef(f"{urls.dcat}#catalog")
    graph.add((catalog, RDF.type, DCAT.Catalog))
    _texts(graph, catalog, DCTERMS.title, info.title)
    _texts(graph, catalog, DCTERMS.description, info.description)
    graph.add((catalog, DCTERMS.publisher, _agent(graph, info.publisher)))
    graph.add((catalog, FOAF.homepage, _document(graph, urls.home)))
    for language in LANGUAGES:
        graph.add((catalog, DCTERMS.language, _language(graph, language)))
    graph.add((catalog, DCTERMS.spatial, _country(graph)))
    graph.add((catalog, DCAT.themeTaxonomy, _theme_scheme(graph)))
    if records:
        latest = max(record.published_at for record in records)
        graph.add((catalog, DCTERMS.modified, Literal(latest.isoformat(),
                                                      datatype=XSD.dateTime)))
    services = _services(graph, urls)
    for service in services:
        graph.add((catalog, DCAT.service, service))
    for record in records:
        dataset = _dataset(graph, record, urls, assets, services)
        graph.add((catalog, DCAT.dataset, dataset))
    return graph


def dataset_graph(record: Record, urls: CatalogUrls, assets: AssetLocator) -> Graph:
    """One dataset as DCAT-AP 3: the dataset, its distributions and the services serving it."""
    graph = _new_graph()
    _dataset(graph, record, urls, assets, _services(graph, urls))
    return graph


def dataset_iri(urls: CatalogUrls, dataset_id: str) -> URIRef:
    return URIRef(f"{urls.dataset_page(dataset_id)}#dataset")


# -- the dataset ---------------------------------------------------------------------------


def _dataset(graph: Graph, record: Record, urls: CatalogUrls, assets: AssetLocator,
             services: Sequence[URIRef]) -> URIRef:
    manifest = record.manifest
    dataset = dataset_iri(urls, record.id)
    graph.add((dataset, RDF.type, DCAT.Dataset))
    graph.add((dataset, DCTERMS.identifier, Literal(record.id)))
    _texts(graph, dataset, DCTERMS.title, manifest.title)
    _texts(graph, dataset, DCTERMS.description, manifest.description)
    for language, words in manifest.keywords.items():
        for word in words:
            graph.add((dataset, DCAT.keyword, Literal(word, lang=language)))
    for theme in vocab.DATA_THEMES[manifest.theme]:
        graph.add((dataset, DCAT.theme, _concept(graph, "data-theme", theme)))
    for language in LANGUAGES:
        graph.add((dataset, DCTERMS.language, _language(graph, language)))
    graph.add((dataset, DCAT.landingPage, _document(graph, urls.dataset_page(record.id))))
    graph.add((dataset, DCTERMS.publisher, _agent(graph, manifest.steward.organisation)))
    graph.add((dataset, DCAT.contactPoint, _contact(graph, manifest.steward)))
    graph.add((dataset, DCTERMS.accessRights, _access_public(graph)))
    graph.add((dataset, DCTERMS.accrualPeriodicity, _frequency(graph, manifest.update_frequency)))
    graph.add((dataset, DCTERMS.modified, Literal(record.published, datatype=XSD.dateTime)))
    graph.add((dataset, DCAT.version, Literal(str(record.version))))
    graph.add((dataset, DCTERMS.spatial, _country(graph)))
    graph.add((dataset, DCTERMS.spatial, _bbox_location(graph, record.bbox)))
    graph.add((dataset, DCTERMS.temporal, _period(graph, record)))
    graph.add((dataset, DCTERMS.conformsTo, _reference_system(graph, record)))
    graph.add((dataset, DCTERMS.provenance, _provenance(graph, record)))
    for source in manifest.provenance.derived_from:
        graph.add((dataset, PROV.wasDerivedFrom, URIRef(source.href)))
        graph.add((URIRef(source.href), RDFS.label, Literal(source.title, lang="en")))
    licence = _licence(graph, manifest.licence)
    for name, asset in published_files(record):
        graph.add((dataset, DCAT.distribution,
                   _file_distribution(graph, record, name, asset, urls, assets, licence)))
    graph.add((dataset, DCAT.distribution,
               _api_distribution(graph, record, urls, services[0], licence)))
    for service in services:
        graph.add((service, DCAT.servesDataset, dataset))
    return dataset


def published_files(record: Record) -> list[tuple[str, Asset]]:
    """The files a distribution each stands for, with the name that tells them apart in the
    dataset: a vector's or a single raster's assets by their key; for a raster of several items
    (a time series, a mosaic) each item's file by item and key, as its STAC item lists it, and
    the one layer built from them (a time series' months stacked as bands, a mosaic merged:
    the file the OGC API distribution serves), a download of its own."""
    if record.is_vector or len(record.rasters) <= 1:
        return [(asset.key, asset) for asset in record.assets]
    files = [(f"{facts.item_id}-{facts.asset.key}", facts.asset)
             for facts in record.rasters if facts.asset is not None]
    if record.layer is not None and record.layer.asset is not None:
        files.append((record.layer.asset.key, record.layer.asset))
    return files


def _file_distribution(graph: Graph, record: Record, name: str, asset: Asset,
                       urls: CatalogUrls, assets: AssetLocator, licence: URIRef) -> URIRef:
    distribution = URIRef(f"{urls.dataset_page(record.id)}#distribution-{name}")
    download = URIRef(assets.url(record, asset, urls.base))
    graph.add((distribution, RDF.type, DCAT.Distribution))
    graph.add((distribution, DCTERMS.title, Literal(asset.title, lang="en")))
    graph.add((distribution, DCAT.accessURL, download))
    graph.add((distribution, DCAT.downloadURL, download))
    graph.add((distribution, DCAT.mediaType, _media_type(graph, asset.media_type)))
    file_type = vocab.file_type(asset.media_type)
    if file_type:
        graph.add((distribution, DCTERMS.format,
                   _concept(graph, "file-type", file_type, DCTERMS.MediaTypeOrExtent)))
    graph.add((distribution, DCAT.byteSize,
               Literal(asset.size, datatype=XSD.nonNegativeInteger)))
    graph.add((distribution, SPDX.checksum, _checksum(graph, asset.checksum)))
    graph.add((distribution, DCTERMS.license, licence))
    graph.add((distribution, DCTERMS.modified, Literal(record.published,
                                                         datatype=XSD.dateTime)))
    return distribution


def _api_distribution(graph: Graph, record: Record, urls: CatalogUrls, service: URIRef,
                      licence: URIRef) -> URIRef:
    """The dataset as an OGC API collection (features or coverage), through the service."""
    distribution = URIRef(f"{urls.dataset_page(record.id)}#distribution-ogcapi")
    graph.add((distribution, RDF.type, DCAT.Distribution))
    graph.add((distribution, DCTERMS.title, Literal("OGC API collection", lang="en")))
    graph.add((distribution, DCAT.accessURL, URIRef(urls.ogc_collection(record.id))))
    graph.add((distribution, DCAT.accessService, service))
    graph.add((distribution, DCTERMS.license, licence))
    return distribution


# -- services --------------------------------------------------------------------------------


def _services(graph: Graph, urls: CatalogUrls) -> list[URIRef]:
    """The OGC API and the STAC API, first the OGC API (the API distributions point to it)."""
    return [
        _service(graph, urls.ogc, urls.ogc_openapi, OGC_API_FEATURES,
                 "OGC API (Features, Coverages, Processes, Records)"),
        _service(graph, urls.stac, urls.stac_openapi, STAC_API, "STAC API"),
    ]


def _service(graph: Graph, endpoint: str, description: str, standard: str,
             title: str) -> URIRef:
    service = URIRef(f"{endpoint}#service")
    graph.add((service, RDF.type, DCAT.DataService))
    graph.add((service, DCTERMS.title, Literal(title, lang="en")))
    for predicate, url in ((DCAT.endpointURL, endpoint), (DCAT.endpointDescription, description)):
        graph.add((service, predicate, URIRef(url)))
        graph.add((URIRef(url), RDF.type, RDFS.Resource))  # the class DCAT-AP checks
    graph.add((service, DCTERMS.conformsTo, _standard(graph, standard)))
    return service


# -- nodes the dataset refers to -------------------------------------------------------------


def _new_graph() -> Graph:
    graph = Graph()
    for prefix, namespace in (("dcat", DCAT), ("dct", DCTERMS), ("foaf", FOAF),
                              ("skos", SKOS), ("vcard", VCARD), ("prov", PROV),
                              ("locn", LOCN), ("gsp", GSP), ("spdx", SPDX),
                              ("dcatap", DCATAP)):
        graph.bind(prefix, namespace)
    return graph


def _texts(graph: Graph, subject: URIRef, predicate: URIRef, texts: dict[str, str]) -> None:
    for language, text in texts.items():
        graph.add((subject, predicate, Literal(text.strip(), lang=language)))


def _concept(graph: Graph, table: str, entry: tuple[str, str], *classes: URIRef) -> URIRef:
    """A concept of an EU authority table (code, label), with its scheme and label (what the
    vocabulary shapes check) and the classes DCAT-AP's range shapes look for."""
    code, label = entry
    concept = URIRef(vocab.authority(table, code))
    for class_ in (SKOS.Concept, *classes):
        graph.add((concept, RDF.type, class_))
    graph.add((concept, SKOS.prefLabel, Literal(label, lang="en")))
    graph.add((concept, SKOS.inScheme, URIRef(vocab.scheme(table))))
    return concept


def _language(graph: Graph, language: str) -> URIRef:
    return _concept(graph, "language", vocab.LANGUAGES[language], DCTERMS.LinguisticSystem)


def _theme_scheme(graph: Graph) -> URIRef:
    scheme = URIRef(vocab.scheme("data-theme"))
    graph.add((scheme, RDF.type, SKOS.ConceptScheme))
    graph.add((scheme, DCTERMS.title, Literal("Data theme", lang="en")))
    return scheme


def _frequency(graph: Graph, frequency: str) -> URIRef:
    return _concept(graph, "frequency", vocab.FREQUENCIES[frequency], DCTERMS.Frequency)


def _access_public(graph: Graph) -> URIRef:
    return _concept(graph, "access-right", vocab.PUBLIC_ACCESS, DCTERMS.RightsStatement)


def _country(graph: Graph) -> URIRef:
    return _concept(graph, "country", vocab.COUNTRY, DCTERMS.Location)


def _agent(graph: Graph, name: str) -> BNode:
    agent = BNode()
    graph.add((agent, RDF.type, FOAF.Agent))
    graph.add((agent, FOAF.name, Literal(name)))
    return agent


def _contact(graph: Graph, steward) -> BNode:
    contact = BNode()
    graph.add((contact, RDF.type, VCARD.Kind))  # the class DCAT-AP checks, stated (no inference)
    graph.add((contact, RDF.type, VCARD.Organization))
    graph.add((contact, VCARD.fn, Literal(f"{steward.name}, {steward.organisation}")))
    graph.add((contact, VCARD.hasEmail, URIRef(f"mailto:{steward.email}")))
    return contact


def _document(graph: Graph, url: str) -> URIRef:
    document = URIRef(url)
    graph.add((document, RDF.type, FOAF.Document))
    return document


def _standard(graph: Graph, url: str) -> URIRef:
    standard = URIRef(url)
    graph.add((standard, RDF.type, DCTERMS.Standard))
    return standard


def _licence(graph: Graph, licence: str) -> URIRef:
    document = URIRef(licence_url(licence))
    graph.add((document, RDF.type, DCTERMS.LicenseDocument))
    if not licence.startswith(("https://", "http://")):
        graph.add((document, DCTERMS.identifier, Literal(licence)))  # the SPDX id
    return document


def _media_type(graph: Graph, media_type: str) -> URIRef:
    concept = URIRef(vocab.iana_media_type(media_type))
    graph.add((concept, RDF.type, DCTERMS.MediaType))
    return concept


def _checksum(graph: Graph, multihash: str) -> BNode:
    """The SHA-256 of a multihash 'sha2-256' (code 0x12, length 0x20, digest)."""
    checksum = BNode()
    graph.add((checksum, RDF.type, SPDX.Checksum))
    graph.add((checksum, SPDX.algorithm, SPDX.checksumAlgorithm_sha256))
    graph.add((SPDX.checksumAlgorithm_sha256, RDF.type, SPDX.ChecksumAlgorithm))
    graph.add((checksum, SPDX.checksumValue, Literal(multihash.removeprefix("1220"),
                                                     datatype=XSD.hexBinary)))
    return checksum


def bbox_wkt(bbox: Sequence[float]) -> str:
    """The extent as a GeoSPARQL WKT polygon in CRS84 (longitude, latitude)."""
    west, south, east, north = bbox
    ring = [(west, south), (east, south), (east, north), (west, north), (west, south)]
    return WKT_CRS84 + "POLYGON((" + ", ".join(f"{x} {y}" for x, y in ring) + "))"


def _centroid_wkt(bbox: Sequence[float]) -> str:
    west, south, east, north = bbox
    return f"{WKT_CRS84}POINT({(west + east) / 2} {(south + north) / 2})"


def _bbox_location(graph: Graph, bbox: Sequence[float]) -> BNode:
    location = BNode()
    wkt = Literal(bbox_wkt(bbox), datatype=GSP.wktLiteral)
    graph.add((location, RDF.type, DCTERMS.Location))
    graph.add((location, DCAT.bbox, wkt))
    graph.add((location, DCAT.centroid, Literal(_centroid_wkt(bbox), datatype=GSP.wktLiteral)))
    return location


def _period(graph: Graph, record: Record) -> BNode:
    extent = record.manifest.temporal_extent
    period = BNode()
    graph.add((period, RDF.type, DCTERMS.PeriodOfTime))
    graph.add((period, DCAT.startDate, Literal(extent.start.isoformat(), datatype=XSD.date)))
    if extent.end is not None:  # open: still being extended
        graph.add((period, DCAT.endDate, Literal(extent.end.isoformat(), datatype=XSD.date)))
    return period


def _reference_system(graph: Graph, record: Record) -> URIRef:
    """GeoDCAT-AP: the coordinate reference system as a dct:Standard."""
    epsg = None if record.is_vector else record.raster.epsg
    url = f"http://www.opengis.net/def/crs/EPSG/0/{epsg}" if epsg else str(CRS84)
    return _standard(graph, url)


def provenance_text(record: Record) -> str:
    """The nature of the data, the method and the limitations, as one text (English)."""
    provenance = record.manifest.provenance
    text = f"Nature of the data: {record.manifest.nature}.\nMethod:\n{provenance.method.strip()}"
    if provenance.limitations:
        text += f"\nLimitations:\n{provenance.limitations.strip()}"
    return text


def _provenance(graph: Graph, record: Record) -> BNode:
    statement = BNode()
    graph.add((statement, RDF.type, DCTERMS.ProvenanceStatement))
    graph.add((statement, RDFS.label, Literal(provenance_text(record), lang="en")))
    return statement
