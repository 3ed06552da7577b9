"""Run by Debian's /usr/bin/python3 (QGIS 3.22 has no bindings for our venv's Python).

Prints one JSON document with what QGIS's OAPIF provider saw of a collection.
Usage: python3 qgis_oapif.py URL COLLECTION
"""

import json
import os
import sys

os.environ["QT_QPA_PLATFORM"] = "offscreen"

from qgis.core import (  # noqa: E402  (needs QT_QPA_PLATFORM first)
    Qgis,
    QgsApplication,
    QgsFeatureRequest,
    QgsRectangle,
    QgsVectorLayer,
)


def layer(url: str, collection: str) -> QgsVectorLayer:
    uri = f"url='{url}/ogc' typename='{collection}' restrictToRequestBBOX='1'"
    return QgsVectorLayer(uri, collection, "OAPIF")


def main() -> None:
    url, collection = sys.argv[1], sys.argv[2]
    app = QgsApplication([], False)
    app.initQgis()
    whole = layer(url, collection)
    subset = layer(url, collection)
    subset.setSubsetString('"population" > 100000')
    boxed = layer(url, collection)
    request = QgsFeatureRequest().setFilterRect(QgsRectangle(74, 42, 75, 43))
    report = {
        "version": Qgis.QGIS_VERSION,
        "valid": whole.isValid(),
        "feature_count": whole.featureCount(),
        "fields": [field.name() for field in whole.fields()],
        "subset_ids": sorted(f["geonames_id"] for f in subset.getFeatures()),
        "bbox_ids": sorted(f["geonames_id"] for f in boxed.getFeatures(request)),
    }
    print(json.dumps(report))
    sys.stdout.flush()
    os._exit(0)  # exitQgis() segfaults in headless 3.22


main()
