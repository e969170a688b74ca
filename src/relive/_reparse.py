"""Parse only the part of a module an edit touched: the rest of the old tree is reused.

Pure. A typical save changes a few lines inside one function, yet ``ast.parse`` of the whole
file costs about as much as compiling it. The edited lines are found by comparing the old
and new text line by line (common head, common tail); the top-level statements they touch,
widened to whole statements, are re-parsed on their own, and the untouched statements keep
their old nodes.

Why this gives the tree a full parse would: the re-parsed chunk starts where a top-level
statement starts (or between two), and the text before it is unchanged, so the tokenizer
enters the chunk with nothing open, as in the old file; the chunk parses on its own, so it
leaves nothing open (no bracket, string or line continuation); and the text after it is
the old text that followed a complete statement. When the line count changed, the old
nodes after the chunk would carry stale line numbers, so the chunk then runs to the end of
the file. Lines are the compiler's (:func:`source_lines`); a chunk that does not parse
falls back to a full parse, which also reports the syntax error.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Sequence
from typing import Final

__all__ = ["has_plain_line_breaks", "parse_body", "source_lines"]

# str.splitlines() also splits at these; the compiler does not (a lone \r is one of its line
# ends, but is rare enough after decoding to take the slow path).
_OTHER_BREAKS: Final = re.compile("[\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029]")


_COMPILER_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+\Z")


def source_lines(text: str, *, keepends: bool = False) -> list[str]:
    """The lines of ``text`` as the compiler counts them (``\\n``, ``\\r\\n``, ``\\r``).

    ``str.splitlines()`` also splits at form feeds, ``\\x85``, ``\\u2028`` and others: line
    numbers from the syntax tree would then point at the wrong text.
    """
    if has_plain_line_breaks(text):
        return text.splitlines(keepends=keepends)
    lines = _COMPILER_LINE.findall(text)
    if keepends:
        return lines
    return [line.rstrip("\r\n") for line in lines]


def has_plain_line_breaks(text: str) -> bool:
    """Whether ``text`` breaks lines only where Python does (so ``str.splitlines`` agrees)."""
    return _OTHER_BREAKS.search(text) is None


def parse_body(
    new: str, filename: str, old: str | None = None, old_body: Sequence[ast.stmt] = ()
) -> list[ast.stmt]:
    """The top-level statements of ``new``, as ``ast.parse(new, filename).body`` gives them.

    Args:
        new: The module's new source.
        filename: For syntax errors.
        old: The source ``old_body`` was parsed from (None: parse ``new`` whole).
        old_body: ``ast.parse(old).body``; its nodes are shared with the result, so neither
            may be changed afterwards.

    Raises:
        SyntaxError: ``new`` does not parse (raised by a parse of the whole text).
    """
    if old is not None and old_body:
        reused = _reparse(new, filename, old, old_body)
        if reused is not None:
            return reused
    return ast.parse(new, filename).body


def _reparse(
    new: str, filename: str, old: str, old_body: Sequence[ast.stmt]
) -> list[ast.stmt] | None:
    old_lines = source_lines(old, keepends=True)
    new_lines = source_lines(new, keepends=True)
    head = _common_head(old_lines, new_lines)
    tail = _common_tail(old_lines, new_lines, head)
    start, end = head, len(old_lines) - tail  # the old lines replaced: [start, end)
    spans = [(_first_line(node) - 1, node.end_lineno or node.lineno) for node in old_body]
    widened = True
    while widened:  # to whole statements: each one the edit overlaps (or is inserted into)
        widened = False
        for first, last in spans:
            if first < end and last > start and (first < start or last > end):
                start, end = min(start, first), max(end, last)
                widened = True
    shift = len(new_lines) - len(old_lines)
    if shift:
        end = len(old_lines)  # later statements would need new line numbers: parse them too
    # Blank lines in front: the chunk's line numbers (and those of any warning the parser
    # gives, such as an invalid escape sequence) are the file's.
    chunk = "\n" * start + "".join(new_lines[start : end + shift])
    try:
        parsed = ast.parse(chunk, filename).body
    except (SyntaxError, ValueError):
        return None
    before = [node for node, (_, last) in zip(old_body, spans, strict=True) if last <= start]
    after = [node for node, (first, _) in zip(old_body, spans, strict=True) if first >= end]
    return [*before, *parsed, *after]


def _first_line(node: ast.stmt) -> int:
    decorators: list[ast.expr] = getattr(node, "decorator_list", [])
    return min([node.lineno, *(decorator.lineno for decorator in decorators)])


def _common_head(old: list[str], new: list[str]) -> int:
    count = 0
    for left, right in zip(old, new, strict=False):
        if left != right:
            break
        count += 1
    return count


def _common_tail(old: list[str], new: list[str], head: int) -> int:
    count, limit = 0, min(len(old), len(new)) - head
    while count < limit and old[-1 - count] == new[-1 - count]:
        count += 1
    return count
