"""Where each form of the catalog's metadata and data is served: one place for these URLs, so
DCAT, ISO 19139, OGC API Records and the portal link the same addresses."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote

import yaml

from catalog import settings

RECORDS_COLLECTION = "metadata"  # /ogc/collections/metadata: the OGC API Records catalog


@dataclass(frozen=True)
class CatalogUrls:
    """Absolute URLs under the server's public URL (no trailing slash)."""

    base: str

    @property
    def home(self) -> str:
        return f"{self.base}/"

    @property
    def ogc(self) -> str:
        return f"{self.base}/ogc"

    @property
    def ogc_openapi(self) -> str:
        return f"{self.base}/ogc/openapi"

    @property
    def stac(self) -> str:
        return f"{self.base}/stac"

    @property
    def stac_openapi(self) -> str:
        return f"{self.base}/stac/api"

    @property
    def dcat(self) -> str:
        return f"{self.base}/dcat"

    @property
    def records(self) -> str:
        return f"{self.ogc}/collections/{RECORDS_COLLECTION}"

    def dataset_page(self, dataset_id: str) -> str:
        return f"{self.base}/datasets/{quote(dataset_id)}"

    def dataset_dcat(self, dataset_id: str) -> str:
        return f"{self.dataset_page(dataset_id)}/dcat"

    def dataset_iso(self, dataset_id: str) -> str:
        return f"{self.dataset_page(dataset_id)}/metadata.xml"

    def record(self, dataset_id: str) -> str:
        return f"{self.records}/items/{quote(dataset_id)}"

    def ogc_collection(self, dataset_id: str) -> str:
        return f"{self.ogc}/collections/{quote(dataset_id)}"

    def stac_collection(self, dataset_id: str) -> str:
        return f"{self.stac}/collections/{quote(dataset_id)}"


@dataclass(frozen=True)
class CatalogInfo:
    """Who runs the catalog and what it is, in each language (config/pygeoapi.base.yml's
    `metadata` block, the one place the catalog describes itself)."""

    title: dict[str, str]
    description: dict[str, str]
    publisher: str
    email: str

    @classmethod
    def from_config(cls) -> CatalogInfo:
        config = yaml.safe_load((settings.CONFIG_DIR / "pygeoapi.base.yml")
                                .read_text(encoding="utf-8"))["metadata"]
        identification = config["identification"]
        return cls(title=dict(identification["title"]),
                   description=dict(identification["description"]),
                   publisher=config["provider"]["name"], email=config["contact"]["email"])
