"""Services of the scaled-out profile started on one machine, for tests and `make cluster`."""
