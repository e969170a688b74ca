"""What a refused or failed edit leaves behind: nothing, anywhere, and it stays refused."""

from __future__ import annotations

import os
import sys
import textwrap
import threading

import pytest

import relive
from relive._engine import Engine
from relive.testing import TemporaryPackage, wait_until


def _refresh_outcome() -> str:
    try:
        return relive.refresh().summary()
    except relive.RestartRequired:
        return "restart"
    except relive.ReloadError:
        return "error"


def test_a_refused_text_saved_again_is_refused_again(
    package: TemporaryPackage, engine: Engine
) -> None:
    v1 = "class P:\n    __slots__ = ('a',)\n\n    def f(self):\n        return 1\n"
    mod = package.module("rb_slots", v1)
    refused = v1.replace("('a',)", "('a', 'b')")
    outcomes = []
    for text in (refused, v1, refused, refused.replace("return 1", "return 3"), v1):
        package.write("rb_slots.py", text)
        outcomes.append(_refresh_outcome())
    assert outcomes == ["restart", "nothing changed", "restart", "restart", "nothing changed"]
    package.write("rb_slots.py", v1.replace("return 1", "return 2"))
    assert relive.refresh().reloaded == ("rb_slots",)
    assert mod.P().f() == 2 and mod.P.__slots__ == ("a",)


def test_a_broken_text_saved_twice_is_reported_once(
    package: TemporaryPackage, engine: Engine
) -> None:
    package.module("rb_twice", "X = 1\n")
    package.write("rb_twice.py", "X = undefined\n")
    assert _refresh_outcome() == "error"
    package.write("rb_twice.py", "X = undefined\n")
    assert _refresh_outcome() == "nothing changed"
    assert sys.modules["rb_twice"].X == 1


def _reject(path: str, package: TemporaryPackage, text: str) -> None:
    package.write(path, text)
    with pytest.raises(relive.ReloadError):
        relive.refresh()


def test_a_rejected_edit_leaves_no_registration_in_other_modules(
    package: TemporaryPackage, engine: Engine
) -> None:
    bus_source = """
        HANDLERS = []
        BY_NAME = {}
        NAMES = set()
        NESTED = {"all": []}
        LAST = None


        def on(f):
            global LAST
            HANDLERS.append(f)
            BY_NAME[f.__name__] = f
            NAMES.add(f.__name__)
            NESTED["all"].append(f)
            NESTED.setdefault("new", []).append(f)
            LAST = f
            return f


        class Plugin:
            registry = []
            count = 0

            def __init_subclass__(cls, **kwargs):
                super().__init_subclass__(**kwargs)
                Plugin.registry.append(cls)
                Plugin.count += 1
                Plugin.latest = cls
        """
    bus = package.module("rb_bus", bus_source)
    base = "from rb_bus import on, Plugin\n\n\n@on\ndef greet():\n    return 'hello'\n"
    plug = package.module("rb_plug", base)
    containers = (bus.HANDLERS, bus.BY_NAME, bus.NAMES, bus.NESTED, bus.Plugin.registry)
    before = [list(c) if not isinstance(c, dict) else dict(c) for c in containers]
    nested_all = list(bus.NESTED["all"])
    broken = (
        base + "\n\n@on\ndef audit():\n    return 'audit v1'\n\n\n"
        "class Extra(Plugin):\n    pass\n\n\nX = undefined\n"
    )
    _reject("rb_plug.py", package, broken)
    after = [list(c) if not isinstance(c, dict) else dict(c) for c in containers]
    assert after == before and bus.NESTED["all"] == nested_all
    assert {"greet"} == bus.NAMES and bus.LAST is plug.greet
    assert bus.Plugin.count == 0 and "latest" not in vars(bus.Plugin)
    package.write("rb_plug.py", base + "\n\n@on\ndef audit():\n    return 'audit v2'\n")
    relive.refresh()
    assert [handler() for handler in bus.HANDLERS] == ["hello", "audit v2"]
    assert sorted(bus.BY_NAME) == ["audit", "greet"]
    assert bus.NESTED["new"] == [plug.greet, plug.audit]


def test_a_failed_batch_that_added_a_module_leaves_no_trace(
    package: TemporaryPackage, engine: Engine
) -> None:
    package.write("rb_pkg/__init__.py", "")
    package.write("rb_pkg/bus.py", "H = []\n")
    bus = package.module("rb_pkg.bus")
    first = package.module("rb_pkg.a", "X = 1\n")
    package.write("rb_pkg/new.py", "from . import bus\n\nbus.H.append('new')\nY = 1\n")
    _reject("rb_pkg/a.py", package, "from . import new\n\nX = undefined\n")
    assert "rb_pkg.new" not in sys.modules
    assert not hasattr(sys.modules["rb_pkg"], "new") and bus.H == [] and first.X == 1
    package.write("rb_pkg/a.py", "from . import new\n\nX = 2\n")
    assert relive.refresh().reloaded == ("rb_pkg.a",)
    assert bus.H == ["new"] and first.X == 2 and first.new is sys.modules["rb_pkg.new"]


def test_a_failed_edit_leaves_lru_caches_as_they_were(
    package: TemporaryPackage, engine: Engine
) -> None:
    v1 = """
        import functools

        CALLS = []


        @functools.cache
        def square(x):
            CALLS.append(x)
            return x * x


        @functools.lru_cache(maxsize=16)
        def cube(x):
            CALLS.append(x)
            return x * x * x
        """
    mod = package.module("rb_cache", v1)
    assert [mod.square(2), mod.square(3), mod.cube(2)] == [4, 9, 8]
    calls = list(mod.CALLS)
    v2 = (
        textwrap.dedent(v1).replace("x * x\n", "x * x + 1\n").replace("x * x * x", "x * x * x + 1")
        + "\nFOUR = square(4)\nBOOM = 1 / 0\n"
    )
    _reject("rb_cache.py", package, v2)
    assert calls == mod.CALLS
    assert [mod.square(2), mod.square(3), mod.square(4), mod.cube(2)] == [4, 9, 16, 8]
    assert [*calls, 4] == mod.CALLS  # only square(4) ran: with the old code
    assert mod.square.cache_info().currsize == 3 and mod.cube.cache_info().currsize == 1


def test_other_threads_never_run_the_code_of_an_edit_rolled_back_later(
    package: TemporaryPackage, engine: Engine
) -> None:
    sync = package.module("rb_sync", "import threading\n\nstarted = threading.Event()\n")
    sync.proceed = threading.Event()
    v1 = (
        "import os\n\n\ndef f(x=1):\n    return ('v1', x)\n\n\n"
        "class C:\n    def m(self):\n        return 'v1'\n"
    )
    mod = package.module("rb_gated", v1)
    v2 = v1.replace("v1", "v2").replace("x=1", "x=2") + (
        "\n\nos.environ['RB_GATED_SEEN'] = repr((f(), C().m()))\n"
        "import rb_sync\n\nrb_sync.started.set()\nrb_sync.proceed.wait(10)\n"
    )
    seen: set[object] = set()
    stop = threading.Event()

    def hammer() -> None:
        f, instance = mod.f, mod.C()
        while not stop.is_set():
            seen.add((f(), instance.m()))
            if sync.started.is_set() and not sync.proceed.is_set():
                for _ in range(2000):  # while the transaction waits, in the middle
                    seen.add((f(), instance.m()))
                sync.proceed.set()

    thread = threading.Thread(target=hammer, name="hammer", daemon=True)
    thread.start()
    try:
        _reject("rb_gated.py", package, v2 + "\nBOOM = 1 / 0\n")
        assert sync.proceed.is_set()
        assert os.environ.pop("RB_GATED_SEEN") == repr((("v2", 2), "v2"))
        assert seen == {(("v1", 1), "v1")}
        sync.started.clear()
        sync.proceed.clear()
        package.write("rb_gated.py", v2)
        relive.refresh()
        wait_until(lambda: (("v2", 2), "v2") in seen)  # (a pair may straddle the commit)
        assert mod.f() == ("v2", 2)
    finally:
        stop.set()
        sync.proceed.set()
        thread.join(timeout=10)


def test_a_rejected_edit_that_changed_builtins_puts_them_back_without_emptying_them(
    package: TemporaryPackage, engine: Engine
) -> None:
    """attrs: an import that fails in a rejected edit had left ``__annotations__`` in the
    builtins; the rollback emptied the builtins' dict before filling it again, and the
    rollback's own next name lookup failed (``NameError: name 'dict' is not defined``):
    every name of the program was gone."""
    import builtins

    mod = package.module("rb_builtins", "X = 1\n")
    package.write(
        "rb_builtins.py", "import builtins\nbuiltins.rb_extra = 1\nX = 2\nY = undefined_name\n"
    )
    with pytest.raises(relive.ReloadError, match="undefined_name"):
        relive.refresh()
    assert not hasattr(builtins, "rb_extra")
    assert mod.X == 1 and len([1, 2]) == 2
    package.write("rb_builtins.py", "X = 3\n")
    relive.refresh()
    assert mod.X == 3
