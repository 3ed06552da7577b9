"""Run a named reader task in a new, confined child process, and read back its answer.

Untrusted files (uploads, `taza publish` sources) are read by catalog.sources.reader's tasks
in a child process, one child per task, never by a server worker. The child is forked by this
process's zygote (catalog.sources.zygote: a process that has already imported the reader's
code, so a child starts in milliseconds), or, with TAZA_READER_ZYGOTE=off or when the zygote
fails, started fresh as `python -m catalog.sources.child`. Either way:

- the request and the answer cross as JSON only (never pickle: the child read hostile bytes
  and must not be able to make this process run code), the answer capped in size;
- the child limits itself (catalog.sources.sandbox) before it reads anything: memory
  (RLIMIT_AS), processor time, size of the files it writes, open files, no core dumps; it has
  no network and sees only the runtime's files, its inputs (read) and its output folder
  (write);
- a wall-clock timeout kills the child's process group; the child dies with its parent;
- its environment is built from scratch (no secret of the server's environment reaches it),
  with GDAL's network, VRT and sidecar lookups turned off before GDAL loads.

A child that hits a limit or dies becomes `ReaderFailed`, with a message a steward can act on
("the file needed more than 3,072 MB of memory to read"); a kernel that cannot confine the
child becomes `ReaderUnavailable` (fail closed), unless TAZA_READER_ISOLATION=off.
"""

from __future__ import annotations

import json
import logging
import os
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from catalog.problems import PublishError
from catalog.sources.zygote import ForkedChild, Zygote, ZygoteGone

log = logging.getLogger("catalog.reader")
MiB = 1 << 20
PACKAGE_ROOT = Path(__file__).resolve().parent.parent.parent  # holds the `catalog` package
# Drivers that read other files or URLs, or run SQL; the reader pins a driver per format, so
# these are never needed, and skipping them removes them from GDAL's registry altogether.
SKIPPED_DRIVERS = ("VRT OGR_VRT GTI WMS WMTS WCS WFS OAPIF OGCAPI PLMOSAIC EEDA EEDAI DAAS NGW "
                   "CARTO Elasticsearch AmigoCloud GNMFile GNMDatabase HTTP STACIT STACTA CSW "
                   "SQLite PostgreSQL PostGISRaster MySQL ODBC MSSQLSpatial OCI MongoDBv3")
DEAD_PROXY = "http://127.0.0.1:9"  # discard port: nothing listens there
# What may pass from our environment to the child: locale and interpreter settings only.
INHERITED = ("PATH", "LANG", "LC_ALL", "LC_CTYPE", "PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")


class ReaderFailed(Exception):
    """The file could not be read within the limits (or crashed the reader). `code` names
    its text in every language (catalog/sources/finding_texts.yml), filled from `params`."""

    def __init__(self, message: str, *, code: str = "", params: dict | None = None):
        super().__init__(message)
        self.code = code
        self.params = dict(params or {})


class ReaderUnavailable(PublishError):
    """The machine cannot confine the reader; the operator must fix it (see message)."""


@dataclass(frozen=True)
class ReaderSettings:
    """TAZA_READER_* settings (docs/security.md); generous defaults for 2 GB uploads."""

    memory_mb: int = 3072
    cpu_seconds: int = 3600
    timeout_seconds: int = 7200
    file_mb: int = 16384
    result_bytes: int = 16 * MiB
    isolation: bool = True
    zygote: bool = True

    @classmethod
    def from_environment(cls) -> ReaderSettings:
        d = cls()
        env = os.environ.get
        return cls(
            memory_mb=int(env("TAZA_READER_MEMORY_MB", d.memory_mb)),
            cpu_seconds=int(env("TAZA_READER_CPU_SECONDS", d.cpu_seconds)),
            timeout_seconds=int(env("TAZA_READER_TIMEOUT_SECONDS", d.timeout_seconds)),
            file_mb=int(env("TAZA_READER_FILE_MB", d.file_mb)),
            result_bytes=int(env("TAZA_READER_RESULT_BYTES", d.result_bytes)),
            isolation=_switch(env("TAZA_READER_ISOLATION", "on")),
            zygote=_switch(env("TAZA_READER_ZYGOTE", "on")),
        )

    def child_limits(self) -> dict:
        return {"memory_bytes": self.memory_mb * MiB, "cpu_seconds": self.cpu_seconds,
                "file_bytes": self.file_mb * MiB}


def _switch(value: str) -> bool:
    return value.strip().lower() not in ("off", "0", "false", "no")


@dataclass(frozen=True)
class _Outcome:
    returncode: int
    answer: bytes
    timed_out: bool
    overflowed: bool
    stderr_tail: bytes
    seconds: float


def run_task(task: str, args: dict, read: list[Path], write: list[Path],
             settings: ReaderSettings | None = None):
    """Run `task` of catalog.sources.reader on `args` in a confined child; its JSON result.

    `read` are the files or folders the task may read, `write` the folders it may write
    (they must exist). Raises ReaderFailed or ReaderUnavailable.
    """
    settings = settings or ReaderSettings.from_environment()
    for path in (*read, *write):
        if "/vsi" in str(path).lower():
            raise ReaderFailed("paths with GDAL virtual file systems (/vsi...) are refused",
                               code="reader_vsi_path")
    scratch = Path(tempfile.mkdtemp(prefix="taza-reader-"))
    try:
        child = _start_child(scratch, settings)
        request = {"task": task, "args": args, "parent": child.parent,
                   "scratch": str(scratch), "read": [str(p) for p in read],
                   "write": [str(p) for p in write] + [str(scratch)],
                   "limits": settings.child_limits(), "isolation": settings.isolation}
        outcome = _run_child(child, json.dumps(request).encode(), settings)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return _result(task, outcome, settings)


def reader_environment(scratch: Path | None = None) -> dict[str, str]:
    """The environment of a reader child (and of the zygote that forks them), built from
    scratch: locale and interpreter settings, and GDAL's network, VRT and sidecar lookups
    turned off before GDAL loads. `scratch`: the child's folder for temporary files (a
    forked child sets it from its request)."""
    env = {key: os.environ[key] for key in INHERITED if key in os.environ}
    env.update({
        "MALLOC_ARENA_MAX": "2",
        "OPENBLAS_NUM_THREADS": "1",  # no thread pool: the zygote forks, a reader needs none
        "PYTHONDONTWRITEBYTECODE": "1",
        "GDAL_CACHEMAX": "256",
        "GDAL_PAM_ENABLED": "NO",
        "GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR",
        "GDAL_SKIP": SKIPPED_DRIVERS,
        "OGR_SKIP": ",".join(SKIPPED_DRIVERS.split()),
        "OGR_SQLITE_LIST_VIRTUAL_OGR": "NO",
        "CPL_VSIL_CURL_ALLOWED_EXTENSIONS": ".taza-no-remote-files",
        "GDAL_HTTP_TIMEOUT": "1",
        "GDAL_HTTP_CONNECTTIMEOUT": "1",
        "GDAL_HTTP_MAX_RETRY": "0",
        "GDAL_HTTP_PROXY": DEAD_PROXY.removeprefix("http://"),
        "HTTP_PROXY": DEAD_PROXY, "HTTPS_PROXY": DEAD_PROXY,
        "http_proxy": DEAD_PROXY, "https_proxy": DEAD_PROXY,
        "PROJ_NETWORK": "OFF",
        "CPL_DEBUG": "OFF",
    })
    if scratch is not None:
        env["TMPDIR"] = env["CPL_TMPDIR"] = str(scratch)
    return env


class _FreshChild:
    """A reader child started as a new interpreter (TAZA_READER_ZYGOTE=off, or no zygote)."""

    def __init__(self, scratch: Path):
        self._process = subprocess.Popen(
            [sys.executable, "-m", "catalog.sources.child"], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=reader_environment(scratch),
            cwd=PACKAGE_ROOT, start_new_session=True, close_fds=True)
        self.parent = os.getpid()
        self.stdout, self.stderr = self._process.stdout.fileno(), self._process.stderr.fileno()

    def send(self, request: bytes) -> None:
        try:
            self._process.stdin.write(request)
            self._process.stdin.close()
        except BrokenPipeError:
            pass  # the child died at once; its exit status says why

    def wait(self, timeout: float) -> int | None:
        try:
            return self._process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def kill(self) -> None:
        try:
            os.killpg(self._process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    def close(self) -> None:
        for stream in (self._process.stdin, self._process.stdout, self._process.stderr):
            try:
                stream.close()
            except BrokenPipeError:
                pass


_zygote: Zygote | None = None  # started on this process's first read, or its parent's
_zygote_lock = threading.Lock()
ZYGOTE_PAUSE_SECONDS = 60
_zygote_paused_until = 0.0  # time.monotonic(): fresh interpreters until then


def _share_zygote_after_fork() -> None:
    """A process forked from this one forks its readers from the same zygote (a fork server's
    children, for instance, need not start one each)."""
    global _zygote_lock
    _zygote_lock = threading.Lock()
    if _zygote is not None:
        _zygote.after_fork()


os.register_at_fork(after_in_child=_share_zygote_after_fork)


def _start_child(scratch: Path, settings: ReaderSettings) -> ForkedChild | _FreshChild:
    """A forked child of this process's zygote; a fresh interpreter when the zygote is off,
    or fails twice in a row (logged: a reader still starts, only slower) and for
    ZYGOTE_PAUSE_SECONDS after that: a zygote that cannot start (a broken install, no
    processes left) would otherwise cost every read two failed starts first."""
    global _zygote_paused_until
    if settings.zygote and time.monotonic() >= _zygote_paused_until:
        for _ in range(2):  # an idle zygote may have just ended: one more, then give up
            try:
                return _this_process_zygote().fork()
            except ZygoteGone:
                continue
        _zygote_paused_until = time.monotonic() + ZYGOTE_PAUSE_SECONDS
        log.warning("the reader's zygote could not fork a child; fresh interpreters start "
                    "this process's readers for the next %d s", ZYGOTE_PAUSE_SECONDS)
    return _FreshChild(scratch)


def _this_process_zygote() -> Zygote:
    global _zygote
    with _zygote_lock:
        if _zygote is None:
            _zygote = Zygote(reader_environment(), PACKAGE_ROOT)
        return _zygote


def _run_child(child, request: bytes, settings: ReaderSettings) -> _Outcome:
    started = time.monotonic()
    deadline = started + settings.timeout_seconds
    try:
        child.send(request)
        answer, stderr_tail, timed_out, overflowed = _collect(child, deadline,
                                                              settings.result_bytes)
        if timed_out or overflowed:
            child.kill()
        returncode = child.wait(timeout=max(1.0, deadline - time.monotonic()))
        if returncode is None:
            child.kill()
            returncode, timed_out = child.wait(timeout=60.0), True
    finally:
        child.close()
    return _Outcome(-signal.SIGKILL if returncode is None else returncode, answer,
                    timed_out, overflowed, stderr_tail, time.monotonic() - started)


def _collect(child, deadline: float, cap: int) -> tuple[bytes, bytes, bool, bool]:
    """Read the answer (at most cap bytes) and the last 64 KiB of stderr until both close."""
    answer, tail = bytearray(), bytearray()
    with selectors.DefaultSelector() as selector:
        selector.register(child.stdout, selectors.EVENT_READ, "out")
        selector.register(child.stderr, selectors.EVENT_READ, "err")
        while selector.get_map():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return bytes(answer), bytes(tail), True, False
            for key, _ in selector.select(timeout=min(remaining, 5.0)):
                chunk = os.read(key.fd, 1 << 16)
                if not chunk:
                    selector.unregister(key.fd)
                elif key.data == "out":
                    answer += chunk
                    if len(answer) > cap:
                        return bytes(answer), bytes(tail), False, True
                else:
                    tail = (tail + chunk)[-(64 << 10):]
    return bytes(answer), bytes(tail), False, False


def _result(task: str, outcome: _Outcome, settings: ReaderSettings):
    if outcome.timed_out:
        raise ReaderFailed(f"reading the file took longer than {settings.timeout_seconds:,} "
                           "s; the reader was stopped", code="reader_timeout",
                           params={"seconds": settings.timeout_seconds})
    if outcome.overflowed:
        raise ReaderFailed(f"reading the file produced an answer over "
                           f"{settings.result_bytes:,} bytes; the reader was stopped",
                           code="reader_answer_too_large", params={"bytes": settings.result_bytes})
    answer = _parse(outcome.answer)
    peak = answer.get("peak_rss_kb") if answer else None  # the child's word: only logged
    log.info("reader %s: exit %s in %.2f s, peak resident memory %s MB", task,
             outcome.returncode, outcome.seconds,
             peak // 1024 if isinstance(peak, int) else "?")
    if outcome.returncode == 0 and answer is not None:
        if answer.get("ok"):
            return answer.get("result")
        _raise_failure(answer, settings)
    _log_stderr(task, outcome)
    raise _death(outcome.returncode, settings)


def _parse(data: bytes) -> dict | None:
    try:
        answer = json.loads(data)
    except ValueError:
        return None
    return answer if isinstance(answer, dict) else None


def _raise_failure(answer: dict, settings: ReaderSettings) -> None:
    failure = answer.get("failure")
    message = str(answer.get("message", ""))[:2000]
    if failure == "isolation":
        raise ReaderUnavailable(
            f"the server cannot isolate the reader of untrusted files: {message}. Files are "
            "not read without isolation; give the service user namespaces and Landlock "
            "(Linux 5.13+), or, knowing the risk, set TAZA_READER_ISOLATION=off "
            "(docs/security.md)", code="reader_unavailable")
    if failure == "memory":
        raise ReaderFailed(f"the file needed more than {settings.memory_mb:,} MB of memory "
                           "to read", code="reader_memory", params={"mb": settings.memory_mb})
    raise ReaderFailed(f"the file could not be read ({message or 'reader error'})",
                       code="reader_error")


def _death(returncode: int, settings: ReaderSettings) -> ReaderFailed:
    if returncode in (-signal.SIGXCPU, -signal.SIGKILL):
        return ReaderFailed(f"the file needed more than {settings.cpu_seconds:,} s of "
                            "processor time to read; the reader was stopped",
                            code="reader_cpu", params={"seconds": settings.cpu_seconds})
    if returncode == -signal.SIGXFSZ:
        return ReaderFailed(f"reading the file wrote a file over {settings.file_mb:,} MB; "
                            "the reader was stopped", code="reader_file_size",
                            params={"mb": settings.file_mb})
    if returncode < 0:
        name = signal.Signals(-returncode).name
        return ReaderFailed(f"the reader stopped on this file ({name}): it may need more "
                            f"than {settings.memory_mb:,} MB of memory, or be damaged",
                            code="reader_signal", params={"mb": settings.memory_mb})
    return ReaderFailed(f"the reader stopped on this file (exit status {returncode})",
                        code="reader_crashed")


def _log_stderr(task: str, outcome: _Outcome) -> None:
    # fiona's and rasterio's GDALs each lack some of SKIPPED_DRIVERS and say so: not news.
    lines = outcome.stderr_tail.decode("utf-8", "replace").splitlines()
    text = "\n".join(line for line in lines
                     if not line.startswith("Unable to find driver")).strip()
    if text:
        log.warning("reader %s exited %s; its last messages:\n%s", task, outcome.returncode,
                    text[-4000:])
