"""The web portal: templates, static files and vendored front-end libraries."""
