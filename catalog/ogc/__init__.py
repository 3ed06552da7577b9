"""OGC API layer."""
