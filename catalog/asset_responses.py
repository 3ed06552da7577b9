"""A version's file as an HTTP answer, wherever the file lives (disk or object store).

On disk, werkzeug's `send_file` answers as it always has. From an object store the file is
streamed through this server rather than redirected to a presigned URL: Range (206, 416),
HEAD, ETag/If-None-Match (304), Cache-Control and CORS stay exactly those of /assets, a
version taken down stops being served at once (a presigned URL would stay valid until it
expires), and the bucket never has to be reachable by clients (docs/deployment.md).
"""

from __future__ import annotations

from flask import Response, current_app, request, send_file
from werkzeug.wsgi import FileWrapper

from catalog.core.assets import AssetLocator
from catalog.core.record import Record

STREAM_CHUNK = 64 * 1024  # bytes per write of a streamed file


def send_asset(assets: AssetLocator, record: Record, filename: str, media_type: str,
               as_attachment: bool = False, download_name: str | None = None) -> Response:
    """The file, answering Range and conditional requests, inline or as an attachment."""
    path = assets.local_path(record, filename)
    if path is not None:
        # conditional=True answers Range requests (206), which GDAL's /vsicurl/ needs for COGs.
        return send_file(path, mimetype=media_type, conditional=True,
                         as_attachment=as_attachment, download_name=download_name)
    size = assets.size(record, filename)
    span = request.range.range_for_length(size) if request.range else None
    stream = assets.open(record, filename, window=span)
    # werkzeug's FileWrapper, not the server's wsgi.file_wrapper (which send_file would pick):
    # it is seekable, so a range is read from its start, not by reading up to it.
    response = current_app.response_class(FileWrapper(stream, STREAM_CHUNK),
                                          mimetype=media_type, direct_passthrough=True)
    response.headers.set("Content-Disposition", "attachment" if as_attachment else "inline",
                         filename=download_name or filename)
    response.content_length = size
    response.cache_control.no_cache = True  # as send_file; callers set their own policy
    response.set_etag(stream.etag)
    response.last_modified = stream.last_modified
    try:
        return response.make_conditional(request.environ, accept_ranges=True,
                                         complete_length=size)
    except Exception:
        stream.close()  # a 416 (or anything else): no body will read it
        raise
