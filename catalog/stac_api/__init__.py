"""STAC API 1.0 over the published catalog: Flask routes over the STAC index's backend
interface (catalog.stac_index, kept current at publish time; see docs/stac-api.md)."""

from catalog.stac_api.routes import stac_blueprint

__all__ = ["stac_blueprint"]
