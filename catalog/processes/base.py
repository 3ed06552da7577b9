"""What the three processes share: the pygeoapi processor shell, output selection, the time
budget and the bound on concurrent computations."""

from __future__ import annotations

import copy
import threading
import time
from http import HTTPStatus
from typing import Any

from pygeoapi.process.base import BaseProcessor, ProcessorExecuteError

from catalog import settings
from catalog.processes import layers
from catalog.processes.inputs import InvalidInput
from catalog.processes.regions import RegionSet, region_set

SYNC_BUDGET_S = settings.process_seconds()  # 30 s: below gunicorn's 60 s worker timeout
ASYNC_BUDGET_S = 300.0
# Computations at once in one server process (sync requests and async jobs together): each
# may hold a few hundred MB over the whole country (TAZA_COMPUTE_SLOTS, 2).
COMPUTE_SLOTS = threading.BoundedSemaphore(settings.compute_slots())
JSON = "application/json"
GEOJSON = "application/geo+json"

AREA_INPUT = {
    "title": "Area",
    "description": (
        "Where to compute: a bbox [west, south, east, north] in degrees (CRS84), as a list or "
        "as {\"bbox\": [...]}, or a GeoJSON Polygon or MultiPolygon (a Feature is accepted). "
        "It must be a valid polygon (no self-intersection) that overlaps Kyrgyzstan; the part "
        "outside the country is ignored. Default: the whole country. Give area or region, "
        "not both."),
    "schema": {"oneOf": [
        {"type": "array", "items": {"type": "number"}, "minItems": 4, "maxItems": 4},
        {"type": "object", "required": ["bbox"],
         "properties": {"bbox": {"type": "array", "items": {"type": "number"},
                                 "minItems": 4, "maxItems": 4}}},
        {"type": "object", "contentMediaType": "application/geo+json",
         "required": ["type", "coordinates"],
         "properties": {"type": {"enum": ["Polygon", "MultiPolygon"]}}},
    ]},
    "minOccurs": 0,
    "maxOccurs": 1,
}
REGION_INPUT = {
    "title": "Region",
    "description": (
        "A region (oblast or Bishkek City) by its ISO 3166-2 code, instead of an area. Its "
        "outline is the Natural Earth 1:10m admin-1 polygon of the live regions layer "
        "(generalised, not a legal boundary). Osh City (KG-GO) has no polygon: Osh Region's "
        "(KG-O) includes it."),
    "schema": {"type": "string", "enum": []},  # filled from the live regions layer
    "minOccurs": 0,
    "maxOccurs": 1,
}


class Budget:
    """A deadline the computation checks between its steps."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.deadline = time.monotonic() + seconds

    @property
    def remaining(self) -> float:
        return max(self.deadline - time.monotonic(), 0.0)

    def check(self, step: str) -> None:
        if time.monotonic() > self.deadline:
            raise OverBudget(f"the computation did not finish within its {self.seconds:g} s "
                             f"budget (at: {step}); the server may be busy or the area too "
                             "large: retry, use a smaller area, or run it as an asynchronous "
                             "job (Prefer: respond-async)", message_code="over_budget",
                             params={"seconds": self.seconds})


class OverBudget(ProcessorExecuteError):
    http_status_code = HTTPStatus.SERVICE_UNAVAILABLE
    ogc_exception_code = "NoApplicableCode"

    def __init__(self, message: str, message_code: str | None = None,
                 params: dict | None = None):
        super().__init__(message, user_msg=message)
        self.code = message_code  # a message code and its params, as InvalidInput has
        self.params = params or {}


class CatalogProcessor(BaseProcessor):
    """A process over the live release. processor_def carries the paths of the published
    files it reads (catalog.processes.process_resources)."""

    METADATA: dict = {}

    def __init__(self, processor_def: dict):
        self.layers: dict[str, Any] = processor_def.get("layers", {})
        super().__init__(processor_def, self.describe())
        self.supports_outputs = True
        self.budget_s = SYNC_BUDGET_S  # the job manager raises it for asynchronous jobs

    def describe(self) -> dict:
        """The process description (OGC API - Processes), completed from the live data: a
        `region` input lists the outlined regions of the live regions layer."""
        return with_regions(copy.deepcopy(self.METADATA), self.layers)

    def regions(self) -> RegionSet:
        """The live regions layer's units and the cities the settlements name without one."""
        return region_set(self.layers["regions"], self.layers["settlements"],
                          self.layers["elevation"])

    def compute(self, data: dict, budget: Budget, wanted: list[str]) -> dict[str, Any]:
        """{output id: value} for the wanted outputs. Raise InvalidInput for bad inputs."""
        raise NotImplementedError

    def results(self, data: dict, outputs: Any = None) -> dict[str, tuple[str, Any]]:
        """{output id: (media type, value)} for the requested outputs (all by default)."""
        wanted = self._wanted_outputs(outputs)
        budget = Budget(self.budget_s)
        if not COMPUTE_SLOTS.acquire(timeout=budget.remaining):
            raise OverBudget(f"the server is busy: no computation slot freed within "
                             f"{self.budget_s:g} s; retry later", message_code="no_compute_slot",
                             params={"seconds": self.budget_s})
        try:
            values = self.compute(data if data is not None else {}, budget, wanted)
        finally:
            COMPUTE_SLOTS.release()
        media = {key: spec["schema"].get("contentMediaType", JSON)
                 for key, spec in self.METADATA["outputs"].items()}
        return {key: (media[key], values[key]) for key in wanted}

    def execute(self, data: dict, outputs: Any = None) -> tuple[str, Any]:
        """pygeoapi's entry point: the raw response (see raw_response)."""
        return raw_response(self.results(data, outputs))

    def _wanted_outputs(self, outputs: Any) -> list[str]:
        known = list(self.METADATA["outputs"])
        if not outputs:
            return known
        if not isinstance(outputs, dict):
            raise InvalidInput("outputs must be an object of output id to options")
        for key, options in outputs.items():
            if key not in known:
                raise InvalidInput(f"outputs: unknown output {key!r}; this process has: "
                                   f"{', '.join(known)}")
            mode = (options or {}).get("transmissionMode", "value") \
                if isinstance(options, dict) else "value"
            if mode != "value":
                raise InvalidInput(f"outputs: {key}: transmissionMode {mode!r} is not "
                                   "supported; only 'value'")
        return [key for key in known if key in outputs]


def raw_response(results: dict[str, tuple[str, Any]]) -> tuple[str, Any]:
    """One output: its value with its own media type. Several: a JSON object of output id to
    value (pygeoapi has no multipart responses)."""
    if len(results) == 1:
        return next(iter(results.values()))
    return JSON, {key: value for key, (_, value) in results.items()}


def document_response(results: dict[str, tuple[str, Any]]) -> tuple[str, Any]:
    """The OGC results document: output id to qualified value."""
    return JSON, {key: {"value": value, "mediaType": media}
                  for key, (media, value) in results.items()}


def region_codes(regions_path: str) -> list[tuple[str, str]]:
    """(code, English name) of every unit the regions layer outlines."""
    seen = {}
    for props, geometry in layers.read_features(regions_path):
        if geometry is not None and props.get("region_iso"):
            seen.setdefault(props["region_iso"], props.get("name_en") or props["region_iso"])
    return sorted(seen.items())


def with_regions(metadata: dict, paths: dict) -> dict:
    """Fill the region input's enum (and its description) from the live regions layer; without
    one, a process has no region input."""
    if "region" not in metadata["inputs"]:
        return metadata
    if not paths.get("regions"):
        del metadata["inputs"]["region"]
        return metadata
    codes = region_codes(paths["regions"])
    region = metadata["inputs"]["region"]
    region["schema"]["enum"] = [code for code, _ in codes]
    region["description"] += " Codes: " + ", ".join(f"{c} ({n})" for c, n in codes) + "."
    return metadata


def rounded(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(float(value), digits)
