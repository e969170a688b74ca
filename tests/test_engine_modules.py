"""Swap snippets for top-level statements and the modules that import them."""

from __future__ import annotations

import re
import sys
import textwrap

import pytest

import relive
from relive._engine import Engine
from relive.testing import TemporaryPackage, apply_edit, write_source


def test_new_function_class_constant_and_import_are_executed(
    package: TemporaryPackage, engine: Engine
) -> None:
    mod = package.module("mod_new", "def f():\n    return 1\n")
    report = apply_edit(
        mod,
        """
        import json
        from os import path as os_path

        LIMIT = 10

        def f():
            return 1

        def g():
            return json.dumps(LIMIT)

        class Box:
            size = LIMIT
        """,
    )
    assert mod.g() == "10"
    assert mod.Box.size == 10
    assert mod.os_path.__name__.endswith("path")
    assert set(report.modules[0].added) >= {"json", "os_path", "LIMIT", "g", "Box"}


def test_removed_definitions_leave_the_namespace(package: TemporaryPackage, engine: Engine) -> None:
    mod = package.module(
        "mod_removed",
        """
        import json

        LIMIT = 1

        def f():
            return 1

        class Gone:
            pass

        def kept():
            return 2
        """,
    )
    report = apply_edit(mod, "def kept():\n    return 2\n")
    for name in ("json", "LIMIT", "f", "Gone"):
        assert not hasattr(mod, name)
    assert mod.kept() == 2
    assert set(report.modules[0].removed) == {"json", "LIMIT", "f", "Gone"}


def test_renamed_function(package: TemporaryPackage, engine: Engine) -> None:
    mod = package.module("mod_renamed", "def old():\n    return 1\n")
    apply_edit(mod, "def new():\n    return 1\n")
    assert not hasattr(mod, "old") and mod.new() == 1


def test_unchanged_statements_are_not_run_again(package: TemporaryPackage, engine: Engine) -> None:
    v1 = """
        import itertools

        calls = []
        counter = itertools.count()
        LOADED = next(counter)
        calls.append("import")

        def f():
            return 1
        """
    mod = package.module("mod_state", v1)
    calls, counter = mod.calls, mod.counter
    mod.calls.append("runtime")
    apply_edit(mod, v1.replace("return 1", "return 2"))
    assert mod.calls is calls and mod.calls == ["import", "runtime"]
    assert mod.counter is counter and next(counter) == 1
    assert mod.f() == 2


def test_changed_statement_is_run_again(package: TemporaryPackage, engine: Engine) -> None:
    v1 = """
        calls = []
        calls.append("a")
        TIMEOUT = 5
        """
    mod = package.module("mod_changed", v1)
    report = apply_edit(mod, v1.replace('"a"', '"b"').replace("5", "6"))
    assert mod.calls == ["a", "b"]
    assert mod.TIMEOUT == 6
    assert report.modules[0].executed == (3, 4)
    assert "TIMEOUT" in report.modules[0].rebound


def test_statement_reformatted_only_is_not_run_again(
    package: TemporaryPackage, engine: Engine
) -> None:
    mod = package.module("mod_reformatted", "calls = []\ncalls.append( 1 )\n")
    report = apply_edit(mod, "calls = []\n\ncalls.append(1)  # a comment\n")
    assert mod.calls == [1]
    assert report.modules[0].executed == ()


def test_statements_reading_a_rebound_name_run_again(
    package: TemporaryPackage, engine: Engine
) -> None:
    v1 = """
        BASE = 1
        DOUBLE = BASE * 2
        UNRELATED = []
        """
    mod = package.module("mod_local_dependents", v1)
    unrelated = mod.UNRELATED
    apply_edit(mod, v1.replace("BASE = 1", "BASE = 5"))
    assert mod.DOUBLE == 10
    assert mod.UNRELATED is unrelated


def test_from_import_copies_follow_a_rebound_constant(
    package: TemporaryPackage, engine: Engine
) -> None:
    a = package.module("dep_a", "LIMIT = 1\n")
    b = package.module(
        "dep_b",
        """
        from dep_a import LIMIT

        DOUBLE = LIMIT * 2
        registry = []

        def limit():
            return LIMIT
        """,
    )
    registry = b.registry
    report = apply_edit(a, "LIMIT = 7\n")
    assert b.LIMIT == 7 and b.DOUBLE == 14 and b.limit() == 7
    assert b.registry is registry
    assert report.reloaded == ("dep_a", "dep_b")
    assert report.modules[1].dependent


def test_attribute_readers_follow(package: TemporaryPackage, engine: Engine) -> None:
    a = package.module("attr_a", "LIMIT = 1\nOTHER = 1\n")
    b = package.module(
        "attr_b",
        """
        import attr_a
        import attr_a as alias

        X = attr_a.LIMIT + 1
        Y = alias.LIMIT + 2
        Z = attr_a.OTHER
        state = []
        """,
    )
    state = b.state
    apply_edit(a, "LIMIT = 10\nOTHER = 1\n")
    assert b.X == 11 and b.Y == 12 and b.Z == 1 and b.state is state


def test_attribute_readers_of_a_submodule_follow(package: TemporaryPackage, engine: Engine) -> None:
    package.write("pkg_attr/__init__.py", "")
    sub = package.module("pkg_attr.config", "LIMIT = 1\n")
    user = package.module("attr_user", "import pkg_attr.config\n\nX = pkg_attr.config.LIMIT\n")
    apply_edit(sub, "LIMIT = 2\n")
    assert user.X == 2


def test_relative_from_import_follows(package: TemporaryPackage, engine: Engine) -> None:
    package.write("pkg_rel/__init__.py", "")
    base = package.module("pkg_rel.base", "LIMIT = 1\n")
    user = package.module("pkg_rel.user", "from .base import LIMIT\n\nX = LIMIT + 1\n")
    apply_edit(base, "LIMIT = 5\n")
    assert user.LIMIT == 5 and user.X == 6


def test_star_import_follows(package: TemporaryPackage, engine: Engine) -> None:
    a = package.module("star_a", "LIMIT = 1\n")
    b = package.module("star_b", "from star_a import *\n\nX = LIMIT + 1\n")
    apply_edit(a, "LIMIT = 3\nNEW = 4\n")
    assert b.LIMIT == 3 and b.X == 4 and b.NEW == 4


def test_star_import_drops_a_removed_name(package: TemporaryPackage, engine: Engine) -> None:
    a = package.module("star_rm_a", "LIMIT = 1\nGONE = 2\n")
    b = package.module("star_rm_b", "from star_rm_a import *\n")
    apply_edit(a, "LIMIT = 1\n")
    assert not hasattr(a, "GONE")
    assert not hasattr(b, "GONE")


def test_dependents_follow_in_dependency_order(package: TemporaryPackage, engine: Engine) -> None:
    a = package.module("chain_a", "LIMIT = 1\n")
    package.module("chain_b", "from chain_a import LIMIT\n\nB = LIMIT + 1\n")
    c = package.module(
        "chain_c",
        """
        import chain_a
        from chain_b import B

        C = B + chain_a.LIMIT
        """,
    )
    report = apply_edit(a, "LIMIT = 10\n")
    assert c.B == 11 and c.C == 21
    assert report.reloaded == ("chain_a", "chain_b", "chain_c")


def test_dependent_function_patched_not_rebound(package: TemporaryPackage, engine: Engine) -> None:
    package.module("fn_dep_a", "def helper():\n    return 1\n")
    b = package.module("fn_dep_b", "from fn_dep_a import helper\n\nVALUE = helper()\n")
    c = package.module("fn_dep_c", "from fn_dep_a import helper\n\nHELD = helper\n")
    import fn_dep_a

    helper = fn_dep_a.helper
    report = apply_edit(fn_dep_a, "def helper():\n    return 2\n")
    # The function is patched, not rebound; what was computed with it is computed again.
    assert report.reloaded == ("fn_dep_a", "fn_dep_b")
    assert b.VALUE == 2 and b.helper is helper and c.HELD is helper and helper() == 2


def test_circular_imports(package: TemporaryPackage, engine: Engine) -> None:
    package.write(
        "cyc_b.py",
        """
        import cyc_a

        def from_b():
            return cyc_a.A + 1
        """,
    )
    a = package.module(
        "cyc_a",
        """
        A = 1
        import cyc_b

        def from_a():
            return cyc_b.from_b()
        """,
    )
    import cyc_b

    assert a.from_a() == 2
    apply_edit(
        a,
        """
        A = 10
        import cyc_b

        def from_a():
            return cyc_b.from_b() * 2
        """,
    )
    assert a.from_a() == 22
    write_source(
        cyc_b.__file__ or "",
        "import cyc_a\n\nB = cyc_a.A\n\ndef from_b():\n    return cyc_a.A + 2\n",
    )
    relive.reload(cyc_b)
    assert a.from_a() == 24 and cyc_b.B == 10


def test_circular_from_imports(package: TemporaryPackage, engine: Engine) -> None:
    package.write("cyc2_b.py", "from cyc2_a import A\n\nB = A + 1\n")
    a = package.module("cyc2_a", "A = 1\nfrom cyc2_b import B\n\nC = B + 1\n")
    apply_edit(a, "A = 5\nfrom cyc2_b import B\n\nC = B + 1\n")
    import cyc2_b

    assert cyc2_b.B == 6 and a.B == 6 and a.C == 7


def test_several_files_are_one_batch(package: TemporaryPackage, engine: Engine) -> None:
    a = package.module("batch_a", "def f():\n    return 1\n")
    b = package.module("batch_b", "def g():\n    return 1\n")
    write_source(a.__file__ or "", "def f():\n    return 2\n")
    write_source(b.__file__ or "", "def g():\n    return 2\n")
    report = relive.refresh()
    assert set(report.reloaded) == {"batch_a", "batch_b"}
    assert a.f() == 2 and b.g() == 2


def test_batch_with_one_broken_file_applies_nothing(
    package: TemporaryPackage, engine: Engine
) -> None:
    a = package.module("batch2_a", "def f():\n    return 1\n")
    b = package.module("batch2_b", "def g():\n    return 1\n")
    write_source(a.__file__ or "", "def f():\n    return 2\n")
    write_source(b.__file__ or "", "def g(:\n    return 2\n")
    with pytest.raises(relive.ReloadError):
        relive.refresh()
    assert a.f() == 1 and b.g() == 1
    write_source(b.__file__ or "", "def g():\n    return 3\n")
    assert set(relive.refresh().reloaded) == {"batch2_a", "batch2_b"}
    assert a.f() == 2 and b.g() == 3


def test_batch_with_a_runtime_failure_applies_nothing(
    package: TemporaryPackage, engine: Engine
) -> None:
    a = package.module("batch3_a", "def f():\n    return 1\n")
    b = package.module("batch3_b", "X = 1\n")
    write_source(a.__file__ or "", "def f():\n    return 2\n")
    write_source(b.__file__ or "", "X = 1 / 0\n")
    with pytest.raises(relive.ReloadError):
        relive.refresh()
    assert a.f() == 1 and b.X == 1


def test_batch_where_the_dependent_also_changed(package: TemporaryPackage, engine: Engine) -> None:
    a = package.module("batch4_a", "LIMIT = 1\n")
    b = package.module("batch4_b", "from batch4_a import LIMIT\n\nX = LIMIT\n")
    write_source(b.__file__ or "", "from batch4_a import LIMIT, EXTRA\n\nX = LIMIT + EXTRA\n")
    write_source(a.__file__ or "", "LIMIT = 2\nEXTRA = 10\n")
    report = relive.refresh()
    assert report.reloaded == ("batch4_a", "batch4_b")
    assert b.X == 12


def test_report_order_and_summary(
    package: TemporaryPackage, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    a = package.module("rep_a", "LIMIT = 1\n\ndef f():\n    return 1\n")
    package.module("rep_b", "from rep_a import LIMIT\n\nX = LIMIT\n")
    monkeypatch.chdir(package.root)  # paths are said relative to the current directory
    report = apply_edit(a, "LIMIT = 2\n\ndef f():\n    return 2\n\ndef g():\n    return 3\n")
    assert report.reloaded == ("rep_a", "rep_b")
    summary = report.summary()
    assert re.fullmatch(
        r"rep_a\.py: 1 patched, 1 added, 2 statements run; rep_b\.py: 2 statements run"
        r" in \d+\.\d ms",
        summary,
    ), summary
    assert relive.refresh().summary() == "nothing changed"
    assert not relive.refresh()


def test_app_route_registers_on_the_existing_app(package: TemporaryPackage, engine: Engine) -> None:
    v1 = """
        class App:
            def __init__(self):
                self.routes = {}
                self.registrations = 0

            def route(self, path):
                def decorate(fn):
                    self.routes[path] = fn
                    self.registrations += 1
                    return fn
                return decorate

        app = App()

        @app.route("/")
        def index():
            return "v1"
        """
    v1 = textwrap.dedent(v1)
    mod = package.module("mod_app", v1)
    app = mod.app
    v2 = v1.replace('"v1"', '"v2"') + ('\n@app.route("/about")\ndef about():\n    return "about"\n')
    apply_edit(mod, v2)
    assert mod.app is app
    assert app.routes["/"]() == "v2"
    assert app.routes["/about"]() == "about"
    assert app.registrations == 2


def test_app_object_in_another_module(package: TemporaryPackage, engine: Engine) -> None:
    package.module(
        "web_app",
        """
        class App:
            def __init__(self):
                self.routes = {}

            def route(self, path):
                def decorate(fn):
                    self.routes[path] = fn
                    return fn
                return decorate

        app = App()
        """,
    )
    v1 = 'from web_app import app\n\n@app.route("/")\ndef index():\n    return 1\n'
    views = package.module("web_views", v1)
    import web_app

    apply_edit(views, v1 + '\n@app.route("/new")\ndef new():\n    return 2\n')
    assert web_app.app.routes["/new"]() == 2 and web_app.app.routes["/"]() == 1


def test_module_edited_before_its_first_reload(package: TemporaryPackage, engine: Engine) -> None:
    v1 = "calls = []\ncalls.append(1)\n\ndef f():\n    return 1\n"
    mod = package.module("mod_first", v1)
    write_source(mod.__file__ or "", v1.replace("return 1", "return 2"))
    relive.refresh()
    assert mod.calls == [1] and mod.f() == 2


def test_module_imported_before_the_engine(package: TemporaryPackage) -> None:
    v1 = "calls = []\ncalls.append(1)\n\ndef f():\n    return 1\n"
    mod = package.module("mod_before_engine", v1)
    engine = Engine()
    try:
        write_source(mod.__file__ or "", v1.replace("return 1", "return 2"))
        assert engine.refresh().reloaded == ("mod_before_engine",)
        assert mod.calls == [1] and mod.f() == 2
    finally:
        engine.close()


def test_content_decides_not_mtime(package: TemporaryPackage, engine: Engine) -> None:
    v1 = "calls = []\ncalls.append(1)\n"
    mod = package.module("mod_touch", v1)
    path = mod.__file__ or ""
    write_source(path, v1)
    assert not relive.refresh()
    import os

    os.utime(path, ns=(10**18, 10**18))
    report = relive.refresh()
    assert not report and report.reloaded == ()
    assert relive.reload(mod).reloaded == ()
    assert mod.calls == [1]


def test_comment_only_edit_reports_nothing(package: TemporaryPackage, engine: Engine) -> None:
    mod = package.module("mod_comment", "calls = []\ncalls.append(1)  # one\n")
    write_source(mod.__file__ or "", "calls = []\ncalls.append(1)  # two\n")
    assert relive.refresh().reloaded == ()
    assert mod.calls == [1]


def test_new_module_imported_by_an_edit(package: TemporaryPackage, engine: Engine) -> None:
    package.write("mod_extra.py", "VALUE = 3\n")
    mod = package.module("mod_importer", "def f():\n    return 1\n")
    apply_edit(mod, "from mod_extra import VALUE\n\ndef f():\n    return VALUE\n")
    assert mod.f() == 3
    import mod_extra

    apply_edit(mod_extra, "VALUE = 4\n")
    assert mod.f() == 4


def test_default_reading_a_rebound_constant_follows(
    package: TemporaryPackage, engine: Engine
) -> None:
    v1 = """
        registrations = []

        def register(fn):
            registrations.append(fn.__name__)
            return fn

        LIMIT = 1

        @register
        def f(x=LIMIT):
            return x

        @register
        def g(x=LIMIT):
            return x + 0
        """
    mod = package.module("mod_defaults", v1)
    f, g = mod.f, mod.g
    apply_edit(mod, v1.replace("LIMIT = 1", "LIMIT = 2").replace("x + 0", "x + 10"))
    assert mod.f is f and f() == 2
    assert mod.g is g and g() == 12
    assert mod.registrations == ["f", "g"]


def test_decorator_reading_a_rebound_constant_runs_again(
    package: TemporaryPackage, engine: Engine
) -> None:
    v1 = """
        routes = {}

        def route(path):
            def decorate(fn):
                routes[path] = fn
                return fn
            return decorate

        PREFIX = "/v1"

        @route(PREFIX + "/items")
        def items():
            return "items"
        """
    mod = package.module("mod_decorator_reads", v1)
    items = mod.items
    apply_edit(mod, v1.replace('"/v1"', '"/v2"'))
    assert mod.routes["/v2/items"] is items and mod.items is items


def test_new_statement_reading_a_removed_name_fails(
    package: TemporaryPackage, engine: Engine
) -> None:
    mod = package.module("mod_removed_read", "OLD = 1\n")
    with pytest.raises(relive.ReloadError) as info:
        apply_edit(mod, "NEW = OLD + 1\n")
    assert isinstance(info.value.__cause__, NameError)
    assert mod.OLD == 1 and not hasattr(mod, "NEW")


def test_unchanged_statement_reading_a_removed_name_fails(
    package: TemporaryPackage, engine: Engine
) -> None:
    mod = package.module("mod_removed_read2", "OLD = 1\n\nNEW = OLD + 1\n")
    with pytest.raises(relive.ReloadError) as info:
        apply_edit(mod, "NEW = OLD + 1\n")
    assert isinstance(info.value.__cause__, NameError)
    assert mod.OLD == 1 and mod.NEW == 2


def test_removed_name_that_shadowed_a_builtin(package: TemporaryPackage, engine: Engine) -> None:
    v1 = "def len(x):\n    return -1\n\nSIZE = len([1, 2])\n"
    mod = package.module("mod_shadow", v1)
    assert mod.SIZE == -1
    apply_edit(mod, "SIZE = len([1, 2])\n")
    assert mod.SIZE == 2 and "len" not in vars(mod)


def test_changed_all_reaches_star_importers(package: TemporaryPackage, engine: Engine) -> None:
    a = package.module("star_all_a", "__all__ = ['A']\nA = 1\nB = 2\n")
    b = package.module("star_all_b", "from star_all_a import *\n")
    assert not hasattr(b, "B")
    apply_edit(a, "__all__ = ['A', 'B']\nA = 1\nB = 2\n")
    assert b.B == 2


def test_function_defined_in_a_compound_statement_keeps_identity(
    package: TemporaryPackage, engine: Engine
) -> None:
    v1 = """
        import sys

        if sys.version_info >= (3,):
            def f():
                return 1
        else:
            def f():
                return 0

        try:
            from json import dumps
        except ImportError:
            dumps = None
        """
    mod = package.module("mod_compound", v1)
    f = mod.f
    apply_edit(mod, v1.replace("return 1", "return 2"))
    assert mod.f is f and f() == 2


def test_module_edited_before_the_engine_existed(package: TemporaryPackage) -> None:
    v1 = textwrap.dedent(
        """
        calls = []
        calls.append(1)

        def f():
            return 1

        class C:
            def m(self):
                return 1
        """
    )
    mod = package.module("mod_unknown_baseline", v1)
    f, cls = mod.f, mod.C
    write_source(mod.__file__ or "", v1.replace("return 1", "return 2"))
    engine = Engine()  # the imported text is unknown now: the module runs again whole
    try:
        assert engine.refresh().reloaded == ("mod_unknown_baseline",)
        assert mod.f is f and f() == 2
        assert mod.C is cls and cls().m() == 2
        assert not engine.refresh()
    finally:
        engine.close()


def test_batch_ordered_by_the_new_imports(package: TemporaryPackage, engine: Engine) -> None:
    a = package.module("batch5_a", "LIMIT = 1\n")
    b = package.module("batch5_b", "X = 1\n")
    write_source(b.__file__ or "", "from batch5_a import EXTRA\n\nX = EXTRA\n")
    write_source(a.__file__ or "", "LIMIT = 1\nEXTRA = 10\n")
    report = relive.reload(b, a)
    assert report.reloaded == ("batch5_a", "batch5_b")
    assert b.X == 10


def test_batch_of_a_cycle_edited_together(package: TemporaryPackage, engine: Engine) -> None:
    package.write("cyc3_b.py", "import cyc3_a\n\nB = 1\n\ndef total():\n    return cyc3_a.A + B\n")
    a = package.module("cyc3_a", "A = 1\nimport cyc3_b\n\nC = cyc3_b.B + 1\n")
    import cyc3_b

    write_source(a.__file__ or "", "A = 10\nimport cyc3_b\n\nC = cyc3_b.B + 1\n")
    write_source(
        cyc3_b.__file__ or "", "import cyc3_a\n\nB = 5\n\ndef total():\n    return cyc3_a.A * B\n"
    )
    relive.refresh()
    assert a.C == 6 and cyc3_b.total() == 50


def test_module_docstring(package: TemporaryPackage, engine: Engine) -> None:
    mod = package.module("mod_doc", '"""First."""\n\nX = 1\n\n"""A string, not the docstring."""\n')
    assert mod.__doc__ == "First."
    apply_edit(mod, '"""Second."""\n\nX = 1\n\n"""Another string."""\n')
    assert mod.__doc__ == "Second."
    apply_edit(mod, "X = 1\n")
    assert mod.__doc__ is None


def test_dependents_ordered_by_imports_not_names(package: TemporaryPackage, engine: Engine) -> None:
    a = package.module("zz_root", "LIMIT = 1\n")
    package.module("zz_middle", "from zz_root import LIMIT\n\nB = LIMIT + 1\n")
    top = package.module(
        "aa_top",
        "import zz_root\nfrom zz_middle import B\n\n"
        "runs = []\nC = B + zz_root.LIMIT\nruns.append(C)\n",
    )
    report = apply_edit(a, "LIMIT = 10\n")
    assert report.reloaded == ("zz_root", "zz_middle", "aa_top")
    assert top.C == 21
    assert top.runs == [3, 21]  # run again once, after zz_middle, not once per change


def test_a_statement_follows_the_module_its_alias_now_stands_for(
    package: TemporaryPackage, engine: Engine
) -> None:
    # `Y = …` is not edited (its node is reused from the old tree): what it reads must
    # still be worked out with the new imports.
    first = package.module("origin_a", "X = 1\n")
    second = package.module("origin_b", "X = 10\n")
    rest = "\nruns = []\nY = runs.append(src.X) or src.X * 2\n"
    user = package.module("origin_user", "import origin_a as src\n" + rest)
    apply_edit(first, "X = 2\n")  # works out what `Y = …` reads, with the old imports
    assert (user.Y, user.runs) == (4, [1, 2])
    apply_edit(user, "import origin_b as src\n" + rest)
    assert user.src is second
    apply_edit(second, "X = 30\n")
    assert (user.Y, user.runs[-1]) == (60, 30)
    count = len(user.runs)
    apply_edit(first, "X = 5\n")
    assert len(user.runs) == count  # origin_a is no longer read


LEAN_USER = """
from lean_base import LIMIT

DOUBLE = LIMIT * 2


def traced(function):
    function.traced = True
    return function


@traced
def grow(x):
    return x + LIMIT


class Box:
    size = LIMIT

    def area(self):
        return self.size * {factor}
"""


def test_a_module_read_to_follow_an_edit_elsewhere_lets_go_of_its_trees(
    package: TemporaryPackage, engine: Engine
) -> None:
    base = package.module("lean_base", "LIMIT = 1\n")
    user = package.module("lean_user", LEAN_USER.format(factor=2))
    grow, box = user.grow, user.Box()
    apply_edit(base, "LIMIT = 5\n")
    assert (user.DOUBLE, user.Box.size, box.area(), grow(1)) == (10, 5, 10, 6)
    tracked = engine.tracked_module("lean_user")
    assert tracked is not None and tracked.is_lean
    kept = {stmt.name or stmt.text: stmt.is_lean for stmt in tracked.statements()}
    assert kept == {
        "from lean_base import LIMIT": False,  # short plain statements keep their trees
        "DOUBLE = LIMIT * 2": False,
        "traced": True,  # functions and classes do not
        "grow": True,
        "Box": True,
    }
    # Edited itself, the module is parsed whole; the old statements' trees come back from
    # their text, at their lines.
    new = LEAN_USER.format(factor=3).replace("x + LIMIT", "x + LIMIT + 100")
    report = apply_edit(user, "\n\n" + new)
    assert (grow(1), box.area(), user.grow.traced) == (106, 15, True)
    assert user.grow is grow and isinstance(box, user.Box)
    assert report.modules[0].patched == ("grow", "Box")
    assert grow.__code__.co_firstlineno == new.splitlines().index("@traced") + 3
    apply_edit(base, "LIMIT = 7\n")
    assert (user.DOUBLE, grow(1), box.area()) == (14, 108, 21)


def test_a_lean_statement_after_non_ascii_text_on_its_line_is_read_back(
    package: TemporaryPackage, engine: Engine
) -> None:
    # Column offsets count UTF-8 bytes: the statement's text must still be cut right.
    package.module("lean_text_base", "X = 1\n")
    long = ", ".join(["X"] * 80)
    user = package.module(
        "lean_text_user", f'from lean_text_base import X\ns = "é"; T = [{long}]\n'
    )
    apply_edit(sys.modules["lean_text_base"], "X = 2\n")
    assert user.T[0] == 2 and user.s == "é"
    apply_edit(sys.modules["lean_text_base"], "X = 3\n")  # its statements are lean now
    assert user.T[-1] == 3


def test_an_importer_keeps_its_future_imports_however_they_are_spelled(
    package: TemporaryPackage, engine: Engine
) -> None:
    package.module("future_base", "X = 1\n")
    user = package.module(
        "future_user",
        "from  __future__ import annotations\nfrom future_base import X\n\n\n"
        "def f(d=X) -> NotDefinedYet:\n    return d\n",
    )
    apply_edit(sys.modules["future_base"], "X = 2\n")
    assert user.f() == 2
    apply_edit(sys.modules["future_base"], "X = 3\n")  # from the lean statements too
    assert user.f() == 3


def test_an_edited_module_an_import_cycle_brings_back_runs_its_new_statements(
    package: TemporaryPackage, engine: Engine
) -> None:
    package.write("cycle_second.py", "from cycle_first import X\nY = X * 10\n")
    first = package.module("cycle_first", "X = 1\nfrom cycle_second import Y\nZ = Y + 100\n")
    assert first.Z == 110
    apply_edit(first, "X = 2\nfrom cycle_second import Y\nZ = Y + 200\n")
    assert (sys.modules["cycle_second"].Y, first.Z) == (20, 220)
