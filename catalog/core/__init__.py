"""The bottom floor of the catalog: plain values and rules that every layer above may use.

Nothing here imports another part of `catalog`; keep this file free of imports.
"""
