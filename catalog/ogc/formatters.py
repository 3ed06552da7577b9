"""CSV downloads that keep the geometry.

pygeoapi's CSV formatter drops geometry unless `geom` is set, and a per-collection setting
cannot win: pygeoapi registers its default CSV formatter first and uses the first one whose
`f` matches; a formatter named like the default ("CSV") would replace it but then link to
`f=CSV`, which pygeoapi refuses (docs/upstream.md). So ours is registered under pygeoapi's own
plugin name, in its plugin registry: the one assignment into pygeoapi's modules left, for
Features only. It goes with pygeoapi's Features routes, which our own replace (issue 12,
catalog/features), and tests/test_pygeoapi_public_api.py lists this file until then.
"""

from __future__ import annotations

from pygeoapi.formatter.csv_ import CSVFormatter
from pygeoapi.plugin import PLUGINS

CSV_PLUGIN = ("formatter", "CSV")  # pygeoapi's registry name of its own CSV formatter


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


def use_geometry_csv() -> None:
    """Make pygeoapi's CSV answers on feature collections ours (idempotent)."""
    kind, name = CSV_PLUGIN
    PLUGINS[kind][name] = f"{__name__}.GeometryCsvFormatter"
