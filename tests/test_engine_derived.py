"""Values derived from changed code are computed again, as a fresh import would; state that
depends on no changed code stays."""

from __future__ import annotations

import relive
from relive._engine import Engine
from relive.testing import TemporaryPackage, apply_edit


def test_statements_calling_an_edited_function_run_again(
    package: TemporaryPackage, engine: Engine
) -> None:
    v1 = """
        CACHE = {}
        COUNTER = [0]


        def f(k):
            return k * 10


        T = {k: f(k) for k in range(3)}
        D = f(10)
        PLAIN = 5
        """
    mod = package.module("dv_calls", v1)
    cache, counter = mod.CACHE, mod.COUNTER
    mod.CACHE["kept"] = True
    apply_edit(mod, v1.replace("k * 10", "k * 100"))
    assert mod.T == {0: 0, 1: 100, 2: 200} and mod.D == 1000
    assert mod.CACHE is cache and mod.CACHE == {"kept": True} and mod.COUNTER is counter


def test_a_change_reaches_statements_through_what_the_code_calls(
    package: TemporaryPackage, engine: Engine
) -> None:
    v1 = """
        def g():
            return 1


        def f(x):
            return g() + x


        class Maker:
            def build(self):
                return f(0)


        D = f(1)
        MAKER = Maker()
        UNRELATED = [1]
        """
    mod = package.module("dv_transitive", v1)
    unrelated, maker = mod.UNRELATED, mod.MAKER
    apply_edit(mod, v1.replace("return 1\n", "return 2\n"))
    assert mod.D == 3 and mod.UNRELATED is unrelated
    assert mod.MAKER is maker and maker.build() == 2  # an instance keeps its state


def test_derived_values_in_other_modules_follow(package: TemporaryPackage, engine: Engine) -> None:
    package.write("dv_pkg/__init__.py", "")
    base = "def make(n):\n    return n * 2\n\n\nclass C:\n    K = 1\n"
    m0 = package.module("dv_pkg.m0", base)
    m1 = package.module(
        "dv_pkg.m1",
        "from . import m0\nfrom .m0 import make\n\nZ = make(2)\nD = m0.C.K\nW = m0.make(5)\n",
    )
    m2 = package.module("dv_pkg.m2", "from .m1 import Z\n\nTWICE = Z * 2\n")
    assert (m1.Z, m1.D, m1.W, m2.TWICE) == (4, 1, 10, 8)
    apply_edit(m0, base.replace("n * 2", "n * 3").replace("K = 1", "K = 7"))
    assert (m1.Z, m1.D, m1.W, m2.TWICE) == (6, 7, 15, 12)


def test_lru_caches_of_functions_reading_changed_code_are_cleared(
    package: TemporaryPackage, engine: Engine
) -> None:
    package.write("dv_cache/__init__.py", "")
    a = package.module("dv_cache.a", "K = 1\n\n\ndef scale():\n    return 10\n")
    b = package.module(
        "dv_cache.b",
        """
        import functools

        from . import a


        def helper():
            return 100


        @functools.lru_cache
        def total(x):
            return a.K + x


        @functools.lru_cache(maxsize=8)
        def scaled(x):
            return a.scale() * x + helper()


        @functools.cache
        def unrelated(x):
            return [x]
        """,
    )
    kept = b.unrelated(1)
    assert (b.total(1), b.scaled(2)) == (2, 120)
    apply_edit(a, "K = 5\n\n\ndef scale():\n    return 20\n")
    assert (b.total(1), b.scaled(2)) == (6, 140)
    assert b.unrelated(1) is kept
    source = b.__file__ or ""
    with open(source) as handle:
        text = handle.read()
    apply_edit(b, text.replace("return 100", "return 1000"), dedent=False)
    assert b.scaled(2) == 1040 and b.unrelated(1) is kept


def test_state_built_by_unchanged_code_stays(package: TemporaryPackage, engine: Engine) -> None:
    v1 = """
        class Pool:
            def __init__(self):
                self.items = []

            def size(self):
                return len(self.items)


        def unrelated():
            return 1


        POOL = Pool()
        """
    mod = package.module("dv_state", v1)
    pool = mod.POOL
    report = apply_edit(mod, v1.replace("return 1", "return 2"))
    assert mod.POOL is pool and report.modules[0].executed == ()
    assert relive.refresh().summary() == "nothing changed"


def test_a_statement_reading_a_class_follows_its_added_member(
    package: TemporaryPackage, engine: Engine
) -> None:
    v1 = (
        "import enum\n\n\nclass E(enum.Enum):\n    A = 1\n    B = 2\n\n\n"
        "K = len(E)\nNAMES = [m.name for m in E]\n"
    )
    mod = package.module("dv_enum", v1)
    assert mod.K == 2
    apply_edit(mod, v1.replace("    B = 2\n", "    B = 2\n    C = 3\n"))
    assert mod.K == 3 and mod.NAMES == ["A", "B", "C"]


def test_registries_lose_what_removed_renamed_or_undecorated_definitions_registered(
    package: TemporaryPackage, engine: Engine
) -> None:
    package.write("dv_reg/__init__.py", "")
    bus = package.module(
        "dv_reg.bus",
        """
        HANDLERS = []
        BY_NAME = {}
        NAMES = set()


        def on(function):
            HANDLERS.append(function)
            BY_NAME[function.__name__] = function
            NAMES.add(function)
            return function


        class Base:
            registry = []

            def __init_subclass__(cls, **kwargs):
                super().__init_subclass__(**kwargs)
                Base.registry.append(cls)
        """,
    )
    v1 = """
        from .bus import Base, on


        @on
        def a():
            return "a"


        @on
        def b():
            return "b"


        class P1(Base):
            pass


        class P2(Base):
            pass
        """
    plug = package.module("dv_reg.plug", v1)
    assert [f.__name__ for f in bus.HANDLERS] == ["a", "b"] and len(bus.Base.registry) == 2
    v2 = (
        v1.replace("def a():", "def a2():")
        .replace("@on\n        def b", "def b")
        .replace("class P1(Base)", "class P1b(Base)")
        .replace("class P2(Base):\n            pass\n", "")
    )
    apply_edit(plug, v2)
    assert [plug.a2] == bus.HANDLERS and {"a2": plug.a2} == bus.BY_NAME
    assert {plug.a2} == bus.NAMES
    assert bus.Base.registry == [plug.P1b]
    apply_edit(plug, v1)
    assert [f.__name__ for f in bus.HANDLERS] == ["a", "b"]
    assert [cls.__name__ for cls in bus.Base.registry] == ["P1", "P2"]
