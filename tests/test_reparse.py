"""Partial re-parsing: the tree must be exactly what a full parse gives, line numbers included.

``edit_region`` parses only the statements an edit touched; the body it stands for (the old
nodes before the chunk, the chunk's new nodes, the old nodes after it moved by the change
in line count) must be the full parse of the new text.
"""

from __future__ import annotations

import ast
import sys
import warnings
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import relive
from relive._reparse import Region, edit_region

SOURCES = [
    *sorted(Path(relive.__file__).parent.glob("*.py")),
    Path(sys.modules["ast"].__file__ or ""),
    Path(sys.modules["dataclasses"].__file__ or ""),
]
SNIPPETS = ["(", ")", '"', "'''", "\\", ":", "#", " ", "\n", "    ", "x = 1", "def f():", "@d"]
# What str.splitlines() splits at and the compiler does not (in comments and strings).
SNIPPETS += ["\x0c", "# \x0b\x0c\x1c\x85\u2028", "'\x1d\u2029'"]

OLD = '''"""Doc."""
import os

LIMIT = 3


@decorate
def first(x):
    return x + 1


def second(y):
    total = 0
    for i in range(y):
        total += i
    return total


class Box:
    size = 1

    def area(self):
        return self.size ** 2
'''


def dump(body: list[ast.stmt]) -> str:
    return ast.dump(ast.Module(body=body, type_ignores=[]), include_attributes=True)


def spans(body: list[ast.stmt]) -> list[tuple[int, int]]:
    firsts = [min([n.lineno, *(d.lineno for d in getattr(n, "decorator_list", ()))]) for n in body]
    ends = [node.end_lineno or node.lineno for node in body]
    return list(zip(firsts, ends, strict=True))


def region_of(new: str, old: str = OLD, filename: str = "m.py") -> Region | None:
    return edit_region(old, new, spans(ast.parse(old).body), filename)


def parse_body(new: str, filename: str, old: str, old_body: list[ast.stmt]) -> list[ast.stmt]:
    """The new body ``edit_region`` stands for (a full parse when it gives none, as
    ``prepare`` does: that parse raises the syntax error)."""
    region = edit_region(old, new, spans(old_body), filename)
    if region is None:
        return ast.parse(new, filename).body
    assert dump(region.old_nodes) == dump(old_body[region.lo : region.hi])
    assert [len(region.old_lines), len(region.new_lines)] == [
        region.end - region.start,
        region.end + region.shift - region.start,
    ]
    # Parsed again rather than deep-copied: a deep copy follows what other libraries hang
    # on the parser's shared Load()/Store() nodes (IPython 8's tracebacks, through
    # `executing`, give them a `parent`: each copy then took a whole other tree along, and
    # the random edits below went past the 120 s timeout after the IPython tests).
    with warnings.catch_warnings():  # the old text's warnings were given at its parse
        warnings.simplefilter("ignore")
        after = ast.parse(old, filename).body[region.hi :]
    for node in after:
        ast.increment_lineno(node, region.shift)
    return [*old_body[: region.lo], *region.new_nodes, *after]


def check(new: str, old: str = OLD) -> list[ast.stmt]:
    """parse_body's tree for the edit ``old`` → ``new``, checked against a full parse."""
    old_body = ast.parse(old).body
    assert region_of(new, old) is not None  # it parses: the chunk does too
    body = parse_body(new, "m.py", old, old_body)
    assert dump(body) == dump(ast.parse(new).body)
    return body


def test_an_edit_inside_one_function_parses_only_that_function() -> None:
    new = OLD.replace("total += i", "total += i * 2")
    region = region_of(new)
    assert region is not None and (region.lo, region.hi, region.shift) == (4, 5, 0)
    assert [type(node).__name__ for node in region.new_nodes] == ["FunctionDef"]
    check(new)


def test_a_statement_that_changes_its_line_count_parses_only_that_statement() -> None:
    new = OLD.replace("    return x + 1\n", "    x += 1\n    return x\n")
    region = region_of(new)
    assert region is not None and (region.lo, region.hi, region.shift) == (3, 4, 1)
    check(new)


def test_added_lines_give_the_later_statements_their_new_line_numbers() -> None:
    body = check(OLD.replace("    return x + 1\n", "    x += 1\n    x += 2\n    return x\n"))
    assert body[-1].lineno == OLD.splitlines().index("class Box:") + 1 + 2


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("return x + 1", "return x + 2"),  # a body line
        ("def first(x):", "def first(x, y=2):"),  # the def line itself
        ("@decorate\n", "@decorate\n@another\n"),  # a decorator more
        ("@decorate\n", ""),  # a decorator less
        ("LIMIT = 3\n", "LIMIT = 3; OTHER = 4\n"),  # two statements on a line
        ("    return x + 1\n", "    return x + 1\n    # a comment\n"),  # a comment added
        ("    return total\n", "    return total\n\nAFTER = 1\n"),  # a statement after a def
        ("    return total\n", "    return total\n    print(total)\n"),  # a line appended
        ("\n    def area(self):\n        return self.size ** 2\n", ""),  # the last lines removed
        ("import os\n", '"""Now the docstring?"""\nimport os\n'),  # near the top
        ("class Box:\n    size = 1\n", "class Box:\n    size = 2\n"),  # inside a class
    ],
)
def test_edits_at_statement_boundaries(old: str, new: str) -> None:
    assert old in OLD
    check(OLD.replace(old, new, 1))


@pytest.mark.parametrize(
    "new",
    [
        OLD.replace("return x + 1", "return (x + 1"),  # an unclosed bracket
        OLD.replace("return x + 1", 'return """x + 1'),  # an unclosed string
        OLD.replace("    return total\n", "    return total\n  oops\n"),  # a bad dedent
        OLD.replace("LIMIT = 3", "LIMIT = 3 + \\"),  # a continuation into the next line
    ],
)
def test_a_syntax_error_is_raised_as_a_full_parse_raises_it(new: str) -> None:
    with pytest.raises(SyntaxError) as partial:
        parse_body(new, "m.py", OLD, ast.parse(OLD).body)
    with pytest.raises(SyntaxError) as full:
        ast.parse(new, "m.py")
    assert (partial.value.lineno, partial.value.msg) == (full.value.lineno, full.value.msg)


def test_an_open_string_that_a_later_line_closes_is_a_full_parse() -> None:
    new = OLD.replace("LIMIT = 3", 'LIMIT = """3').replace("import os", "import os")
    new = new.replace("    return total\n", '    return total\n"""\n')
    try:
        expected = dump(ast.parse(new).body)
    except SyntaxError:
        pytest.skip("the edit does not parse")
    assert dump(parse_body(new, "m.py", OLD, ast.parse(OLD).body)) == expected


OTHER_BREAKS = ["\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029"]


@pytest.mark.parametrize("char", OTHER_BREAKS)
def test_other_line_breaks_are_not_lines(char: str) -> None:
    old = OLD.replace("import os\n", f"import os\n# {char}\n\x0c\n")  # \x0c: a page break
    old = old.replace("size = 1", f"size = '{char}'")
    check(old.replace("return x + 1", "return x + 2"), old)
    check(old.replace("return total", f"return total  # {char}"), old)
    check(old.replace("    return self.size ** 2", f"    return self.size ** 2\n\n# {char}"), old)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_random_edits_of_real_files_give_the_full_parse(data: st.DataObject) -> None:
    path = data.draw(st.sampled_from(SOURCES))
    old = path.read_text(encoding="utf-8")
    lines = old.splitlines(keepends=True)
    new_lines = list(lines)
    start = data.draw(st.integers(0, len(lines) - 1))
    end = data.draw(st.integers(start, min(len(lines), start + 4)))
    kind = data.draw(st.sampled_from(["replace", "insert", "delete", "indent", "dedent", "char"]))
    if kind in ("replace", "insert"):
        count = data.draw(st.integers(0 if kind == "replace" else 1, 3))
        taken = [data.draw(st.sampled_from(lines)) for _ in range(count)]
        new_lines[start : end if kind == "replace" else start] = taken
    elif kind == "delete":
        del new_lines[start:end]
    elif kind == "indent":
        new_lines[start] = "    " + new_lines[start]
    elif kind == "dedent":
        new_lines[start] = new_lines[start].lstrip(" ")
    else:
        line = new_lines[start]
        at = data.draw(st.integers(0, len(line)))
        new_lines[start] = line[:at] + data.draw(st.sampled_from(SNIPPETS)) + line[at:]
    new = "".join(new_lines)
    try:
        expected = dump(ast.parse(new).body)
    except SyntaxError:
        with pytest.raises(SyntaxError):
            parse_body(new, str(path), old, ast.parse(old).body)
        return
    assert dump(parse_body(new, str(path), old, ast.parse(old).body)) == expected


def test_a_parser_warning_names_the_line_in_the_file() -> None:
    new = OLD.replace("    return total\n", '    return total, "\\d"\n')

    def warned(parse: Callable[[], object]) -> list[int | None]:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            parse()
        return [getattr(warning, "lineno", None) for warning in caught]

    expected = warned(lambda: ast.parse(new, "m.py"))
    assert warned(lambda: ast.parse(OLD.replace("x + 1", '"\\d"'), "m.py"))  # old warns
    old = OLD.replace("x + 1", '"\\d"')  # the old text's warning is not given again
    assert expected == [OLD.splitlines().index("    return total") + 1]
    assert warned(lambda: parse_body(new, "m.py", OLD, ast.parse(OLD).body)) == expected
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        old_body = ast.parse(old).body
    edited = old.replace("    return total\n", '    return total, "\\d"\n')
    assert warned(lambda: parse_body(edited, "m.py", old, old_body)) == expected
