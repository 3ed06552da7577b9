"""Zip archives from stewards, opened defensively.

Before anything is extracted: the archive must open, and every member name must be a plain
relative path (no '..', no absolute or drive paths, no symlinks, no encryption); the declared
total size and each member's compression ratio must stay under limits (zip bombs). Members are
then extracted by streaming, counting real bytes against the same limits, because the sizes in
a zip's directory can lie.
"""

from __future__ import annotations

import os
import stat
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from catalog.sources.findings import Finding, blocking

CHUNK = 1 << 20
MAX_MEMBERS = 1000
# Above this size a member must not be compressed more than MAX_RATIO times: ordinary data
# (text-heavy .dbf files included) compresses 5-50x, a zip bomb about 1000x.
RATIO_CHECK_ABOVE = 1 << 20
MAX_RATIO = 200


@dataclass(frozen=True)
class ZipLimits:
    max_total_bytes: int
    max_ratio: float = MAX_RATIO
    max_members: int = MAX_MEMBERS


class ArchiveRefused(Exception):
    """The archive is unreadable or unsafe; nothing of it was kept."""

    def __init__(self, findings: list[Finding]):
        self.findings = findings
        super().__init__("; ".join(f.message for f in findings))


def safe_members(archive: Path, limits: ZipLimits) -> list[zipfile.ZipInfo]:
    """The file members of a zip after every safety check; raise ArchiveRefused otherwise."""
    try:
        with zipfile.ZipFile(archive) as bundle:
            members = bundle.infolist()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as err:
        raise ArchiveRefused([blocking(f"not a readable zip archive: {err}",
                                       file=archive.name)]) from err
    findings = _check_members(members, limits)
    if findings:
        raise ArchiveRefused(findings)
    return [m for m in members if not m.is_dir() and not _ignored(m.filename)]


def extract(archive: Path, members: list[zipfile.ZipInfo], target: Path,
            limits: ZipLimits) -> dict[str, Path]:
    """Stream the chosen members into target under their base names; return name -> path."""
    target.mkdir(parents=True, exist_ok=True)
    budget = limits.max_total_bytes
    extracted: dict[str, Path] = {}
    try:
        with zipfile.ZipFile(archive) as bundle:
            for member in members:
                name = PurePosixPath(member.filename).name
                path = target / name
                budget -= _copy_member(bundle, member, path, budget)
                extracted[name] = path
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, NotImplementedError) as err:
        raise ArchiveRefused([blocking(f"archive member cannot be extracted: {err}",
                                       file=archive.name)]) from err
    return extracted


def _copy_member(bundle: zipfile.ZipFile, member: zipfile.ZipInfo, path: Path,
                 budget: int) -> int:
    """Copy one member, refusing it as soon as it outgrows its declared size or the budget."""
    allowed = min(member.file_size, budget)
    written = 0
    with bundle.open(member) as source, path.open("wb") as sink:
        while chunk := source.read(CHUNK):
            written += len(chunk)
            if written > allowed:
                raise ArchiveRefused([blocking(
                    "zip bomb: member expands beyond its declared size or the size limit",
                    member=member.filename)])
            sink.write(chunk)
    return written


def _check_members(members: list[zipfile.ZipInfo], limits: ZipLimits) -> list[Finding]:
    findings: list[Finding] = []
    if not members:
        return [blocking("the archive is empty")]
    if len(members) > limits.max_members:
        return [blocking(f"the archive holds {len(members)} members; at most "
                         f"{limits.max_members} are accepted")]
    seen: set[str] = set()
    for member in members:
        findings += _check_name(member, seen)
        findings += _check_bomb(member, limits)
    total = sum(m.file_size for m in members)
    if total > limits.max_total_bytes:
        findings.append(blocking(
            f"zip bomb or oversized archive: expands to {total:,} bytes; the limit is "
            f"{limits.max_total_bytes:,}"))
    return findings


def _check_name(member: zipfile.ZipInfo, seen: set[str]) -> list[Finding]:
    name = member.filename
    parts = name.replace("\\", "/").split("/")
    if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        return [blocking("path traversal: absolute path in the archive", member=name)]
    if ".." in parts:
        return [blocking("path traversal: '..' in a member name", member=name)]
    if "\x00" in name:
        return [blocking("invalid member name (NUL byte)", member=name)]
    if stat.S_ISLNK(member.external_attr >> 16):
        return [blocking("symbolic links are not accepted in archives", member=name)]
    if member.flag_bits & 0x1:
        return [blocking("encrypted members are not accepted", member=name)]
    base = PurePosixPath(name.replace("\\", "/")).name.lower()
    if not member.is_dir() and not _ignored(name):
        if base in seen:
            return [blocking("two members have the same file name", member=name)]
        seen.add(base)
    return []


def _check_bomb(member: zipfile.ZipInfo, limits: ZipLimits) -> list[Finding]:
    if member.file_size <= RATIO_CHECK_ABOVE:
        return []
    ratio = member.file_size / max(member.compress_size, 1)
    if ratio > limits.max_ratio:
        return [blocking(f"zip bomb: compressed {ratio:,.0f} times (limit {limits.max_ratio:g})",
                         member=member.filename)]
    return []


def _ignored(name: str) -> bool:
    """Metadata folders that archivers add (macOS resource forks, thumbnails)."""
    parts = name.replace("\\", "/").split("/")
    return "__MACOSX" in parts or os.path.basename(name) in (".DS_Store", "Thumbs.db")
