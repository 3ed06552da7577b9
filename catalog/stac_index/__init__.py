"""The STAC index: the search backend interface (backend.py), its embedded SQLite
implementation (sqlite_backend.py, with CQL2 through catalog.core.cql2: cql.py), the documents
it holds (documents.py) and how a release reaches it (sync.py). Derived data: the release is the
source of truth, so the publishing pipeline updates it and the STAC API only reads it."""
