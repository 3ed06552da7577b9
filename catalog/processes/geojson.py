"""GeoJSON output helpers: coordinates rounded to 6 decimals (about 0.1 m)."""

from __future__ import annotations

from typing import Any

import numpy as np
import shapely
from shapely.geometry import mapping
from shapely.geometry.base import BaseGeometry


def geometry(geom: BaseGeometry, digits: int = 6) -> dict[str, Any] | None:
    if geom is None or geom.is_empty:
        return None
    return mapping(shapely.transform(geom, lambda xy: np.round(xy, digits)))


def feature(geom: BaseGeometry | None, properties: dict[str, Any],
            feature_id: str | int | None = None) -> dict[str, Any]:
    item: dict[str, Any] = {"type": "Feature", "geometry": geometry(geom),
                            "properties": properties}
    if feature_id is not None:
        item["id"] = feature_id
    return item


def feature_collection(features: list[dict], **members: Any) -> dict[str, Any]:
    """A FeatureCollection; extra members (title, notes, ...) are GeoJSON foreign members."""
    return {"type": "FeatureCollection", **members, "features": features}
