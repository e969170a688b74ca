"""``%load_ext relive`` in a real IPython shell: cells run with ``run_cell``, real module files.

The scenarios of IPython's own autoreload suites (tests/test_zzz_autoreload.py and
IPython/extensions/tests/test_deduperreload.py), rewritten for relive, then the cases
autoreload is known to get wrong, then the extension's own behaviour (messages, magic,
watcher, ``RELIVE=0``).
"""

from __future__ import annotations

import importlib
import os
import pickle
import subprocess
import sys
import textwrap
import traceback
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from IPython.core.interactiveshell import InteractiveShell
from traitlets.config import Config

import relive._ipython
from relive._ipython import NotebookReloader
from relive.testing import TemporaryPackage, wait_until, write_source

# ---------------------------------------------------------------------------------------
# Fixtures: one shell per module (IPython's shell is a singleton), relive loaded per test


@pytest.fixture(scope="module")
def ipython(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InteractiveShell]:
    main = sys.modules.get("__main__")
    config = Config()
    config.HistoryManager.hist_file = ":memory:"
    config.InteractiveShell.ipython_dir = str(tmp_path_factory.mktemp("ipython"))
    config.InteractiveShell.colors = "nocolor"
    shell = InteractiveShell.instance(config=config)
    try:
        yield shell
    finally:
        InteractiveShell.clear_instance()
        if main is not None:
            sys.modules["__main__"] = main


def clear_namespace(shell: InteractiveShell) -> None:
    """Forget the previous test's names (``shell.reset()`` also runs a slow gc pass)."""
    for name in [name for name in shell.user_ns if name not in shell.user_ns_hidden]:
        del shell.user_ns[name]


@pytest.fixture
def shell(ipython: InteractiveShell, package: TemporaryPackage) -> Iterator[InteractiveShell]:
    """The shell with an empty namespace and relive loaded (unloaded afterwards)."""
    clear_namespace(ipython)
    ipython.run_line_magic("load_ext", "relive")
    try:
        yield ipython
    finally:
        ipython.run_line_magic("unload_ext", "relive")


class Notebook:
    """A shell and a directory of modules, as a test drives them."""

    def __init__(self, shell: InteractiveShell, package: TemporaryPackage) -> None:
        self.shell = shell
        self.package = package

    @property
    def ns(self) -> dict[str, Any]:
        namespace: dict[str, Any] = self.shell.user_ns
        return namespace

    @property
    def reloader(self) -> NotebookReloader:
        reloader = relive._ipython.installed(self.shell)
        assert reloader is not None
        return reloader

    def module(self, name: str, source: str) -> Path:
        """Write a new module file (not imported yet)."""
        path = self.package.write(f"{name}.py", source)
        importlib.invalidate_caches()
        return path

    def edit(self, name: str, source: str) -> None:
        write_source(self.package.root / f"{name}.py", source)

    def run(self, code: str) -> Any:
        """Run a cell; fail the test if it raised."""
        result = self.shell.run_cell(textwrap.dedent(code), store_history=True)
        result.raise_error()
        return result.result

    def fails(self, code: str) -> BaseException | None:
        """Run a cell expected to raise; returns what it raised."""
        return self.shell.run_cell(textwrap.dedent(code), store_history=True).error_in_exec


@pytest.fixture
def nb(shell: InteractiveShell, package: TemporaryPackage) -> Notebook:
    return Notebook(shell, package)


# ---------------------------------------------------------------------------------------
# IPython's autoreload suite (test_zzz_autoreload.py)


def test_enum_member_added(nb: Notebook, capsys: pytest.CaptureFixture[str]) -> None:
    nb.module("ar_enum", "from enum import Enum\nclass MyEnum(Enum):\n    A = 'A'\n    B = 'B'\n")
    nb.run("import ar_enum; a = ar_enum.MyEnum.A")
    nb.edit(
        "ar_enum",
        "from enum import Enum\nclass MyEnum(Enum):\n    A = 'A'\n    B = 'B'\n    C = 'C'\n",
    )
    nb.run("pass")
    assert "relive" not in capsys.readouterr().err
    assert nb.run("ar_enum.MyEnum.C.value") == "C"
    assert nb.run("ar_enum.MyEnum('A') is a")


def test_instances_keep_their_class_and_pickle(nb: Notebook) -> None:
    nb.module("ar_type", "class Test:\n    def meth(self):\n        return 'old'\n")
    nb.run("from ar_type import Test")
    nb.run("test = Test()")
    nb.edit("ar_type", "class Test:\n    def meth(self):\n        return 'new'\n")
    nb.run("pass")
    test = nb.ns["test"]
    assert isinstance(test, sys.modules["ar_type"].Test)
    assert nb.run("test.meth()") == "new"
    assert pickle.loads(nb.run("import pickle; pickle.dumps(test)")).meth() == "new"


def test_methods_removed_and_added_on_old_and_new_instances(nb: Notebook) -> None:
    nb.module(
        "ar_attrs",
        """
        class MyClass:
            def __init__(self, a=10):
                self.a = a
                self.b = 22
            def square(self):
                return self.a * self.a
        """,
    )
    nb.run("from ar_attrs import MyClass; first = MyClass(5)")
    assert nb.run("first.square()") == 25
    assert isinstance(nb.fails("first.power(5)"), AttributeError)
    nb.edit(
        "ar_attrs",
        """
        class MyClass:
            def __init__(self, a=10):
                self.a = a
                self.b = 11
            def power(self, p):
                return self.a ** p
        """,
    )
    nb.run("second = MyClass(5)")
    for name in ("first", "second"):
        assert nb.run(f"{name}.power(2)") == 25
        assert isinstance(nb.fails(f"{name}.square()"), AttributeError)
        assert isinstance(nb.fails(f"{name}.toto"), AttributeError)
    assert nb.run("first.b, second.b") == (22, 11)  # instance state is kept


def test_star_import_picks_up_new_and_changed_names(nb: Notebook) -> None:
    nb.module("ar_star", "def func1(): pass\n")
    nb.run("from ar_star import *")
    nb.run("func1()")
    assert isinstance(nb.fails("func2()"), NameError)
    assert isinstance(nb.fails("number"), NameError)
    nb.edit(
        "ar_star",
        """
        def func1(): pass
        def func2(): pass
        class Test: pass
        number = 0
        from enum import Enum
        class TestEnum(Enum):
            A = 'a'
        """,
    )
    nb.run("func2(); t = Test(); assert number == 0; TestEnum.A")
    nb.run("import sys; sys.modules['ar_star'].func2()")
    nb.edit(
        "ar_star",
        """
        def func1(): return 'changed'
        def func2(): return 'changed'
        class Test:
            def new_func(self):
                return 'changed'
        number = 1
        from enum import Enum
        class TestEnum(Enum):
            A = 'a'
            B = 'added'
        """,
    )
    nb.run(
        """
        assert func1() == 'changed' and func2() == 'changed'
        assert Test().new_func() == 'changed' and t.new_func() == 'changed'
        assert number == 1
        assert TestEnum.B.value == 'added'
        """
    )
    nb.module(
        "ar_star_ext",
        """
        from enum import Enum
        class Ext(Enum):
            A = 'ext'
        def ext_func():
            return 'ext'
        class ExtTest:
            def meth(self):
                return 'ext'
        ext_int = 2
        """,
    )
    nb.edit("ar_star", "from ar_star_ext import *\n")
    nb.run(
        """
        assert Ext.A.value == 'ext'
        assert ext_func() == 'ext'
        assert ExtTest().meth() == 'ext'
        assert ext_int == 2
        """
    )


def test_import_as_follows_the_imported_name_only(nb: Notebook) -> None:
    nb.module("ar_as", "def func1(): pass\nn = 1\n")
    nb.run("from ar_as import n as foo")
    assert isinstance(nb.fails("func1()"), NameError)
    nb.edit("ar_as", "n = 100\ndef func2(): pass\ndef func1(): pass\nm = 5\n")
    assert nb.run("foo") == 100
    assert isinstance(nb.fails("n"), NameError)


def test_import_as_is_not_confused_by_a_new_name_of_the_same_spelling(nb: Notebook) -> None:
    nb.module("ar_as2", "def func1(): pass\nn = 1\n")
    nb.run("from ar_as2 import n as foo")
    nb.edit("ar_as2", "n = 100\ndef func2(): pass\ndef func1(): pass\nfoo = 45\n")
    assert nb.run("foo") == 100
    nb.run("from ar_as2 import foo")
    assert nb.run("foo") == 45


def test_plain_import_sees_everything(nb: Notebook) -> None:
    nb.module("ar_plain", "def func1(): pass\nn = 1\n")
    nb.run("import ar_plain")
    nb.run("ar_plain.func1(); ar_plain.n")
    nb.edit("ar_plain", "n = 100\ndef func2(): pass\ndef func1(): pass\nm = 5\n")
    assert nb.run("ar_plain.func1(); ar_plain.func2(); ar_plain.m, ar_plain.n") == (5, 100)
    nb.run("from ar_plain import n")
    assert nb.run("n") == 100


def test_from_import_then_plain_import(nb: Notebook) -> None:
    nb.module("ar_plain2", "def func1(): pass\nn = 1\n")
    nb.run("from ar_plain2 import n")
    assert isinstance(nb.fails("func1()"), NameError)
    nb.run("import ar_plain2")
    nb.edit("ar_plain2", "n = 100\ndef func2(): pass\ndef func1(): pass\nm = 5\n")
    assert nb.run("ar_plain2.func2(); ar_plain2.m, ar_plain2.n, n") == (5, 100, 100)


def test_explicit_import_does_not_add_other_names(nb: Notebook) -> None:
    nb.module("ar_some", "def func1(): pass\nn = 1\n")
    nb.run("from ar_some import n")
    nb.edit("ar_some", "n = 1\ndef func2(): pass\ndef func1(): pass\nm = 5\n")
    assert nb.run("n") == 1
    for name in ("func1", "func2", "m"):
        assert isinstance(nb.fails(name), NameError)
    nb.run("from ar_some import m")
    assert nb.run("n, m") == (1, 5)
    assert isinstance(nb.fails("func1"), NameError)
    nb.run("from ar_some import func1, func2")
    nb.run("func1(); func2()")


def test_quiet_by_default_and_verbose_on_request(
    nb: Notebook, capsys: pytest.CaptureFixture[str]
) -> None:
    nb.module("ar_out", "def func1(): pass\n")
    nb.run("import ar_out")
    nb.edit("ar_out", "def func1(): return 1\n")
    nb.run("pass")
    assert capsys.readouterr().err == ""
    nb.run("%relive verbose")
    nb.edit("ar_out", "def func1(): return 2\n")
    nb.run("pass")
    err = capsys.readouterr().err
    assert "relive: verbose: each reload says which names it patched, added and removed" in err
    assert "ar_out.py: 1 patched (func1) in " in err  # verbose: the names too
    nb.run("%relive quiet")
    assert capsys.readouterr().err == "relive: quiet: only errors are reported\n"
    nb.edit("ar_out", "def func1(): return 3\n")
    nb.run("pass")
    assert capsys.readouterr().err == ""


SMOKE_V1 = """
x = 9

z = 123  # this item will be deleted

def foo(y):
    return y + 3

class Baz(object):
    def __init__(self, x):
        self.x = x
    def bar(self, y):
        return self.x + y
    @property
    def quux(self):
        return 42
    def zzz(self):
        '''This method will be deleted below'''
        return 99

class Bar:
    def foo(self):
        return 1
"""

SMOKE_V2 = """
x = 10

def foo(y):
    return y + 4

class Baz(object):
    def __init__(self, x):
        self.x = x
    def bar(self, y):
        return self.x + y + 1
    @property
    def quux(self):
        return 43

class Bar:
    def foo(self):
        return 2
"""


def test_smoke(nb: Notebook, capsys: pytest.CaptureFixture[str]) -> None:
    path = nb.module("ar_smoke", SMOKE_V1)
    nb.run("import ar_smoke")
    mod = sys.modules["ar_smoke"]
    old_foo, old_obj, old_obj2 = mod.foo, mod.Baz(9), mod.Bar()

    def check_v1() -> None:
        assert (mod.x, mod.z, old_foo(0), mod.foo(0)) == (9, 123, 3, 3)
        assert old_obj.bar(1) == mod.Baz(9).bar(1) == 10
        assert mod.Baz(9).quux == 42 and mod.Baz(9).zzz() == 99
        assert old_obj2.foo() == mod.Bar().foo() == 1

    check_v1()
    capsys.readouterr()
    nb.edit("ar_smoke", "a syntax error\n")
    nb.run("pass")
    assert capsys.readouterr().err.count("relive:") == 1  # exactly one message…
    nb.run("pass")
    assert capsys.readouterr().err == ""  # …not repeated for every cell
    check_v1()

    nb.edit("ar_smoke", SMOKE_V2)
    nb.run("pass")
    assert mod.x == 10 and not hasattr(mod, "z")
    assert old_foo(0) == mod.foo(0) == 4
    assert old_obj.bar(1) == mod.Baz(9).bar(1) == 11
    assert old_obj.quux == mod.Baz(9).quux == 43
    assert not hasattr(old_obj, "zzz") and not hasattr(mod.Baz(9), "zzz")
    assert old_obj2.foo() == mod.Bar().foo() == 2

    path.unlink()  # a deleted file changes nothing
    nb.run("pass")
    assert mod.foo(0) == 4 and mod.x == 10

    nb.run("%relive off")
    nb.edit("ar_smoke", "x = -99\n")
    nb.run("pass")
    nb.run("pass")
    assert mod.x == 10 and mod.foo(0) == 4
    nb.run("%relive on")
    nb.run("pass")
    assert mod.x == -99


def test_user_defined_in_variable(nb: Notebook) -> None:
    nb.module("ar_in", "def hello():\n    return 'Hello'\n")
    nb.run("import ar_in")
    nb.ns["In"] = "some_value"
    nb.edit("ar_in", "def hello():\n    return 'Changed'\n")
    assert nb.run("ar_in.hello()") == "Changed"


def test_alias_then_real_name_follows_the_real_name(nb: Notebook) -> None:
    nb.module("ar_alias", "foo = 'original_foo'\nbar = 'original_bar'\n")
    nb.run("from ar_alias import foo as bar")
    nb.run("from ar_alias import bar")
    assert nb.ns["bar"] == "original_bar"
    nb.edit("ar_alias", "foo = 'modified_foo'\nbar = 'modified_bar'\n")
    nb.run("x = 1")
    assert nb.ns["bar"] == "modified_bar"


def test_one_name_imported_twice_under_two_names(nb: Notebook) -> None:
    nb.module("ar_twice", "foo = 'original_foo'\nbar = 'original_bar'\n")
    nb.run("from ar_twice import foo as bar")
    nb.run("from ar_twice import foo")
    nb.edit("ar_twice", "foo = 'modified_foo'\nbar = 'modified_bar'\n")
    nb.run("pass")
    assert nb.ns["bar"] == nb.ns["foo"] == "modified_foo"


# ---------------------------------------------------------------------------------------
# IPython's deduperreload suite (test_deduperreload.py), shell-level scenarios


@pytest.mark.parametrize("loaded", ["before_import", "after_import", "after_first_cell"])
def test_function_edit_whenever_the_extension_is_loaded(
    ipython: InteractiveShell, package: TemporaryPackage, loaded: str
) -> None:
    clear_namespace(ipython)
    nb = Notebook(ipython, package)
    nb.module("dd_basic", "x = 9\ndef foo(y):\n    return y + 3\n")
    try:
        if loaded == "before_import":
            nb.run("%load_ext relive")
        nb.run("import dd_basic; from dd_basic import x")
        if loaded == "after_import":
            nb.run("%load_ext relive")
        nb.run("pass")
        if loaded == "after_first_cell":
            nb.run("%load_ext relive")
        nb.run("pass")
        nb.edit("dd_basic", "x = 10\ndef foo(y):\n    return y + 5\n")
        assert nb.run("dd_basic.foo(0), x") == (5, 10)  # imports before loading follow too
    finally:
        nb.run("%unload_ext relive")


def test_super_in_a_patched_method(nb: Notebook) -> None:
    v1 = """
    class Foo:
        def foo(self):
            return 1
    class Bar(Foo):
        def bar(self):
            return super().foo() + 1
    """
    nb.module("dd_super", v1)
    nb.run("from dd_super import Bar; bar = Bar()")
    nb.edit("dd_super", v1.replace("+ 1", "+ 2"))
    assert nb.run("bar.bar()") == 3


def test_constant_and_function_changed_together(nb: Notebook) -> None:
    nb.module("dd_back", "x = 9\ndef foo(y):\n    return y + 3\n")
    nb.run("import dd_back")
    nb.edit("dd_back", "x = 200\ndef foo(y):\n    return y + 5\n")
    assert nb.run("dd_back.foo(0), dd_back.x") == (5, 200)


def test_traceback_points_at_the_real_line_after_a_reload(nb: Notebook) -> None:
    v1 = '"""\nA docstring on lines 1-3.\n"""\ndef func():\n    assert False, "v1"\n'
    nb.module("dd_lines", v1)
    nb.run("import dd_lines")
    nb.edit("dd_lines", v1.replace("v1", "v2"))
    error = nb.fails("dd_lines.func()")
    assert isinstance(error, AssertionError) and str(error) == "v2"
    frame = traceback.extract_tb(error.__traceback__)[-1]
    assert (frame.name, frame.lineno) == ("func", 5)


def test_broken_module_keeps_the_old_code(nb: Notebook) -> None:
    nb.module("dd_broken", "x = 9\ndef foo(y):\n    return y + 3\n")
    nb.run("import dd_broken")
    nb.edit("dd_broken", "broken broken broken\n")
    assert nb.run("dd_broken.foo(0)") == 3


def test_signature_change_using_an_imported_name(nb: Notebook) -> None:
    nb.module("dd_environ", "from os import environ\ndef foo(n):\n    pass\n")
    nb.run("import dd_environ")
    nb.edit("dd_environ", "from os import environ\ndef foo():\n    environ._data\n    return 1\n")
    assert nb.run("dd_environ.foo()") == 1


CLASS_EDITS = {
    "unchanged": (
        "x = 9\nclass C:\n    def foo():\n        return 1\n",
        "x = 9\nclass C:\n    def foo():\n        return 1\n",
        "C.foo()",
        1,
    ),
    "uses_module_global": (
        "x = 9\nclass C:\n    def foo():\n        return 1\n",
        "x = 9\nclass C:\n    def foo():\n        return 1 + x\n",
        "C.foo()",
        10,
    ),
    "global_moved_into_class": (
        "x = 9\nclass C:\n    def foo():\n        return 1\n",
        "class C:\n    x = 9\n    def foo():\n        return 1 + C.x\n",
        "C.foo()",
        10,
    ),
    "pass_body_filled": (
        "x = 9\nclass C:\n    pass\n",
        "class C:\n    x = 9\n    def foo():\n        return 1 + C.x\n",
        "C.foo()",
        10,
    ),
    "ellipsis_body_filled": (
        "x = 9\nclass C:\n    ...\n",
        "class C:\n    x = 9\n    def foo():\n        return 1 + C.x\n",
        "C.foo()",
        10,
    ),
    "class_attribute_changed": (
        "class C:\n    x = 9\n    def foo():\n        return 1 + C.x\n",
        "class C:\n    x = 20\n    def foo():\n        return 1 + C.x\n",
        "C.foo()",
        21,
    ),
    "nested_class_method": (
        "class C:\n    x = 9\n    class D:\n        def foo():\n            pass\n",
        "class C:\n    x = 9\n    class D:\n        def foo():\n            return 10\n",
        "C.D.foo()",
        10,
    ),
    "nested_class_next_to_method": (
        "class C:\n    def c():\n        return 1\n    class D:\n        def foo():\n"
        "            pass\n",
        "class C:\n    def c():\n        return 1\n    class D:\n        def foo():\n"
        "            return 10\n",
        "C.D.foo(), C.c()",
        (10, 1),
    ),
    "nested_class_and_method": (
        "class C:\n    def c():\n        return 1\n    class D:\n        def foo():\n"
        "            pass\n",
        "class C:\n    def c():\n        return 13\n    class D:\n        def foo():\n"
        "            return 10\n",
        "C.D.foo(), C.c()",
        (10, 13),
    ),
    "new_class_added": (
        "class C:\n    def c():\n        return 1\n",
        "class C:\n    def c():\n        return 13\nclass D:\n    def c():\n        return 1\n",
        "C.c(), D.c()",
        (13, 1),
    ),
    "nested_class_added": (
        "class C:\n    pass\n",
        "class C:\n    x = 9\n    def c():\n        return 13\n    class D:\n"
        "        def foo():\n            return 10\n",
        "C.D.foo(), C.c()",
        (10, 13),
    ),
    "nested_class_uses_outer": (
        "class C:\n    x = 9\n    class D:\n        def foo():\n            return 10\n",
        "class C:\n    x = 9\n    class D:\n        def foo():\n            return 10 + C.x\n",
        "C.D.foo()",
        19,
    ),
    "nested_ellipsis_filled": (
        "class C:\n    x = 9\n    class D:\n        def foo():\n            ...\n",
        "class C:\n    x = 9\n    class D:\n        def foo():\n            return 10 + C.x\n",
        "C.D.foo()",
        19,
    ),
    "default_from_global": (
        "x = 42\nclass Foo:\n    def foo(self, y): return y\n",
        "x = 42\nclass Foo:\n    def foo(self, y=x): return y\n",
        "Foo().foo(2), Foo().foo()",
        (2, 42),
    ),
    "default_from_changed_global": (
        "x = 42\nclass Foo:\n    def foo(y): return y\n",
        "x = 44\nclass Foo:\n    def foo(y=x): return y\n",
        "Foo.foo()",
        44,
    ),
    "local_shadows_global": (
        "x = 42\nclass Foo:\n    pass\n",
        "x = 44\nclass Foo:\n    def foo():\n        x = 2\n        return x\n",
        "Foo.foo()",
        2,
    ),
    "function_local_shadows_global": (
        "x = 42\ndef foo():\n    return x\n",
        "x = 44\ndef foo():\n    x = 2\n    return x\n",
        "foo()",
        2,
    ),
}


@pytest.mark.parametrize("case", sorted(CLASS_EDITS))
def test_class_edits(nb: Notebook, case: str, capsys: pytest.CaptureFixture[str]) -> None:
    v1, v2, expression, expected = CLASS_EDITS[case]
    name = f"dd_{case}"
    nb.module(name, v1)
    nb.run(f"import {name} as mod")
    nb.edit(name, v2)
    assert nb.run(f"from {name} import *; {expression}") == expected
    assert "relive" not in capsys.readouterr().err


def test_new_class_keeps_the_old_class_methods(nb: Notebook) -> None:
    nb.module("dd_keep", "x = 42\nclass Foo:\n    def foo(y=x): return y\n")
    nb.run("import dd_keep")
    before = nb.run("dd_keep.Foo.foo")
    nb.edit(
        "dd_keep",
        "x = 42\nclass Foo:\n    def foo(y=x): return y\nclass C:\n    def foo(): return 200\n",
    )
    assert nb.run("dd_keep.Foo.foo() , dd_keep.C.foo()") == (42, 200)
    assert nb.run("dd_keep.Foo.foo") is before


def test_remove_overriding_method(nb: Notebook) -> None:
    v1 = "class A:\n    def foo(self):\n        return 1\nclass B(A):\n    def foo(self):\n"
    nb.module("dd_override", v1 + "        return 42\n")
    nb.run("from dd_override import B; b = B()")
    assert nb.run("b.foo()") == 42
    nb.edit(
        "dd_override", "class A:\n    def foo(self):\n        return 1\nclass B(A):\n    pass\n"
    )
    assert nb.run("b.foo()") == 1


CLASSMETHODS = """
class Foo:
    @classmethod
    def bar(cls):
        return 0

    @classmethod
    def foo(cls):
        return 42 + cls.bar()

foo = Foo.foo
"""


def test_bound_classmethod_unchanged_module(nb: Notebook) -> None:
    nb.module("dd_cm_same", CLASSMETHODS)
    nb.run("import dd_cm_same; from dd_cm_same import foo")
    nb.edit("dd_cm_same", CLASSMETHODS)
    assert nb.run("dd_cm_same.foo(), foo()") == (42, 42)


def test_classmethod_called_through_a_module_level_bound_method(nb: Notebook) -> None:
    nb.module("dd_cm", CLASSMETHODS)
    nb.run("import dd_cm; from dd_cm import foo")
    nb.edit("dd_cm", CLASSMETHODS.replace("return 0", "return 1"))
    assert nb.run("dd_cm.Foo.foo(), dd_cm.foo(), foo()") == (43, 43, 43)


def test_staticmethod_imported_by_name(nb: Notebook) -> None:
    v1 = """
    class Foo:
        @staticmethod
        def bar():
            return 0

        @staticmethod
        def func():
            return 42 + Foo.bar()

    func = Foo.func
    """
    nb.module("dd_sm", v1)
    nb.run("from dd_sm import func")
    assert nb.run("func()") == 42
    nb.edit("dd_sm", v1.replace("return 0", "return 1"))
    assert nb.run("func()") == 43


def test_property_edit_seen_by_existing_instance(nb: Notebook) -> None:
    v1 = "class Foo:\n    @property\n    def foo(self):\n        return 42\n"
    nb.module("dd_prop", v1)
    nb.run("from dd_prop import Foo; foo = Foo()")
    nb.edit("dd_prop", v1.replace("42", "43"))
    assert nb.run("foo.foo") == 43


DECORATED_CLASSMETHOD = """
def incremented(f):
    return lambda *args: f(*args) + 1

class Foo:
    @classmethod
    @incremented
    def foo(cls):
        return 42

foo = Foo.foo
"""


def test_decorator_removed_from_classmethod(nb: Notebook) -> None:
    nb.module("dd_deco_removed", DECORATED_CLASSMETHOD)
    nb.run("from dd_deco_removed import Foo, foo")
    assert nb.run("foo()") == 43
    nb.edit("dd_deco_removed", DECORATED_CLASSMETHOD.replace("    @incremented\n", ""))
    assert nb.run("Foo.foo()") == 42
    # The module-level ``foo = Foo.foo`` reads a replaced member: it runs again, and the
    # notebook's copy follows.
    assert nb.run("foo()") == 42


def test_decorator_body_edited(nb: Notebook) -> None:
    nb.module("dd_deco_edited", DECORATED_CLASSMETHOD)
    nb.run("from dd_deco_edited import foo")
    nb.edit("dd_deco_edited", DECORATED_CLASSMETHOD.replace("+ 1", "+ 0"))
    assert nb.run("foo()") == 42


def test_function_decorator_removed_then_changed(nb: Notebook) -> None:
    v1 = "def incremented(f):\n    return lambda *args: f(*args) + 1\n\n"
    nb.module("dd_fdeco", v1 + "@incremented\ndef foo():\n    return 42\n")
    nb.run("import dd_fdeco")
    assert nb.run("dd_fdeco.foo()") == 43
    nb.edit("dd_fdeco", v1 + "def foo():\n    return 42\n")
    assert nb.run("dd_fdeco.foo()") == 42
    nb.edit(
        "dd_fdeco",
        """
        def incremented(v):
            def deco(f):
                return lambda *args: f(*args) + v
            return deco

        @incremented(2)
        def foo():
            return 43
        """,
    )
    assert nb.run("dd_fdeco.foo()") == 45


def test_decorator_from_another_module(nb: Notebook) -> None:
    nb.module(
        "dd_wraps",
        """
        import functools

        def incremented(f):
            @functools.wraps(f)
            def wrapper(*args, **kwargs):
                return f(*args, **kwargs) + 1
            return wrapper
        """,
    )
    v1 = "from dd_wraps import incremented as deco\n@deco\ndef foo():\n    return 42\n"
    nb.module("dd_wrapped", v1)
    nb.run("from dd_wrapped import foo")
    assert nb.run("foo()") == 43
    nb.edit("dd_wrapped", v1.replace("42", "43"))
    assert nb.run("foo()") == 44


def test_decorator_free_variables_renamed(nb: Notebook) -> None:
    v1 = """
    def decorate(func):
        free_var_x = "x"
        free_var_y = "y"
        def wrapper(*args, **kwargs):
            return func(*args, **kwargs), free_var_x, free_var_y
        return wrapper
    @decorate
    def f():
        return "v1"
    """
    nb.module("dd_freevars", v1)
    nb.run("from dd_freevars import f")
    assert nb.run("f()") == ("v1", "x", "y")
    v2 = v1.replace("free_var_x", "free_var_ax").replace("free_var_y", "free_var_by")
    nb.edit("dd_freevars", v2.replace('"x"', '"ax"').replace('"y"', '"by"').replace("v1", "v2"))
    # The old wrapper cannot take code capturing other variables: ``@decorate`` runs again.
    assert nb.run("f()") == ("v2", "ax", "by")


# ---------------------------------------------------------------------------------------
# Where autoreload is known to fail


def test_closure_made_before_the_edit(nb: Notebook) -> None:
    v1 = "def make_adder(n):\n    def add(x):\n        return x + n\n    return add\n"
    nb.module("kf_closure", v1)
    nb.run("from kf_closure import make_adder; add_one = make_adder(1)")
    nb.edit("kf_closure", v1.replace("x + n", "x + n * 10"))
    assert nb.run("add_one(1), make_adder(2)(1)") == (11, 21)


def test_dependent_module_from_import_of_a_changed_constant(nb: Notebook) -> None:
    nb.module("kf_settings", "LIMIT = 1\n")
    nb.module("kf_user", "from kf_settings import LIMIT\ndef limit():\n    return LIMIT\n")
    nb.run("from kf_user import limit; from kf_settings import LIMIT")
    nb.edit("kf_settings", "LIMIT = 2\n")
    assert nb.run("limit(), LIMIT") == (2, 2)


def test_enum_identity_kept(nb: Notebook) -> None:
    v1 = """
    import enum
    class Color(enum.Enum):
        RED = 1
        GREEN = 2
        def label(self):
            return self.name.lower()
    """
    nb.module("kf_enum", v1)
    nb.run("from kf_enum import Color; red = Color.RED")
    nb.edit(
        "kf_enum", v1.replace("GREEN = 2", "GREEN = 2\n        BLUE = 3").replace("lower", "title")
    )
    assert nb.run("red is Color.RED is Color(1), isinstance(red, Color)") == (True, True)
    assert nb.run("red.label(), Color.BLUE.value, red in list(Color)") == ("Red", 3, True)


def test_dataclass_default_changed(nb: Notebook) -> None:
    v1 = """
    from dataclasses import dataclass, field
    @dataclass
    class Config:
        size: int = 1
        tags: list = field(default_factory=list)
    """
    nb.module("kf_dataclass", v1)
    nb.run("from kf_dataclass import Config; old = Config(size=5)")
    nb.edit("kf_dataclass", v1.replace("size: int = 1", "size: int = 2"))
    assert nb.run("Config().size, old.size, isinstance(old, Config)") == (2, 5, True)
    assert nb.run("Config() == Config(size=2), old == Config(size=5)") == (True, True)


def test_recovery_after_a_failed_reload_of_imported_names(
    nb: Notebook, capsys: pytest.CaptureFixture[str]
) -> None:
    nb.module("kf_recover", "LIMIT = 1\ndef f():\n    return 'v1'\n")
    nb.run("from kf_recover import f, LIMIT")
    nb.edit("kf_recover", "LIMIT = 2\ndef f():\n    return 'v2\n")
    assert nb.run("f(), LIMIT") == ("v1", 1)
    assert "kf_recover.py:3" in capsys.readouterr().err
    nb.edit("kf_recover", "LIMIT = 3\ndef f():\n    return 'v3'\n")
    assert nb.run("f(), LIMIT") == ("v3", 3)
    assert not nb.reloader.errors


def test_name_added_then_imported(nb: Notebook) -> None:
    nb.module("kf_added", "def f():\n    return 1\n")
    nb.run("from kf_added import f")
    nb.edit("kf_added", "def f():\n    return g()\ndef g():\n    return 2\nCONFIG = {'k': 1}\n")
    assert nb.run("from kf_added import g, CONFIG; f(), g(), CONFIG") == (2, 2, {"k": 1})
    nb.edit("kf_added", "def f():\n    return g()\ndef g():\n    return 3\nCONFIG = {'k': 2}\n")
    assert nb.run("f(), g(), CONFIG") == (3, 3, {"k": 2})


def test_name_the_user_rebound_is_left_alone(nb: Notebook) -> None:
    nb.module("kf_rebound", "LIMIT = 1\nSIZE = 1\n")
    nb.run("from kf_rebound import LIMIT, SIZE")
    nb.run("LIMIT = 'mine'")
    nb.edit("kf_rebound", "LIMIT = 2\nSIZE = 2\n")
    assert nb.run("LIMIT, SIZE") == ("mine", 2)


# ---------------------------------------------------------------------------------------
# The extension's own behaviour


def test_broken_edit_is_one_short_message_and_the_cell_runs(
    nb: Notebook, capsys: pytest.CaptureFixture[str]
) -> None:
    nb.module("ex_broken", "def f():\n    return 1\n")
    nb.run("from ex_broken import f")
    nb.edit("ex_broken", "def f():\n    return (1 +\n")
    result = nb.shell.run_cell("print(f())")
    assert result.success
    out, err = capsys.readouterr()
    assert out.strip() == "1"
    first, *rest = err.strip().splitlines()
    assert first.startswith("relive: not applied") and "ex_broken.py:2: SyntaxError" in first
    assert rest == ["    return (1 +"]
    nb.edit("ex_broken", "def f():\n    return 1 / 0 +\n")  # another error: said again
    nb.run("pass")
    assert "ex_broken.py:2: SyntaxError" in capsys.readouterr().err


def test_exception_while_applying_names_the_line(
    nb: Notebook, capsys: pytest.CaptureFixture[str]
) -> None:
    nb.module("ex_raises", "X = 1\ndef f():\n    return X\n")
    nb.run("from ex_raises import f")
    nb.edit("ex_raises", "X = 1\nY = {}['missing']\ndef f():\n    return 2\n")
    assert nb.run("f()") == 1
    err = capsys.readouterr().err
    assert "ex_raises.py:2: KeyError: 'missing'" in err and "Y = {}['missing']" in err
    assert "Traceback" not in err


def test_a_broken_file_does_not_hold_back_other_edits(
    nb: Notebook, capsys: pytest.CaptureFixture[str]
) -> None:
    nb.module("ex_good", "def f():\n    return 1\n")
    nb.module("ex_bad", "def g():\n    return 1\n")
    nb.run("from ex_good import f; from ex_bad import g")
    nb.edit("ex_good", "def f():\n    return 2\n")
    nb.edit("ex_bad", "def g(:\n    return 2\n")
    assert nb.run("f(), g()") == (2, 1)
    assert "ex_bad.py:1" in capsys.readouterr().err
    assert list(nb.reloader.errors) == [str(nb.package.root.resolve() / "ex_bad.py")]


def test_restart_required_says_so_and_applies_nothing(
    nb: Notebook, capsys: pytest.CaptureFixture[str]
) -> None:
    v1 = "class A:\n    pass\nclass B:\n    pass\nclass C(A):\n    def f(self):\n        return 1\n"
    nb.module("ex_restart", v1)
    nb.run("from ex_restart import C")
    nb.edit("ex_restart", v1.replace("C(A)", "C(B)").replace("return 1", "return 2"))
    assert nb.run("C().f()") == 1
    err = capsys.readouterr().err
    assert "restart IPython to use this edit (nothing was applied)" in err
    assert "ex_restart.py:5" in err and "bases of class C changed" in err
    assert "    class C(B):" in err


def test_status_shows_tracked_last_applied_and_pending_error(
    nb: Notebook, capsys: pytest.CaptureFixture[str]
) -> None:
    nb.module("ex_status", "LIMIT = 1\n")
    nb.run("from ex_status import LIMIT")
    nb.edit("ex_status", "LIMIT = 2\n")
    nb.run("pass")
    nb.edit("ex_status", "LIMIT = (\n")
    nb.run("pass")
    capsys.readouterr()
    nb.run("%relive")
    out = capsys.readouterr().out
    assert "relive: on: tracked files are checked before each cell" in out
    assert "tracked: " in out and str(nb.package.root.resolve()) in out
    assert "last applied at" in out and "ex_status.py: 1 statement run" in out
    assert "names updated: LIMIT" in out
    assert "pending error: not applied" in out and "ex_status.py:1" in out


def test_now_applies_immediately(nb: Notebook, capsys: pytest.CaptureFixture[str]) -> None:
    nb.module("ex_now", "def f():\n    return 1\n")
    nb.run("import ex_now")
    nb.run("%relive off")
    nb.edit("ex_now", "def f():\n    return 2\n")
    assert nb.run("ex_now.f()") == 1
    assert nb.run("%relive now\nex_now.f()") == 2
    assert "ex_now.py: 1 patched" in capsys.readouterr().err


def test_now_says_pending_errors_again(nb: Notebook, capsys: pytest.CaptureFixture[str]) -> None:
    nb.module("ex_again", "def f():\n    return 1\n")
    nb.run("import ex_again")
    nb.edit("ex_again", "def f(:\n    return 2\n")
    nb.run("pass")
    assert "ex_again.py:1" in capsys.readouterr().err
    nb.run("pass")
    assert capsys.readouterr().err == ""
    nb.run("%relive now")
    err = capsys.readouterr().err
    assert "ex_again.py:1" in err and "nothing changed" not in err  # the refusal, alone


def test_autoreload_on_too_is_pointed_out(
    ipython: InteractiveShell,
    package: TemporaryPackage,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    autoreload = types.SimpleNamespace(_reloader=types.SimpleNamespace(enabled=True))
    monkeypatch.setitem(ipython.magics_manager.registry, "AutoreloadMagics", autoreload)
    ipython.run_line_magic("load_ext", "relive")
    try:
        assert "relive: switched %autoreload off: relive applies the edits now" in (
            capsys.readouterr().err
        )
        assert autoreload._reloader.enabled is False
    finally:
        ipython.run_line_magic("unload_ext", "relive")


def test_unknown_command_is_a_usage_error(nb: Notebook, capsys: pytest.CaptureFixture[str]) -> None:
    result = nb.shell.run_cell("%relive sideways")
    assert not result.success
    out, err = capsys.readouterr()
    assert "unknown %relive command 'sideways'" in out + err and "%relive now" in out + err


def test_load_twice_and_unload(nb: Notebook) -> None:
    events = nb.shell.events.callbacks
    before = len(events["pre_run_cell"])
    relive._ipython.load_ipython_extension(nb.shell)
    assert len(events["pre_run_cell"]) == before
    nb.run("%unload_ext relive")
    assert len(events["pre_run_cell"]) == before - 1
    assert "relive" not in nb.shell.magics_manager.magics["line"]
    nb.module("ex_unloaded", "def f():\n    return 1\nLIMIT = 1\n")
    nb.run("import ex_unloaded")
    nb.edit("ex_unloaded", "def f():\n    return 2\nLIMIT = 1\n")
    assert nb.run("ex_unloaded.f()") == 1
    nb.run("%load_ext relive")
    assert nb.run("ex_unloaded.f()") == 2
    nb.run("from ex_unloaded import LIMIT")
    nb.run("%reload_ext relive")
    assert len(events["pre_run_cell"]) == before
    nb.edit("ex_unloaded", "def f():\n    return 3\nLIMIT = 2\n")
    assert nb.run("ex_unloaded.f(), LIMIT") == (3, 2)


def test_disabled_by_environment(
    ipython: InteractiveShell,
    package: TemporaryPackage,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("RELIVE", "0")
    clear_namespace(ipython)
    nb = Notebook(ipython, package)
    nb.module("ex_off", "def f():\n    return 1\n")
    before = len(ipython.events.callbacks["pre_run_cell"])
    nb.run("%load_ext relive")
    try:
        assert capsys.readouterr().err == (
            "relive: disabled by RELIVE=0: edits are not applied in this session\n"
        )
        assert len(ipython.events.callbacks["pre_run_cell"]) == before
        nb.run("import ex_off")
        nb.edit("ex_off", "def f():\n    return 2\n")
        assert nb.run("ex_off.f()") == 1
        assert capsys.readouterr().err == ""
        nb.run("%relive")
        assert "disabled by RELIVE=0" in capsys.readouterr().err
    finally:
        nb.run("%unload_ext relive")
    assert "relive" not in ipython.magics_manager.magics["line"]


def test_watch_applies_saved_files_before_the_next_cell(
    nb: Notebook, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = str(nb.module("ex_watch", "LIMIT = 1\ndef f():\n    return 1\n").resolve())
    nb.run("from ex_watch import f, LIMIT")
    nb.run("%relive watch")
    watcher = nb.reloader.watcher
    assert watcher is not None and not watcher.live
    refreshes: list[relive.Report] = []
    engine = nb.reloader.engine
    refresh = engine.refresh

    def counted_refresh() -> relive.Report:
        refreshes.append(refresh())
        return refreshes[-1]

    monkeypatch.setattr(engine, "refresh", counted_refresh)
    nb.edit("ex_watch", "LIMIT = 2\ndef f():\n    return 2\n")
    wait_until(lambda: path in watcher.pending())
    assert sys.modules["ex_watch"].f() == 1  # nothing applied between cells
    assert nb.run("f(), LIMIT") == (2, 2)
    assert path not in watcher.pending() and refreshes == []
    assert "before the next cell" in nb.reloader.status()
    nb.run("%relive nowatch")
    assert nb.reloader.watcher is None


def test_watch_follows_modules_imported_later(nb: Notebook, tmp_path: Path) -> None:
    nb.run("%relive watch")
    later = tmp_path / "later"
    write_source(later / "ex_later.py", "def f():\n    return 1\n")
    sys.path.insert(0, str(later))
    nb.run("from ex_later import f")
    watcher = nb.reloader.watcher
    assert watcher is not None
    nb.run("pass")  # the new module's file is checked once after its import
    path = str(write_source(later / "ex_later.py", "def f():\n    return 2\n").resolve())
    wait_until(lambda: path in watcher.pending())
    assert nb.run("f()") == 2


def test_live_mode_applies_during_a_cell(nb: Notebook) -> None:
    nb.module("ex_live", "def f():\n    return 1\n")
    nb.run("from ex_live import f")
    nb.run("%relive live")
    nb.edit("ex_live", "def f():\n    return 2\n")
    wait_until(lambda: nb.ns["f"]() == 2)
    assert "live: each save is applied at once, even while a cell runs" in nb.reloader.status()
    watcher = nb.reloader.watcher
    assert watcher is not None and watcher.live
    nb.run("%relive off")  # saves are kept for later, not applied
    path = str((nb.package.root / "ex_live.py").resolve())
    nb.edit("ex_live", "def f():\n    return 3\n")
    wait_until(lambda: path in watcher.pending())
    assert nb.ns["f"]() == 2
    nb.run("%relive on")
    assert nb.run("f()") == 3


def test_profile_config_loads_the_extension(tmp_path: Path) -> None:
    """``c.InteractiveShellApp.extensions = ["relive"]`` in a profile's ipython_config.py."""
    profile = tmp_path / "profile_default"
    profile.mkdir()
    (profile / "ipython_config.py").write_text(
        'c.InteractiveShellApp.extensions = ["relive"]\n', encoding="utf-8"
    )
    code = "print('relive' in get_ipython().magics_manager.magics['line'])"
    memory = "--HistoryManager.hist_file=:memory:"
    completed = subprocess.run(
        [sys.executable, "-m", "IPython", "--no-banner", memory, "-c", code],
        capture_output=True,
        text=True,
        env={**os.environ, "IPYTHONDIR": str(tmp_path)},
        timeout=60,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.strip().endswith("True"), completed.stdout
