"""Confinement of the reader process (catalog.sources.reader): resource limits, no network,
and a filesystem view reduced to what one task needs.

Everything here runs inside the child, before it touches an untrusted file:

- `apply_limits`: RLIMIT_AS (memory), RLIMIT_CPU, RLIMIT_FSIZE (largest file it may write),
  RLIMIT_NOFILE, RLIMIT_CORE=0.
- `cut_network`: a new, empty network namespace (`unshare(CLONE_NEWNET)` as root, otherwise
  with a user namespace). Inside it there is no interface but a loopback that is down, so
  even 127.0.0.1 cannot be reached.
- `restrict_filesystem`: Landlock (Linux >= 5.13, through the raw syscalls; Python has no
  binding): read access to the interpreter, the libraries and their data, and the task's own
  inputs; write access to its output folder only. A driver bug or an HDF5 external link still
  cannot open /etc/passwd or the stewards' database. Where the kernel handles it (Landlock
  ABI >= 4) TCP bind/connect is refused as well, a second wall behind the namespace.

Each step raises `IsolationUnavailable` when the kernel cannot do it; the reader then refuses
to read (fail closed) unless the operator set TAZA_READER_ISOLATION=off.
"""

from __future__ import annotations

import ctypes
import os
import resource
import signal
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

# Landlock syscalls (x86_64 and aarch64 share the generic numbers) and flags.
SYS_LANDLOCK_CREATE_RULESET = 444
SYS_LANDLOCK_ADD_RULE = 445
SYS_LANDLOCK_RESTRICT_SELF = 446
LANDLOCK_CREATE_RULESET_VERSION = 1
LANDLOCK_RULE_PATH_BENEATH = 1
PR_SET_NO_NEW_PRIVS = 38
PR_SET_PDEATHSIG = 1

# Filesystem access rights, by the ABI version that introduced them.
FS_EXECUTE, FS_WRITE_FILE, FS_READ_FILE, FS_READ_DIR = 1 << 0, 1 << 1, 1 << 2, 1 << 3
FS_REMOVE_DIR, FS_REMOVE_FILE, FS_MAKE_CHAR, FS_MAKE_DIR = 1 << 4, 1 << 5, 1 << 6, 1 << 7
FS_MAKE_REG, FS_MAKE_SOCK, FS_MAKE_FIFO, FS_MAKE_BLOCK = 1 << 8, 1 << 9, 1 << 10, 1 << 11
FS_MAKE_SYM, FS_REFER, FS_TRUNCATE, FS_IOCTL_DEV = 1 << 12, 1 << 13, 1 << 14, 1 << 15
ABI_FS_RIGHTS = {1: (1 << 13) - 1, 2: (1 << 14) - 1, 3: (1 << 15) - 1, 5: (1 << 16) - 1}
NET_BIND_TCP, NET_CONNECT_TCP = 1 << 0, 1 << 1
SCOPE_ABSTRACT_UNIX_SOCKET, SCOPE_SIGNAL = 1 << 0, 1 << 1

FILE_RIGHTS = FS_EXECUTE | FS_WRITE_FILE | FS_READ_FILE | FS_TRUNCATE | FS_IOCTL_DEV
READ = FS_READ_FILE | FS_READ_DIR | FS_EXECUTE
WRITE = (READ | FS_WRITE_FILE | FS_REMOVE_DIR | FS_REMOVE_FILE | FS_MAKE_DIR | FS_MAKE_REG
         | FS_REFER | FS_TRUNCATE)
# Devices and files every process of ours opens; nothing in them belongs to anyone. GDAL's
# GeoPackage writer crashes (NULL dereference) when /proc/meminfo cannot be read; CPU counts
# and cgroup limits size its caches and thread pools.
SYSTEM_FILES = ("/dev/null", "/dev/zero", "/dev/urandom", "/dev/random", "/etc/ld.so.cache",
                "/etc/localtime", "/proc/meminfo", "/proc/stat", "/proc/cpuinfo",
                "/proc/self/cgroup", "/proc/self/status")
SYSTEM_TREES = ("/usr/lib", "/usr/lib64", "/lib", "/lib64", "/usr/share/zoneinfo",
                "/usr/share/proj", "/usr/share/gdal", "/sys/devices/system/cpu",
                "/sys/fs/cgroup")


class IsolationUnavailable(RuntimeError):
    """The kernel cannot confine the reader (no namespaces, no Landlock)."""


@dataclass(frozen=True)
class Limits:
    memory_bytes: int
    cpu_seconds: int
    file_bytes: int
    open_files: int = 256


def apply_limits(limits: Limits) -> None:
    """Hard limits the child cannot raise again (it has no privilege to)."""
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_AS, (limits.memory_bytes, limits.memory_bytes))
    # SIGXCPU at the soft limit (reported as "needed more than N s"), SIGKILL a little later.
    resource.setrlimit(resource.RLIMIT_CPU, (limits.cpu_seconds, limits.cpu_seconds + 5))
    resource.setrlimit(resource.RLIMIT_FSIZE, (limits.file_bytes, limits.file_bytes))
    # Python ignores SIGXFSZ (a write then fails with EFBIG, which SQLite reports as a "disk
    # I/O error"); the default action ends the reader, and the parent names the limit.
    signal.signal(signal.SIGXFSZ, signal.SIG_DFL)
    resource.setrlimit(resource.RLIMIT_NOFILE, (limits.open_files, limits.open_files))


def die_with_parent(parent: int) -> None:
    """SIGKILL this process when its parent dies (a killed `taza publish` or worker must not
    leave a reader writing into a staging folder)."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:  # it died before the line above
        os._exit(1)


def cut_network() -> None:
    """Move this process into a new network namespace with no usable interface."""
    flags = os.CLONE_NEWNET if os.geteuid() == 0 else os.CLONE_NEWUSER | os.CLONE_NEWNET
    try:
        os.unshare(flags)
    except OSError as err:
        raise IsolationUnavailable(f"cannot create a network namespace ({err.strerror}); "
                                   "unprivileged user namespaces may be disabled") from err


def restrict_filesystem(read: Iterable[Path], write: Iterable[Path]) -> int:
    """Allow reading only the runtime's files and `read`, writing only under `write`.

    Returns the Landlock ABI version used. Applies to this process and every thread and
    child it starts later; it cannot be undone.
    """
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    abi = libc.syscall(SYS_LANDLOCK_CREATE_RULESET, None, ctypes.c_size_t(0),
                       ctypes.c_uint32(LANDLOCK_CREATE_RULESET_VERSION))
    if abi < 1:
        raise IsolationUnavailable("the kernel has no Landlock (Linux 5.13 or newer, with "
                                   "landlock in the lsm= boot list)")
    handled = ABI_FS_RIGHTS[max(v for v in ABI_FS_RIGHTS if v <= abi)]
    ruleset = _create_ruleset(libc, abi, handled)
    try:
        for path in runtime_paths():
            _allow(libc, ruleset, path, READ & handled, optional=True)
        for path in read:
            _allow(libc, ruleset, Path(path), READ & handled, optional=False)
        for path in write:
            _allow(libc, ruleset, Path(path), WRITE & handled, optional=False)
        if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
            raise IsolationUnavailable("prctl(PR_SET_NO_NEW_PRIVS) failed")
        if libc.syscall(SYS_LANDLOCK_RESTRICT_SELF, ruleset, ctypes.c_uint32(0)) != 0:
            raise IsolationUnavailable(f"landlock_restrict_self failed: "
                                       f"{os.strerror(ctypes.get_errno())}")
    finally:
        os.close(ruleset)
    return abi


def runtime_paths() -> list[Path]:
    """What the interpreter and the GDAL/PROJ wheels read after start-up: Python's own
    installation, the virtualenv (site-packages holds the libraries and their data), this
    package's source, the system's shared libraries and a few device files."""
    paths = {Path(sys.prefix), Path(sys.base_prefix), Path(sys.exec_prefix),
             Path(__file__).resolve().parent.parent}
    paths.update(Path(entry) for entry in sys.path if entry and Path(entry).is_dir()
                 and _is_library_dir(Path(entry)))
    paths.update(Path(p) for p in SYSTEM_TREES + SYSTEM_FILES)
    return sorted(paths)


def _is_library_dir(path: Path) -> bool:
    """sys.path entries that hold installed code (not the current folder, not a project)."""
    parts = path.resolve().parts
    return "site-packages" in parts or "dist-packages" in parts or path.name.startswith(
        "python3")


class _RulesetAttr(ctypes.Structure):
    _fields_ = [("handled_access_fs", ctypes.c_uint64), ("handled_access_net", ctypes.c_uint64),
                ("scoped", ctypes.c_uint64)]


class _PathBeneathAttr(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


def _create_ruleset(libc, abi: int, handled_fs: int) -> int:
    attr = _RulesetAttr(handled_fs, 0, 0)
    size = 8
    if abi >= 4:  # no TCP bind or connect at all: no rule ever allows one
        attr.handled_access_net = NET_BIND_TCP | NET_CONNECT_TCP
        size = 16
    if abi >= 6:  # no signals to, no abstract sockets of, processes outside the sandbox
        attr.scoped = SCOPE_ABSTRACT_UNIX_SOCKET | SCOPE_SIGNAL
        size = 24
    ruleset = libc.syscall(SYS_LANDLOCK_CREATE_RULESET, ctypes.byref(attr),
                           ctypes.c_size_t(size), ctypes.c_uint32(0))
    if ruleset < 0:
        raise IsolationUnavailable(f"landlock_create_ruleset failed: "
                                   f"{os.strerror(ctypes.get_errno())}")
    return ruleset


def _allow(libc, ruleset: int, path: Path, rights: int, optional: bool) -> None:
    try:
        fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
    except OSError:
        if optional:
            return
        raise
    try:
        if not path.is_dir():  # a file rule takes file rights only
            rights &= FILE_RIGHTS
        rule = _PathBeneathAttr(rights, fd)
        if libc.syscall(SYS_LANDLOCK_ADD_RULE, ruleset, LANDLOCK_RULE_PATH_BENEATH,
                        ctypes.byref(rule), ctypes.c_uint32(0)) != 0:
            raise IsolationUnavailable(f"landlock_add_rule({path}) failed: "
                                       f"{os.strerror(ctypes.get_errno())}")
    finally:
        os.close(fd)
