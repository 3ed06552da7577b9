"""How other catalogs and clients find the datasets: DCAT-AP 3, ISO 19139 and OGC API Records
routes over the metadata writers of catalog/metadata (docs/metadata.md)."""
