"""Class statements built again when the metaclass changed after the classes were made.

jinja2's ``nodes.py`` builds its node classes with ``NodeType`` and then forbids new ones
(``NodeType.__new__ = staticmethod(_failing_new)``). A fresh import of the edited file
builds each class with the metaclass its body defined: so does relive, for the class it
builds again to merge and for a class the edit adds, and the later statement keeps its
effect.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

from harness import fresh_import
from relive import ReloadError, RestartRequired
from relive._engine import Engine
from relive.testing import TemporaryPackage, apply_edit

NODES = """\
class NodeType(type):
    def __new__(mcs, name, bases, namespace):
        inherited = getattr(bases[0], "fields", ()) if bases else ()
        namespace["fields"] = inherited + tuple(namespace.get("fields", ()))
        return super().__new__(mcs, name, bases, namespace)

    def __init__(cls, name, bases, namespace):
        super().__init__(name, bases, namespace)
        cls.made_by = "NodeType"


class Node(metaclass=NodeType):
    fields = ()


class Expr(Node):
    fields = ("a",)

    def describe(self):
        return "expr v1"


def _failing_new(*args, **kwargs):
    raise TypeError("can't create custom node types")


def _failing_init(*args, **kwargs):
    raise TypeError("no init")


NodeType.__new__ = staticmethod(_failing_new)
NodeType.__init__ = _failing_init
del _failing_new, _failing_init
"""


def test_a_class_of_a_metaclass_changed_after_its_body_is_edited(
    package: TemporaryPackage, engine: Engine
) -> None:
    mod = package.module("meta_edit", NODES)
    expr = mod.Expr()
    v2 = NODES.replace('fields = ("a",)', 'fields = ("a", "b")').replace("expr v1", "expr v2")
    apply_edit(mod, v2, dedent=False)
    fresh = fresh_import(mod)
    assert mod.Expr.fields == fresh.Expr.fields == ("a", "b")
    assert isinstance(expr, mod.Expr) and expr.describe() == "expr v2"
    assert type(mod.Expr) is mod.NodeType and mod.Expr.made_by == "NodeType"
    with pytest.raises(TypeError, match="custom node types"):  # the later statement holds
        mod.NodeType("Other", (mod.Node,), {})


def test_a_class_added_under_such_a_metaclass(package: TemporaryPackage, engine: Engine) -> None:
    mod = package.module("meta_add", NODES)
    call = 'class Call(Expr):\n    fields = ("c",)\n\n\ndef _failing_new'
    apply_edit(mod, NODES.replace("def _failing_new", call, 1), dedent=False)
    assert mod.Call.fields == fresh_import(mod).Call.fields == ("a", "c")
    assert type(mod.Call) is mod.NodeType and issubclass(mod.Call, mod.Expr)
    with pytest.raises(TypeError, match="custom node types"):
        mod.NodeType("Other", (mod.Node,), {})


def test_the_metaclass_in_another_module(package: TemporaryPackage, engine: Engine) -> None:
    package.write("meta_base.py", _BASE, dedent=False)
    v1 = (
        "import meta_base\n\n\nclass Leaf(meta_base.Node):\n    fields = ('x',)\n\n\n"
        "meta_base.lock()\n"
    )
    mod = package.module("meta_user", v1)
    apply_edit(mod, v1.replace("('x',)", "('x', 'y')"), dedent=False)
    assert mod.Leaf.fields == ("base", "x", "y")
    assert type(mod.Leaf) is sys.modules["meta_base"].NodeType


_BASE = """\
class NodeType(type):
    def __new__(mcs, name, bases, namespace):
        inherited = getattr(bases[0], "fields", ()) if bases else ()
        namespace["fields"] = inherited + tuple(namespace.get("fields", ()))
        return super().__new__(mcs, name, bases, namespace)


class Node(metaclass=NodeType):
    fields = ("base",)


def _failing_new(*args, **kwargs):
    raise TypeError("can't create custom node types")


def lock():
    NodeType.__new__ = staticmethod(_failing_new)
"""


def test_jinja2_nodes_edited(tmp_path: Path, engine: Engine) -> None:
    """The real thing: jinja2's own nodes.py (a copy, so that relive tracks it)."""
    jinja2 = pytest.importorskip("jinja2")
    source = Path(jinja2.__file__).parent
    for name in [name for name in sys.modules if name.split(".")[0] == "jinja2"]:
        del sys.modules[name]
    shutil.copytree(source, tmp_path / "jinja2", ignore=shutil.ignore_patterns("__pycache__"))
    sys.path.insert(0, str(tmp_path))
    import jinja2 as copied
    import jinja2.nodes as nodes

    assert Path(nodes.__file__ or "").is_relative_to(tmp_path)
    environment = copied.Environment()
    output = nodes.Output
    text = Path(nodes.__file__ or "").read_text()
    method = '    def relive_probe(self):\n        return "probe"\n\n    fields = ("nodes",)'
    edited = text.replace('    fields = ("nodes",)', method, 1)
    assert edited != text
    apply_edit(nodes, edited, dedent=False)
    assert nodes.Output is output and output().relive_probe() == "probe"  # type: ignore[attr-defined]
    assert output.fields == ("nodes",)
    assert environment.from_string("{% for i in range(3) %}{{ i }}{% endfor %}").render() == "012"
    with pytest.raises(TypeError):
        nodes.NodeType("Custom", (nodes.Node,), {})
    with pytest.raises(ReloadError):  # a broken edit is still refused, changing nothing
        apply_edit(nodes, edited.replace("class Output(Stmt):", "class Output(Stmt)"), dedent=False)
    assert output().relive_probe() == "probe"  # type: ignore[attr-defined]


def test_a_base_whose_init_subclass_was_replaced_is_refused_precisely(
    package: TemporaryPackage, engine: Engine
) -> None:
    v1 = """\
class Base:
    names = []

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        Base.names.append(cls.__name__)


class A(Base):
    x = 1


def _closed(cls, **kwargs):
    raise TypeError("Base is closed")


Base.__init_subclass__ = classmethod(_closed)
"""
    mod = package.module("meta_init_subclass", v1)
    with pytest.raises(RestartRequired) as refused:
        apply_edit(mod, v1.replace("x = 1", "x = 2"), dedent=False)
    message = str(refused.value)
    assert "Base.__init_subclass__ was replaced (by _closed)" in message
    assert refused.value.lineno == 9 and "\n" not in message
    assert mod.A.x == 1 and mod.Base.names == ["A"]
