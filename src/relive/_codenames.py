"""The names a module's top-level code loads, read from its code object: a first filter
before an importer's syntax tree is looked at.

An edit that rebinds ``ROOT`` (or changes the code of ``f``) must re-run the statements of
every importer that read it at the top level. Most importers never do; the compiler
already says what the top-level code reaches in another module: the names it imports
(``IMPORT_FROM``) and the attributes it loads (``m.X``), so an importer whose list does not
name one of them costs a set test, and nothing of it is parsed or kept. (Its own names are
not counted: ``transform`` defined in both modules is not a read of the other's.)
The code object comes from the module's ``.pyc`` when that was compiled from the file as
tracked (no compile), else from compiling the tracked text once; only the names are kept
(a frozenset per module).

What counts as top level is what relive's statement analysis reads (``_statements._uses``):
the module's code, class bodies and comprehensions (they run at import), not function or
lambda bodies. A star import reads names no list shows: such a module is not filtered.
"""

from __future__ import annotations

import dis
import importlib.util
import marshal
import re
import sys
import types
from collections.abc import Iterable

from relive._sources import StatKey, bytecode_matches

__all__ = [
    "STAR_IMPORT",
    "load_code",
    "loaded_and_used",
    "may_load",
    "names_loaded",
    "names_used",
    "top_level_names",
]

_CO_OPTIMIZED = 0x1  # a function's frame (def, lambda, comprehension); a class body has none
STAR_IMPORT = re.compile(r"\bimport\s*\*")
# The instructions reaching another module's names, with how far their argument is shifted
# to index ``co_names`` (3.12 packs flags into the low bits of LOAD_ATTR's and
# LOAD_SUPER_ATTR's).
_SHIFTED = sys.version_info >= (3, 12)
_REACHING: dict[int, int] = {
    dis.opmap[name]: shift
    for name, shift in (
        ("IMPORT_FROM", 0),
        ("LOAD_ATTR", 1 if _SHIFTED else 0),
        ("LOAD_METHOD", 0),
        ("LOAD_SUPER_ATTR", 2),
    )
    if dis.opmap.get(name, 256) < 256  # a pseudo-instruction never reaches co_code
}
_EXTENDED_ARG = dis.EXTENDED_ARG
# The instructions loading any name (the module's own, a builtin, an attribute), shifted
# as above (LOAD_GLOBAL's low bit says whether a NULL is pushed for a call on 3.11+).
_LOADING: dict[int, int] = {
    **{opcode: shift for opcode, shift in _REACHING.items() if opcode != dis.opmap["IMPORT_FROM"]},
    **{
        dis.opmap[name]: shift
        for name, shift in (
            ("LOAD_NAME", 0),
            ("LOAD_GLOBAL", 1 if sys.version_info >= (3, 11) else 0),
            ("LOAD_FROM_DICT_OR_GLOBALS", 0),
        )
        if dis.opmap.get(name, 256) < 256
    },
}


def top_level_names(
    source: str, filename: str, path: str | None = None, stat: StatKey | None = None
) -> frozenset[str] | None:
    """The names ``source``'s top-level code loads, or None when they cannot say what it
    reads (a star import, text that does not compile).

    ``path`` and ``stat``: the file ``source`` was read from and its status then; its
    ``.pyc``, if compiled from that file, is read instead of compiling ``source``.
    """
    if STAR_IMPORT.search(source):
        return None
    code = load_code(source, filename, path, stat)
    return None if code is None else names_loaded(code)


def load_code(
    source: str, filename: str, path: str | None = None, stat: StatKey | None = None
) -> types.CodeType | None:
    """The module code object of ``source``: its ``.pyc`` when compiled from the file as
    ``stat`` saw it (see :func:`top_level_names`), else ``source`` compiled (None: it does
    not compile)."""
    code = _cached_code(path, stat) if path is not None and stat is not None else None
    if code is None:
        try:
            code = compile(source, filename, "exec", dont_inherit=True)
        except (SyntaxError, ValueError):
            return None
    return code


def names_loaded(code: types.CodeType) -> frozenset[str]:
    """The names the top-level code of the module ``code`` reaches in other modules."""
    return frozenset(_loaded(code))


def names_used(code: types.CodeType) -> frozenset[str]:
    """Every name the top-level code of the module ``code`` loads (its own, builtins,
    attributes; not what an import binds): what a top-level statement can compute with."""
    return loaded_and_used(code)[1]


def loaded_and_used(code: types.CodeType) -> tuple[frozenset[str], frozenset[str]]:
    """:func:`names_loaded` and :func:`names_used` of ``code``, in one pass."""
    loaded: set[str] = set()
    used: set[str] = set()
    stack = [code]
    while stack:
        current = stack.pop()
        _read_names(current, loaded, used)
        stack.extend(
            const
            for const in current.co_consts
            if isinstance(const, types.CodeType) and _runs_at_import(const)
        )
    return frozenset(loaded), frozenset(used)


def _read_names(code: types.CodeType, loaded: set[str], used: set[str]) -> None:
    """Add the names ``code``'s own instructions reach in another module to ``loaded``,
    and those they load to ``used``."""
    raw, table = code.co_code, code.co_names
    extended = 0
    for index in range(0, len(raw), 2):
        opcode, argument = raw[index], raw[index + 1] | extended
        extended = argument << 8 if opcode == _EXTENDED_ARG else 0
        shift = _REACHING.get(opcode)
        if shift is not None:
            loaded.add(table[argument >> shift])
        shift = _LOADING.get(opcode)
        if shift is not None:
            used.add(table[argument >> shift])


def may_load(names: frozenset[str] | None, wanted: Iterable[str]) -> bool:
    """Whether top-level code loading ``names`` (None: unknown) may read one of ``wanted``
    (a replaced class member ``C.K`` is read through ``C``)."""
    if names is None:
        return True
    return any(name.partition(".")[0] in names for name in wanted)


def _loaded(code: types.CodeType) -> set[str]:
    """The names another module's values are reached by: those imported (``from m import
    X``) and attributes loaded (``m.X``, ``m.f()``); a name the module's own code loads is
    its own binding (one a ``from`` import copied is counted at the import)."""
    names = _reaching(code)
    for const in code.co_consts:
        if isinstance(const, types.CodeType) and _runs_at_import(const):
            names |= _loaded(const)
    return names


def _reaching(code: types.CodeType) -> set[str]:
    """The names of ``code``'s own instructions that reach another module (read from the
    bytes: ``dis`` builds an object per instruction, some 30 times slower)."""
    raw, table, names = code.co_code, code.co_names, set()
    extended = 0
    for index in range(0, len(raw), 2):
        opcode, argument = raw[index], raw[index + 1] | extended
        extended = argument << 8 if opcode == _EXTENDED_ARG else 0
        shift = _REACHING.get(opcode)
        if shift is not None:
            names.add(table[argument >> shift])
    return names


def _runs_at_import(code: types.CodeType) -> bool:
    """A class body or a comprehension (``<listcomp>``, ``<genexpr>``, ...): not a def.
    Lambdas are kept too (a call at the top level runs one): more names, never fewer."""
    return not code.co_flags & _CO_OPTIMIZED or code.co_name.startswith("<")


def _cached_code(path: str, stat: StatKey) -> types.CodeType | None:
    try:
        cached = importlib.util.cache_from_source(path)
    except (NotImplementedError, ValueError):
        return None
    if not bytecode_matches(cached, stat):
        return None
    try:
        with open(cached, "rb") as handle:
            data = handle.read()
        code = marshal.loads(data[16:])
    except (OSError, EOFError, ValueError, TypeError):
        return None
    return code if isinstance(code, types.CodeType) else None
