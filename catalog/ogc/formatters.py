"""CSV downloads that keep the geometry.

pygeoapi's CSV formatter drops geometry unless `geom` is set, and a per-collection setting
cannot win: pygeoapi registers its default CSV formatter first and uses the first one whose
`f` matches. So we register ours under pygeoapi's own plugin name instead (see runtime.py).
"""

from __future__ import annotations

from pygeoapi.formatter.csv_ import CSVFormatter


class GeometryCsvFormatter(CSVFormatter):
    """x and y columns for points (lon/lat in the response CRS), a wkt column otherwise,
    and no geometry columns when the request skipped geometry."""

    def __init__(self, formatter_def: dict):
        super().__init__({**formatter_def, "geom": True})

    def write(self, options: dict | None = None, data: dict | None = None):
        features = (data or {}).get("features") or []
        if features and features[0].get("geometry") is None:
            self.geom = False  # skipGeometry=true: a new formatter is made for each request
        return super().write(options or {}, data)
