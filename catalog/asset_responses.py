"""A version's file as an HTTP answer, wherever the file lives (disk or object store).

On disk, werkzeug's `send_file` answers as it always has. From an object store the file is
streamed through this server rather than redirected to a presigned URL: Range (206, 416),
HEAD, ETag/If-None-Match (304), Cache-Control and CORS stay exactly those of /assets, a
version taken down stops being served at once (a presigned URL would stay valid until it
expires), and the bucket never has to be reachable by clients (docs/deployment.md).
"""

from __future__ import annotations

from flask import Response, request, send_file

from catalog.core.assets import AssetLocator
from catalog.core.record import Record


def send_asset(assets: AssetLocator, record: Record, filename: str, media_type: str,
               **options) -> Response:
    """The file, answering Range and conditional requests; options go to send_file
    (as_attachment, download_name)."""
    path = assets.local_path(record, filename)
    if path is not None:
        # conditional=True answers Range requests (206), which GDAL's /vsicurl/ needs for COGs.
        return send_file(path, mimetype=media_type, conditional=True, **options)
    options.setdefault("download_name", filename)  # as send_file names a path's file
    size = assets.size(record, filename)
    span = request.range.range_for_length(size) if request.range else None
    stream = assets.open(record, filename, window=span)
    response = send_file(stream, mimetype=media_type, conditional=False,
                         etag=getattr(stream, "etag", None) or False,
                         last_modified=getattr(stream, "last_modified", None), **options)
    response.content_length = size
    try:
        return response.make_conditional(request.environ, accept_ranges=True,
                                         complete_length=size)
    except Exception:
        stream.close()  # a 416 (or anything else): no body will read it
        raise
