"""Swap snippets for functions: v1 imported, v2 applied, every old reference runs v2."""

from __future__ import annotations

import asyncio
import textwrap
import traceback
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

import relive
from relive._engine import Engine
from relive.testing import TemporaryPackage, apply_edit


def test_body_edit_keeps_identity_and_state(package: TemporaryPackage, engine: Engine) -> None:
    mod = package.module(
        "fn_body",
        """
        state = {"n": 0}

        def f(x):
            return x + 1
        """,
    )
    f = mod.f
    mod.state["n"] = 5
    report = apply_edit(
        mod,
        """
        state = {"n": 0}

        def f(x):
            return x + 2
        """,
    )
    assert mod.f is f
    assert f(1) == 3
    assert mod.state == {"n": 5}
    assert report.modules[0].patched == ("f",)


def test_from_import_copy_runs_new_code(package: TemporaryPackage, engine: Engine) -> None:
    mod = package.module("fn_src", "def f():\n    return 1\n")
    user = package.module("fn_user", "from fn_src import f\n\ndef call():\n    return f()\n")
    apply_edit(mod, "def f():\n    return 2\n")
    assert user.f is mod.f
    assert user.f() == 2
    assert user.call() == 2


def test_registry_callback_and_bound_method_run_new_code(
    package: TemporaryPackage, engine: Engine
) -> None:
    v1 = """
        registry = []

        def register(fn):
            registry.append(fn)
            return fn

        @register
        def handler():
            return "v1"

        class Button:
            def click(self):
                return "click v1"
        """
    mod = package.module("fn_refs", v1)
    callback = mod.handler
    button = mod.Button()
    bound = button.click
    apply_edit(mod, v1.replace('"v1"', '"v2"').replace("click v1", "click v2"))
    assert len(mod.registry) == 1
    assert mod.registry[0]() == "v2"
    assert callback() == "v2"
    assert bound() == "click v2"


def test_wrapper_with_functools_wraps_runs_new_code(
    package: TemporaryPackage, engine: Engine
) -> None:
    v1 = """
        import functools

        def tag(fn):
            @functools.wraps(fn)
            def wrapper(*args, **kwargs):
                return ("tagged", fn(*args, **kwargs))
            return wrapper

        @tag
        def g(x):
            return x
        """
    mod = package.module("fn_wraps", v1)
    wrapper = mod.g
    inner = wrapper.__wrapped__
    apply_edit(mod, v1.replace("return x\n", "return x * 10\n"))
    assert mod.g is wrapper
    assert wrapper.__wrapped__ is inner
    assert wrapper(2) == ("tagged", 20)
    assert inner(2) == 20


def test_wrapper_without_wraps_runs_new_code(package: TemporaryPackage, engine: Engine) -> None:
    v1 = """
        def twice(fn):
            def wrapper(x):
                return fn(fn(x))
            return wrapper

        @twice
        def inc(x):
            return x + 1
        """
    mod = package.module("fn_closure_wrapper", v1)
    wrapper = mod.inc
    apply_edit(mod, v1.replace("return x + 1", "return x + 5"))
    assert mod.inc is wrapper
    assert wrapper(0) == 10


def test_wrapper_from_another_module(package: TemporaryPackage, engine: Engine) -> None:
    package.module(
        "fn_decorators",
        """
        import functools

        def logged(fn):
            @functools.wraps(fn)
            def wrapper(*args):
                return fn(*args)
            return wrapper
        """,
    )
    v1 = "from fn_decorators import logged\n\n@logged\ndef f():\n    return 1\n"
    mod = package.module("fn_decorated", v1)
    wrapper = mod.f
    apply_edit(mod, v1.replace("return 1", "return 2"))
    assert mod.f is wrapper and wrapper() == 2


def test_defaults_kwdefaults_annotations_and_doc_apply(
    package: TemporaryPackage, engine: Engine
) -> None:
    mod = package.module(
        "fn_signature",
        '''
        def f(x: int, y=1, *, z=2) -> int:
            """Old doc."""
            return x + y + z
        ''',
    )
    f = mod.f
    apply_edit(
        mod,
        '''
        def f(x: str, y=10, *, z=20) -> str:
            """New doc."""
            return x + y + z
        ''',
    )
    assert mod.f is f
    assert f.__defaults__ == (10,)
    assert f.__kwdefaults__ == {"z": 20}
    assert f.__annotations__ == {"x": str, "return": str}
    assert f.__doc__ == "New doc."
    assert f(1) == 31


def test_doc_only_edit(package: TemporaryPackage, engine: Engine) -> None:
    mod = package.module("fn_doc", 'def f():\n    """One."""\n    return 1\n')
    f = mod.f
    apply_edit(mod, 'def f():\n    """Two."""\n    return 1\n')
    assert mod.f is f and f.__doc__ == "Two."
    apply_edit(mod, "def f():\n    return 1\n")
    assert f.__doc__ is None


def test_new_parameter_added(package: TemporaryPackage, engine: Engine) -> None:
    mod = package.module("fn_params", "def f(a):\n    return a\n")
    f = mod.f
    apply_edit(mod, "def f(a, b=3):\n    return a + b\n")
    assert mod.f is f and f(1) == 4 and f(1, 1) == 2


def test_function_attributes_follow(package: TemporaryPackage, engine: Engine) -> None:
    mod = package.module("fn_dict", "def f():\n    return 1\n")
    f = mod.f
    f.marker = "runtime"
    apply_edit(mod, "def f():\n    return 2\n")
    assert f() == 2 and f.marker == "runtime"


@pytest.mark.parametrize("decorator", ["functools.lru_cache", "functools.lru_cache(maxsize=8)"])
def test_lru_cache_runs_new_code_and_is_cleared(
    package: TemporaryPackage, engine: Engine, decorator: str
) -> None:
    v1 = f"""
        import functools

        calls = []

        @{decorator}
        def square(x):
            calls.append(x)
            return x * x
        """
    mod = package.module("fn_lru", v1)
    cached = mod.square
    assert cached(3) == 9 and cached(3) == 9
    assert mod.calls == [3]
    apply_edit(mod, v1.replace("x * x", "x * x * x"))
    assert mod.square is cached
    assert cached(3) == 27
    assert mod.calls == [3, 3]


def test_functools_cache_is_cleared(package: TemporaryPackage, engine: Engine) -> None:
    v1 = """
        import functools

        @functools.cache
        def answer():
            return 1
        """
    mod = package.module("fn_cache", v1)
    assert mod.answer() == 1
    apply_edit(mod, v1.replace("return 1", "return 2"))
    assert mod.answer() == 2


def test_cache_of_an_unchanged_function_is_kept(package: TemporaryPackage, engine: Engine) -> None:
    v1 = """
        import functools

        calls = []

        @functools.cache
        def kept(x):
            calls.append(x)
            return x

        def other():
            return 1
        """
    mod = package.module("fn_cache_kept", v1)
    mod.kept(1)
    apply_edit(mod, v1.replace("return 1", "return 2"))
    mod.kept(1)
    assert mod.calls == [1]


def test_closures_made_before_the_edit_run_new_code(
    package: TemporaryPackage, engine: Engine
) -> None:
    v1 = """
        def make_adder(n):
            def add(x):
                return x + n
            return add

        add_one = make_adder(1)
        """
    mod = package.module("fn_closures", v1)
    held = mod.make_adder(100)
    module_level = mod.add_one
    apply_edit(mod, v1.replace("return x + n", "return (x + n) * 2"))
    assert held(1) == 202
    assert module_level is mod.add_one
    assert module_level(1) == 4
    assert mod.make_adder(0)(1) == 2


def test_lambda_made_before_the_edit_runs_new_code(
    package: TemporaryPackage, engine: Engine
) -> None:
    v1 = """
        def make(n):
            return lambda: n + 1
        """
    mod = package.module("fn_lambda", v1)
    held = mod.make(1)
    apply_edit(mod, v1.replace("n + 1", "n + 2"))
    assert held() == 3


def test_closure_capturing_new_variable_gets_a_fresh_function(
    package: TemporaryPackage, engine: Engine
) -> None:
    v1 = """
        def outer():
            a = 1
            def inner():
                return a
            return inner
        """
    mod = package.module("fn_freevars", v1)
    outer = mod.outer
    apply_edit(
        mod,
        """
        def outer():
            a = 1
            b = 2
            def inner():
                return a + b
            return inner
        """,
    )
    assert mod.outer is outer
    assert outer()() == 3


def test_decorator_argument_change_reapplies_decorator(
    package: TemporaryPackage, engine: Engine
) -> None:
    v1 = """
        def times(n):
            def decorate(fn):
                def wrapper():
                    return fn() * n
                return wrapper
            return decorate

        @times(2)
        def value():
            return 5
        """
    mod = package.module("fn_decorator_args", v1)
    apply_edit(mod, v1.replace("@times(2)", "@times(3)"))
    assert mod.value() == 15


def test_decorator_removed_and_added(package: TemporaryPackage, engine: Engine) -> None:
    v1 = """
        def double(fn):
            def wrapper():
                return fn() * 2
            return wrapper

        @double
        def value():
            return 5
        """
    mod = package.module("fn_decorator_removed", v1)
    assert mod.value() == 10
    apply_edit(mod, v1.replace("@double\n        def value", "def value"))
    assert mod.value() == 5
    apply_edit(mod, v1)
    assert mod.value() == 10


def test_async_function_body_edit(package: TemporaryPackage, engine: Engine) -> None:
    import asyncio

    mod = package.module("fn_async", "async def f():\n    return 1\n")
    f = mod.f
    apply_edit(mod, "async def f():\n    return 2\n")
    assert mod.f is f and asyncio.run(f()) == 2


def test_generator_body_edit(package: TemporaryPackage, engine: Engine) -> None:
    mod = package.module("fn_gen", "def f():\n    yield 1\n")
    f = mod.f
    apply_edit(mod, "def f():\n    yield 1\n    yield 2\n")
    assert list(f()) == [1, 2]


# Each kind of function, as a module defines it and as a call of it gives back a list.
KINDS = {
    "plain function": ("def f():\n    return [{n}]\n", lambda made: made),
    "generator": ("def f():\n    yield {n}\n", list),
    "coroutine function": ("async def f():\n    return [{n}]\n", asyncio.run),
    "async generator": (
        "async def f():\n    yield {n}\n",
        lambda made: asyncio.run(_collect(made)),
    ),
}


async def _collect(made: Any) -> list[object]:
    return [item async for item in made]


def _kind_source(kind: str, n: int, where: str) -> str:
    source = KINDS[kind][0].format(n=n)
    if where == "method":
        return "class C:\n" + textwrap.indent(source.replace("f()", "f(self)"), "    ")
    if where == "nested":
        return "def outer():\n" + textwrap.indent(source, "    ") + "    return f\n"
    return source


@pytest.mark.parametrize("where", ["module", "method", "nested"])
@pytest.mark.parametrize(
    ("before", "after"),
    [(a, b) for a in KINDS for b in KINDS if a != b],
)
def test_function_of_another_kind_is_restart_required(
    package: TemporaryPackage, engine: Engine, before: str, after: str, where: str
) -> None:
    """A call of the live function cannot start making another kind of object in place
    (CPython 3.13 deprecates the __code__ change): refused, nothing changed, no warning."""
    mod = package.module(f"fn_kind_{where}", _kind_source(before, 1, where))
    getters = {"module": lambda: mod.f, "method": lambda: mod.C().f, "nested": lambda: mod.outer()}
    live = getters[where]  # the function as the program finds it now
    f = live()  # as a reference held since before the edit
    run = KINDS[before][1]
    with pytest.raises(relive.RestartRequired) as raised:
        apply_edit(mod, _kind_source(after, 2, where))
    assert f"was a {before}, now a {after}" in str(raised.value)
    assert raised.value.lineno == (1 if where == "module" else 2)
    assert run(f()) == [1] and run(live()()) == [1]


@pytest.mark.parametrize("kind", list(KINDS))
def test_function_body_edit_of_each_kind_is_patched(
    package: TemporaryPackage, engine: Engine, kind: str
) -> None:
    mod = package.module("fn_same_kind", _kind_source(kind, 1, "module"))
    f = mod.f
    apply_edit(mod, _kind_source(kind, 2, "module"))
    run = KINDS[kind][1]
    assert mod.f is f and run(f()) == [2]


def test_new_global_used_by_edited_function(package: TemporaryPackage, engine: Engine) -> None:
    mod = package.module("fn_new_global", "def f():\n    return 1\n")
    apply_edit(mod, "FACTOR = 7\n\ndef f():\n    return FACTOR\n")
    assert mod.f() == 7


# ---------------------------------------------------------------------------------------
# Line numbers


def _raising_line(path: Path, marker: str) -> int:
    lines = path.read_text().splitlines()
    return next(i for i, line in enumerate(lines, 1) if marker in line)


def _traceback_line(call: object) -> int:
    try:
        call()  # type: ignore[operator]
    except ValueError as exc:
        return traceback.extract_tb(exc.__traceback__)[-1].lineno or 0
    raise AssertionError("no exception")


def test_unchanged_function_gets_new_line_numbers(
    package: TemporaryPackage, engine: Engine
) -> None:
    body = """
        def fails():
            x = 1
            raise ValueError("boom")  # marker

        class Thing:
            def method(self):
                raise ValueError("method")  # method-marker

            @property
            def prop(self):
                raise ValueError("prop")  # prop-marker
        """
    body = textwrap.dedent(body)
    mod = package.module("fn_lines", body)
    path = Path(mod.__file__ or "")
    fails, thing = mod.fails, mod.Thing()
    apply_edit(mod, "import os\n\n\n# three new lines\n\n" + body)
    assert mod.fails is fails
    assert _traceback_line(fails) == _raising_line(path, "# marker")
    assert _traceback_line(thing.method) == _raising_line(path, "# method-marker")
    assert _traceback_line(lambda: thing.prop) == _raising_line(path, "# prop-marker")


def test_lines_follow_across_several_edits(package: TemporaryPackage, engine: Engine) -> None:
    body = "def fails():\n    raise ValueError()  # marker\n"
    mod = package.module("fn_lines_many", body)
    path = Path(mod.__file__ or "")
    for extra in ["\n\n", "\n\n\n\n\n", "\n", ""]:
        apply_edit(mod, "X = 1\n" + extra + body)
        assert _traceback_line(mod.fails) == _raising_line(path, "# marker")


def test_lines_of_closures_and_wrapped_functions_move(
    package: TemporaryPackage, engine: Engine
) -> None:
    body = """
        import functools

        def deco(fn):
            @functools.wraps(fn)
            def wrapper():
                return fn()
            return wrapper

        @deco
        def wrapped():
            raise ValueError()  # wrapped-marker

        def make():
            def inner():
                raise ValueError()  # inner-marker
            return inner

        held = make()
        """
    body = textwrap.dedent(body)
    mod = package.module("fn_lines_nested", body)
    path = Path(mod.__file__ or "")
    held = mod.held
    apply_edit(mod, "A = 1\nB = 2\n" + body)
    assert _traceback_line(mod.wrapped) == _raising_line(path, "# wrapped-marker")
    assert _traceback_line(held) == _raising_line(path, "# inner-marker")


def test_edited_function_reports_new_lines(package: TemporaryPackage, engine: Engine) -> None:
    mod = package.module("fn_lines_edit", "def fails():\n    raise ValueError()  # marker\n")
    path = Path(mod.__file__ or "")
    apply_edit(mod, "\n\ndef fails():\n    y = 2\n    raise ValueError(y)  # marker\n")
    assert _traceback_line(mod.fails) == _raising_line(path, "# marker")


def _module(package: TemporaryPackage, name: str, source: str) -> ModuleType:
    return package.module(name, source)


def test_reload_by_name(package: TemporaryPackage, engine: Engine) -> None:
    mod = _module(package, "fn_by_name", "def f():\n    return 1\n")
    package.write("fn_by_name.py", "def f():\n    return 2\n")
    assert relive.reload("fn_by_name").reloaded == ("fn_by_name",)
    assert mod.f() == 2


def test_class_based_decorator_runs_new_code(package: TemporaryPackage, engine: Engine) -> None:
    v1 = """
        class Command:
            def __init__(self, fn):
                self.handler = fn
                self.calls = 0

            def __call__(self, *args):
                self.calls += 1
                return self.handler(*args)

        @Command
        def greet(name):
            return "hello " + name
        """
    mod = package.module("fn_class_decorator", v1)
    command = mod.greet
    command("a")
    apply_edit(mod, v1.replace('"hello "', '"hi "'))
    assert mod.greet is command and command.calls == 1
    assert command("b") == "hi b"


def test_partial_of_an_edited_function(package: TemporaryPackage, engine: Engine) -> None:
    v1 = "import functools\n\ndef add(a, b):\n    return a + b\n\none = functools.partial(add, 1)\n"
    mod = package.module("fn_partial", v1)
    one = mod.one
    apply_edit(mod, v1.replace("return a + b", "return (a + b) * 10"))
    assert mod.one is one and one(1) == 20


def test_cached_method_is_cleared(package: TemporaryPackage, engine: Engine) -> None:
    v1 = """
        import functools

        class Table:
            @functools.lru_cache
            def lookup(self, key):
                return key * 2

            @functools.cached_property
            def size(self):
                return 1
        """
    mod = package.module("fn_cached_method", v1)
    table = mod.Table()
    assert table.lookup(2) == 4
    apply_edit(mod, v1.replace("key * 2", "key * 3"))
    assert table.lookup(2) == 6
    assert mod.Table().size == 1


def test_edited_decorator_reaches_functions_it_already_wrapped(
    package: TemporaryPackage, engine: Engine
) -> None:
    v1 = """
        import functools

        def plus(n):
            def decorate(fn):
                @functools.wraps(fn)
                def wrapper(*args):
                    return fn(*args) + n
                return wrapper
            return decorate

        @plus(1)
        def one():
            return 0

        @plus(2)
        def two():
            return 0
        """
    mod = package.module("fn_decorator_edited", v1)
    one, two = mod.one, mod.two
    apply_edit(mod, v1.replace("fn(*args) + n", "fn(*args) + n * 100"))
    assert mod.one is one and one() == 100
    assert mod.two is two and two() == 200


def test_lines_of_property_accessors_moved_apart(package: TemporaryPackage, engine: Engine) -> None:
    v1 = textwrap.dedent(
        """
        class Temp:
            @property
            def value(self):
                raise ValueError()  # getter-marker

            @value.setter
            def value(self, new):
                raise ValueError()  # setter-marker
        """
    )
    mod = package.module("fn_lines_accessors", v1)
    path = Path(mod.__file__ or "")
    temp = mod.Temp()
    edited = v1.replace("class Temp:\n", "class Temp:\n    # one\n").replace(
        "    @value.setter", "    # two\n    # three\n\n    @value.setter"
    )
    apply_edit(mod, edited.replace("raise ValueError()  # getter", "raise ValueError(1)  # getter"))
    assert _traceback_line(lambda: temp.value) == _raising_line(path, "# getter-marker")

    def assign() -> None:
        temp.value = 1

    assert _traceback_line(assign) == _raising_line(path, "# setter-marker")


def test_decorator_whose_wrapper_captures_other_variables_is_applied_again(
    package: TemporaryPackage, engine: Engine
) -> None:
    v1 = (
        "def decorate(func):\n"
        "    tag = 'x'\n"
        "    def wrapper():\n"
        "        return func(), tag\n"
        "    return wrapper\n"
        "@decorate\n"
        "def f():\n"
        "    return 1\n"
    )
    mod = package.module("fx_reshaped", v1)
    user = package.module("fx_reshaped_user", "from fx_reshaped import f\n")
    v2 = v1.replace("tag = 'x'", "label = 'y'").replace("func(), tag", "func(), label")
    report = apply_edit(mod, v2.replace("return 1", "return 2"))
    assert mod.f() == (2, "y")
    assert user.f is mod.f  # the new wrapper was pushed to the importer
    assert "fx_reshaped_user" in report.reloaded


def test_bound_member_copy_follows_a_removed_decorator(
    package: TemporaryPackage, engine: Engine
) -> None:
    v1 = (
        "def plus_one(f):\n"
        "    return lambda *args: f(*args) + 1\n"
        "class Foo:\n"
        "    @classmethod\n"
        "    @plus_one\n"
        "    def foo(cls):\n"
        "        return 42\n"
        "foo = Foo.foo\n"
    )
    mod = package.module("fx_bound_copy", v1)
    assert mod.foo() == 43
    apply_edit(mod, v1.replace("    @plus_one\n", ""))
    assert mod.Foo.foo() == 42
    assert mod.foo() == 42  # ``foo = Foo.foo`` read a replaced member: it ran again


GATED = {
    "generator": """
def f():
    got = yield {n}
    try:
        yield got
    except KeyError:
        yield "caught"
    return "done"

def drive(f):
    g = f()
    seen = [next(g), g.send("sent"), g.throw(KeyError())]
    try:
        next(g)
    except StopIteration as stop:
        seen.append(stop.value)
    return seen
""",
    "async generator": """
import asyncio

async def f():
    got = yield {n}
    try:
        yield got
    except KeyError:
        yield "caught"

async def _drive(f):
    g = f()
    seen = [await g.__anext__(), await g.asend("sent"), await g.athrow(KeyError())]
    try:
        await g.__anext__()
    except StopAsyncIteration:
        seen.append("done")
    return seen

def drive(f):
    return asyncio.run(_drive(f))
""",
    "coroutine function": """
import asyncio

async def f():
    await asyncio.sleep(0)
    return [{n}, "sent", "caught", "done"]

def drive(f):
    return asyncio.run(f())
""",
}


@pytest.mark.parametrize("kind", list(GATED))
def test_calls_during_the_transaction_keep_their_kind_protocol(
    package: TemporaryPackage, engine: Engine, kind: str
) -> None:
    """Until the commit point a patched function's code is a gate of its own kind: a
    statement run by the edit drives the new code through it (send, throw, close)."""
    source = GATED[kind] + "\nSEEN = {run}\n"
    mod = package.module("fn_gated", source.format(n=1, run="drive(f)"))
    assert mod.SEEN == [1, "sent", "caught", "done"]
    apply_edit(mod, source.format(n=2, run="list(drive(f))"))  # run again
    assert mod.SEEN == [2, "sent", "caught", "done"]


BLOCKS = {
    "if": "if True:\n{body}else:\n    pass\n",
    "try": "try:\n{body}except ImportError:\n    pass\n",
    "for": "for _i in range(1):\n{body}",
    "with": "import contextlib\nwith contextlib.nullcontext():\n{body}",
}
BLOCK_BODY = """\
    class Thing:
        def method(self):{gap}
            raise ValueError("method")  # method-marker

    def fails():{gap}
        def inner():
            raise ValueError("inner")  # inner-marker
        inner()
"""


@pytest.mark.parametrize("block", sorted(BLOCKS))
@pytest.mark.parametrize("above", ["", "import os\n\n"], ids=["in-place", "and-moved"])
def test_lines_moved_inside_a_block_reach_what_it_made(
    package: TemporaryPackage, engine: Engine, block: str, above: str
) -> None:
    # Only blank lines inside the block: its tree is the same, its functions' lines are not.
    text = BLOCKS[block]
    mod = package.module(
        f"fn_lines_block_{block}_{bool(above)}", text.format(body=BLOCK_BODY.format(gap=""))
    )
    path = Path(mod.__file__ or "")
    thing, fails = mod.Thing(), mod.fails
    for gap in ["\n\n", "\n", "\n\n\n\n"]:
        report = apply_edit(mod, above + text.format(body=BLOCK_BODY.format(gap=gap)))
        assert report.summary() != "nothing changed"
        assert mod.fails is fails and isinstance(thing, mod.Thing)
        assert _traceback_line(thing.method) == _raising_line(path, "# method-marker")
        assert _traceback_line(fails) == _raising_line(path, "# inner-marker")
