"""Swap snippets for classes: patched member by member, the class object and instances kept."""

from __future__ import annotations

import pickle
import textwrap

import pytest

import relive
from relive._engine import Engine
from relive.testing import TemporaryPackage, apply_edit

SHAPES = textwrap.dedent(
    """
    class Shape:
        sides = 0
        registry = []

        def __init__(self, name):
            self.name = name

        def describe(self):
            return f"{self.name}: v1"

        @property
        def label(self):
            return "label v1"

        @classmethod
        def make(cls):
            return ("make v1", cls)

        @staticmethod
        def unit():
            return "unit v1"
    """
)


def test_method_edit_keeps_class_and_instances(package: TemporaryPackage, engine: Engine) -> None:
    mod = package.module("cls_method", SHAPES)
    cls, shape = mod.Shape, mod.Shape("sq")
    method = cls.__dict__["describe"]
    report = apply_edit(mod, SHAPES.replace("v1", "v2"))
    assert mod.Shape is cls and cls.__dict__["describe"] is method
    assert shape.describe() == "sq: v2"
    assert shape.label == "label v2"
    assert cls.make() == ("make v2", cls)
    assert cls.unit() == "unit v2" and shape.unit() == "unit v2"
    assert report.modules[0].patched == ("Shape",)


def test_added_method_appears_on_instances_and_subclasses_elsewhere(
    package: TemporaryPackage, engine: Engine
) -> None:
    mod = package.module("cls_added", SHAPES)
    sub = package.module(
        "cls_added_sub", "from cls_added import Shape\n\nclass Square(Shape):\n    sides = 4\n"
    )
    square, shape = sub.Square("sq"), mod.Shape("s")
    apply_edit(mod, SHAPES + "\n    def area(self):\n        return self.sides * 10\n")
    assert square.area() == 40 and shape.area() == 0
    assert sub.Square.__bases__ == (mod.Shape,)


def test_removed_method_disappears(package: TemporaryPackage, engine: Engine) -> None:
    v1 = SHAPES + "\n    def gone(self):\n        return 1\n"
    mod = package.module("cls_removed", v1)
    sub = package.module(
        "cls_removed_sub", "from cls_removed import Shape\n\nclass Circle(Shape):\n    pass\n"
    )
    shape, circle = mod.Shape("s"), sub.Circle("c")
    apply_edit(mod, SHAPES)
    assert not hasattr(shape, "gone") and not hasattr(circle, "gone")
    assert "gone" not in mod.Shape.__dict__


def test_removed_property_and_classmethod_disappear(
    package: TemporaryPackage, engine: Engine
) -> None:
    mod = package.module("cls_removed_members", SHAPES)
    cls = mod.Shape
    apply_edit(
        mod,
        """
        class Shape:
            sides = 0
            registry = []

            def __init__(self, name):
                self.name = name

            def describe(self):
                return f"{self.name}: v1"
        """,
    )
    assert mod.Shape is cls
    for name in ("label", "make", "unit"):
        assert not hasattr(cls, name)


def test_member_kind_changes(package: TemporaryPackage, engine: Engine) -> None:
    v1 = """
        class K:
            def a(self):
                return "method"

            @property
            def b(self):
                return "property"
        """
    mod = package.module("cls_kinds", v1)
    k = mod.K()
    apply_edit(
        mod,
        """
        class K:
            @property
            def a(self):
                return "property"

            def b(self):
                return "method"
        """,
    )
    assert k.a == "property" and k.b() == "method"


def test_property_setter_added(package: TemporaryPackage, engine: Engine) -> None:
    v1 = """
        class Temp:
            def __init__(self):
                self._c = 0

            @property
            def celsius(self):
                return self._c
        """
    mod = package.module("cls_setter", v1)
    t = mod.Temp()
    apply_edit(
        mod,
        textwrap.dedent(v1)
        + "\n    @celsius.setter\n    def celsius(self, value):\n        self._c = value * 2\n",
    )
    t.celsius = 5
    assert t.celsius == 10


def test_class_attribute_edited_vs_unchanged(package: TemporaryPackage, engine: Engine) -> None:
    v1 = """
        class Config:
            retries = 3
            timeout = 1.0
            seen = []
        """
    mod = package.module("cls_attrs", v1)
    mod.Config.retries = 99
    mod.Config.seen.append("runtime")
    seen = mod.Config.seen
    apply_edit(mod, v1.replace("timeout = 1.0", "timeout = 2.0"))
    assert mod.Config.timeout == 2.0
    assert mod.Config.retries == 99
    assert mod.Config.seen is seen and seen == ["runtime"]


def test_class_attribute_added_and_removed(package: TemporaryPackage, engine: Engine) -> None:
    mod = package.module("cls_attrs2", "class C:\n    a = 1\n    b = 2\n")
    c = mod.C()
    apply_edit(mod, "class C:\n    a = 1\n    c = 3\n")
    assert c.c == 3 and not hasattr(c, "b") and c.a == 1


def test_class_attribute_reading_a_rebound_global(
    package: TemporaryPackage, engine: Engine
) -> None:
    v1 = "LIMIT = 1\n\nclass C:\n    limit = LIMIT\n    other = []\n"
    mod = package.module("cls_global", v1)
    cls, other = mod.C, mod.C.other
    apply_edit(mod, v1.replace("LIMIT = 1", "LIMIT = 2"))
    assert mod.C is cls and cls.limit == 2 and cls.other is other


def test_nested_class(package: TemporaryPackage, engine: Engine) -> None:
    v1 = """
        class Outer:
            class Inner:
                value = 1

                def get(self):
                    return "v1"

            def make(self):
                return self.Inner()
        """
    mod = package.module("cls_nested", v1)
    inner_cls = mod.Outer.Inner
    inner = mod.Outer().make()
    apply_edit(mod, v1.replace('"v1"', '"v2"'))
    assert mod.Outer.Inner is inner_cls and inner.get() == "v2"
    apply_edit(mod, v1.replace('"v1"', '"v3"').replace("value = 1", "value = 2"))
    assert mod.Outer.Inner is inner_cls and inner.get() == "v3" and inner.value == 2
    apply_edit(
        mod,
        textwrap.dedent(v1)
        + "\n    class Added:\n        def hi(self):\n            return 'hi'\n",
    )
    assert mod.Outer.Added().hi() == "hi"
    assert mod.Outer.Added.__qualname__ == "Outer.Added"


def test_isinstance_except_and_pickle_keep_working(
    package: TemporaryPackage, engine: Engine
) -> None:
    v1 = """
        class AppError(Exception):
            def hint(self):
                return "v1"

        class Point:
            def __init__(self, x, y):
                self.x, self.y = x, y

            def norm(self):
                return abs(self.x) + abs(self.y)

        def fail():
            raise AppError("boom")
        """
    mod = package.module("cls_identity", v1)
    point = mod.Point(3, -4)
    error_cls = mod.AppError
    apply_edit(
        mod,
        v1.replace('"v1"', '"v2"').replace("abs(self.x) + abs(self.y)", "max(self.x, self.y)"),
    )
    assert isinstance(point, mod.Point)
    with pytest.raises(error_cls) as info:
        mod.fail()
    assert info.value.hint() == "v2"
    try:
        mod.fail()
    except mod.AppError as exc:
        assert type(exc) is error_cls
    copy = pickle.loads(pickle.dumps(point))
    assert type(copy) is mod.Point and copy.norm() == 3 and point.norm() == 3


def test_zero_argument_super_in_added_and_edited_methods(
    package: TemporaryPackage, engine: Engine
) -> None:
    v1 = """
        class Base:
            def greet(self):
                return "base"

            def name(self):
                return "base"

        class Child(Base):
            def greet(self):
                return "child+" + super().greet()
        """
    mod = package.module("cls_super", v1)
    child = mod.Child()
    apply_edit(
        mod,
        textwrap.dedent(v1).replace('"child+"', '"kid+"')
        + "\n    def name(self):\n        return 'child/' + super().name()\n",
    )
    assert child.greet() == "kid+base"
    assert child.name() == "child/base"


def test_super_in_a_class_rebuilt_for_an_attribute_change(
    package: TemporaryPackage, engine: Engine
) -> None:
    v1 = """
        class Base:
            def greet(self):
                return "base"

        class Child(Base):
            tag = 1

            def greet(self):
                return f"child{self.tag}+" + super().greet()
        """
    mod = package.module("cls_super_rebuilt", v1)
    child = mod.Child()
    apply_edit(mod, v1.replace("tag = 1", "tag = 2").replace("child{", "kid{"))
    assert child.greet() == "kid2+base"
    assert isinstance(child, mod.Child)


def test_dataclass_fields(package: TemporaryPackage, engine: Engine) -> None:
    v1 = """
        from dataclasses import dataclass, field

        @dataclass
        class Settings:
            host: str = "localhost"
            port: int = 8000

            def url(self):
                return f"{self.host}:{self.port}"
        """
    mod = package.module("cls_dataclass", v1)
    cls, before = mod.Settings, mod.Settings()
    apply_edit(
        mod,
        """
        from dataclasses import dataclass, field

        @dataclass
        class Settings:
            host: str = "localhost"
            port: int = 9000
            debug: bool = True
            tags: list = field(default_factory=list)

            def url(self):
                return f"http://{self.host}:{self.port}"
        """,
    )
    assert mod.Settings is cls
    after = cls()
    assert after.port == 9000 and after.debug is True and after.tags == []
    assert cls(port=1, debug=False).debug is False
    assert [f.name for f in __import__("dataclasses").fields(cls)] == [
        "host",
        "port",
        "debug",
        "tags",
    ]
    assert before.url() == "http://localhost:8000"
    assert isinstance(before, cls)
    assert repr(after) == "Settings(host='localhost', port=9000, debug=True, tags=[])"
    assert after == cls()


def test_frozen_dataclass_method_edit(package: TemporaryPackage, engine: Engine) -> None:
    v1 = """
        from dataclasses import dataclass

        @dataclass(frozen=True)
        class P:
            x: int

            def double(self):
                return self.x * 2
        """
    mod = package.module("cls_frozen", v1)
    p = mod.P(2)
    apply_edit(mod, v1.replace("self.x * 2", "self.x * 3"))
    assert p.double() == 6 and hash(p) == hash(mod.P(2))


def test_enum_members(package: TemporaryPackage, engine: Engine) -> None:
    v1 = """
        import enum

        class Color(enum.Enum):
            RED = 1
            GREEN = 2

            def describe(self):
                return f"v1 {self.name}"
        """
    mod = package.module("cls_enum", v1)
    color, red, green = mod.Color, mod.Color.RED, mod.Color.GREEN
    apply_edit(
        mod,
        """
        import enum

        class Color(enum.Enum):
            RED = 1
            GREEN = 20
            BLUE = 3

            def describe(self):
                return f"v2 {self.name}"
        """,
    )
    assert mod.Color is color
    assert color.RED is red and color["RED"] is red and color(1) is red
    assert color.GREEN is green and green.value == 20 and color(20) is green
    assert color.BLUE.value == 3 and isinstance(color.BLUE, color)
    assert color(3) is color.BLUE and color["BLUE"] is color.BLUE
    assert list(color) == [red, green, color.BLUE]
    assert red.describe() == "v2 RED"
    with pytest.raises(ValueError):
        color(2)


def test_enum_member_removed(package: TemporaryPackage, engine: Engine) -> None:
    v1 = "import enum\n\nclass E(enum.Enum):\n    A = 1\n    B = 2\n"
    mod = package.module("cls_enum_rm", v1)
    e, a = mod.E, mod.E.A
    apply_edit(mod, "import enum\n\nclass E(enum.Enum):\n    A = 1\n")
    assert list(e) == [a] and not hasattr(e, "B")
    with pytest.raises(ValueError):
        e(2)


@pytest.mark.parametrize(
    ("v1", "v2"),
    [
        (
            "class Base: pass\nclass Other: pass\nclass C(Base):\n    x = 1\n",
            "class Base: pass\nclass Other: pass\nclass C(Other):\n    x = 2\n",
        ),
        (
            "class Meta(type): pass\nclass C:\n    x = 1\n",
            "class Meta(type): pass\nclass C(metaclass=Meta):\n    x = 2\n",
        ),
        (
            "class C:\n    __slots__ = ('a',)\n    x = 1\n",
            "class C:\n    __slots__ = ('a', 'b')\n    x = 2\n",
        ),
    ],
    ids=["bases", "metaclass", "slots"],
)
def test_restart_required_changes_nothing(
    package: TemporaryPackage, engine: Engine, v1: str, v2: str
) -> None:
    mod = package.module("cls_restart", v1 + "\ndef f():\n    return 1\n")
    cls = mod.C
    with pytest.raises(relive.RestartRequired) as info:
        apply_edit(mod, v2 + "\ndef f():\n    return 2\n")
    assert isinstance(info.value, relive.ReloadError)
    assert info.value.path == mod.__file__ and info.value.lineno is not None
    assert mod.C is cls and cls.x == 1 and mod.f() == 1


def test_base_changed_through_a_rebound_name(package: TemporaryPackage, engine: Engine) -> None:
    v1 = "class A:\n    pass\n\nBase = A\n\nclass C(Base):\n    pass\n"
    mod = package.module("cls_restart_indirect", v1)
    cls = mod.C
    with pytest.raises(relive.RestartRequired):
        apply_edit(mod, v1.replace("Base = A", "class B:\n    pass\n\nBase = B"))
    assert mod.C is cls and mod.Base is mod.A and not hasattr(mod, "B")


def test_class_of_another_kind_replaced_by_a_function(
    package: TemporaryPackage, engine: Engine
) -> None:
    mod = package.module("cls_to_fn", "class Thing:\n    pass\n")
    apply_edit(mod, "def Thing():\n    return 1\n")
    assert mod.Thing() == 1


def test_instance_of_edited_class_made_at_import_keeps_state(
    package: TemporaryPackage, engine: Engine
) -> None:
    v1 = """
        class Counter:
            def __init__(self):
                self.n = 0

            def bump(self):
                self.n += 1
                return self.n

        counter = Counter()
        """
    mod = package.module("cls_instance", v1)
    counter = mod.counter
    counter.bump()
    apply_edit(mod, v1.replace("self.n += 1", "self.n += 10"))
    assert mod.counter is counter and counter.bump() == 11


def test_class_decorator_registry(package: TemporaryPackage, engine: Engine) -> None:
    v1 = """
        plugins = []

        def plugin(cls):
            plugins.append(cls)
            return cls

        @plugin
        class A:
            def run(self):
                return "a1"
        """
    mod = package.module("cls_registry", v1)
    cls = mod.A
    apply_edit(mod, v1.replace('"a1"', '"a2"'))
    assert mod.plugins == [cls] and cls().run() == "a2"


def test_subclass_in_another_module_sees_rebuilt_members(
    package: TemporaryPackage, engine: Engine
) -> None:
    v1 = "class Base:\n    kind = 'v1'\n\n    def who(self):\n        return self.kind\n"
    mod = package.module("cls_sub_base", v1)
    sub = package.module(
        "cls_sub_child", "from cls_sub_base import Base\n\nclass Child(Base):\n    pass\n"
    )
    child_cls = sub.Child
    apply_edit(mod, v1.replace("'v1'", "'v2'"))
    assert sub.Child is child_cls and sub.Child().who() == "v2"


def test_rebuilt_class_is_not_registered_again(package: TemporaryPackage, engine: Engine) -> None:
    v1 = """
        plugins = []
        by_name = {}

        def plugin(cls):
            plugins.append(cls)
            by_name[cls.__name__] = cls
            return cls

        @plugin
        class A:
            level = 1
        """
    mod = package.module("cls_registry_rebuild", v1)
    cls = mod.A
    apply_edit(mod, v1.replace("level = 1", "level = 2"))
    assert mod.A is cls and cls.level == 2
    assert mod.plugins == [cls]
    assert mod.by_name == {"A": cls}


def test_init_subclass_registry_keeps_the_live_class(
    package: TemporaryPackage, engine: Engine
) -> None:
    v1 = """
        class Base:
            registry = []

            def __init_subclass__(cls, **kwargs):
                super().__init_subclass__(**kwargs)
                Base.registry.append(cls)

        class Child(Base):
            level = 1
        """
    mod = package.module("cls_init_subclass", v1)
    child = mod.Child
    apply_edit(mod, v1.replace("level = 1", "level = 2"))
    assert mod.Child is child and child.level == 2
    assert mod.Base.registry == [child]


def test_abc_registrations_survive_a_rebuild(package: TemporaryPackage, engine: Engine) -> None:
    v1 = """
        import abc

        class Shape(abc.ABC):
            sides = 0

            @abc.abstractmethod
            def area(self):
                ...

        class Square(Shape):
            def area(self):
                return 1

        class Virtual:
            pass

        Shape.register(Virtual)
        """
    mod = package.module("cls_abc", v1)
    assert isinstance(mod.Virtual(), mod.Shape)
    apply_edit(
        mod,
        v1.replace("sides = 0", "sides = 4").replace(
            "        def area(self):\n                ...",
            "        def area(self):\n                ...\n\n            @abc.abstractmethod\n"
            "            def name(self):\n                ...",
        ),
    )
    assert mod.Shape.sides == 4
    assert isinstance(mod.Virtual(), mod.Shape)
    assert issubclass(mod.Virtual, mod.Shape)
    assert mod.Shape.__abstractmethods__ == frozenset({"area", "name"})
    with pytest.raises(TypeError):
        mod.Square()


def test_rebuilt_exception_and_pickle(package: TemporaryPackage, engine: Engine) -> None:
    v1 = """
        class Failure(Exception):
            code = 1

        class Record:
            kind = "a"

            def __init__(self, value):
                self.value = value

        def fail():
            raise Failure("x")
        """
    mod = package.module("cls_rebuilt_identity", v1)
    failure_cls, record = mod.Failure, mod.Record(5)
    apply_edit(mod, v1.replace("code = 1", "code = 2").replace('kind = "a"', 'kind = "b"'))
    try:
        mod.fail()
    except failure_cls as exc:
        assert exc.code == 2
    copy = pickle.loads(pickle.dumps(record))
    assert type(copy) is mod.Record and copy.value == 5 and copy.kind == "b"
    assert isinstance(record, mod.Record)


def test_class_in_a_compound_statement_keeps_identity(
    package: TemporaryPackage, engine: Engine
) -> None:
    v1 = """
        import sys

        if sys.version_info >= (3,):
            class Impl:
                def run(self):
                    return 1

                def gone(self):
                    return 0
        """
    mod = package.module("cls_compound", v1)
    cls, instance = mod.Impl, mod.Impl()
    apply_edit(
        mod,
        """
        import sys

        if sys.version_info >= (3,):
            class Impl:
                def run(self):
                    return 2
        """,
    )
    assert mod.Impl is cls and instance.run() == 2
    assert not hasattr(instance, "gone")


def test_named_tuple_and_protocol_edits(package: TemporaryPackage, engine: Engine) -> None:
    v1 = """
        from typing import NamedTuple, Protocol

        class Point(NamedTuple):
            x: int
            y: int = 0

            def norm(self):
                return self.x + self.y

        class Greeter(Protocol):
            def greet(self) -> str: ...
        """
    mod = package.module("cls_typing", v1)
    point = mod.Point(1, 2)
    apply_edit(mod, v1.replace("y: int = 0", "y: int = 5").replace("self.x + self.y", "0"))
    assert mod.Point(1) == (1, 5)
    assert point.norm() == 0
    assert isinstance(point, mod.Point)


def test_slotted_class_rebuilt_keeps_its_slots(package: TemporaryPackage, engine: Engine) -> None:
    v1 = """
        class P:
            __slots__ = ("x", "y")
            kind = 1

            def __init__(self, x, y):
                self.x, self.y = x, y

            def total(self):
                return self.x + self.y
        """
    mod = package.module("cls_slots_rebuilt", v1)
    p = mod.P(1, 2)
    apply_edit(mod, v1.replace("kind = 1", "kind = 2").replace("self.x + self.y", "self.x * 10"))
    assert p.total() == 10 and p.kind == 2
    p.y = 5
    assert p.y == 5 and mod.P(3, 4).total() == 30


def test_method_gaining_super(package: TemporaryPackage, engine: Engine) -> None:
    v1 = """
        class Base:
            def hello(self):
                return "base"

        class Child(Base):
            def hello(self):
                return "child"
        """
    mod = package.module("cls_gains_super", v1)
    child = mod.Child()
    apply_edit(mod, v1.replace('return "child"', 'return "child+" + super().hello()'))
    assert child.hello() == "child+base"


def test_property_setter_body_edited_in_place(package: TemporaryPackage, engine: Engine) -> None:
    v1 = """
        class Temp:
            def __init__(self):
                self._c = 0

            @property
            def celsius(self):
                return self._c

            @celsius.setter
            def celsius(self, value):
                self._c = value

            @celsius.deleter
            def celsius(self):
                self._c = None
        """
    mod = package.module("cls_setter_edit", v1)
    t, prop = mod.Temp(), mod.Temp.__dict__["celsius"]
    apply_edit(mod, v1.replace("self._c = value", "self._c = value * 2"))
    t.celsius = 5
    assert t.celsius == 10 and mod.Temp.__dict__["celsius"] is prop
    apply_edit(
        mod,
        "\n\n" + textwrap.dedent(v1).replace("return self._c", "return ('c', self._c)"),
        dedent=False,
    )
    t.celsius = 1
    assert t.celsius == ("c", 1)
    del t.celsius
    assert t.celsius == ("c", None)
