"""The top-level statements of a large source, found by scanning its text, not parsing it.

A full parse of a 5 MB module costs more than its import and holds its syntax tree (hundreds
of MB) at once. Its statements are found instead by a scan of the text for what can hide a
line's start (strings, brackets, comments, line continuations): a top-level statement
starts on a line at column 0 (after any form feeds) that no string or bracket spans and
no backslash continues; decorators and the clauses of a compound statement (``else``,
``except``...) join their statement. Definitions are read from their first line (``def
name``, ``class name``); every other statement is parsed, consecutive ones together. The
records are lean (see :class:`~relive._statements.Statement`): a definition's tree is
parsed from its text when asked for.

Lines are the compiler's: ``\\n``, ``\\r\\n`` and ``\\r`` (read as ``\\n`` here, as the
tokenizer reads them). When the scan cannot be sure (an f-string whose braces hide quotes,
a line starting with a backslash, unbalanced brackets), or a parsed run of statements does
not start where the scan said, the caller parses the whole source instead.
"""

from __future__ import annotations

import ast
import bisect
import re
import unicodedata
import warnings
from collections.abc import Sequence
from typing import Final

from relive._statements import Lines, Scope, Statement, describe, record_aliases

__all__ = ["scan_statements", "statement_starts"]

_TOKEN: Final = re.compile(
    r'"""(?:[^"\\]|\\.|"(?!""))*"""'
    r"|'''(?:[^'\\]|\\.|'(?!''))*'''"
    r'|"(?:[^"\\\n]|\\.)*"'
    r"|'(?:[^'\\\n]|\\.)*'"
    r"|[(\[{][^()\[\]{}'\"#\\\n]*[)\]}]"  # a bracketed group on one line, nothing nested
    r"|#[^\n]*|[()\[\]{}]|\\\n",
    re.DOTALL,
)
# A line at column 0: any indentation is reset by a form feed (as the tokenizer does).
_START: Final = re.compile(r"^(?:[ \t\f]*\f)?(?=[^\s#\\])", re.MULTILINE)
_CONTINUED_LINE: Final = re.compile(r"^[ \t\f]*\\", re.MULTILINE)
_DEFINITION: Final = re.compile(r"(?:async[ \t]+)?(def|class)[ \t]+(\w+)")
_CLAUSE: Final = re.compile(r"(?:else|elif|except|finally)\b")
_PREFIX: Final = frozenset("fFrR")


def statement_starts(text: str) -> list[tuple[int, int, int]] | None:
    """``(line, offset, column)`` of each top-level statement's first line (1-based line;
    the offset of the statement's first character; the UTF-8 column it starts at), or
    None when the scan cannot be sure. ``text`` has ``\\n`` line breaks only."""
    dead = _dead_spans(text)
    if dead is None:
        return None
    starts, ends = dead
    for match in _CONTINUED_LINE.finditer(text):  # a line that is only a continuation
        index = bisect.bisect_right(starts, match.start()) - 1
        if not (index >= 0 and starts[index] < match.start() < ends[index]):
            return None
    found: list[tuple[int, int, int]] = []
    line, counted = 1, 0
    previous_decorator = False
    for match in _START.finditer(text):
        at = match.start()
        index = bisect.bisect_right(starts, at) - 1
        if index >= 0 and starts[index] < at < ends[index]:
            continue  # inside a string or brackets, or continued by a backslash
        begin = match.end()
        line += text.count("\n", counted, at)
        counted = at
        if _CLAUSE.match(text, begin) or previous_decorator:
            previous_decorator = previous_decorator and not _DEFINITION.match(text, begin)
            continue  # ``else:`` of the statement before; the definition a decorator decorates
        previous_decorator = text.startswith("@", begin) and not _DEFINITION.match(text, begin)
        found.append((line, begin, len(text[at:begin].encode())))
    return None if previous_decorator else found


def _dead_spans(text: str) -> tuple[list[int], list[int]] | None:
    """The spans (sorted, apart) where no statement can start: multi-line strings and
    bracketed text at depth 0, and the line after a backslash continuation."""
    starts: list[int] = []
    ends: list[int] = []
    depth, opened = 0, 0
    for match in _TOKEN.finditer(text):
        at = match.start()
        char = text[at]
        if char in "([{":
            if match.end() - at > 1:
                continue  # a whole group on one line: no line starts inside it
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
        elif depth:
            continue
        elif char == "\\":
            starts.append(at)
            ends.append(match.end() + 1)
        elif char in "'\"":
            end = match.end()
            fstring = text[at - 1 : at] in _PREFIX and _fstring(text, at)
            if fstring and not _braces_balanced(text[at:end]):
                return None  # a quote inside an f-string's braces (3.12): where does it end?
            if text.find("\n", at, end) >= 0:
                starts.append(at)
                ends.append(end)
    return None if depth else (starts, ends)


def _fstring(text: str, at: int) -> bool:
    prefix = text[max(at - 2, 0) : at].lower()
    return prefix.endswith("f") or prefix in ("fr", "rf")


def _braces_balanced(literal: str) -> bool:
    """Whether an f-string's text ends outside its replacement fields (``{{`` and ``}}``
    outside them are literal braces)."""
    if "{" not in literal:
        return True
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
    return depth == 0


def scan_statements(
    text: str, *, module: str = "", package: str = "", filename: str = "<unknown>"
) -> list[Statement] | None:
    """The lean top-level statements of ``text`` (as :func:`analyze_body` would describe
    them, trees let go), or None when the scan cannot be sure of them."""
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    starts = statement_starts(text)
    if starts is None:
        return None
    scope = Scope(module, package)
    definitions: dict[int, Statement] = {}
    runs: list[list[int]] = []  # consecutive plain statements: parsed together
    for index, (_, begin, _) in enumerate(starts):
        match = _DEFINITION.match(text, begin)
        if match is not None:
            definitions[index] = _definition(text, starts, index, match, scope)
        elif runs and runs[-1][-1] == index - 1:
            runs[-1].append(index)
        else:
            runs.append([index])
    parsed = _parse_runs(text, starts, runs, scope, filename)
    if parsed is None:
        return None
    records: list[Statement] = []
    for index in range(len(starts)):
        if index in definitions:
            records.append(definitions[index])
        elif index in parsed:
            records.extend(parsed[index])
    return records


def _span_text(
    text: str, starts: Sequence[tuple[int, int, int]], first: int, last: int, *, line: bool
) -> str:
    """The text of statements ``first`` to ``last`` (indexes into ``starts``), to the
    start of the next statement's line, trailing blank space left out; from the start of
    the first one's line if ``line`` (its form feeds too)."""
    begin = starts[first][1] - (starts[first][2] if line else 0)
    end = len(text) if last + 1 >= len(starts) else starts[last + 1][1] - starts[last + 1][2]
    return text[begin:end].rstrip()


def _definition(
    text: str,
    starts: Sequence[tuple[int, int, int]],
    index: int,
    match: re.Match[str],
    scope: Scope,
) -> Statement:
    line, _, col = starts[index]
    name = match.group(2)
    if not name.isascii():
        name = unicodedata.normalize("NFKC", name)  # as the compiler reads identifiers
    return Statement(
        _node=None,
        text=_span_text(text, starts, index, index, line=False),
        lineno=line,
        kind=match.group(1),
        name=name,
        binds=frozenset([name]),
        scope=scope,
        col=col,
    )


def _parse_runs(
    text: str,
    starts: Sequence[tuple[int, int, int]],
    runs: list[list[int]],
    scope: Scope,
    filename: str,
) -> dict[int, list[Statement]] | None:
    """Parse the runs of plain statements, all in one text (each at the lines it has in
    the file once moved): their records by the index of each run's first statement, or
    None when they are not where the scan said."""
    chunks = [_span_text(text, starts, run[0], run[-1], line=True) for run in runs]
    at_lines: list[int] = []  # where each chunk starts in the joined text (1-based)
    line = 1
    for chunk in chunks:
        at_lines.append(line)
        line += chunk.count("\n") + 1
    try:
        with warnings.catch_warnings():  # given at its import already
            warnings.simplefilter("ignore")
            body = ast.parse("\n".join(chunks), filename).body
    except (SyntaxError, ValueError):
        return None
    nodes: list[list[ast.stmt]] = [[] for _ in runs]
    for node in body:
        which = bisect.bisect_right(at_lines, node.lineno) - 1
        ast.increment_lineno(node, starts[runs[which][0]][0] - at_lines[which])
        nodes[which].append(node)
    parsed: dict[int, list[Statement]] = {}
    for run, chunk, found in zip(runs, chunks, nodes, strict=True):
        if sorted({_first_line(node) for node in found}) != [starts[i][0] for i in run]:
            return None
        lines = Lines(starts[run[0]][0] - 1, chunk.split("\n"))
        for node in found:
            record_aliases(node, scope)
        parsed[run[0]] = [describe(node, lines, scope).lean() for node in found]
    return parsed


def _first_line(node: ast.stmt) -> int:
    decorators: list[ast.expr] = getattr(node, "decorator_list", [])
    return min([node.lineno, *(decorator.lineno for decorator in decorators)])
