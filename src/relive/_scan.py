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
from collections.abc import Sequence

from relive._segments import DEFINITION, statement_starts
from relive._statements import Lines, Scope, Statement, describe, record_aliases

__all__ = ["scan_statements"]


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
        match = DEFINITION.match(text, begin)
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
