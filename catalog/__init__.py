"""Taza Koom open geodata catalog: from a steward's dataset manifest to OGC API and STAC."""

__version__ = "0.1.0"
