"""Where each top-level statement of a module starts, found without parsing the module: a
compact index that lets an importer's statements be read one at a time.

An edit elsewhere makes an importer run again the few top-level statements that read
what changed. Finding them should not need the importer's syntax tree, nor keep one: the
index holds, per top-level statement, its first line and where its text starts (two
arrays of ints, which the garbage collector does not track), the module's import aliases
(one string) and its ``from __future__`` flags. A statement's text is cut from the source
and parsed alone, at its own lines, when an edit mentions one of its names.

A statement starts on a line at column 0 (not a clause such as ``else:``, not a line
continued by a backslash, not a decorated definition's ``def``). The module's code object
(its ``.pyc``, or the source compiled once) says which lines are inside a longer
expression (an instruction's position spans them: a string or a call running over several
lines) and that every start has code of its own. The index is not trusted, and the
importer takes the whole-module path, when that evidence is missing: a start with no
instruction (``global``, dead code), brackets that do not balance within a statement's
text (a continuation line at column 0 inside brackets), a name the code stores at column 0
of a line where the text has another (a ``.pyc`` compiled from other text), a byte-order
mark or a star import. A statement cut out this way is used only
if its text parses as exactly one statement starting on its line (:func:`statement_at`).

What the checks cannot see: a line at column 0 inside brackets that no instruction spans
(``x = (`` / ``a`` / ``if c else d)``: a conditional's parts have no instruction of their
own over both lines) in a statement whose strings or comments happen to hold the closing
brackets its code lacks; and a ``.pyc`` compiled from other text that stores the same
names at the same column-0 lines. Both need such text on purpose.
"""

from __future__ import annotations

import array
import ast
import bisect
import dis
import itertools
import re
import types
from collections.abc import Iterable, Iterator, Sequence
from typing import NamedTuple

from relive._codenames import STAR_IMPORT
from relive._reparse import source_lines
from relive._statements import (
    Lines,
    Statement,
    describe_statement,
    future_flags,
    import_aliases,
    import_binds,
)

__all__ = ["IMPORT", "StatementIndex", "Untrusted", "build_index", "mentioning", "statement_at"]

_CLAUSE = re.compile(r"(?:else|elif|except|finally)\b")
_DECORATED = re.compile(r"(?:@|def\b|async\b|class\b)")
IMPORT = re.compile(r"(?:import|from)\b")
_IMPORT_WORD = re.compile(r"\bimport\b")
_DEF = re.compile(r"(?:async[ \t]+)?def\b")
_NOT_A_START = frozenset(" \t\f\v\r\n#)]}\\")
_BRACKETS = (("(", ")"), ("[", "]"), ("{", "}"))


class Untrusted(Exception):
    """A statement cut out by the index is not exactly one statement: the index is wrong
    for this module (the caller takes the whole-module path)."""


class StatementIndex(NamedTuple):
    """The top-level statements of one source text, without their trees: a few objects
    per module (arrays of ints, one string), whatever its size."""

    lines: array.array[int]  # the first line of each statement (decorators included)
    offsets: array.array[int]  # where each statement's text starts; the source's length last
    aliases: str  # local name, module, ...: as the imports bind them (NUL-separated)
    flags: int  # the ``from __future__`` compiler flags
    imported: str  # the names imports bind at the top level (NUL-separated), see CodeCache

    def alias_map(self) -> dict[str, str]:
        """Which local names the module's imports bind to which modules."""
        parts = self.aliases.split("\0") if self.aliases else []
        return dict(zip(parts[::2], parts[1::2], strict=True))

    def text(self, source: str, index: int) -> str:
        """Statement ``index``'s text, with the blank and comment lines that follow it."""
        return source[self.offsets[index] : self.offsets[index + 1]]


def build_index(
    source: str, code: types.CodeType, module: str, package: str
) -> StatementIndex | None:
    """The index of ``source`` (whose module code object is ``code``), or None when it
    cannot be trusted (see the module's docstring)."""
    if source.startswith("\ufeff") or STAR_IMPORT.search(source):
        return None
    lines, offsets = _starts(source, code)
    if lines is None:
        return None
    offsets.append(len(source))
    if not _balanced(source, offsets) or not _blank(source[: offsets[0]]):
        return None
    imports: list[ast.stmt] = []
    imported: set[str] = set()
    for index, start in enumerate(offsets[:-1]):
        if IMPORT.match(source, start):
            text = source[start : offsets[index + 1]]
            node = _simple_import(text) or _parse_one(text, lines[index])
            if not isinstance(node, (ast.Import, ast.ImportFrom)):
                return None
            imports.append(node)
        elif not _DECORATED.match(source, start) and _IMPORT_WORD.search(
            source, start, offsets[index + 1]
        ):  # an import in a block (``try:``, ``if TYPE_CHECKING:``)
            node = _parse_one(source[start : offsets[index + 1]], lines[index])
            if node is None:
                return None
            imported |= import_binds(node)
    imported.update(*(import_binds(node) for node in imports))
    aliases = "\0".join(
        part for pair in import_aliases(imports, module, package).items() for part in pair
    )
    flags = future_flags(ast.Module(body=[n for n in imports if _is_future(n)], type_ignores=[]))
    return StatementIndex(
        array.array("l", lines), array.array("q", offsets), aliases, flags, "\0".join(imported)
    )


def mentioning(
    index: StatementIndex,
    source: str,
    words: Iterable[str],
    start: int = 0,
    *,
    definitions: bool = True,
) -> list[int]:
    """The statements from ``start`` on whose text holds one of ``words`` as a whole word
    (where a statement reading the name would write it), in order; without the plain
    ``def`` statements unless ``definitions``."""
    offsets = index.offsets
    if start >= len(offsets) - 1:
        return []
    found: set[int] = set()
    for word in words:
        position = source.find(word, offsets[start])
        while position >= 0:
            if not _whole(source, position, len(word)):
                position = source.find(word, position + 1)
                continue
            number = bisect.bisect_right(offsets, position) - 1
            found.add(number)
            position = source.find(word, offsets[number + 1])
    if not definitions:
        found = {number for number in found if not _DEF.match(source, offsets[number])}
    return sorted(found)


def _whole(source: str, position: int, length: int) -> bool:
    before = source[position - 1 : position] if position else ""
    after = source[position + length : position + length + 1]
    return not (before.isalnum() or before == "_" or after.isalnum() or after == "_")


def statement_at(
    index: StatementIndex, source: str, number: int, module: str, package: str
) -> Statement:
    """Statement ``number`` of the index, parsed alone at its lines and described as the
    whole-module analysis would describe it.

    Raises:
        Untrusted: Its text is not exactly one statement starting on its line.
    """
    lineno = index.lines[number]
    text = index.text(source, number)
    node = _parse_one(text, lineno)
    if node is None:
        raise Untrusted(f"line {lineno}: not one statement")
    lines = Lines(lineno - 1, source_lines(text))
    return describe_statement(node, lines, module, package, index.alias_map())


def _starts(source: str, code: types.CodeType) -> tuple[list[int] | None, list[int]]:
    """The first line and offset of each top-level statement (None: a start has no code)."""
    with_code = {line for _, _, line in code.co_lines() if line}
    positions = code.co_positions()
    spans = sorted(
        {(first, last) for first, last, _, _ in positions if first and last and first < last}
    )
    stores = _named_at_column_zero(code)
    lines: list[int] = []
    offsets: list[int] = []
    span, reach = 0, 0  # reach: the last line an instruction that started above spans
    decorating = False
    for number, offset, continued in _column_zero(source):
        name = stores.pop(number, None)
        word = _WORD.match(source, offset) if name is not None else None
        if name is not None and (word is None or word.group() != name):
            return None, offsets  # the code was compiled from other text (a stale .pyc)
        while span < len(spans) and spans[span][0] < number:
            reach = max(reach, spans[span][1])
            span += 1
        if continued or number <= reach or _CLAUSE.match(source, offset):
            continue
        if decorating and _DECORATED.match(source, offset):
            decorating = source.startswith("@", offset)
        elif number not in with_code:
            return None, offsets
        else:
            lines.append(number)
            offsets.append(offset)
            decorating = source.startswith("@", offset)
    return (None if stores else lines), offsets


_WORD = re.compile(r"\w+")
_STORE_NAME = dis.opmap["STORE_NAME"]


def _named_at_column_zero(code: types.CodeType) -> dict[int, str]:
    """The names the module's code stores from a target written at column 0 of a line,
    by line (``X = ...``): the text must show them there, or the code is another text's."""
    raw, names, found = code.co_code, code.co_names, {}
    extended = 0
    for index, (first, last, column, end) in zip(
        range(0, len(raw), 2), code.co_positions(), strict=False
    ):
        opcode, argument = raw[index], raw[index + 1] | extended
        extended = argument << 8 if opcode == dis.EXTENDED_ARG else 0
        if opcode == _STORE_NAME and column == 0 and first == last and first is not None:
            name = names[argument]
            if end == len(name) and name.isascii():
                found[first] = name
    return found


_START_CHAR = r"[^ \t\f\v\r\n#)\]}\\]"
_COLUMN_ZERO = re.compile(_START_CHAR)
_NEXT_COLUMN_ZERO = re.compile(r"\n(?=" + _START_CHAR + ")")


def _column_zero(source: str) -> Iterator[tuple[int, int, bool]]:
    """Each line with something other than a comment or a closing bracket at column 0:
    its number, its offset, and whether the line before ends with a backslash."""
    if "\r" in source and source.count("\r") != source.count("\r\n"):
        yield from _column_zero_lines(source)  # a lone \r ends a line too: the slow way
        return
    if _COLUMN_ZERO.match(source):
        yield 1, 0, False
    number, last = 1, 0
    for found in _NEXT_COLUMN_ZERO.finditer(source):
        offset = found.end()
        number += source.count("\n", last, offset)
        last = offset
        before = source[max(offset - 3, 0) : offset - 1].rstrip("\r")
        yield number, offset, before.endswith("\\")


def _column_zero_lines(source: str) -> Iterator[tuple[int, int, bool]]:
    offset, continued = 0, False
    for number, line in enumerate(source_lines(source, keepends=True), 1):
        if _COLUMN_ZERO.match(line):
            yield number, offset, continued
        offset += len(line)
        continued = line.rstrip("\r\n").endswith("\\")


def _balanced(source: str, offsets: Sequence[int]) -> bool:
    """Whether each statement's text has as many closing brackets as opening ones (one
    cut inside brackets would not; strings and comments are counted too, which can only
    refuse a good cut)."""
    for start, end in itertools.pairwise(offsets):
        for opening, closing in _BRACKETS:
            if source.count(opening, start, end) != source.count(closing, start, end):
                return False
    return True


def _blank(text: str) -> bool:
    return all(not line.strip() or line.lstrip().startswith("#") for line in text.splitlines())


def _parse_one(text: str, lineno: int) -> ast.stmt | None:
    """The one statement ``text`` holds, at line ``lineno`` (None: not exactly one that
    starts there)."""
    try:
        body = ast.parse("\n" * (lineno - 1) + text).body
    except (SyntaxError, ValueError):
        return None
    if len(body) != 1:
        return None
    node = body[0]
    decorators: list[ast.expr] = getattr(node, "decorator_list", [])
    first = min([node.lineno, *(decorator.lineno for decorator in decorators)])
    return node if first == lineno else None


_DOTTED = r"[A-Za-z_]\w*(?:[ \t]*\.[ \t]*[A-Za-z_]\w*)*"
_ALIAS = rf"{_DOTTED}(?:[ \t]+as[ \t]+[A-Za-z_]\w*)?"
_SIMPLE_IMPORT = re.compile(
    rf"(?:import[ \t]+(?P<modules>{_ALIAS}(?:[ \t]*,[ \t]*{_ALIAS})*)"
    rf"|from[ \t]+(?P<dots>\.*)[ \t]*(?P<module>{_DOTTED})?[ \t]+import[ \t]+"
    rf"(?P<names>{_ALIAS}(?:[ \t]*,[ \t]*{_ALIAS})*))"
    r"[ \t]*(?:#[^\r\n]*)?(?:(?:\r\n|\r|\n)[ \t\f]*(?:#[^\r\n]*)?)*\Z"
)


_AS = re.compile(r"[ \t]+as[ \t]+")


def _simple_import(text: str) -> ast.stmt | None:
    """The import statement ``text`` holds when it is a one-line import of ASCII names
    (no brackets, no continuation: most of them), read without the parser; None for
    any other text (the parser reads it)."""
    found = _SIMPLE_IMPORT.match(text) if text.isascii() else None
    if found is None:
        return None
    names = found.group("modules") or found.group("names")
    aliases = []
    for part in names.split(","):
        name, *asname = _AS.split(part.strip())
        aliases.append(ast.alias(name="".join(name.split()), asname=asname[0] if asname else None))
    if found.group("modules") is not None:
        return ast.Import(names=aliases)
    module = "".join((found.group("module") or "").split()) or None
    return ast.ImportFrom(module=module, names=aliases, level=len(found.group("dots")))


def _is_future(node: ast.stmt) -> bool:
    return isinstance(node, ast.ImportFrom) and node.module == "__future__"
