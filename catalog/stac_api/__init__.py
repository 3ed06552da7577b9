"""STAC API 1.0 over the published catalog: Flask routes, a backend interface, and the embedded
SQLite index kept current at publish time (see docs/stac-api.md)."""

from catalog.stac_api.routes import stac_blueprint
from catalog.stac_api.sync import apply_release

__all__ = ["apply_release", "stac_blueprint"]
