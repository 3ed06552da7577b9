"""The other encodings of the Features routes: CSV for spreadsheets and schema.org JSON-LD
for search engines, in the shapes /ogc has always answered.

- CSV: one row per feature, its properties as columns; points add x and y columns first
  (coordinates in the answer's CRS), other geometries a wkt column last; none without
  geometries (skipGeometry).
- JSON-LD: the service as a schema:DataCatalog, collections as schema:Dataset, a page of
  items as a list of schema:Place references, an item as a schema:Place with its geometry as
  GeoJSON, GeoSPARQL WKT and schema.org shapes.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence

import shapely
from shapely.geometry import shape
from werkzeug.http import dump_options_header

from catalog.core.languages import LANGUAGES, LOCALES
from catalog.features.documents import Service
from catalog.features.negotiate import text

SCHEMA_ORG = "https://schema.org/"
GEOSPARQL = "http://www.opengis.net/ont/geosparql#"


def download_name(disposition: str, filename: str) -> str:
    """A Content-Disposition value naming the file a browser or client saves."""
    return dump_options_header(disposition, {"filename": filename})


# -- CSV ---------------------------------------------------------------------------------------

def csv_bytes(features: Sequence[dict]) -> bytes:
    """The features as CSV in UTF-8 with a byte-order mark (without it Excel reads the file
    in the system's code page and garbles Cyrillic); empty when there are none."""
    if not features:
        return b""
    first = features[0]
    columns = list(first["properties"])
    geometry = first.get("geometry")
    points = geometry is not None and geometry["type"] == "Point"
    if points:
        columns = ["x", "y", *columns]
    elif geometry is not None:
        columns.append("wkt")
    output = io.StringIO()
    writer = csv.DictWriter(output, columns, extrasaction="ignore")
    writer.writeheader()
    for feature in features:
        row = dict(feature["properties"])
        if geometry is not None and feature.get("geometry") is not None:
            if points:
                row["x"], row["y"] = feature["geometry"]["coordinates"][:2]
            else:
                row["wkt"] = shape(feature["geometry"]).wkt
        writer.writerow(row)
    return output.getvalue().encode("utf-8-sig")


# -- JSON-LD -----------------------------------------------------------------------------------

def data_catalog(service: Service, language: str) -> dict:
    """The service as a schema:DataCatalog."""
    metadata = service.metadata
    identification = metadata.get("identification", {})
    provider = metadata.get("provider", {})
    contact = metadata.get("contact", {})
    catalog = {
        "@context": "https://schema.org/docs/jsonldcontext.jsonld",
        "@type": "DataCatalog",
        "@id": service.base_url,
        "url": service.base_url,
        "name": text(identification.get("title"), language),
        "description": text(identification.get("description"), language),
        "keywords": text(identification.get("keywords"), language),
        "termsOfService": text(identification.get("terms_of_service"), language),
        "license": metadata.get("license", {}).get("url"),
        "provider": {
            "@type": "Organization",
            "name": text(provider.get("name"), language),
            "url": provider.get("url"),
            "address": {
                "@type": "PostalAddress",
                "streetAddress": contact.get("address"),
                "postalCode": contact.get("postalcode"),
                "addressLocality": contact.get("city"),
                "addressRegion": contact.get("stateorprovince"),
                "addressCountry": contact.get("country"),
            },
            "contactPoint": {
                "@type": "Contactpoint",
                "email": contact.get("email"),
                "telephone": contact.get("phone"),
                "faxNumber": contact.get("fax"),
                "url": contact.get("url"),
                "hoursAvailable": {"opens": contact.get("hours"),
                                   "description": text(contact.get("instructions"), language)},
                "contactType": text(contact.get("role"), language),
                "description": text(contact.get("position"), language),
            },
        },
    }
    if catalog["license"] is None:  # no licence for the whole catalog: each dataset has its own
        del catalog["license"]
    return catalog


def dataset(service: Service, collection: dict, licence: str | None) -> dict:
    """A collection description (documents.collection) as a schema:Dataset."""
    extent = collection.get("extent", {})
    interval = extent.get("temporal", {}).get("interval")
    spatial = extent.get("spatial", {})
    boxes = spatial.get("bbox")
    url = f"{service.collections_url}/{collection['id']}"
    described = {
        "@type": "Dataset",
        "@id": url,
        "name": collection["title"],
        "description": collection["description"],
        "license": licence,
        "keywords": collection.get("keywords"),
        "spatial": [{"@type": "Place",
                     "geo": {"@type": "GeoShape", "box": f"{b[0]},{b[1]} {b[2]},{b[3]}"}}
                    for b in boxes] if boxes and spatial.get("crs", "").endswith("CRS84")
        else None,
        # schema.org writes an open end of an interval as "..".
        "temporalCoverage": "/".join(end or ".." for end in interval[0]) if interval else None,
        "url": url,
    }
    default = LOCALES[LANGUAGES[0]]
    links = collection.get("links", [])
    if links:
        described["distribution"] = [
            {key: value for key, value in {
                "@type": "DataDownload", "contentURL": link["href"],
                "encodingFormat": link["type"], "description": link["title"],
                "inLanguage": link.get("hreflang", default),
                "author": link["rel"] if link.get("rel") == "author" else None,
            }.items() if value is not None}
            for link in links]
    return described


def item_list(collection_url: str, features: Sequence[dict]) -> dict:
    """A page of items as a schema:itemList of places, by reference."""
    document: dict = {
        "@context": [{"schema": SCHEMA_ORG, "type": "@type",
                      "features": "schema:itemListElement",
                      "FeatureCollection": "schema:itemList"}],
        "type": "FeatureCollection",
        "@id": collection_url,
    }
    if features:
        document["features"] = [
            {"@type": "schema:Place" if feature.get("geometry") is not None else "Feature",
             "@id": _feature_uri(collection_url, feature)}
            for feature in features]
    return document


def _feature_uri(collection_url: str, feature: dict) -> str:
    identifier = str(feature.get("id", feature["properties"].get("id", "")))
    if identifier.startswith(("http://", "https://")):
        return identifier
    return f"{collection_url}/items/{feature['id']}"


def place(feature: dict, uri: str) -> dict:
    """One item as a schema:Place: its properties as members, its geometry three ways."""
    data = {key: value for key, value in feature.items() if key not in ("properties", "links")}
    data.update(feature.get("properties") or {})
    geometry = data.get("geometry")
    if geometry is not None:
        geom = shape(geometry)
        data["type"] = "schema:Place"
        data["geometry"] = data.pop("geometry")
        data["gsp:hasGeometry"] = {
            "@type": f"http://www.opengis.net/ont/sf#{geom.geom_type}",
            "gsp:asWKT": {"@type": f"{GEOSPARQL}wktLiteral", "@value": geom.wkt},
        }
        try:
            data["schema:geo"] = schema_shape(geom)
        except AttributeError:  # a shape schema.org cannot say (a hull of a point, say)
            pass
    data["@id"] = uri
    data["links"] = feature.get("links", [])
    return {"@context": [{"schema": SCHEMA_ORG, "gsp": GEOSPARQL, "type": "@type"}], **data}


def schema_shape(geom: shapely.Geometry) -> dict:
    """A geometry as schema.org sees shapes: coordinates of a point, a line, or a polygon
    (a multipolygon by its union, or its convex hull when that is still several parts)."""
    if geom.geom_type == "Point":
        return {"@type": "schema:GeoCoordinates", "schema:longitude": geom.x,
                "schema:latitude": geom.y}
    if geom.geom_type in ("LineString", "MultiLineString"):
        lines = [geom] if geom.geom_type == "LineString" else list(geom.geoms)
        return {"@type": "schema:GeoShape",
                "schema:line": _points([c for line in lines for c in line.coords])}
    if geom.geom_type == "MultiPoint":
        coords = [c for point in geom.geoms for c in point.coords]
        coords.append(coords[0])
    elif geom.geom_type == "Polygon":
        coords = list(geom.exterior.coords)
    elif geom.geom_type == "MultiPolygon":
        merged = shapely.union_all(geom.buffer(0))
        if merged.geom_type.startswith("Multi") or not merged.is_valid:
            merged = merged.convex_hull
        coords = list(merged.exterior.coords)
    else:  # a collection: every part's points, areas by their outer ring
        coords = []
        for part in geom.geoms:
            coords.extend(part.exterior.coords if part.geom_type == "Polygon" else part.coords)
    return {"@type": "schema:GeoShape", "schema:polygon": _points(coords)}


def _points(coords: Sequence[Sequence[float]]) -> str:
    return " ".join(f"{c[0]},{c[1]}" for c in coords)
