"""Scanning a source for its top-level statements gives what a full parse and analysis give.

``scan_statements`` finds statements by their text (strings, brackets, comments and line
continuations hide line starts); its records must have the first lines, kinds, names and
bindings of :func:`analyze_body`'s, trees equal to the full parse's (positions included)
once parsed, and spans that end at or after the statement's last line and before the
next statement. When it cannot be sure it says so (None), never guesses.
"""

from __future__ import annotations

import ast
import dataclasses
import importlib
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import relive
from relive import _statements as statements_module
from relive._importers import derived_inputs
from relive._reparse import source_lines
from relive._scan import reads_nothing_of, scan_statements
from relive._segments import block_statements
from relive._statements import Scope, analyze_body, reads

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
@pytest.mark.parametrize(
    "text",
    [
        'x = f"{d["k"]}"\n\ndef f():\n    return 1\n',
        "s = f'{f' {a}\\n' if a else ''} def g():'\ny = (1,\n  2)\n",  # 3.13's dataclasses
        'x = (f"{d["(k"]}",\n  1)\nz = f"""{"\\n"}\nclass A: pass"""\ndef f():\n    pass\n',
    ],
)
def test_an_f_string_whose_braces_hide_its_quote_is_read_by_the_tokenizer(text: str) -> None:
    assert scan_statements(text) is not None
    check(text)


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


CLASSES = {
    "values and methods": (
        'class A:\n    """Doc."""\n\n    K = f(1)\n\n    def m(self):\n        return K\n'
    ),
    "methods alone": "class A(B):\n    def m(self):\n        return g()\n",
    "decorated members": (
        "class A:\n    @property\n    def p(self):\n        return h()\n    N = len(E)\n"
    ),
    "a nested class": "class A:\n    class B:\n        X = f()\n    Y = B.X\n",
    "blocks": "class A:\n    if C:\n        def m(self): pass\n    else:\n        M = g(1)\n",
    "over lines": "class A(\n    Base,\n):\n    T = (\n  f(1),\n)\n    S = '''\nx = g()\n'''\n",
    "comments": "class A:\n# at column 0\n    X = f()  # (\n        # deeper\n    Y = 2\n",
    "on one line": "class A: X = f()\n",
    "tabs": "class A:\n\tX = f()\n\tdef m(self):\n\t\treturn 1\n",
    "decorated class": "@register\nclass A:\n    X = f()\n",
    "two on a line": "class A:\n    X = f(); Y = g()\n",
}


def lean_and_parsed_inputs(text: str) -> list[tuple[object, object]]:
    """``derived_inputs`` of each class the scan finds, from its text (lean: its values
    cut out of the body) and from its whole tree."""
    scanned = scan_statements(text)
    assert scanned is not None
    found = []
    for statement in scanned:
        if statement.kind == "class":
            assert statement.is_lean
            lean = derived_inputs(statement)
            parsed = dataclasses.replace(statement, _memo={})
            assert parsed.node is not None and not parsed.is_lean
            found.append((lean, derived_inputs(parsed)))
    return found


@pytest.mark.parametrize("text", CLASSES.values(), ids=list(CLASSES))
def test_a_lean_class_computes_with_what_its_tree_says(text: str) -> None:
    found = lean_and_parsed_inputs("from m import f, g, h\n" + text)
    assert found and all(lean == parsed for lean, parsed in found)


@pytest.mark.parametrize("path", SOURCES, ids=[path.name for path in SOURCES])
def test_the_classes_of_real_files_compute_with_what_their_trees_say(path: Path) -> None:
    for lean, parsed in lean_and_parsed_inputs(path.read_text(encoding="utf-8")):
        assert lean == parsed


def test_a_class_body_is_cut_at_its_own_indentation() -> None:
    text = "class A:\n    X = 1\n    def m(self):\n        Y = 2\n    Z = (\n3)\n"
    assert block_statements(text) == [(9, 13), (19, 23), (50, 54)]
    assert block_statements("class A: X = 1\n") is None  # the body on the header's line
    assert block_statements("class A:\n    X = 1\n  Y = 2\n") is None  # two indentations
    assert block_statements("class A:\n    X = 1\n    \x0cY = 2\n") is None  # a form feed


def _full_walk(node: ast.AST) -> Iterator[ast.AST]:
    """Every node evaluated when ``node`` runs, leaves included (function bodies skipped):
    the reference for ``_statements._walk_executed``, which passes the leaves over."""
    stack = [node]
    while stack:
        current = stack.pop()
        yield current
        if isinstance(current, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            args = current.args
            stack += [*args.defaults, *(d for d in args.kw_defaults if d is not None)]
            if not isinstance(current, ast.Lambda):
                stack += [*current.decorator_list, *statements_module._annotations(current)]
        else:
            stack.extend(ast.iter_child_nodes(current))


@pytest.mark.parametrize("path", SOURCES, ids=[path.name for path in SOURCES])
def test_what_statements_bind_and_read_skips_no_name(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    nodes = [node for node in ast.walk(tree) if isinstance(node, ast.stmt)]
    scope = Scope("m", "", {"os": "os", "ast": "ast"})
    walked = [(set(statements_module._binds(n)), reads(n, scope)) for n in nodes]
    monkeypatch.setattr(statements_module, "_walk_executed", _full_walk)
    assert walked == [(set(statements_module._binds(n)), reads(n, scope)) for n in nodes]


@pytest.mark.parametrize("path", SOURCES, ids=[path.name for path in SOURCES])
def test_a_statement_whose_text_names_nothing_here_reads_nothing_here(path: Path) -> None:
    """``reads_nothing_of`` (the first filter of a wide module's first edit) is sure only
    of statements whose derived inputs read no name of the module nor of another one."""
    name = f"relive.{path.stem}" if path.parent.name == "relive" else path.stem
    module = importlib.import_module("relive" if name == "relive.__init__" else name)
    namespace = vars(module)
    scanned = scan_statements(path.read_text(encoding="utf-8"), module=module.__name__)
    assert scanned is not None
    for statement in scanned:
        if statement.kind != "def" and reads_nothing_of(statement, namespace):
            for uses, *_ in derived_inputs(statement):
                assert all(not source and name not in namespace for source, name in uses)


def test_only_a_text_naming_nothing_here_is_taken_to_read_nothing() -> None:
    text = (
        "import m as alias\nfrom m import helper\n"
        "LIMIT = {'low': 1, 'high': helper}\nTABLE = {'low': 1}\nX = 1\nX = X + 1\n"
        "class Box:\n    size = 9\n\n    def area(self):\n        return self.size\n"
        "class Uses:\n    size = helper()\nclass Imports:\n    from m import other\n"
        "Y = alias.value\nclass Caf\u00e9:\n    pass\n"
    )
    scanned = scan_statements(text, module="t")
    assert scanned is not None
    namespace = {"alias": object(), "helper": len, "LIMIT": 1, "TABLE": 1, "X": 1}
    namespace.update(Box=object, Uses=object, Imports=object, Y=1)
    sure = [
        statement.text.split()[0 if statement.kind == "stmt" else 1]
        for statement in scanned
        if reads_nothing_of(statement, namespace)
    ]
    assert sure == ["TABLE", "X", "Box:"]  # not X = X + 1, nor a name that is not ASCII
