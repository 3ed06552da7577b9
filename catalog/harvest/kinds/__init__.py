"""The kinds of remote catalog harvested, one module each (catalog.harvest.remote.SourceKind)."""
