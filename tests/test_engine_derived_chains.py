"""Values derived from changed code through what a statement reaches indirectly: a class
read whole (``len(E)``, ``C.K`` through an import), a method called on an instance or a
class, an importer's own helpers; caches along the same chains; and state that depends on
no changed code stays (nothing with side effects runs again for an unrelated edit)."""

from __future__ import annotations

import relive
from relive._engine import Engine
from relive.testing import TemporaryPackage, apply_edit


def test_importers_reading_a_class_whole_follow_its_members(
    package: TemporaryPackage, engine: Engine
) -> None:
    package.write("dc_whole/__init__.py", "")
    base = (
        "import dataclasses\nimport enum\n\n\nclass E(enum.Enum):\n    A = 1\n\n\n"
        "@dataclasses.dataclass\nclass DC:\n    x: int = 0\n\n\nclass C:\n    K = 1\n"
    )
    m0 = package.module("dc_whole.m0", base)
    m1 = package.module(
        "dc_whole.m1",
        """
        import dataclasses

        from . import m0
        from .m0 import DC, C, E

        N = len(E)
        ALL = list(E)
        MEMBERS = sorted(E.__members__)
        K = len(dataclasses.fields(DC))
        D = m0.C.K
        D2 = C.K


        class Inner:
            SIZE = len(m0.E)
        """,
    )
    assert (m1.N, m1.MEMBERS, m1.K, m1.D, m1.D2, m1.Inner.SIZE) == (1, ["A"], 1, 1, 1, 1)
    v2 = base.replace("A = 1\n", "A = 1\n    B = 2\n").replace(
        "x: int = 0\n", "x: int = 0\n    y: int = 1\n"
    )
    apply_edit(m0, v2.replace("K = 1", "K = 7"), dedent=False)
    assert (m1.N, m1.MEMBERS, m1.K, m1.D, m1.D2, m1.Inner.SIZE) == (2, ["A", "B"], 2, 7, 7, 2)
    assert m1.ALL == [m0.E.A, m0.E.B]
    apply_edit(m0, base, dedent=False)
    assert (m1.N, m1.MEMBERS, m1.K, m1.D, m1.D2, m1.Inner.SIZE) == (1, ["A"], 1, 1, 1, 1)


def test_methods_called_through_instances_and_classes_are_followed(
    package: TemporaryPackage, engine: Engine
) -> None:
    v1 = """
        class Maker:
            def build(self):
                return 1

            @classmethod
            def create(cls):
                return 10

            @staticmethod
            def plain():
                return 100


        E = Maker().build()
        OBJ = Maker()
        X = OBJ.build()
        Y = Maker.create()
        Z = Maker.plain()
        """
    mod = package.module("dc_methods", v1)
    obj = mod.OBJ
    apply_edit(mod, v1.replace("return 1\n", "return 2\n"))
    assert (mod.E, mod.X, mod.Y, mod.Z) == (2, 2, 10, 100) and mod.OBJ is obj
    apply_edit(
        mod, v1.replace("return 10\n", "return 20\n").replace("return 100\n", "return 200\n")
    )
    assert (mod.E, mod.X, mod.Y, mod.Z) == (1, 1, 20, 200) and mod.OBJ is obj


def test_methods_of_imported_classes_called_by_importers_are_followed(
    package: TemporaryPackage, engine: Engine
) -> None:
    package.write("dc_imeth/__init__.py", "")
    base = (
        "class Factory:\n    def make(self):\n        return 1\n\n"
        "    @classmethod\n    def create(cls):\n        return 10\n"
    )
    m0 = package.module("dc_imeth.m0", base)
    m1 = package.module(
        "dc_imeth.m1",
        "from . import m0\nfrom .m0 import Factory\n\nOBJ = Factory()\nX = OBJ.make()\n"
        "Y = Factory.create()\nW = m0.Factory().make()\n",
    )
    obj = m1.OBJ
    apply_edit(
        m0,
        base.replace("return 1\n", "return 2\n").replace("return 10\n", "return 20\n"),
        dedent=False,
    )
    assert (m1.X, m1.Y, m1.W) == (2, 20, 2) and m1.OBJ is obj


def test_chains_through_an_importers_own_helpers_are_followed(
    package: TemporaryPackage, engine: Engine
) -> None:
    package.write("dc_chain/__init__.py", "")
    base = "LIMIT = 3\n\n\ndef f(x):\n    return x + 1\n"
    m0 = package.module("dc_chain.m0", base)
    m1 = package.module(
        "dc_chain.m1",
        """
        from . import m0
        from .m0 import f


        def helper():
            return f(1)


        def helper2():
            return m0.LIMIT * 2


        def outer():
            return helper2() + 1


        X = helper()
        Y = outer()
        """,
    )
    assert (m1.X, m1.Y) == (2, 7)
    apply_edit(m0, base.replace("x + 1", "x + 10"), dedent=False)
    assert (m1.X, m1.Y) == (11, 7)
    apply_edit(m0, base.replace("LIMIT = 3", "LIMIT = 5"), dedent=False)
    assert (m1.X, m1.Y) == (2, 11)


def test_caches_along_chains_are_cleared(package: TemporaryPackage, engine: Engine) -> None:
    package.write("dc_caches/__init__.py", "")
    base = (
        "LIMIT = 3\n\n\ndef f(x):\n    return x + 1\n\n\n"
        "class Maker:\n    def build(self):\n        return 1\n"
    )
    m0 = package.module("dc_caches.m0", base)
    m1 = package.module(
        "dc_caches.m1",
        """
        import functools

        from . import m0
        from .m0 import Maker, f


        def helper():
            return f(1)


        def helper2():
            return m0.LIMIT * 2


        @functools.lru_cache
        def via_helper():
            return helper() + helper2()


        @functools.cache
        def via_method():
            return Maker().build()


        class Holder:
            @functools.cached_property
            def value(self):
                return helper()


        HOLDER = Holder()
        """,
    )
    held = m1.HOLDER.value
    assert (m1.via_helper(), m1.via_method()) == (8, 1)
    apply_edit(m0, base.replace("x + 1", "x + 10"), dedent=False)
    assert m1.via_helper() == 17 and m1.via_method() == 1
    apply_edit(
        m0, base.replace("LIMIT = 3", "LIMIT = 5").replace("return 1\n", "return 2\n"), dedent=False
    )
    assert (m1.via_helper(), m1.via_method()) == (12, 2)
    assert m1.HOLDER.value == held  # an instance's cached value is its state


def test_unrelated_edits_do_not_run_side_effects_again(
    package: TemporaryPackage, engine: Engine
) -> None:
    package.write("dc_side/__init__.py", "")
    package.module(
        "dc_side.db",
        "CALLS = [0]\n\n\ndef connect():\n    CALLS[0] += 1\n    return object()\n",
    )
    base = (
        "from .db import connect\n\n\ndef unrelated():\n    return 1\n\n\n"
        "class Maker:\n    def other(self):\n        return 1\n"
    )
    m0 = package.module("dc_side.m0", base)
    v1 = """
        from . import db
        from .m0 import Maker, unrelated


        def helper():
            return 5


        def uses_unrelated():
            return unrelated()


        CONN = db.connect()
        OBJ = Maker()
        CACHE = {}
        COUNT = [0]
        VALUE = helper()
        """
    m1 = package.module("dc_side.m1", v1)
    db = m1.db
    conn, obj, cache = m1.CONN, m1.OBJ, m1.CACHE
    assert db.CALLS == [1]
    apply_edit(m0, base.replace("return 1\n", "return 2\n"), dedent=False)
    apply_edit(m1, v1.replace("return 5", "return 6"))
    assert m1.VALUE == 6
    apply_edit(m1, v1.replace("return unrelated()", "return unrelated() + 1"))
    assert db.CALLS == [1] and m1.CONN is conn and m1.OBJ is obj and m1.CACHE is cache
    assert relive.refresh().summary() == "nothing changed"


def test_statements_acting_on_held_instances_do_not_run_again(
    package: TemporaryPackage, engine: Engine
) -> None:
    v1 = """
        class Counter:
            def __init__(self):
                self.count = 0

            def tick(self):
                self.count += 1
                return self.count


        COUNTERS = [Counter() for _ in range(2)]
        for counter in COUNTERS:
            counter.tick()
        HELD = COUNTERS[0]
        HELD.tick()
        FIRST = HELD.tick()
        """
    mod = package.module("dc_held", v1)
    counters = mod.COUNTERS
    assert [c.count for c in counters] == [3, 1] and mod.FIRST == 3
    report = apply_edit(mod, v1.replace("self.count += 1", "self.count += 10"))
    # Only the assignment computing a value with the new method runs again.
    assert mod.COUNTERS is counters and [c.count for c in counters] == [13, 1]
    assert mod.FIRST == 13 and report.modules[0].executed == (16,)


def test_a_change_inside_a_comprehension_or_generator_is_a_change(
    package: TemporaryPackage, engine: Engine
) -> None:
    v1 = """
        def total():
            return sum(x * 2 for x in range(3))


        def listed():
            return [x * 2 for x in range(3)]


        def factory():
            def inner():
                return 1

            return inner


        D = total()
        L = listed()
        MADE = factory()
        """
    mod = package.module("dc_nested", v1)
    made = mod.MADE
    apply_edit(mod, v1.replace("x * 2", "x * 3").replace("return 1\n", "return 2\n"))
    assert (mod.D, mod.L) == (9, [0, 3, 6])
    assert mod.MADE is made and made() == 2  # a closure made before follows the new code


def test_chains_through_a_module_with_nothing_to_run_again_reach_its_importers(
    package: TemporaryPackage, engine: Engine
) -> None:
    package.write("dc_three/__init__.py", "")
    base = "LIMIT = 3\n\n\nclass Base:\n    def who(self):\n        return 'base 1'\n"
    m0 = package.module("dc_three.m0", base)
    m1 = package.module(
        "dc_three.m1",
        """
        from . import m0
        from .m0 import Base


        def helper():
            return m0.LIMIT * 2


        class Sub(Base):
            def who(self):
                return "sub " + super().who()
        """,
    )
    m2 = package.module(
        "dc_three.m2",
        "from .m1 import Sub, helper\n\nX = helper()\nWHO = Sub().who()\n",
    )
    assert (m2.X, m2.WHO) == (6, "sub base 1")
    report = apply_edit(m0, base.replace("LIMIT = 3", "LIMIT = 5"), dedent=False)
    assert (m2.X, m2.WHO) == (10, "sub base 1") and "dc_three.m1" not in report.reloaded
    apply_edit(m0, base.replace("base 1", "base 2"), dedent=False)
    assert (m2.X, m2.WHO) == (6, "sub base 2")
    assert m1.helper() == 6


def test_a_factory_that_only_refers_to_an_edited_function_does_not_run_again(
    package: TemporaryPackage, engine: Engine
) -> None:
    v1 = """
        CREATED = []


        def index():
            return "v1"


        def limit():
            return 10


        def create_app():
            CREATED.append(1)
            return {"routes": {"/": index}, "limit": limit()}


        APP = create_app()
        """
    mod = package.module("dc_factory", v1)
    app = mod.APP
    apply_edit(mod, v1.replace('"v1"', '"v2"'))
    # The app holds ``index``, patched in place: a fresh import's app would serve the same.
    assert mod.APP is app and mod.CREATED == [1] and app["routes"]["/"]() == "v2"
    apply_edit(mod, v1.replace("return 10", "return 20"))
    assert mod.APP["limit"] == 20 and mod.CREATED == [1, 1]  # it calls ``limit``
