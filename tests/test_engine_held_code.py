"""Code objects the program keeps (template engines record ``f.__code__`` to hide their
own frames from tracebacks) follow every change of a function's code: an edit, an edit
whose code compares equal to the old (only its line table differs), and lines moved."""

from __future__ import annotations

import relive
from relive._engine import Engine
from relive.testing import TemporaryPackage

REGISTRY = """\
internal = set()


def internalcode(function):
    internal.add(function.__code__)
    return function
"""

V1 = """\
from held_registry import internalcode


class Context:
    @internalcode
    def call(self):
        return 1


@internalcode
def top():
    return 1
"""


def _kept(mod: object, registry: object) -> tuple[bool, bool, int]:
    internal = registry.internal  # type: ignore[attr-defined]
    context, top = mod.Context, mod.top  # type: ignore[attr-defined]
    return context.call.__code__ in internal, top.__code__ in internal, len(internal)


def test_kept_code_follows_edits_equal_code_and_moved_lines(
    package: TemporaryPackage, engine: Engine
) -> None:
    registry = package.module("held_registry", REGISTRY)
    mod = package.module("held_code", V1)
    assert _kept(mod, registry) == (True, True, 2)
    texts = [
        # unreachable code: the new code of call() compares equal to the old; top() moves
        V1.replace("return 1", "return 1\n        pass", 1),
        V1,  # and back
        V1.replace("return 1", "return 2"),  # both edited
        "# a line on top moves every function\n" + V1.replace("return 1", "return 2"),
    ]
    for text in texts:
        package.write("held_code.py", text)
        relive.refresh()
        assert _kept(mod, registry) == (True, True, 2), text
    assert mod.top() == 2 and mod.Context().call() == 2
