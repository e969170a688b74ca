"""Statements after a definition that change what it bound, as real libraries write them
(jinja2's nodes.py): a class member replaced after the class body, and a helper deleted
once used. An edit of the class must end as a fresh import of the new text would."""

from __future__ import annotations

import relive
from relive._engine import Engine
from relive.testing import TemporaryPackage

NODES = """\
class NodeType(type):
    def __new__(mcs, name, bases, d):
        return type.__new__(mcs, name, bases, d)


class Node(metaclass=NodeType):
    def f(self):
        return 1


def _failing_new(*args, **kwargs):
    raise TypeError("can't create custom node types")


NodeType.__new__ = staticmethod(_failing_new)
{delete}
"""


def _can_subclass(mod: object) -> bool:
    try:
        type("Custom", (mod.Node,), {})  # type: ignore[attr-defined]
    except TypeError:
        return False
    return True


def _edits(text: str) -> list[str]:
    return [
        text.replace("return type.__new__", "x = 1\n        return type.__new__"),
        text.replace("    def __new__", "    def extra(cls):\n        return 1\n\n    def __new__"),
        text.replace("return 1", "return 2"),
    ]


def test_a_member_set_after_the_class_body_stays_and_keeps_its_code(
    package: TemporaryPackage, engine: Engine
) -> None:
    text = NODES.format(delete="")
    mod = package.module("later_member", text)
    failing = mod._failing_new
    node = mod.Node()
    for edit in _edits(text):
        package.write("later_member.py", edit)
        relive.refresh()
        assert not _can_subclass(mod), edit  # the later statement's __new__ is in place
        assert mod._failing_new is failing
        assert failing.__code__.co_name == "_failing_new"  # not the body's __new__ code
    assert node.f() == 2


def test_a_helper_deleted_after_use_is_there_when_its_user_runs_again(
    package: TemporaryPackage, engine: Engine
) -> None:
    text = NODES.format(delete="del _failing_new")
    mod = package.module("later_deleted", text)
    node = mod.Node()
    for edit in _edits(text):
        package.write("later_deleted.py", edit)
        relive.refresh()  # was: NameError: name '_failing_new' is not defined
        assert not _can_subclass(mod), edit
        assert "_failing_new" not in vars(mod)
    assert node.f() == 2


def test_an_import_deleted_after_use_is_there_when_a_class_reading_it_is_rebuilt(
    package: TemporaryPackage, engine: Engine
) -> None:
    # pyparsing's core.py: from .util import __config_flags; class __compat__(__config_flags)
    # ...; del __config_flags. Its classes are rebuilt from their bases' expression.
    package.module("later_flags", "class Flags:\n    kind = 'flags'\n")
    text = (
        "from later_flags import Flags\n\n\nclass Compat(Flags):\n    x = 1\n\n\n"
        "class Diag(Flags):\n    y = 1\n\n\ndel Flags\n"
    )
    mod = package.module("later_compat", text)
    compat = mod.Compat()
    edited = text.replace("    x = 1\n", "    x = 2\n\n    def extra(self):\n        return 3\n")
    package.write("later_compat.py", edited)
    relive.refresh()  # was: NameError: name 'Flags' is not defined
    assert mod.Compat.x == 2 and compat.extra() == 3 and isinstance(compat, mod.Compat)
    assert mod.Compat.kind == "flags" and "Flags" not in vars(mod)
