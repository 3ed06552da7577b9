"""nginx (Debian's) in front of the app nodes: one upstream, timeouts, rate limits, retries.

What it is there for, each with a setting below:
- Slow clients cost nginx a few kilobytes each, not an app thread: nginx reads whole requests
  (headers within `client_header_timeout`, bodies buffered) before passing them on, and buffers
  answers, so 100 trickling connections do not starve other clients of the nodes' threads.
- A node that dies costs no failed read: an idempotent request (GET, HEAD) that fails to
  connect or is cut off is retried once on the other node (`proxy_next_upstream`); a POST is
  never retried, as it may have done its work.
- Every request of one dataset's source upload (`/api/datasets/ID/draft/source...`: the
  pieces of a resumable upload and its `/resume`) goes to one node, chosen by the dataset's id
  (`hash ... consistent`, upstream `taza_uploads`): the pieces are kept in the receiving node's
  home (catalog/stewards/resume.py). Should that node be gone, the id's requests go to another
  node, where the next piece answers 409 (upload_not_in_progress) and `/resume` says nothing is
  in progress, so the upload starts again from byte 0.
- Rate limits per client address answer 429; nginx's own errors are JSON like the app's.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path

from catalog.cluster.processes import stop_process

NGINX = "/usr/sbin/nginx"
# nginx's own answers, in the shape of the app's errors (catalog/problems.py).
ERROR_ANSWERS = {
    413: ("PayloadTooLarge", "the request body is larger than this server accepts"),
    429: ("TooManyRequests", "too many requests from this address; retry in a second"),
    502: ("ServiceUnavailable", "no app node answered; retry shortly"),
    504: ("ServiceUnavailable", "the app node did not answer in time; retry shortly"),
}


class NginxUnavailable(RuntimeError):
    """nginx is not installed (scripts/install-system-deps installs it)."""


@dataclass(frozen=True)
class ProxySettings:
    requests_per_second: int = 200      # per client address, over every route
    burst: int = 400                    # answered at once above the rate, then 429
    writes_per_second: int = 10         # per client address on the stewards' API (/api/)
    connections_per_client: int = 256
    max_body_bytes: int = 2 * 1024**3 + 1024**2   # the largest upload, plus its form fields
    read_timeout_seconds: int = 120     # an app answer may take this long (a big export)


@dataclass(frozen=True)
class Proxy:
    """One nginx in `folder` listening on 127.0.0.1:`port` in front of `upstreams`."""

    folder: Path
    port: int
    upstreams: tuple[str, ...]          # "127.0.0.1:PORT" of each app node
    settings: ProxySettings = ProxySettings()
    listen: str = "127.0.0.1"           # the address nginx listens on ("0.0.0.0" in a container)

    @property
    def config_file(self) -> Path:
        return self.folder / "nginx.conf"

    @property
    def pid_file(self) -> Path:
        return self.folder / "nginx.pid"

    @property
    def url(self) -> str:
        return f"http://{self.listen}:{self.port}"

    def config_text(self, run_as: str | None = None, daemonize: bool = True) -> str:
        """nginx.conf; `run_as`: the user nginx's workers switch to (when started as root);
        `daemonize`: nginx forks and returns (as `start` wants; not in a container)."""
        s = self.settings
        folder = self.folder
        servers = "\n".join(f"        server {upstream} max_fails=1 fail_timeout=5s;"
                            for upstream in self.upstreams)
        error_pages = "\n".join(f"        error_page {status} = @error_{status};"
                                for status in ERROR_ANSWERS)
        error_locations = "\n".join(
            f"        location @error_{status} {{\n"
            f"            default_type application/json;\n"
            f"            return {status} '{json.dumps({'code': code, 'description': text})}';\n"
            f"        }}" for status, (code, text) in ERROR_ANSWERS.items())
        user = f"user {run_as};\n" if run_as else ""
        daemon = "daemon on;\n" if daemonize else ""  # a container's nginx stays in front
        return f"""# Written by catalog/cluster/nginx.py (taza cluster nginx-config): regenerate it.
{user}{daemon}worker_processes 1;
pid {self.pid_file};
error_log {folder}/error.log warn;

events {{
    worker_connections 4096;
}}

http {{
    access_log {folder}/access.log;
    client_body_temp_path {folder}/client_body_temp;
    proxy_temp_path {folder}/proxy_temp;
    fastcgi_temp_path {folder}/fastcgi_temp;
    uwsgi_temp_path {folder}/uwsgi_temp;
    scgi_temp_path {folder}/scgi_temp;
    server_tokens off;

    # Slow clients wait at nginx, not in an app thread.
    client_header_timeout 10s;
    client_body_timeout 60s;
    send_timeout 60s;
    keepalive_timeout 30s;
    client_max_body_size {s.max_body_bytes};
    proxy_request_buffering on;
    proxy_buffering on;

    limit_req_zone $binary_remote_addr zone=per_client:10m rate={s.requests_per_second}r/s;
    limit_req_zone $binary_remote_addr zone=writes:10m rate={s.writes_per_second}r/s;
    limit_conn_zone $binary_remote_addr zone=connections:10m;
    limit_req_status 429;
    limit_conn_status 429;

    upstream taza_nodes {{
{servers}
        keepalive 32;
    }}

    # One node for every request of one dataset's source upload: a resumable upload's pieces
    # are kept in the home of the node that received them (catalog/stewards/resume.py).
    upstream taza_uploads {{
        hash $upload_dataset consistent;
{servers}
        keepalive 32;
    }}

    server {{
        listen {self.listen}:{self.port};
        limit_conn connections {s.connections_per_client};
        limit_req zone=per_client burst={s.burst} nodelay;
{error_pages}

        # Inherited by every location below (none sets a proxy_set_header of its own).
        proxy_http_version 1.1;
        proxy_set_header Connection "";
        proxy_set_header Host $http_host;
        # Overwritten, never appended: a client cannot pass an address of its choosing.
        proxy_set_header X-Forwarded-For $remote_addr;
        proxy_set_header X-Forwarded-Proto $scheme;
        proxy_connect_timeout 2s;
        proxy_send_timeout 60s;
        proxy_read_timeout {s.read_timeout_seconds}s;
        proxy_next_upstream_tries 2;

        location / {{
            proxy_pass http://taza_nodes;
            # Idempotent requests only (nginx never retries a POST unless told to).
            proxy_next_upstream error timeout http_502 http_503;
        }}

        location /api/ {{
            limit_req zone=writes burst={s.writes_per_second * 5} nodelay;
            proxy_pass http://taza_nodes;
            proxy_next_upstream error timeout;
        }}

        # A dataset's source upload (whole, or resumable in pieces, and its /resume): always
        # the node its id hashes to. Retried elsewhere on a connection error only (not on a
        # timeout: a slow piece may have been received).
        location ~ ^/api/datasets/(?<upload_dataset>[^/]+)/draft/source(/|$) {{
            limit_req zone=writes burst={s.writes_per_second * 5} nodelay;
            proxy_pass http://taza_uploads;
            proxy_next_upstream error;
        }}

{error_locations}
    }}
}}
"""

    def start(self) -> None:
        """Write the configuration, check it with `nginx -t`, start (nginx forks and returns)."""
        if not Path(NGINX).exists():
            raise NginxUnavailable(f"{NGINX} is missing (run scripts/install-system-deps)")
        for name in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
            temp = self.folder / f"{name}_temp"
            temp.mkdir(parents=True, exist_ok=True)
            if os.geteuid() == 0:
                shutil.chown(temp, "www-data", "www-data")
        self.config_file.write_text(self.config_text("www-data" if os.geteuid() == 0 else None))
        command = [NGINX, "-p", str(self.folder), "-e", str(self.folder / "error.log"),
                   "-c", str(self.config_file)]
        subprocess.run([*command, "-t", "-q"], check=True, capture_output=True, text=True)
        subprocess.run(command, check=True, capture_output=True, text=True)

    def pid(self) -> int | None:
        try:
            return int(self.pid_file.read_text())
        except (FileNotFoundError, ValueError):
            return None

    def stop(self) -> None:
        """Stop nginx by its PID file (QUIT lets it finish what is in flight)."""
        pid = self.pid()
        if pid is not None:
            stop_process(pid, signal.SIGQUIT)
        self.pid_file.unlink(missing_ok=True)
