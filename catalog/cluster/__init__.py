"""Engines started on one machine for tests, benchmarks and `make cluster`.

Production points the catalog at engines it already runs (TAZA_DATABASE_URL, TAZA_ASSETS_URL);
nothing here runs there. Each engine lives in a folder of ours, on loopback, on its own port, and
stops by its own PID file, so several can run side by side without touching the machine's own.
"""
