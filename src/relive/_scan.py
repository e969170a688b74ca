"""The lean records of a large source's top-level statements, from its text: the
segmenter (``relive._segments``) says where each starts, without parsing the module.

A full parse of a 5 MB module costs more than its import and holds its syntax tree
(hundreds of MB) at once. Definitions are read from their first line (``def name``,
``class name``); every other statement is parsed, consecutive ones together. The records
are lean (see :class:`~relive._statements.Statement`): a definition's tree is parsed from
its text when asked for. When the segmenter cannot be sure, or a parsed run of statements
does not start where it said, the caller parses the whole source instead.
"""

from __future__ import annotations

import ast
import bisect
import re
import unicodedata
import warnings
from collections.abc import Mapping, Sequence

from relive._segments import DEFINITION, block_statements, statement_starts
from relive._statements import Lines, Scope, Statement, describe, record_aliases

__all__ = ["class_values", "reads_nothing_of", "scan_statements"]


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
    records: list[Statement | None] = []  # None: a plain statement, parsed below
    runs: list[list[int]] = []  # consecutive plain statements: parsed together
    ends = [offset - column for _, offset, column in starts[1:]] + [len(text)]
    for index, ((line, begin, column), end) in enumerate(zip(starts, ends, strict=True)):
        match = DEFINITION.match(text, begin)
        if match is not None:
            records.append(_definition(text[begin:end].rstrip(), line, column, match, scope))
            continue
        records.append(None)
        if runs and runs[-1][-1] == index - 1:
            runs[-1].append(index)
        else:
            runs.append([index])
    parsed = _parse_runs(text, starts, runs, scope, filename)
    if parsed is None:
        return None
    merged: list[Statement] = []
    for index, record in enumerate(records):
        if record is not None:
            merged.append(record)
        elif index in parsed:  # a run's first statement: the run's records
            merged.extend(parsed[index])
    return merged


def _span_text(
    text: str, starts: Sequence[tuple[int, int, int]], first: int, last: int, *, line: bool
) -> str:
    """The text of statements ``first`` to ``last`` (indexes into ``starts``), to the
    start of the next statement's line, trailing blank space left out; from the start of
    the first one's line if ``line`` (its form feeds too)."""
    begin = starts[first][1] - (starts[first][2] if line else 0)
    end = len(text) if last + 1 >= len(starts) else starts[last + 1][1] - starts[last + 1][2]
    return text[begin:end].rstrip()


def _definition(text: str, line: int, column: int, match: re.Match[str], scope: Scope) -> Statement:
    name = match.group(2)
    if not name.isascii():
        name = unicodedata.normalize("NFKC", name)  # as the compiler reads identifiers
    return Statement(
        _node=None,
        text=text,
        lineno=line,
        kind=match.group(1),
        name=name,
        binds=frozenset([name]),
        scope=scope,
        col=column,
    )


def _parse_runs(
    text: str,
    starts: Sequence[tuple[int, int, int]],
    runs: list[list[int]],
    scope: Scope,
    filename: str,
) -> dict[int, list[Statement]] | None:
    """Parse the runs of plain statements, all in one text where each is at its lines in
    the file (blank lines in between: no tree is moved after): their records by the index
    of each run's first statement, or None when they are not where the scan said."""
    chunks = [_span_text(text, starts, run[0], run[-1], line=True) for run in runs]
    at_lines = [starts[run[0]][0] for run in runs]
    pieces: list[str] = []
    line = 1
    for chunk, at in zip(chunks, at_lines, strict=True):
        if at < line:  # pragma: no cover - the scan's statements follow each other
            return None
        pieces += ["\n" * (at - line), chunk, "\n"]
        line = at + chunk.count("\n") + 1
    try:
        with warnings.catch_warnings():  # given at its import already
            warnings.simplefilter("ignore")
            body = ast.parse("".join(pieces), filename).body
    except (SyntaxError, ValueError):
        return None
    nodes: list[list[ast.stmt]] = [[] for _ in runs]
    for node in body:
        nodes[bisect.bisect_right(at_lines, _first_line(node)) - 1].append(node)
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


def class_values(statement: Statement) -> list[ast.stmt] | None:
    """The plain statements of a class statement's body (what it computes besides its
    methods, nested classes and docstring: ``K = f(1)``), parsed from its text alone,
    without its methods; None when the segmenter cannot be sure of the body. Their
    positions are not the file's: only what they read and call is worth asking."""
    text = statement.text
    found = block_statements(text)
    if found is None:
        return None
    ends = [at for at, _ in found[1:]] + [len(text)]
    pieces = ["if 1:\n"]
    for (at, begin), end in zip(found, ends, strict=True):
        if not (text.startswith("@", begin) or DEFINITION.match(text, begin)):
            pieces += [text[at:end].rstrip(), "\n"]
    if len(pieces) == 1:
        return []  # methods alone
    try:
        with warnings.catch_warnings():  # given at its import already
            warnings.simplefilter("ignore")
            block = ast.parse("".join(pieces)).body
    except (SyntaxError, ValueError):
        return None
    nodes = block[0].body if len(block) == 1 and isinstance(block[0], ast.If) else []
    if len(nodes) != len(pieces) // 2:
        return None
    return [
        node
        for node in nodes
        if not (isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant))
    ]


_IDENTIFIER = re.compile(r"[^\W\d]\w*")


def reads_nothing_of(statement: Statement, namespace: Mapping[str, object]) -> bool:
    """Whether ``statement`` surely reads nothing a staleness check would look at: no
    word of its text is a name of ``namespace`` or an import alias, but for a name it
    binds that occurs once (where it is bound, never read); no import (it reads other
    modules); ASCII (the compiler normalizes other names). A test of the text alone, for
    a statement not analysed yet (most of a wide module's at its first edit). A module
    whose namespace has a dotted key (``Cls.member``, as a use is named) is never sure."""
    text = statement.text
    if not text.isascii() or "import" in text:
        return False
    words = _IDENTIFIER.findall(text)
    aliases = statement.scope.aliases
    for word in set(words):
        named = word in namespace or word in aliases
        if named and (word not in statement.binds or words.count(word) != 1):
            return False
    return True
