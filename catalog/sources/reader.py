"""The isolated reader: every open of an untrusted file goes through here.

Run in a child that catalog.sources.isolation forks from its zygote (catalog.sources.zygote) or
starts as `python -m catalog.sources.child`, it reads one JSON request on stdin, confines
itself (catalog.sources.sandbox), runs one named task and writes one JSON answer. The same
module gives the rest of the catalog typed functions that run those tasks in a child:
`stage_upload` for the stewards' API and `inspect_sources` for `taza validate` (publishing
inspects and converts in one child, a task a floor up in catalog.convert.isolated, with this
module's inspection), so uploads and `taza publish` read files one way.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import json
import os
import socket
import sqlite3
import stat
import sys
import tempfile
import traceback
from pathlib import Path

from catalog.core.record import Asset
from catalog.problems import Problem
from catalog.sources import sandbox
from catalog.sources.archives import ArchiveRefused, ZipLimits, safe_members
from catalog.sources.content import SHAPEFILE_PARTS, check_file, check_shapefile_parts
from catalog.sources.findings import ORDER, Finding, blocking
from catalog.sources.isolation import ReaderFailed, run_task
from catalog.sources.raster import RasterInfo, inspect_raster, max_raster_pixels
from catalog.sources.uploads import (
    Staged,
    UploadLimits,
    UploadOptions,
    format_of,
    place_original,
    stage,
)
from catalog.sources.vector import VectorInfo, inspect_vector

# The converters are imported where used: a child that only stages or inspects a file should
# not pay for loading them.
MAX_REQUEST_BYTES = 1 << 20
ZIP_SOURCE_LIMITS = ZipLimits(max_total_bytes=4 << 30)


# -- for the rest of the catalog (parent side) -------------------------------------------

def stage_upload(original: Path, workdir: Path, options: UploadOptions, limits: UploadLimits,
                 id_field: str | None = None) -> Staged:
    """catalog.sources.uploads.stage, in the isolated reader; never raises on bad data."""
    workdir.mkdir(parents=True, exist_ok=True)
    args = {"original": str(original), "workdir": str(workdir), "id_field": id_field,
            "options": {"repair_geometry": options.repair_geometry,
                        "variable": options.variable},
            "limits": limits.as_dict()}
    try:
        answer = run_task("stage", args, read=[original.parent], write=[workdir])
        with malformed_answer():
            return _staged(answer, original, workdir)
    except ReaderFailed as err:
        return Staged(format_of(original.name), findings=[blocking(
            str(err), code=err.code, params=err.params, file=original.name)])


def inspect_source(path: Path, kind: str, id_field: str | None = None
                   ) -> tuple[VectorInfo | RasterInfo | None, list[Problem]]:
    """Content check, then inspect_vector / inspect_raster, in the isolated reader."""
    return inspect_sources([path], kind, id_field)[0]


def inspect_sources(paths: list[Path], kind: str, id_field: str | None = None
                    ) -> list[tuple[VectorInfo | RasterInfo | None, list[Problem]]]:
    """inspect_source of each of a dataset's sources (the items of a time series or mosaic),
    all in one isolated reader: the limits hold for the child, so for all items together
    (and a fresh child cost a second or more to start: one per item made publishing a
    twelve-month series take minutes). (Publishing inspects and converts in one
    child: catalog.convert.isolated.read_sources.)"""
    read = [file for path in paths for file in source_files(path)]
    try:
        data = run_task(f"inspect_{kind}", inspection_args(paths, id_field), read=read,
                        write=[])
        return inspection_results(data, paths, kind)
    except ReaderFailed as err:
        return reader_failure(paths, err)


def inspection_args(paths: list[Path], id_field: str | None) -> dict:
    """What the child needs to inspect the sources (the inspection tasks' arguments)."""
    return {"paths": [str(p) for p in paths], "id_field": id_field,
            "max_pixels": max_raster_pixels()}


def inspection_results(data: dict, paths: list[Path], kind: str
                       ) -> list[tuple[VectorInfo | RasterInfo | None, list[Problem]]]:
    """The child's inspection answers (`data["answers"]`) as (info, problems), one per
    source."""
    with malformed_answer():
        return [inspected(answer, path, kind)  # strict: one answer per source
                for answer, path in zip(data["answers"], paths, strict=True)]


def reader_failure(paths: list[Path], err: ReaderFailed
                   ) -> list[tuple[None, list[Problem]]]:
    """A failure of the child (a limit hit) as the first source's problem, naming every
    source it was reading."""
    where = ", ".join(p.name for p in paths)
    first = Problem(where, str(err), code=err.code, params={**err.params, "file": where})
    return [(None, [first])] + [(None, [])] * (len(paths) - 1)


def _problem(data: dict) -> Problem:
    """A problem of the child's answer, with its code and params when they are ours and plain
    (the child read hostile bytes: anything else keeps only the English message)."""
    known = Finding.from_dict({"status": "blocking", "where": {}, "message": data["message"],
                               "code": data.get("code"), "params": data.get("params")})
    return Problem(str(data["where"]), str(data["message"]), code=known.code,
                   params=known.params)


def inspected(data: dict, path: Path, kind: str):
    """One source's inspection answer as (VectorInfo or RasterInfo or None, problems)."""
    problems = [_problem(p) for p in data["problems"]]
    info = dict(data["info"]) if data["info"] is not None else None
    if info is None:
        return None, problems
    info["path"] = path
    if kind == "vector":
        info["geometry_types"] = tuple(info["geometry_types"])
        return VectorInfo(**info), problems
    info["dtypes"] = tuple(info["dtypes"])
    return RasterInfo(**info), problems


def probe_isolation(paths: list[Path], host: str, port: int) -> dict:
    """What a confined reader can reach: for each path whether it could read a byte of it,
    whether it could open a TCP connection to host:port, and whether it could import boto3;
    also the kinds of descriptors it holds, its parent's pid and its environment's names.
    Never content. For operators checking a deployment, and for the tests."""
    return run_task("probe", {"paths": [str(p) for p in paths], "host": host, "port": port},
                    read=[], write=[])


def source_files(path: Path) -> list[Path]:
    """The files a source is read from: itself, and a Shapefile's sidecar files."""
    if path.suffix.lower() != ".shp":
        return [path]
    return [path.with_suffix(s) for s in SHAPEFILE_PARTS if path.with_suffix(s).exists()]


def _staged(data: dict, original: Path, workdir: Path) -> Staged:
    """Rebuild what the child staged; anything pointing outside workdir is refused."""
    findings = [Finding.from_dict(f) for f in data["findings"] if f.get("status") in ORDER]
    staged = Staged(str(data["format"]), data["kind"], None, findings, dict(data["facts"]))
    if data.get("in_place"):  # the upload itself is the source: linked here, not in the child
        staged.source = place_original(original, workdir)
    elif data["source"] is not None:
        source = (workdir / data["source"]).resolve()
        if not source.is_relative_to(workdir.resolve()) or not source.is_file():
            raise ReaderFailed("the reader named a source outside its work folder",
                               code="reader_answer_untrusted")
        staged.source = source
    return staged


@contextlib.contextmanager
def malformed_answer():
    """An answer that does not have the shape its task gives: the child is not to be
    trusted (it read hostile bytes), so that is a refusal, never a server error."""
    try:
        yield
    except (KeyError, TypeError, ValueError, AttributeError) as err:
        raise ReaderFailed(f"the reader's answer was malformed ({type(err).__name__})",
                           code="reader_answer_untrusted") from err


def asset_from(data: dict) -> Asset:
    if "/" in data["file"] or data["file"].startswith("."):
        raise ReaderFailed("the reader named an output file outside its folder",
                           code="reader_answer_untrusted")
    return Asset.from_json(data)


# -- the tasks (child side) ----------------------------------------------------------------

def _task_stage(args: dict) -> dict:
    workdir, original = Path(args["workdir"]), Path(args["original"])
    options = UploadOptions(**args["options"])
    staged = stage(original, workdir, options, UploadLimits(**args["limits"]),
                   args["id_field"])
    in_place = staged.source == original
    inside = staged.source is not None and not in_place
    return {"format": staged.format, "kind": staged.kind, "in_place": in_place,
            "source": str(staged.source.relative_to(workdir)) if inside else None,
            "findings": [f.as_dict() for f in staged.findings], "facts": staged.facts}


def _task_inspect_vector(args: dict) -> dict:
    return {"answers": inspection_answers("vector", args)}


def _task_inspect_raster(args: dict) -> dict:
    return {"answers": inspection_answers("raster", args)}


def inspection_answers(kind: str, args: dict) -> list[dict]:
    """Child side: each source's answer (inspection_args), content checks first."""
    if kind == "vector":
        return [_inspect(Path(path), lambda p: inspect_vector(p, args["id_field"]))
                for path in args["paths"]]
    return [_inspect(Path(path), lambda p: inspect_raster(p, args["max_pixels"]))
            for path in args["paths"]]


def _inspect(path: Path, inspect) -> dict:
    """One source's content checks, then its format's inspection if they pass."""
    refused = source_problems(path)
    if refused:
        return {"info": None, "problems": refused}
    info, problems = inspect(path)
    return {"info": _info(info), "problems": [p.as_dict() for p in problems]}


def _task_probe(args: dict) -> dict:
    readable = {}
    for path in args["paths"]:
        try:
            with open(path, "rb") as handle:
                handle.read(1)
            readable[path] = True
        except OSError:
            readable[path] = False
    try:
        socket.create_connection((args["host"], args["port"]), timeout=5).close()
        connected = True
    except OSError:
        connected = False
    try:  # catalog.sources.child blocks it, isolation or not
        importlib.import_module("boto3")
        boto3 = True
    except ImportError:
        boto3 = False
    return {"readable": readable, "connected": connected, "boto3": boto3,
            "descriptors": _open_descriptors(), "parent": os.getppid(),
            "environment": sorted(os.environ), "sqlite_spill": _sqlite_spill()}


def _sqlite_spill() -> str:
    """"ok" when SQLite can write a temporary file here (as its sorts and index builds over
    large tables do), else its error: a private on-disk database outgrows a one-page cache."""
    try:
        with contextlib.closing(sqlite3.connect("")) as connection:
            connection.execute("PRAGMA cache_size = 1")
            connection.execute("CREATE TABLE spill (value TEXT)")
            connection.executemany("INSERT INTO spill VALUES (?)",
                                   (("x" * 4096,) for _ in range(64)))
            connection.commit()
        return "ok"
    except sqlite3.Error as err:
        return str(err)


def _open_descriptors() -> list[str]:
    """The kinds of this process's open descriptors above stderr ("fifo", "socket", ...):
    a reader must hold only its answer's pipe, never a socket to the zygote or its parent."""
    kinds = []
    for fd in range(3, 1024):
        try:
            mode = os.fstat(fd).st_mode
        except OSError:
            continue
        kinds.append(next((name for name, test in (("fifo", stat.S_ISFIFO),
                                                    ("socket", stat.S_ISSOCK),
                                                    ("folder", stat.S_ISDIR),
                                                    ("file", stat.S_ISREG)) if test(mode)),
                          "other"))
    return kinds


def source_problems(path: Path) -> list[dict]:
    """A `taza publish` source's content checks, as Problem dicts (empty when it may be
    opened with its format's driver)."""
    if path.suffix.lower() == ".shp":
        messages = check_shapefile_parts(source_files(path))
    elif path.suffix.lower() == ".zip":
        try:
            safe_members(path, ZIP_SOURCE_LIMITS)
        except ArchiveRefused as refused:
            return [{"where": path.name, "message": f.message, "code": f.code,
                     "params": f.params} for f in refused.findings]
        messages = check_file(path)
    else:
        messages = check_file(path)
    return [{"where": path.name, "message": message} for message in messages]


def _info(info) -> dict | None:
    if info is None:
        return None
    data = dataclasses.asdict(info)
    data.pop("path")
    return data


# Tasks of the floors above this one (conversion, catalog.convert.isolated) are named by their
# module: the child imports it before the filesystem is restricted (Python reads modules
# lazily), and this floor never imports the one above it.
TASKS = {"stage": _task_stage, "inspect_vector": _task_inspect_vector,
         "inspect_raster": _task_inspect_raster, "probe": _task_probe}
TASK_MODULES = {"read_sources": "catalog.convert.isolated"}


def main() -> None:
    """Serve one request: confine, run the task, answer on the original stdout."""
    answers = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # whatever the libraries print goes to stderr, never into the answer
    request = json.loads(sys.stdin.buffer.read(MAX_REQUEST_BYTES))
    sandbox.die_with_parent(int(request["parent"]))
    _use_scratch(request["scratch"])
    answer = _serve(request)
    answers.write(json.dumps(answer, default=str).encode())
    answers.flush()
    os._exit(0)  # no interpreter teardown: GDAL's destructors have nothing left to do


def _use_scratch(folder: str) -> None:
    """Temporary files (Python's and GDAL's) go to this request's scratch folder, the only
    place besides its output the child may write. A child forked by the zygote inherited the
    zygote's environment, so this is set here, not only in a fresh child's environment."""
    os.environ["TMPDIR"] = os.environ["CPL_TMPDIR"] = folder
    tempfile.tempdir = None  # computed again from TMPDIR on first use
    _sqlite_temporary_files_in(folder)


def _sqlite_temporary_files_in(folder: str) -> None:
    """SQLite reads TMPDIR once, when it starts: on `import sqlite3`, which in a forked child
    happened in the zygote, before the request named a scratch folder. Its sorts and index
    builds over large tables then spilled to /var/tmp, which the sandbox does not let a child
    write: publishing a GeoPackage of 200,000 parcels failed with "unable to open database
    file". The (global) temp_store_directory pragma points the process's SQLite here."""
    literal = "'" + folder.replace("'", "''") + "'"  # a pragma takes no bound parameter
    with contextlib.closing(sqlite3.connect(":memory:")) as connection:
        connection.execute(f"PRAGMA temp_store_directory = {literal}")


def _serve(request: dict) -> dict:
    try:
        sandbox.apply_limits(sandbox.Limits(**request["limits"]))
        task = _task(request["task"])
        if request["isolation"]:
            sandbox.cut_network()
            sandbox.restrict_filesystem([Path(p) for p in request["read"]],
                                        [Path(p) for p in request["write"]])
        result = task(request["args"])
        return {"ok": True, "result": _note_memory_limit(result, request["limits"]),
                "peak_rss_kb": _status_kb("VmHWM")}
    except sandbox.IsolationUnavailable as err:
        return {"ok": False, "failure": "isolation", "message": str(err)}
    except MemoryError:
        return {"ok": False, "failure": "memory"}
    except Exception as err:  # a reader bug or an unforeseen file: say which, keep details
        traceback.print_exc()
        return {"ok": False, "failure": "error", "message": f"{type(err).__name__}: {err}"}


def _task(name: str):
    """The function of a task: this module's, or `task_<name>` of the module that names it."""
    if name in TASK_MODULES:
        return getattr(importlib.import_module(TASK_MODULES[name]), f"task_{name}")
    return TASKS[name]


def _note_memory_limit(result: dict, limits: dict) -> dict:
    """GDAL turns a refused allocation into "failed to open": when a file was refused while
    the reader stood at its memory limit, say so, so a steward knows what to change."""
    limit = limits["memory_bytes"]
    if _status_kb("VmPeak") * 1024 < 0.9 * limit:
        return result
    message = (f"reading this file reached the reader's memory limit of {limit >> 20:,} MB: "
               "the file needed more memory than the catalog allows")
    said = blocking(message, code="reader_memory_limit", params={"mb": limit >> 20})
    if any(f.get("status") == "blocking" for f in result.get("findings", [])):
        result["findings"].append(said.as_dict())
    elif result.get("problems"):
        result["problems"].append({**said.as_dict(), "where": "reader"})
    return result


def _status_kb(key: str) -> int:
    """A kB figure of /proc/self/status (VmPeak, VmHWM); 0 when it cannot be read."""
    try:
        status = Path("/proc/self/status").read_text()
    except OSError:
        return 0
    for line in status.splitlines():
        if line.startswith(f"{key}:"):
            return int(line.split()[1])
    return 0


if __name__ == "__main__":
    main()
