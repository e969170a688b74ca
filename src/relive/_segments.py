"""Where each top-level statement of a module's source starts, found by scanning its text,
not parsing it: the one segmenter relive reads sources with, and the importers' index on it.

A statement starts on a line at column 0 (after any form feeds) that no string or bracket
spans and no backslash continues; decorators and the clauses of a compound statement
(``else``, ``except``...) join their statement. One tokenizer finds what can hide a line's
start (strings, brackets, comments, continuations). Lines are the compiler's: ``\\n``,
``\\r\\n`` and ``\\r`` end them (form feeds do not). When the scan cannot be sure (an
f-string whose braces hide quotes, a line starting with a backslash, unbalanced brackets)
it says so (None), never guesses. Two callers: a wide module's first edit
(``relive._scan``: lean records of every statement) and, below, the index an importer's
statements are read through one at a time.

An edit elsewhere makes an importer run again the few top-level statements that read what
changed. Finding them should not need the importer's syntax tree, nor keep one: the index
holds, per top-level statement, its first line and where its text starts (two arrays of
ints, which the garbage collector does not track), the module's import aliases (one
string) and its ``from __future__`` flags. A statement's text is cut from the source and
parsed alone, at its own lines, when an edit mentions one of its names; it is used only if
it parses as exactly one statement starting on its line (:func:`statement_at`). The index
is not built (the importer takes the whole-module path) for a source the scan is unsure
of, a byte-order mark, a star import, or a module code object that stores a name at
column 0 of a line where the text has another (a ``.pyc`` compiled from other text).
"""

from __future__ import annotations

import array
import ast
import bisect
import dis
import io
import itertools
import re
import tokenize
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

__all__ = [
    "DEFINITION",
    "IMPORT",
    "Start",
    "StatementIndex",
    "Untrusted",
    "block_statements",
    "build_index",
    "mentioning",
    "statement_at",
    "statement_starts",
]

IMPORT = re.compile(r"(?:import|from)\b")
_DECORATED = re.compile(r"(?:@|def\b|async\b|class\b)")
_IMPORT_WORD = re.compile(r"\bimport\b")
_DEF = re.compile(r"(?:async[ \t]+)?def\b")


# ---------------------------------------------------------------------------------------
# The segmenter

# What hides a line's start, as one pattern: each match is a run of text that cannot
# (code, comments, strings on one line without braces, bracketed groups on one line with
# nothing nested), then one token that may (a bracket, a string over lines or with braces,
# a backslash continuation), or the end. Atomic runs: no backtracking, whatever the text.
_HARMLESS = (
    r"[^'\"#\\()\[\]{}]++"
    r"|#[^\n]*+"
    r'|"""(?:[^"\\\n{]|\\[^\n]|"(?!""))*+"""'
    r"|'''(?:[^'\\\n{]|\\[^\n]|'(?!''))*+'''"
    r'|"(?!"")(?:[^"\\\n{]|\\[^\n])*+"'
    r"|'(?!'')(?:[^'\\\n{]|\\[^\n])*+'"
    r"|[(\[{][^()\[\]{}'\"#\\\n]*+[)\]}]"
)
_TOKEN = re.compile(
    rf"(?>{_HARMLESS})*+(?:(?P<token>"
    r'"""(?:[^"\\]|\\.|"(?!""))*"""'
    r"|'''(?:[^'\\]|\\.|'(?!''))*'''"
    r'|"(?:[^"\\\n]|\\.)*"'
    r"|'(?:[^'\\\n]|\\.)*'"
    r"|\\\n|.)|\Z)",
    re.DOTALL,
)
# A line at column 0: any indentation is reset by a form feed (as the tokenizer does). The
# line break before it found first (a literal: the fast search), the first line apart.
_FIRST_START = re.compile(r"(?:[ \t\f]*\f)?(?=[^\s#\\])")
_START = re.compile(r"\n(?:[ \t\f]*\f)?(?=[^\s#\\])")
_FIRST_CONTINUED = re.compile(r"[ \t\f]*\\")
_CONTINUED_LINE = re.compile(r"\n[ \t\f]*\\")
_INDENTED = re.compile(r"\n[ \t]*(?=[^\s#\\])")
_ODD_INDENT = re.compile(r"\n[ \t]*[\f\v]")
DEFINITION = re.compile(r"(?:async[ \t]+)?(def|class)[ \t]+(\w+)")
_CLAUSE = re.compile(r"(?:else|elif|except|finally)\b")
_CRLF = re.compile("\r\n")
_PREFIX = frozenset("fFrR")

Start = tuple[int, int, int]  # a statement's first line, offset, and column (in bytes)


def statement_starts(text: str) -> list[Start] | None:
    """``(line, offset, column)`` of each top-level statement: its first line (1-based,
    decorators included), the offset of its first character in ``text`` (after any form
    feeds), and the UTF-8 column that character is at; or None when the scan cannot be
    sure."""
    plain = text.replace("\r\n", "\n").replace("\r", "\n") if "\r" in text else text
    starts = _starts(plain)
    if starts is None or len(plain) == len(text):
        return starts
    # Offsets back into ``text``: each \r\n before a start moved it one character.
    moved = [found.start() - number for number, found in enumerate(_CRLF.finditer(text))]
    return [
        (line, offset + bisect.bisect_left(moved, offset), column)
        for line, offset, column in starts
    ]


def _starts(text: str) -> list[Start] | None:
    """:func:`statement_starts` of a text with ``\\n`` line breaks only."""
    dead = _dead_spans(text)
    if dead is None:
        return None
    starts, ends = dead
    if _only_continued(text, starts, ends):
        return None
    found: list[Start] = []
    line, counted = 1, 0
    joined = _joined(text, _live(_line_starts(text), starts, ends))
    if joined is None:
        return None
    for at, begin in joined:
        line += text.count("\n", counted, at)
        counted = at
        found.append((line, begin, begin - at))  # a form feed, a space, a tab: one byte each
    return found


def block_statements(text: str) -> list[tuple[int, int]] | None:
    """Where each statement of the block a compound statement opens starts (a class's
    body: the line, and the statement's first character), from the statement's ``text``
    (``\\n`` line breaks only); None when the scan cannot be sure (the block on the
    header's line, indentation of more than one block, a form feed in it)."""
    if "\r" in text or _ODD_INDENT.search(text):
        return None
    dead = _dead_spans(text)
    if dead is None or _only_continued(text, *dead):
        return None
    indent = ""
    lines: list[tuple[int, int]] = []
    for found in _live(_indented_lines(text), *dead):
        at, begin = found
        if not indent and begin > at:
            indent = text[at:begin]  # the first line of the block
        if indent and text.startswith(indent, at):
            if begin - at == len(indent):
                lines.append(found)
        elif indent:
            return None  # not the block's indentation (a line at column 0 after it)
    return _joined(text, lines) if indent else None


def _only_continued(text: str, starts: list[int], ends: list[int]) -> bool:
    """Whether a line is only a continuation (a backslash at its start): unsure."""
    if _FIRST_CONTINUED.match(text):
        return True
    for match in _CONTINUED_LINE.finditer(text):
        index = bisect.bisect_right(starts, match.start() + 1) - 1
        if not (index >= 0 and starts[index] < match.start() + 1 < ends[index]):
            return True
    return False


def _live(
    lines: Iterable[tuple[int, int]], starts: list[int], ends: list[int]
) -> Iterator[tuple[int, int]]:
    """The ``lines`` (sorted) no dead span hides (see :func:`_dead_spans`)."""
    span, spans = 0, len(starts)
    for found in lines:
        at = found[0]
        while span < spans and ends[span] <= at:
            span += 1
        if not (span < spans and starts[span] < at):
            yield found


def _joined(text: str, lines: Iterable[tuple[int, int]]) -> list[tuple[int, int]] | None:
    """The lines that start a statement: a clause (``else:``) joins the statement before
    it, a decorator the definition it decorates (None: a decorator decorates nothing)."""
    found: list[tuple[int, int]] = []
    decorating = False
    for at, begin in lines:
        if _CLAUSE.match(text, begin) or decorating:
            decorating = decorating and not DEFINITION.match(text, begin)
            continue
        decorating = text.startswith("@", begin) and not DEFINITION.match(text, begin)
        found.append((at, begin))
    return None if decorating else found


def _indented_lines(text: str) -> Iterator[tuple[int, int]]:
    """Where each line after the first that holds code starts, and where its code does."""
    for match in _INDENTED.finditer(text):
        yield match.start() + 1, match.end()


def _line_starts(text: str) -> Iterator[tuple[int, int]]:
    """Where each line with code at column 0 starts, and where its code starts."""
    first = _FIRST_START.match(text)
    if first is not None:
        yield 0, first.end()
    for match in _START.finditer(text):
        yield match.start() + 1, match.end()


def _dead_spans(text: str) -> tuple[list[int], list[int]] | None:
    """The spans (sorted, apart) where no statement can start: multi-line strings and
    bracketed text at depth 0, and the line after a backslash continuation."""
    starts: list[int] = []
    ends: list[int] = []
    depth, opened, position = 0, 0, 0
    while True:
        match = _TOKEN.match(text, position)
        assert match is not None  # the pattern matches anywhere: a token, or the end
        at, position = match.start("token"), match.end()
        if at < 0:
            break  # the end
        char = text[at]
        if char in "([{":
            if not depth:
                opened = at
            depth += 1
        elif char in ")]}":
            depth -= 1
            if depth < 0:
                return None
            if not depth:
                starts.append(opened)
                ends.append(match.end())
        elif char in "'\"":
            end = _string_end(text, at, match.end())
            if end is None:
                return None
            position = end
            if not depth and text.find("\n", at, end) >= 0:
                starts.append(at)
                ends.append(end)
        elif char == "\\" and text.startswith("\n", at + 1):
            if not depth:
                starts.append(at)
                ends.append(match.end() + 1)
        else:
            return None  # what the compiler would not read (a stray backslash)
    return None if depth else (starts, ends)


def _string_end(text: str, at: int, end: int) -> int | None:
    """Where the string whose quote is at ``at`` ends (the pattern found ``end``); None
    if it has no closing quote."""
    if end - at < 2:
        return None
    if text[at - 1 : at] in _PREFIX and _unsure_fstring(text, at, end):
        # A quote inside an f-string's braces (3.12): the tokenizer says where it ends.
        return _fstring_end(text, at)
    return end


def _fstring_end(text: str, at: int) -> int | None:
    """Where the f-string whose quote is at ``at`` ends, read by Python's tokenizer (from
    3.12, whose f-strings may hold their own quote in their braces); None before 3.12 or
    if the tokenizer cannot read it."""
    opening, closing = (
        getattr(tokenize, "FSTRING_START", None),
        getattr(tokenize, "FSTRING_END", None),
    )
    if opening is None:
        return None
    begin = at
    while begin > 0 and text[begin - 1] in _PREFIX:
        begin -= 1
    lines = io.StringIO(text[begin:]).readlines()
    offsets = list(itertools.accumulate((len(line) for line in lines), initial=begin))
    depth = 0
    try:
        for token in tokenize.generate_tokens(iter(lines).__next__):
            if token.type == opening:
                depth += 1
            elif token.type == closing:
                depth -= 1
                if not depth:
                    row, column = token.end
                    return offsets[row - 1] + column
            elif not depth:
                return None
    except (SyntaxError, tokenize.TokenError, StopIteration):
        return None
    return None


def _unsure_fstring(text: str, at: int, end: int) -> bool:
    """Whether the string at ``at`` is an f-string whose text does not end outside its
    replacement fields (``{{`` and ``}}`` outside them are literal braces)."""
    prefix = text[max(at - 2, 0) : at].lower()
    if not (prefix.endswith("f") or prefix in ("fr", "rf")):
        return False
    literal = text[at:end]
    if "{" not in literal:
        return False
    depth, index = 0, 0
    while index < len(literal):
        char = literal[index]
        if char in "{}" and not depth and literal[index + 1 : index + 2] == char:
            index += 2
            continue
        if char == "{":
            depth += 1
        elif char == "}":
            depth = max(depth - 1, 0)
        index += 1
    return depth != 0


# ---------------------------------------------------------------------------------------
# The importers' index


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
    starts = statement_starts(source)
    if starts is None or not _same_stores(source, starts, code):
        return None
    lines = [line for line, _, _ in starts]
    offsets = [offset for _, offset, _ in starts]
    offsets.append(len(source))
    if not _blank(source[: offsets[0]]):
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


_WORD = re.compile(r"\w+")
_STORE_NAME = dis.opmap["STORE_NAME"]
_LINE_END = re.compile(r"\r\n|\r|\n")


def _same_stores(source: str, starts: Sequence[Start], code: types.CodeType) -> bool:
    """Whether each name the code stores from column 0 of a line is written there in
    ``source`` (a ``.pyc`` compiled from other text is not: it cannot vouch for it)."""
    stores = _named_at_column_zero(code)
    if not stores:
        return True
    at = {line: offset - column for line, offset, column in starts}
    lines: list[int] = []
    for line, name in stores.items():
        offset = at.get(line)
        if offset is None:  # a line inside a statement (``a, \\`` / ``b = 1, 2``)
            lines = lines or [0, *(found.end() for found in _LINE_END.finditer(source))]
            if line > len(lines):
                return False
            offset = lines[line - 1]
        word = _WORD.match(source, offset)
        if word is None or word.group() != name:
            return False
    return True


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
