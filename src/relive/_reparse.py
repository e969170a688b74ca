"""Parse only the part of a module an edit touched: the other statements are kept.

Pure. A typical save changes a few lines inside one function, yet ``ast.parse`` of the whole
file costs about as much as compiling it. The edited lines are found by comparing the old
and new text (common head, common tail, found by halving: no line list is made); the
top-level statements they touch, known by their line spans, widened to whole statements,
are parsed on their own, old text and new: only these are analysed and diffed. The
statements before the chunk are kept as they were, those after it are kept at lines moved
by the change in line count (only their first line changes: their text is the old text).

Why this gives the statements a full parse would: the chunk starts where a top-level
statement starts (or between two), and the text before it is unchanged, so the tokenizer
enters the chunk with nothing open, as in the old file; the chunk parses on its own, so it
leaves nothing open (no bracket, string or line continuation); and the text after it is
the old text that followed a complete statement. Lines are the compiler's: ``\n``,
``\r\n`` and ``\r`` (which the tokenizer reads as ``\n``; see :func:`source_lines`); a
chunk that does not parse falls back to a full parse, which also reports the syntax error.
"""

from __future__ import annotations

import ast
import bisect
import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

__all__ = ["Region", "edit_region", "has_plain_line_breaks", "source_lines"]

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


@dataclass(frozen=True)
class Region:
    """The part of a module an edit replaced: old statements ``[lo, hi)`` (0-based indexes
    into the old statements), as the nodes of the old chunk and of the new one.

    The chunk's lines are ``[start, end)`` in the old text and ``[start, end + shift)`` in
    the new one (0-based); its nodes carry the file's line numbers.
    """

    lo: int
    hi: int
    start: int
    end: int
    shift: int
    old_nodes: list[ast.stmt]
    new_nodes: list[ast.stmt]
    old_lines: list[str]  # the chunk's lines, without line ends
    new_lines: list[str]


def edit_region(
    old: str, new: str, spans: Sequence[tuple[int, int]], filename: str
) -> Region | None:
    """The chunk of top-level statements an edit of ``old`` into ``new`` replaced.

    Args:
        old: The source the statements were read from.
        new: The new source.
        spans: Each old top-level statement's first and last line (1-based, in order;
            decorators included).
        filename: For the parser's warnings.

    Returns:
        None when the new chunk does not parse (a full parse then reports the error), or
        when the old chunk does not (the spans do not match ``old``).
    """
    if "\r" in old or "\r" in new:  # the tokenizer reads \r\n and \r as \n
        old, new = _newlines(old), _newlines(new)
    shift = _line_count(new) - _line_count(old)
    head, head_at, tail, tail_at = _changed_lines(old, new)
    firsts = [first - 1 for first, _ in spans]
    lasts = [last for _, last in spans]
    start, end = head, tail
    # Lines added between two statements may belong to either (an indented line continues
    # the block before, a decorator the definition after): both are parsed with them.
    lo, hi = bisect.bisect_right(lasts, start), bisect.bisect_left(firsts, end)
    if lo > 0 and not (lo < len(firsts) and firsts[lo] <= start):
        start = min(start, firsts[lo - 1])
    if hi < len(firsts) and not (hi > 0 and lasts[hi - 1] >= end):
        end = max(end, lasts[hi])
    while True:  # to whole statements: each one the edit overlaps (or is inserted into)
        lo, hi = bisect.bisect_right(lasts, start), bisect.bisect_left(firsts, end)
        widened = (min(start, firsts[lo]), max(end, lasts[hi - 1])) if lo < hi else (start, end)
        if widened == (start, end):
            break
        start, end = widened
    old_from = _offset(old, head_at, head, start)
    old_to = _offset(old, tail_at, tail, end)
    new_to = _offset(new, tail_at + len(new) - len(old), tail + shift, end + shift)
    old_text, new_text = old[old_from:old_to], new[old_from:new_to]
    try:
        new_nodes = _parse_chunk(new_text, start, filename)
        with warnings.catch_warnings():  # the old text's warnings were given at its import
            warnings.simplefilter("ignore")
            old_nodes = _parse_chunk(old_text, start, filename)
    except (SyntaxError, ValueError):
        return None
    lo = bisect.bisect_right(lasts, start)
    hi = max(lo, bisect.bisect_left(firsts, end))
    return Region(
        lo, hi, start, end, shift, old_nodes, new_nodes, _lines(old_text), _lines(new_text)
    )


def _parse_chunk(text: str, start: int, filename: str) -> list[ast.stmt]:
    # Blank lines in front: the chunk's line numbers (and those of any warning the parser
    # gives, such as an invalid escape sequence) are the file's.
    return ast.parse("\n" * start + text, filename).body


def _newlines(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _line_count(text: str) -> int:
    return text.count("\n") + (1 if text and not text.endswith("\n") else 0)


def _lines(text: str) -> list[str]:
    return text.split("\n")[:-1] if text.endswith("\n") else text.split("\n") if text else []


def _changed_lines(old: str, new: str) -> tuple[int, int, int, int]:
    """The first changed line (0-based) and its offset; the first line of the unchanged
    tail of ``old`` and its offset (the tail's lines are whole lines in both texts)."""
    prefix = _common_prefix(old, new)
    suffix = _common_suffix(old, new, min(len(old), len(new)) - prefix)
    head_at = old.rfind("\n", 0, prefix) + 1
    at, moved = len(old) - suffix, len(new) - len(old)
    if (at > 0 and old[at - 1] != "\n") or (at + moved > 0 and new[at + moved - 1] != "\n"):
        found = old.find("\n", at)  # the rest of this line is common: its next line is
        at = len(old) if found < 0 else found + 1
    tail = old.count("\n", 0, at) if at < len(old) else _line_count(old)
    return old.count("\n", 0, head_at), head_at, tail, at


def _offset(text: str, at: int, line: int, target: int) -> int:
    """The offset of line ``target`` (0-based) of ``text``, from line ``line`` at ``at``."""
    while line < target:
        found = text.find("\n", at)
        if found < 0:
            return len(text)
        at, line = found + 1, line + 1
    while line > target:
        at = text.rfind("\n", 0, at - 1) + 1
        line -= 1
    return at


def _common_prefix(a: str, b: str) -> int:
    lo, hi = 0, min(len(a), len(b))
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if a.startswith(b[lo:mid], lo):
            lo = mid
        else:
            hi = mid - 1
    return lo


def _common_suffix(a: str, b: str, limit: int) -> int:
    lo, hi = 0, max(limit, 0)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if a.endswith(b[len(b) - mid : len(b) - lo], 0, len(a) - lo):
            lo = mid
        else:
            hi = mid - 1
    return lo
