"""Run by Debian's /usr/bin/python3 (QGIS 3.22 has no bindings for our venv's Python).

Opens an XYZ vector tile template as QGIS 3.22's "Vector Tiles > New Generic Connection" does,
draws it over an extent (EPSG:3857) with QGIS's default vector tile style, and prints one JSON
document: whether the layer is valid and how many pixels were drawn.
Usage: python3 qgis_vector_tiles.py TEMPLATE MINX MINY MAXX MAXY
"""

import json
import os
import sys
from urllib.parse import quote

os.environ["QT_QPA_PLATFORM"] = "offscreen"

from qgis.core import (  # noqa: E402  (needs QT_QPA_PLATFORM first)
    Qgis,
    QgsApplication,
    QgsCoordinateReferenceSystem,
    QgsMapRendererSequentialJob,
    QgsMapSettings,
    QgsRectangle,
    QgsVectorTileLayer,
)
from qgis.PyQt.QtCore import QSize  # noqa: E402
from qgis.PyQt.QtGui import QColor  # noqa: E402


def main() -> None:
    template, *bounds = sys.argv[1], *map(float, sys.argv[2:6])
    app = QgsApplication([], False)
    app.initQgis()
    layer = QgsVectorTileLayer(f"type=xyz&url={quote(template, safe='')}&zmin=0&zmax=14",
                               "tiles")
    settings = QgsMapSettings()
    settings.setLayers([layer])
    settings.setDestinationCrs(QgsCoordinateReferenceSystem("EPSG:3857"))
    settings.setExtent(QgsRectangle(*bounds))
    settings.setOutputSize(QSize(256, 256))
    settings.setBackgroundColor(QColor(0, 0, 0, 0))
    job = QgsMapRendererSequentialJob(settings)
    job.start()
    job.waitForFinished()
    image = job.renderedImage()
    drawn = sum(1 for row in range(image.height()) for col in range(image.width())
                if QColor.fromRgba(image.pixel(col, row)).alpha() > 0)
    print(json.dumps({"version": Qgis.QGIS_VERSION, "valid": layer.isValid(), "drawn": drawn}))
    sys.stdout.flush()
    os._exit(0)  # exitQgis() segfaults in headless 3.22


main()
