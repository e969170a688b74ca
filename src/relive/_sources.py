"""Source files: read as the import system reads them, fingerprinted by their status.

Content decides whether a file changed; its status (mtime, size, inode) is only a fast
first check, trusted unless the file was written so recently that another write could
share it. Shared by the tracker, the planner and ``relive.loop``.
"""

from __future__ import annotations

import importlib.util
import marshal
import os
import time
import types

__all__ = [
    "StatKey",
    "bytecode_matches",
    "compiled_from",
    "fingerprint",
    "process_start_time",
    "read_bytes",
    "read_source",
    "stat_key",
    "written_recently",
]

StatKey = tuple[int, int, int]
"""The status fields that change when a file is written: mtime (ns), size, inode."""

_RACY_NS = 2_000_000_000


def read_source(path: str) -> str:
    """Read a Python file as the import system would (encoding cookie, BOM, newlines)."""
    with open(path, "rb") as handle:
        data = handle.read()
    return importlib.util.decode_source(data)


def stat_key(path: str) -> StatKey:
    """The file status fields that change when a file is written."""
    status = os.stat(path)
    return (status.st_mtime_ns, status.st_size, status.st_ino)


def fingerprint(path: str) -> StatKey | None:
    """:func:`stat_key`, or None when the file cannot be looked at."""
    try:
        return stat_key(path)
    except OSError:
        return None


def read_bytes(path: str) -> bytes | None:
    """The file's bytes, or None when it cannot be read."""
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except OSError:
        return None


def written_recently(mtime_ns: int) -> bool:
    """Whether a file was written so recently that another write could share its status.

    File times advance in coarse ticks, so two writes of the same size within one tick
    leave the status unchanged; such recent files are compared by content (as git does).
    """
    return time.time_ns() - mtime_ns < _RACY_NS


def bytecode_matches(cached: object, stat: StatKey, path: str | None = None) -> bool:
    """Whether the module's .pyc was compiled from a file with this mtime and size (and,
    given the file's ``path``, from its text as it is now: an edit within the same second
    that kept the size leaves the header matching, not the code)."""
    if not isinstance(cached, str):
        return False
    try:
        with open(cached, "rb") as handle:
            data = handle.read()
    except OSError:
        return False
    header = data[:16]
    if len(header) < 16 or int.from_bytes(header[4:8], "little") & 1:
        return False
    mtime = int.from_bytes(header[8:12], "little")
    size = int.from_bytes(header[12:16], "little")
    if mtime != (stat[0] // 1_000_000_000) & 0xFFFFFFFF or size != stat[1] & 0xFFFFFFFF:
        return False
    return path is None or compiled_from(path, _unmarshal(data[16:])) is not None


def _unmarshal(data: bytes) -> types.CodeType | None:
    try:
        code = marshal.loads(data)
    except (EOFError, ValueError, TypeError):
        return None
    return code if isinstance(code, types.CodeType) else None


def compiled_from(path: str, code: types.CodeType | None) -> types.CodeType | None:
    """The file compiled now, if that gives ``code`` (the same statements on the same
    lines: code objects compare bytecode, constants, names and line tables)."""
    if code is None:
        return None
    data = read_bytes(path)
    if data is None:
        return None
    try:
        compiled = compile(data, code.co_filename, "exec", dont_inherit=True)
    except (SyntaxError, ValueError):
        return None
    return compiled if compiled == code else None


def process_start_time() -> float:
    """When this process started (wall clock), so older files are known to be as imported."""
    try:
        with open("/proc/self/stat", encoding="ascii") as handle:
            fields = handle.read().rpartition(")")[2].split()
        ticks = int(fields[19])
        with open("/proc/uptime", encoding="ascii") as handle:
            uptime = float(handle.read().split()[0])
        return time.time() - uptime + ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return time.time()
