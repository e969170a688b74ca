"""An edit of one statement of a module parses and diffs that statement alone (issue 14).

Each edit below is applied with ``relive.reload`` and compared with a fresh import of the
same text: what the functions, classes and constants do, their line numbers, decorators and
``__doc__``. The module's statement records after the edit must be those a full analysis
of the new text gives; statements before the edited one are kept as they were, and the
ones after it move by the change in line count.
"""

from __future__ import annotations

import ast
import itertools
from collections.abc import Callable
from types import FunctionType, ModuleType

import pytest

import relive
import relive._tracker
from relive._engine import Engine
from relive._reparse import source_lines
from relive._statements import analyze_body
from relive.testing import TemporaryPackage, write_source

WIDE = '''"""Wide module."""
import functools

SCALE = 3
TABLE = {
    "a": 1,
    "b": 2,
}


def deco(f):
    f.tagged = True
    return f


@deco
def f1(x):
    return x + 1


def f2(x):
    return x * SCALE


@functools.singledispatch
def fmt(x):
    return "object"


@fmt.register
def _(x: int):
    return "int"


@fmt.register
def _(x: str):
    return "str"


class Box:
    size = 2

    def area(self):
        return self.size ** 2


class Measured:
    size = f2(1)

    def area(self):
        return self.size ** 2


SIZES = {"measured": Measured.size, "twice": f2(2), "plain": 7}


def f3(x):
    """Three."""
    return f2(x) - 1; LAST_SEEN = 1


LAST = f3(2)
'''

EDITS: dict[str, Callable[[str], str]] = {
    "a body": lambda s: s.replace("return x * SCALE", "return x * SCALE + 1"),
    "a function that grows": lambda s: s.replace(
        "    return x + 1\n", "    x += 1\n    x += 1\n    return x\n"
    ),
    "a multi-line statement that shrinks": lambda s: s.replace('    "b": 2,\n', ""),
    "a decorator added": lambda s: s.replace("def f2(x):", "@deco\ndef f2(x):"),
    "a decorator removed": lambda s: s.replace("@deco\ndef f1", "def f1"),
    "one of two same-named definitions": lambda s: s.replace('"str"', '"str v2"'),
    "a definition inserted": lambda s: s.replace(
        "\n\n@functools", "\n\ndef f9(x):\n    return 9\n\n\n@functools"
    ),
    "a definition removed": lambda s: s.replace(
        "class Box:\n    size = 2\n\n    def area(self):\n        return self.size ** 2\n", ""
    ),
    "the module docstring": lambda s: s.replace('"""Wide module."""', '"""Wider."""'),
    "a __doc__ assignment": lambda s: s.replace("SCALE = 3\n", 'SCALE = 3\n__doc__ = "set"\n'),
    "two statements on one line": lambda s: s.replace("LAST_SEEN = 1", "LAST_SEEN = 2"),
    "a class body": lambda s: s.replace("size = 2", "size = 5"),
    "the last statement": lambda s: s.replace("LAST = f3(2)", "LAST = f3(4)"),
    "an import": lambda s: s.replace("import functools\n", "import functools\nimport os\n"),
}
ENDINGS = {"\\n": "\n", "\\r\\n": "\r\n", "\\r": "\r"}
_names = itertools.count()


def with_form_feeds(source: str) -> str:
    """Page breaks between definitions (and one before a ``def``, at column 0)."""
    return source.replace("\n\n\ndef f2", "\n\x0c\n\x0cdef f2").replace(
        "\n\n\nclass", "\n\x0c\nclass"
    )


def observe(module: ModuleType) -> dict[str, object]:
    """What a module's names do, with their line numbers and docstrings."""
    seen: dict[str, object] = {"__doc__": module.__doc__}
    for name, value in sorted(vars(module).items()):
        if name.startswith("__"):
            continue
        if hasattr(value, "registry"):  # the singledispatch function
            seen[name] = [value(sample) for sample in (1, "a", 1.5)]
        elif isinstance(value, FunctionType) and name != "deco":
            seen[name] = (
                value(2),
                value.__code__.co_firstlineno,
                value.__doc__,
                # What a removed decorator set on the function stays (relive patches the
                # function it made): only an added one is compared.
                getattr(value, "tagged", False) or name == "f1",
            )
        elif isinstance(value, type):
            seen[name] = (value().area(), value.area.__code__.co_firstlineno, value.size)
        elif not isinstance(value, (ModuleType, FunctionType)):
            seen[name] = repr(value)
    return seen


def fresh(package: TemporaryPackage, text: str) -> ModuleType:
    name = f"wide_fresh_{next(_names)}"
    package.write(f"{name}.py", text, dedent=False)
    return package.module(name)


@pytest.mark.parametrize("scanned", [False, True], ids=["parsed", "scanned"])
@pytest.mark.parametrize("ending", ENDINGS, ids=list(ENDINGS))
@pytest.mark.parametrize("form_feeds", [False, True], ids=["", "form feeds"])
@pytest.mark.parametrize("edit", EDITS, ids=list(EDITS))
def test_an_edit_equals_a_fresh_import(
    package: TemporaryPackage,
    engine: Engine,
    monkeypatch: pytest.MonkeyPatch,
    edit: str,
    form_feeds: bool,
    ending: str,
    scanned: bool,
) -> None:
    # A large module's statements are found by scanning its text (relive._segments): a
    # small one is scanned too, here, by lowering the size it takes.
    monkeypatch.setattr(relive._tracker, "SCAN_ABOVE", 0 if scanned else 10**9)
    base = with_form_feeds(WIDE) if form_feeds else WIDE
    old, new = (text.replace("\n", ENDINGS[ending]) for text in (base, EDITS[edit](base)))
    assert new != old
    module = fresh(package, old)
    relive.refresh()
    held = module.f1
    tracked = engine.tracked_module(module.__name__)
    assert tracked is not None
    before = list(tracked.statements())
    assert all(statement.is_lean for statement in before if statement.kind != "stmt") == scanned

    write_source(module.__file__ or "", new, dedent=False)
    relive.reload(module)
    assert observe(module) == observe(fresh(package, new))
    assert held is module.f1 or edit == "a decorator removed"

    # The records kept are those a full analysis of the new text gives.
    text = tracked.source or ""
    full = analyze_body(ast.parse(text).body, source_lines(text), module=module.__name__)
    after = tracked.statements()
    assert [(s.lineno, s.last, s.kind, s.name, s.binds) for s in after] == [
        (s.lineno, s.last, s.kind, s.name, s.binds) for s in full
    ]
    assert [ast.dump(s.node, include_attributes=True) for s in after] == [
        ast.dump(s.node, include_attributes=True) for s in full
    ]
    if edit not in ("an import", "the module docstring"):
        assert after[0] is before[0]  # statements in front of the edit are not parsed again
