"""gunicorn settings for `taza serve` (bind and workers come from the command line)."""

worker_class = "gthread"
threads = 4
timeout = 60
graceful_timeout = 10
keepalive = 5
# Bounded request lines and headers; bodies are bounded by Flask's MAX_CONTENT_LENGTH.
limit_request_line = 8190
limit_request_fields = 100
accesslog = None
errorlog = "-"
loglevel = "warning"
