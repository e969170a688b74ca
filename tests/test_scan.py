"""Scanning a source for its top-level statements gives what a full parse and analysis give.

``scan_statements`` finds statements by their text (strings, brackets, comments and line
continuations hide line starts); its records must have the first lines, kinds, names and
bindings of :func:`analyze_body`'s, trees equal to the full parse's (positions included)
once parsed, and spans that end at or after the statement's last line and before the
next statement. When it cannot be sure it says so (None), never guesses.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import relive
from relive._reparse import source_lines
from relive._scan import scan_statements
from relive._statements import analyze_body

SOURCES = [
    *sorted(Path(relive.__file__).parent.glob("*.py")),
    *(Path(sys.modules[name].__file__ or "") for name in ("ast", "dataclasses", "typing")),
]
SNIPPETS = ["(", ")", '"', "'''", "\\", ":", "#", " ", "\n", "    ", "x = 1", "def f():", "@d"]
SNIPPETS += ["\x0c", "else:", 'f"{x}"', "; y = 2", "\r", "\r\n"]


def check(text: str) -> None:
    """The scan of ``text`` is the full analysis (or None: it was not sure)."""
    scanned = scan_statements(text)
    if scanned is None:
        return
    normal = text.replace("\r\n", "\n").replace("\r", "\n")
    full = analyze_body(ast.parse(text).body, source_lines(normal))
    assert [(s.lineno, s.kind, s.name, s.binds) for s in scanned] == [
        (s.lineno, s.kind, s.name, s.binds) for s in full
    ]
    for got, want, following in zip(scanned, full, [*full[1:], None], strict=True):
        assert got.last >= want.last
        assert following is None or got.last <= following.lineno
        assert ast.dump(got.node, include_attributes=True) == ast.dump(
            want.node, include_attributes=True
        )


@pytest.mark.parametrize("path", SOURCES, ids=[path.name for path in SOURCES])
def test_real_files_scan_as_they_parse(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    assert scan_statements(text) is not None
    check(text)


CASES = {
    "decorators apart": "@a\n\n# note\n@b(1,\n  2)\ndef f():\n    pass\n",
    "a string holding code": 'X = """\ndef g():\n    pass\n"""\ny = 1\n',
    "brackets holding code": "X = [\n1,\nf(\n)]\nclass A: pass\n",
    "clauses": "try:\n    x = 1\nexcept E:\n    pass\nelse:\n    pass\nfinally:\n    pass\n",
    "if and else": "if a:\n    b = 1\nelif c:\n    b = 2\nelse:\n    b = 3\nelse_ = 4\n",
    "form feeds": "\x0cdef f():\n    return 1\n\x0c\n  \x0cclass K:\n    x = 1\n",
    "two statements on a line": "a = 1; b = 2\ndef f(): return 1; c = 3\n",
    "comments with quotes": "# it's here\nx = 1  # \"\ndef f():\n    # (\n    return 2\n",
    "a string continued": "x = 'a\\\nb'\ny = 2\n",
    "a continued line": "x = 1 + \\\n    2\ny = 3\n",
    "async": "async def f():\n    pass\nasync  def  g(): pass\n",
    "not ascii": "def \ufb01le():\n    return 1\nclass Caf\u00e9: pass\n",
    "nested f-strings": "x = f\"{'a'}\" + f'{y!r:>{w}}'\nz = 1\n",
    "crlf": "x = 1\r\ndef f():\r\n    return '''\r\nz'''\r\ny = 2\r\n",
    "cr": "x = 1\rdef f():\r    return 1\ry = 2\r",
    "a docstring": '"""Module.\n\nMore.\n"""\nimport os\nfrom . import x as y\n',
    "a dangling decorator at the end": "x = 1\n",
    "a trailing comment": "def f():\n    return 1\n    # done\n\n# the end\n",
}


@pytest.mark.parametrize("text", CASES.values(), ids=list(CASES))
def test_cases(text: str) -> None:
    assert scan_statements(text) is not None
    check(text)


def test_a_line_that_is_only_a_continuation_is_not_guessed() -> None:
    assert scan_statements("x = 1\n\\\ny = 2\n") is None


@pytest.mark.skipif(sys.version_info < (3, 12), reason="quotes in f-string braces: 3.12")
def test_an_f_string_whose_braces_hide_its_quote_is_not_guessed() -> None:
    text = 'x = f"{d["k"]}"\n\ndef f():\n    return 1\n'
    assert scan_statements(text) is None


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_random_edits_of_real_files_scan_as_they_parse(data: st.DataObject) -> None:
    path = data.draw(st.sampled_from(SOURCES))
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    start = data.draw(st.integers(0, len(lines) - 1))
    end = data.draw(st.integers(start, min(len(lines), start + 4)))
    kind = data.draw(st.sampled_from(["replace", "delete", "indent", "dedent", "char"]))
    if kind == "replace":
        lines[start:end] = [data.draw(st.sampled_from(lines)) for _ in range(2)]
    elif kind == "delete":
        del lines[start:end]
    elif kind == "indent":
        lines[start] = "    " + lines[start]
    elif kind == "dedent":
        lines[start] = lines[start].lstrip(" ")
    else:
        line = lines[start]
        at = data.draw(st.integers(0, len(line)))
        lines[start] = line[:at] + data.draw(st.sampled_from(SNIPPETS)) + line[at:]
    text = "".join(lines)
    try:
        ast.parse(text)
    except (SyntaxError, ValueError):
        return  # a module that imported parses
    check(text)
