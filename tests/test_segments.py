"""The statement index: a statement cut out of the source alone is the one a whole parse
finds, or the index says it cannot be trusted (and importers take the whole-module way)."""

from __future__ import annotations

import ast
import importlib.util
import marshal
import os
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import relive
import relive._segments as segments
from relive._engine import Engine
from relive._importers import methods_only
from relive._reparse import source_lines
from relive._segments import (
    StatementIndex,
    Untrusted,
    build_index,
    statement_at,
    statement_starts,
)
from relive._statements import analyze_body, class_has_values
from relive.testing import TemporaryPackage, apply_edit


def index_of(source: str) -> StatementIndex | None:
    return build_index(source, compile(source, "<t>", "exec", dont_inherit=True), "m", "")


def assert_same_statements(source: str, index: StatementIndex) -> None:
    """Every statement the index cuts out is the whole-module analysis's, in order."""
    whole = analyze_body(ast.parse(source).body, source_lines(source), module="m", package="")
    assert len(index.lines) == len(whole)
    for number, expected in enumerate(whole):
        cut = statement_at(index, source, number, "m", "")
        assert (cut.text, cut.lineno, cut.kind, cut.name) == (
            expected.text,
            expected.lineno,
            expected.kind,
            expected.name,
        )
        assert (cut.binds, cut.uses) == (expected.binds, expected.uses)


SPANNING = '''"""Module docstring
over lines."""
from __future__ import annotations

import os.path as p
from collections import (
    OrderedDict,
    deque,
)

TABLE = {
    "a": 1,
"b": 2,
}
TEXT = """
x = 1
def not_a_def(): pass
"""
VALUE = compute(
first,
    second,
) + \\
other


@decorate(
option=1,
)
@second
def f(a=DEFAULT,
b=p.join("x")) -> int:
    """Doc
x = 2
    """
    return a


@dataclass
class K:
    size: int = SIZE

    def method(self):
        return 1


if CONDITION:
    import json
elif OTHER:
    pass
else:
    json = None

try:
    from fast import speed
except ImportError:
    speed = None
else:
    pass
finally:
    DONE = True

async def g():
    await x

for item in ITEMS:
    REGISTRY[item] = item
while False:
    pass
with open(NAME) as handle:
    DATA = handle.read()
RESULT = [x for x in range(3)] + [(lambda: y)()]
'''


def test_statements_spanning_lines_decorators_and_compound_statements_are_cut_exactly() -> None:
    index = index_of(SPANNING)
    assert index is not None
    assert_same_statements(SPANNING, index)
    assert index.alias_map()["p"] == "os.path" and index.flags  # annotations


@pytest.mark.parametrize("newline", ["\n", "\r\n", "\r"])
def test_line_endings_and_form_feeds(newline: str) -> None:
    source = SPANNING.replace("\n", newline).replace("class K:", "\x0cclass K:")
    source += f"\x0c{newline}LAST = 1{newline}"
    index = index_of(source)
    assert index is not None
    assert_same_statements(source, index)


@pytest.mark.parametrize("newline", ["\n", "\r\n", "\r"])
def test_the_segmenter_counts_lines_as_the_compiler_does(newline: str) -> None:
    """Lines end at ``\\n``, ``\\r\\n`` and ``\\r`` only (a form feed, inside a line or
    before a statement, ends none); offsets point into the text as given."""
    tail = "W = [1,\x0c2] \x0c\n\x0c\x0cV = '''\x0c\nU = 1'''\n\x0c\nT = 3\n"
    source = (SPANNING + tail).replace("\n", newline)
    starts = statement_starts(source)
    assert starts is not None
    expected = []
    for node in ast.parse(source).body:
        decorators = getattr(node, "decorator_list", [])  # their ``@`` one column before
        first = decorators[0].lineno if decorators else node.lineno
        column = decorators[0].col_offset - 1 if decorators else node.col_offset
        expected.append((first, column))
    assert [(line, column) for line, _, column in starts] == expected
    lines = source_lines(source, keepends=True)
    for line, offset, column in starts:
        assert offset == sum(len(text) for text in lines[: line - 1]) + column
        assert source[offset] not in " \t\x0c"


@pytest.mark.parametrize(
    "source",
    [
        "from m import *\nX = 1\n",  # a star import reads names no text names
        "x = 1\n\\\ny = 2\n",  # a line that is only a continuation: the scan is unsure
    ],
)
def test_sources_the_index_cannot_vouch_for_are_refused(source: str) -> None:
    assert index_of(source) is None
    code = compile("X = 1\n", "<t>", "exec")
    assert build_index("\ufeffX = 1\n", code, "m", "") is None  # a byte-order mark left in


@pytest.mark.parametrize(
    "source",
    [
        'A = 1\n"""\ny = 2\n"""\nB = 3\n',  # a bare string with code at column 0 inside
        "if X:\n    S = '''\nT = 1\n'''\nU = 2\n",  # the same in a block
        "D = {\n1: (\n2)}\nE = [\nx\nfor x in D]\n",
        # a line at column 0 inside brackets that no instruction spans (a conditional's
        # parts): the text's brackets say where it is, not the code's positions
        "x = (\na\nif c else d)\n",
        "global q\nq = 1\n",  # a statement without code
    ],
)
def test_strings_and_brackets_over_column_zero_lines_stay_in_their_statement(
    source: str,
) -> None:
    index = index_of(source)
    assert index is not None
    assert_same_statements(source, index)


def test_dead_code_is_cut_exactly_or_refused() -> None:
    """The compiler drops dead code (3.11 keeps its lines in the return's position, 3.12
    does not): a column-0 line inside it has no code, so the index refuses the module."""
    source = "X = 1\nif False:\n    Y = (\n1)\n"
    index = index_of(source)
    if index is not None:
        assert_same_statements(source, index)


def test_two_statements_on_one_line_are_refused_when_cut() -> None:
    source = "import m\nA = m.X; B = A * 2\nC = 3\n"
    index = index_of(source)
    assert index is not None and tuple(index.lines) == (1, 2, 3)
    with pytest.raises(Untrusted):
        statement_at(index, source, 1, "m", "")
    assert statement_at(index, source, 2, "m", "").binds == {"C"}


SOURCES = [
    *sorted(Path(relive.__file__).parent.glob("*.py")),
    *(Path(sys.modules[name].__file__ or "") for name in ("ast", "dataclasses", "typing")),
]


@pytest.mark.parametrize("path", SOURCES, ids=lambda path: path.name)
def test_real_modules_are_cut_as_a_whole_parse_reads_them(path: Path) -> None:
    source = path.read_text(encoding="utf-8")
    index = index_of(source)
    if index is not None:
        assert_same_statements(source, index)


PIECES = [
    "X = 1",
    "Y = (1,\n2)",
    "Z = [\n1]",
    "S = '''\nA = 1\n'''",
    "@d\ndef f(): pass",
    "class C:\n    k = 1",
    "if a:\n    b = 1\nelse:\n    b = 2",
    "try:\n    pass\nexcept E:\n    pass",
    "W = f(\nx)",
    "V = 1 + \\\n2",
    "# comment",
    "",
    "'''\nbare\n'''",
    "pass",
    "T = {\n'k': (1,\n2)}",
]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(PIECES), max_size=8), st.sampled_from(["\n", "\r\n", "\r"]))
def test_any_composition_is_cut_exactly_or_refused(pieces: list[str], newline: str) -> None:
    source = newline.join(pieces).replace("\n", newline) + newline
    try:
        ast.parse(source)
    except SyntaxError:
        return
    index = index_of(source)
    if index is not None:
        assert_same_statements(source, index)


BASE = "LIMIT = {limit}\n\n\ndef compute():\n    return {result}\n"
READER = (
    "from ix_base import LIMIT, compute\n"
    "\n\n"
    "def helper():\n    return LIMIT\n"
    "\n\n"
    "DOUBLE = (\n    LIMIT\n    * 2\n)\n"
    "REGISTRY = {}\n"
    'REGISTRY["v"] = compute()\n'
    "LATER = DOUBLE + 1; OTHER = 0\n"
)


def test_an_importer_follows_on_its_few_statements_and_keeps_none(
    package: TemporaryPackage, engine: Engine
) -> None:
    base = package.module("ix_base", BASE.format(limit=1, result=10))
    reader = package.module("ix_reader", READER.replace("; OTHER = 0", ""))
    registry = reader.REGISTRY
    apply_edit(base, BASE.format(limit=5, result=20))
    assert (reader.LIMIT, reader.DOUBLE, reader.LATER, reader.helper()) == (5, 10, 11, 5)
    assert reader.REGISTRY is registry and registry == {"v": 20}  # the derived-values rule
    tracked = engine.tracked_module("ix_reader")
    assert tracked is not None and not tracked.is_analysed  # cut out, not parsed whole


def test_an_index_proved_wrong_falls_back_to_the_whole_module(
    package: TemporaryPackage, engine: Engine
) -> None:
    base = package.module("ix_base", BASE.format(limit=1, result=10))
    reader = package.module("ix_reader", READER)  # ``LATER = ...; OTHER = 0``: two in one
    apply_edit(base, BASE.format(limit=5, result=20))
    assert (reader.DOUBLE, reader.LATER, reader.REGISTRY) == (10, 11, {"v": 20})
    tracked = engine.tracked_module("ix_reader")
    assert tracked is not None and tracked.is_analysed
    apply_edit(base, BASE.format(limit=7, result=30))
    assert (reader.DOUBLE, reader.LATER, reader.REGISTRY) == (14, 15, {"v": 30})


def test_an_error_in_a_statement_run_again_names_its_line(
    package: TemporaryPackage, engine: Engine
) -> None:
    base = package.module("ix_base", BASE.format(limit=1, result=10))
    text = "from ix_base import LIMIT\n\n# a comment\n\nRATIO = 1 / (LIMIT - 5)\n"
    package.module("ix_reader", text)
    with pytest.raises(relive.ReloadError) as caught:
        apply_edit(base, BASE.format(limit=5, result=10))
    assert caught.value.lineno == 5 and "ZeroDivisionError" in str(caught.value)
    assert caught.value.path is not None and caught.value.path.endswith("ix_reader.py")


def test_a_stale_pyc_does_not_mislead_the_index(package: TemporaryPackage, engine: Engine) -> None:
    """The .pyc says the source's size and time but was compiled from other text (with code
    on the lines where the source has a string): the code object cannot vouch for it."""
    base = package.module("ix_base", BASE.format(limit=1, result=10))
    source = 'from ix_base import LIMIT\nA = """\nB = LIMIT\n"""\nC = LIMIT\n'
    reader = package.module("ix_reader", source)
    stale = "from ix_base import LIMIT\nA = 1\nB = LIMIT\nD = 2\nC = LIMIT\n"
    path = Path(reader.__file__ or "")
    cached = Path(importlib.util.cache_from_source(str(path)))
    status = os.stat(path)
    header = importlib.util.MAGIC_NUMBER + (0).to_bytes(4, "little")
    header += int(status.st_mtime).to_bytes(4, "little") + status.st_size.to_bytes(4, "little")
    code = compile(stale, str(path), "exec", dont_inherit=True)
    cached.parent.mkdir(exist_ok=True)
    cached.write_bytes(header + marshal.dumps(code))
    apply_edit(base, BASE.format(limit=5, result=10))
    assert (reader.A, reader.C) == ("\nB = LIMIT\n", 5) and not hasattr(reader, "B")


def test_a_later_edit_parses_only_the_statements_it_runs_again(
    package: TemporaryPackage, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What the first edit read of an importer's statements is kept as summaries (no
    trees): the next edit cuts out and parses only the statements it runs again."""
    base = package.module("ix_base", BASE.format(limit=1, result=10))
    text = READER.replace("; OTHER = 0", "") + "TOTAL = sum([DOUBLE, len(REGISTRY)])\n"
    text += "\n\nclass Box:\n    pass\n\n\nBOX = Box()\n"  # looked at (it calls), kept
    reader = package.module("ix_reader", text)
    apply_edit(base, BASE.format(limit=5, result=20))
    tracked = engine.tracked_module("ix_reader")
    assert tracked is not None and not tracked.is_analysed
    box = reader.BOX
    parsed: list[str] = []
    real_parse = segments._parse_one

    def counted(text: str, lineno: int) -> ast.stmt | None:
        parsed.append(text.strip())
        return real_parse(text, lineno)

    monkeypatch.setattr(segments, "_parse_one", counted)
    apply_edit(base, BASE.format(limit=6, result=30))
    assert (reader.DOUBLE, reader.LATER, reader.TOTAL, reader.REGISTRY) == (12, 13, 13, {"v": 30})
    run_again = {
        "from ix_base import LIMIT, compute",
        "DOUBLE = (\n    LIMIT\n    * 2\n)",
        'REGISTRY["v"] = compute()',
        "LATER = DOUBLE + 1",
        "TOTAL = sum([DOUBLE, len(REGISTRY)])",
    }
    assert parsed and set(parsed) <= run_again and reader.BOX is box


def test_an_importer_edited_between_two_edits_is_read_anew(
    package: TemporaryPackage, engine: Engine
) -> None:
    """The summaries of an importer's statements go with the text they were read from."""
    base = package.module("ix_base", BASE.format(limit=1, result=10))
    reader = package.module("ix_reader", READER.replace("; OTHER = 0", ""))
    apply_edit(base, BASE.format(limit=5, result=20))
    edited = READER.replace("LATER = DOUBLE + 1; OTHER = 0", "LATER = compute() + LIMIT")
    apply_edit(reader, edited)
    apply_edit(base, BASE.format(limit=7, result=30))
    assert (reader.DOUBLE, reader.LATER, reader.REGISTRY) == (14, 37, {"v": 30})


CLASS_BODY_PIECES = [
    '"""Doc."""',
    '"""Doc\n    x = 1\n    """',
    '"""a""" + f()',
    '"a" + f()',
    "x = 1",
    "x: int",
    "pass",
    "pass; x = 1",
    "... + f()",
    "...",
    "def f(self):\n        return 1",
    "def f(\n        self,\n    ) -> None:\n        pass",
    "@property\n    def g(self): return 1",
    'def h(self):\n        return """\n    x = 1\n"""',
    "class B:\n        k = 1",
    "if X:\n        def f(self): pass",
    "def_x = 2",
    "async def a(self): pass",
    "# a comment",
]


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.sampled_from(CLASS_BODY_PIECES), min_size=1, max_size=5),
    st.sampled_from(["class A:", "@dataclass\nclass A(B):", "class A(\n    B):"]),
)
def test_a_class_is_taken_for_methods_alone_only_when_its_tree_says_so(
    pieces: list[str], head: str
) -> None:
    text = head + "\n" + "".join(f"    {piece}\n" for piece in pieces)
    try:
        node = ast.parse(text).body[0]
    except SyntaxError:
        return
    assert isinstance(node, ast.ClassDef)
    if methods_only(text):
        assert not class_has_values(node)
