"""OGC API - Tiles for the vector (MVT) and map (PNG) tiles of the live collections, with
tile matrix sets from morecantile, TileJSON and MapLibre styles (routes.py, documents.py)."""
