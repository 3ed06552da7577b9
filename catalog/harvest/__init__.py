"""Harvesting other catalogs (STAC APIs, OGC API - Features, CKAN) into draft manifests for
the stewards' review: fetch.py (bounded HTTP), kinds/ (one module per kind of remote),
mapping.py (remote -> manifest), registry.py (sources and state), run.py (one run), cli.py."""
