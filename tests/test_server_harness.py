"""The test harness's server start (tests/conftest.py): a server is handed to a test only
once its own process holds the port. The two halves of the suite pick ports at the same
time; a server of the other half answering /healthz on the same port would hand a module a
server that is not its own. (In one whole run, 2026-12-06, every test of a module found its
server's port refused right after the server had answered /healthz: this race explains it,
though the logs were gone before it could be proven.)"""

from __future__ import annotations

import http.server
import threading

from tests.conftest import _start_on, free_port, listens_on, start_server, stop_server


class _Healthy(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 (the standard library's name)
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b'{"status": "ok"}')

    def log_message(self, *args) -> None:
        pass


def test_a_server_whose_port_another_server_holds_is_not_handed_over(tmp_path):
    imposter = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), _Healthy)
    thread = threading.Thread(target=imposter.serve_forever, daemon=True)
    thread.start()
    port = imposter.server_address[1]
    try:
        taken = _start_on(port, tmp_path, 1, None, "server.log", (), ())
        if taken is not None:  # the check failed: stop the server before saying so
            stop_server(taken)
        assert taken is None
        server = start_server(tmp_path, workers=1)  # on another port: its own
        try:
            assert server.url != f"http://127.0.0.1:{port}"
            assert listens_on(server.process.pid, int(server.url.rsplit(":", 1)[1]))
            assert server.get("/healthz").json()["node"] == "test-node"
        finally:
            stop_server(server)
    finally:
        imposter.shutdown()
        imposter.server_close()
