"""``from __future__`` imports: an edit ends as a fresh import of the new text would.

The parser accepts a ``from __future__`` import anywhere; only the compiler of the whole
file refuses one that follows anything but the docstring. relive compiles statements one
at a time, so it checks the rule itself. And the future flags change how every statement
compiles (annotations kept as strings), so an edit that changes them cannot be applied to
the statements whose text stayed: it is refused, changing nothing.
"""

from __future__ import annotations

import pytest

from relive import ReloadError, RestartRequired
from relive._engine import Engine
from relive.testing import TemporaryPackage

BASE = (
    '"""Doc."""\nfrom __future__ import annotations\n\n\ndef f(x: Missing) -> int:\n    return 1\n'
)


@pytest.mark.parametrize(
    ("new", "line"),
    [
        ("X = 1\n" + BASE, 3),  # a statement above the docstring and the import
        (BASE.replace('"""Doc."""\n', '"""Doc."""\n"""Two."""\n'), 3),  # a second string
        (BASE.replace('"""Doc."""', '"x".upper()'), 2),  # an expression, not a docstring
        ("import os\n" + BASE, 3),  # an import: the whole module is analysed
        (BASE + "from __future__ import division\n", 7),  # one more at the end
    ],
)
def test_a_misplaced_future_import_is_a_syntax_error_that_changes_nothing(
    package: TemporaryPackage, engine: Engine, new: str, line: int
) -> None:
    with pytest.raises(SyntaxError, match="beginning of the file"):
        compile(new, "fresh.py", "exec")  # what a fresh import says
    mod = package.module("fut_misplaced", BASE)
    f = mod.f
    package.write("fut_misplaced.py", new)
    with pytest.raises(ReloadError, match="from __future__ imports must occur") as caught:
        engine.refresh()
    assert caught.value.lineno == line
    assert mod.f is f and f(0) == 1 and not hasattr(mod, "X")
    package.write("fut_misplaced.py", BASE.replace("return 1", "return 2"))
    assert engine.refresh().reloaded == ("fut_misplaced",)
    assert f(0) == 2


def test_future_imports_after_the_docstring_stay_accepted(
    package: TemporaryPackage, engine: Engine
) -> None:
    mod = package.module("fut_fine", BASE)
    new = BASE.replace("annotations\n", "annotations, division\n") + "Y = 2\n"
    package.write("fut_fine.py", new)
    assert engine.refresh().reloaded == ("fut_fine",)
    assert mod.Y == 2 and mod.f.__annotations__ == {"x": "Missing", "return": "int"}


@pytest.mark.parametrize("direction", ["added", "removed"])
def test_a_change_of_future_flags_is_refused_changing_nothing(
    package: TemporaryPackage, engine: Engine, direction: str
) -> None:
    plain = "def f(x: int) -> int:\n    return 1\n\n\nclass C:\n    a: int = 1\n"
    future = "from __future__ import annotations\n" + plain
    old, new = (plain, future) if direction == "added" else (future, plain)
    mod = package.module(f"fut_{direction}", old)
    before = dict(mod.f.__annotations__)
    package.write(f"fut_{direction}" + ".py", new)
    with pytest.raises(RestartRequired, match="from __future__"):
        engine.refresh()
    assert mod.f.__annotations__ == before
    package.write(f"fut_{direction}" + ".py", old)  # reverted: normal operation
    assert not engine.refresh()
