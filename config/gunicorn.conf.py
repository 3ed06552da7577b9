"""gunicorn settings for `taza serve` (bind and workers come from the command line)."""

from catalog.http_policy import MAX_REQUEST_LINE

worker_class = "gthread"
threads = 4
timeout = 60
graceful_timeout = 10
keepalive = 5
# Bounded request lines and headers; bodies are bounded by Flask's MAX_CONTENT_LENGTH.
limit_request_line = MAX_REQUEST_LINE  # each API's OpenAPI document lists its 414
limit_request_fields = 100
accesslog = None
errorlog = "-"
loglevel = "warning"


# pycsw (CSW at /csw) runs in its own virtualenv as a second gunicorn on a Unix socket under
# TAZA_HOME/run/csw, started and stopped with this server (catalog/discovery/csw.py).
_csw = None


def on_starting(server):
    # The app's modules imported once here, before the workers fork: each worker then only
    # builds its app (`create_app()`, about 0.3 s of CPU) instead of importing pygeoapi,
    # rasterio, numpy and the rest again (about 1.4 s each), and the imported code's pages
    # are shared between the workers. Not the app itself (`preload_app`): its connections,
    # caches and threads are each worker's own. New code needs a restart of the server, not
    # a HUP, which re-forks workers from these modules.
    import catalog.app  # noqa: F401


def when_ready(server):
    """Once our address is bound, before the workers start: a server that cannot bind (the
    port taken) exits without on_exit, so a CSW started earlier was left running, orphaned."""
    global _csw
    from catalog import settings
    from catalog.discovery import csw

    _csw = csw.start(settings.home())
    if _csw is None:
        server.log.warning("CSW disabled: %s is missing (make .venv-csw/bin/.installed)",
                           csw.python())


def on_exit(server):
    from catalog.discovery import csw

    csw.stop(_csw)
