"""Custom pygeoapi providers."""
