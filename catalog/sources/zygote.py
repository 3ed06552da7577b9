"""The reader's zygote: a process that has imported the reader's code and forks each reader
child, so a child starts in milliseconds instead of importing GDAL's bindings, rasterio,
fiona, numpy and the converters again (0.45 s of processor time per upload, validation and
publish; `taza publish --all` starts sixteen).

Each catalog process (a server worker, a `taza` command) starts its own zygote on its first
read, as `python -m catalog.sources.zygote`, with the reader's environment (built from
scratch: no secret of the server's reaches it); processes it forks afterwards share it. What
keeps it as safe as a fresh child:

- the zygote never reads an untrusted byte: it imports modules and forks, nothing else;
- a forked child keeps only its three pipes (every other descriptor, the zygote's control
  socket and other children's pipes included, is closed before it reads its request), starts
  a session of its own and confines itself exactly as a fresh child does
  (catalog.sources.reader.main): limits, no network, Landlock;
- children share the zygote's address-space layout (randomised once per zygote, not per
  child), so a zygote forks at most MAX_CHILDREN children and is then replaced;
- a child dies with the zygote (die_with_parent); the zygote kills a child whose owner closed
  its request socket (a timeout, an answer too large, or the owner's death) and ends when
  every copy of the control socket is closed and its last child is gone, or after
  IDLE_SECONDS unused.

The protocol: the owner sends, on the control socket (SOCK_SEQPACKET: one whole message per
request, so processes that share it cannot interleave theirs), the child's stdin, stdout and
stderr and a request socket (SCM_RIGHTS); the zygote forks and writes the child's pid, then
its exit status (os.waitstatus_to_exitcode), on the request socket.
"""

from __future__ import annotations

import functools
import os
import selectors
import signal
import socket
import subprocess
import sys
import threading
import time
import traceback
from pathlib import Path

MAX_CHILDREN = 64
IDLE_SECONDS = 300.0
FORK_SECONDS = 120.0  # a new zygote imports for a second or two first, more on a busy machine
# What the zygote imports before it forks: the child's entry module (which blocks boto3
# first) and every task module a request may name (catalog.sources.reader.TASK_MODULES).
PRELOADED = ("catalog.sources.child", "catalog.convert.isolated")


class ZygoteGone(Exception):
    """The zygote ended before it forked the child (it was idle, replaced or broken)."""


class ForkedChild:
    """A reader child forked by a zygote, as the owner sees it: its parent (the zygote), its
    pipes, and its request socket, which brings its exit status and, closed early, has it
    killed."""

    def __init__(self, parent: int, stdin: int, stdout: int, stderr: int,
                 request: socket.socket):
        self.parent = parent
        self.stdin, self.stdout, self.stderr = stdin, stdout, stderr
        self._request = request

    def send(self, request: bytes) -> None:
        """Write the request (the child reads it whole, first thing) and close its stdin."""
        try:
            with open(self.stdin, "wb", closefd=False) as stdin:
                stdin.write(request)
        except BrokenPipeError:
            pass  # the child died at once; its exit status says why
        os.close(self.stdin)
        self.stdin = -1

    def wait(self, timeout: float) -> int | None:
        """The exit status (negative: killed by that signal), or None after timeout s."""
        self._request.settimeout(timeout)
        try:
            line = _read_line(self._request)
        except TimeoutError:
            return None
        if line is None:  # the zygote died; the child died with it
            return -9
        return int(line)

    def kill(self) -> None:
        """Have the zygote SIGKILL the child's process group (it has not reaped the child
        yet, so the pid cannot belong to another process)."""
        try:
            self._request.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def close(self) -> None:
        for fd in (self.stdin, self.stdout, self.stderr):
            if fd >= 0:
                os.close(fd)
        self._request.close()


class Zygote:
    """The owner's side of one zygote process (thread-safe)."""

    def __init__(self, env: dict[str, str], cwd: Path, idle_seconds: float = IDLE_SECONDS):
        self._env, self._cwd, self._idle_seconds = env, cwd, idle_seconds
        self._lock = threading.Lock()
        self._control: socket.socket | None = None
        self._process: subprocess.Popen | None = None
        self._owner = os.getpid()  # the process that started it (can poll it)
        self._forks = 0

    def fork(self) -> ForkedChild:
        """A new reader child; raises ZygoteGone if the zygote could not fork one."""
        ours, theirs = socket.socketpair()
        stdin_r, stdin_w = os.pipe()
        stdout_r, stdout_w = os.pipe()
        stderr_r, stderr_w = os.pipe()
        try:
            try:
                with self._lock:
                    parent = self._send([stdin_r, stdout_w, stderr_w, theirs.fileno()])
            finally:
                # Sent (the message holds copies) or not: ours go now, so a zygote that ends
                # with the request unread closes the request socket's last copy: end of file
                # below, not FORK_SECONDS of waiting.
                for fd in (stdin_r, stdout_w, stderr_w):
                    os.close(fd)
                theirs.close()
            ours.settimeout(FORK_SECONDS)
            if _read_line(ours) is None:  # the child's pid: only its arrival matters here
                raise ZygoteGone("the zygote ended before it forked the reader")
            ours.settimeout(None)
        except (OSError, ZygoteGone) as failure:
            for fd in (stdin_w, stdout_r, stderr_r):
                os.close(fd)
            ours.close()  # a child forked later finds its request socket closed: killed
            if isinstance(failure, TimeoutError):
                self.close()  # stuck (importing?): the next read starts another
                raise ZygoteGone(f"the zygote did not fork within {FORK_SECONDS:g} s") from None
            if isinstance(failure, OSError):
                raise ZygoteGone(f"the zygote did not fork the reader: {failure}") from None
            raise
        return ForkedChild(parent, stdin_w, stdout_r, stderr_r, ours)

    @property
    def pid(self) -> int | None:
        """The zygote process's pid while it runs (it starts on the first fork)."""
        with self._lock:
            return self._process.pid if self._running() else None

    def after_fork(self) -> None:
        """In a process forked from the owner: share the zygote (the control socket carries
        one whole message per request, so processes cannot interleave theirs), with a lock of
        its own (another thread may have held the owner's at the fork). The zygote serves
        until every copy of its control socket is closed."""
        self._lock = threading.Lock()

    def close(self) -> None:
        """Let the zygote end once its children are done."""
        with self._lock:
            self._retire()

    def _running(self) -> bool:
        """Whether the zygote runs; only its owner can tell without asking it (a forked copy
        learns that it ended when the control socket or the pid's line fails)."""
        if self._process is None:
            return False
        return os.getpid() != self._owner or self._process.poll() is None

    def _send(self, descriptors: list[int]) -> int:
        if self._control is None or not self._running():
            self._start()
        elif self._forks >= MAX_CHILDREN:
            self._retire()
            self._start()
        self._forks += 1
        try:
            socket.send_fds(self._control, [b"f"], descriptors)
        except OSError:
            self._retire()
            raise ZygoteGone("the zygote's control socket is closed") from None
        return self._process.pid

    def _start(self) -> None:
        self._retire()
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        with theirs:
            self._process = subprocess.Popen(
                [sys.executable, "-m", "catalog.sources.zygote", str(theirs.fileno()),
                 str(self._idle_seconds)],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL, env=self._env, cwd=self._cwd,
                pass_fds=[theirs.fileno()], start_new_session=True)
        self._control, self._forks, self._owner = ours, 0, os.getpid()

    def _retire(self) -> None:
        if self._control is not None:
            self._control.close()  # the zygote ends when its children (and copies) are done
            self._control = None
        if self._process is not None and os.getpid() == self._owner:
            self._process.poll()  # reaps it if it has already ended
        self._process = None


def _read_line(sock: socket.socket) -> str | None:
    """One newline-ended line from sock (short, ASCII), or None at the end of the stream."""
    data = b""
    while not data.endswith(b"\n"):
        chunk = sock.recv(64)
        if not chunk:
            return None
        data += chunk
    return data.decode("ascii").strip()


# -- the zygote process ------------------------------------------------------------------


def main() -> None:
    """`python -m catalog.sources.zygote FD IDLE`: import the reader's code, then fork a child
    for each request on the control socket FD until it closes or IDLE s pass unused."""
    import importlib

    control = socket.socket(fileno=int(sys.argv[1]))
    os.set_inheritable(control.fileno(), False)
    for name in PRELOADED:
        importlib.import_module(name)
    libraries = _descriptors() - {control.fileno()}
    reader = sys.modules["catalog.sources.reader"]
    _serve(control, functools.partial(_become_reader, libraries=libraries,
                                      reader_main=reader.main), float(sys.argv[2]))
    os._exit(0)


def _descriptors() -> set[int]:
    """This process's open descriptors above stderr."""
    listed = [int(name) for name in os.listdir("/proc/self/fd")]
    return {fd for fd in listed if fd > 2 and _is_open(fd)}  # not listdir's own, now closed


def _is_open(fd: int) -> bool:
    try:
        os.fstat(fd)
    except OSError:
        return False
    return True


def _serve(control: socket.socket, become_reader, idle_seconds: float) -> None:
    children: dict[int, tuple[socket.socket, int]] = {}  # pid -> request socket, pidfd
    accepting, idle_since = True, time.monotonic()
    with selectors.DefaultSelector() as selector:
        selector.register(control, selectors.EVENT_READ, "control")
        while accepting or children:
            timeout = None if children else max(0.0, idle_seconds - (time.monotonic()
                                                                      - idle_since))
            events = selector.select(timeout)
            if not events and not children:
                break  # unused for idle_seconds: the owner starts another when it needs one
            for key, _ in events:
                if key.data == "control":
                    accepting = _fork_requested(control, selector, children, become_reader)
                elif key.data[0] == "exited":
                    _reap(key.data[1], selector, children)
                    idle_since = time.monotonic()
                else:
                    _owner_closed(key.data[1], key.fileobj, selector, children)


def _fork_requested(control, selector, children, become_reader) -> bool:
    """Fork a child for the request on the control socket; False when the owner closed it."""
    try:
        message, descriptors, _, _ = socket.recv_fds(control, 16, 4)
    except OSError:
        message, descriptors = b"", []
    if not message:  # every copy of the owner's end is closed
        selector.unregister(control)
        return False
    if len(descriptors) != 4:
        for fd in descriptors:
            os.close(fd)
        return True
    try:
        pid = os.fork()
    except OSError:  # out of processes or memory: the owner sees the request socket close
        for fd in descriptors:
            os.close(fd)
        return True
    if pid == 0:
        become_reader(descriptors)
    for fd in descriptors[:3]:
        os.close(fd)
    request = socket.socket(fileno=descriptors[3])
    pidfd = os.pidfd_open(pid)
    children[pid] = (request, pidfd)
    try:
        request.sendall(f"{pid}\n".encode())
    except OSError:
        pass  # the owner is gone; the request socket's end says so below
    selector.register(pidfd, selectors.EVENT_READ, ("exited", pid))
    selector.register(request, selectors.EVENT_READ, ("owner", pid))
    return True


def _become_reader(descriptors: list[int], libraries: set[int], reader_main) -> None:
    """In the forked child: keep the three pipes and the libraries' own descriptors (PROJ's
    database, opened read-only at import, as a fresh child has it), close the rest (the
    control socket, other children's sockets and pipes), then serve the request like a fresh
    child (catalog.sources.reader.main confines the process before reading any file)."""
    try:
        os.setsid()
        for target, fd in enumerate(descriptors[:3]):
            os.dup2(fd, target)
        start = 3
        for fd in sorted(libraries):
            os.closerange(start, fd)
            start = fd + 1
        os.closerange(start, os.sysconf("SC_OPEN_MAX"))
        reader_main()  # its request names the zygote as the parent to die with
    except BaseException:
        traceback.print_exc()
    finally:
        os._exit(70)


def _reap(pid: int, selector, children) -> None:
    request, pidfd = children.pop(pid)
    _, status = os.waitpid(pid, 0)
    selector.unregister(pidfd)
    os.close(pidfd)
    if request in (key.fileobj for key in selector.get_map().values()):
        selector.unregister(request)
    try:
        request.sendall(f"{os.waitstatus_to_exitcode(status)}\n".encode())
    except OSError:
        pass
    request.close()


def _owner_closed(pid: int, request: socket.socket, selector, children) -> None:
    """The owner wrote on or closed the child's request socket: at its end, kill the child
    (not yet reaped, so the pid is still the child's) and its process group. Both: a child
    killed just after the fork may not have started its session yet, and then no group has
    its pid (killpg alone missed 13 of 40 such kills)."""
    if children.get(pid, (None,))[0] is not request:
        return  # reaped earlier in the same round of events: its socket is closed
    try:
        data = request.recv(64)
    except OSError:
        data = b""
    if data:
        return
    selector.unregister(request)
    os.kill(pid, signal.SIGKILL)  # a zombie until _reap: never another process's pid
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass  # no session of its own yet, so nothing of it beyond the child itself


if __name__ == "__main__":
    main()
