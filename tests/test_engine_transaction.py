"""A reload is a transaction: a broken edit raises ReloadError and changes nothing."""

from __future__ import annotations

import os
import sys
import textwrap
import threading
from pathlib import Path

import pytest

import relive
from relive._engine import Engine
from relive.testing import TemporaryPackage, apply_edit, write_source


def _snapshot(namespace: dict[str, object]) -> dict[str, object]:
    return {name: value for name, value in namespace.items() if not name.startswith("__")}


def test_syntax_error_names_file_and_line(package: TemporaryPackage, engine: Engine) -> None:
    mod = package.module("tx_syntax", "X = 1\n\ndef f():\n    return 1\n")
    before = _snapshot(vars(mod))
    with pytest.raises(relive.ReloadError) as info:
        apply_edit(mod, "X = 2\n\ndef f():\n    return 2 +\n")
    error = info.value
    assert error.path == mod.__file__ and error.lineno == 4
    assert error.line == "return 2 +"
    assert isinstance(error.__cause__, SyntaxError)
    assert str(error).startswith(f"{mod.__file__}:4: SyntaxError")
    assert _snapshot(vars(mod)) == before and mod.f() == 1


def test_compile_error_beyond_the_parser(package: TemporaryPackage, engine: Engine) -> None:
    mod = package.module("tx_compile", "def f():\n    return 1\n")
    with pytest.raises(relive.ReloadError) as info:
        apply_edit(mod, "def f():\n    return 1\n\ndef g():\n    nonlocal x\n")
    assert isinstance(info.value.__cause__, SyntaxError)
    assert info.value.lineno == 5
    assert not hasattr(mod, "g")


def test_exception_in_a_new_statement_undoes_everything(
    package: TemporaryPackage, engine: Engine
) -> None:
    v1 = """
        import functools

        registry = []
        LIMIT = 1

        def f():
            return "f1"

        @functools.lru_cache
        def cached():
            return "c1"

        class C:
            attr = 1

            def m(self):
                return "m1"

        def make():
            def inner():
                return "i1"
            return inner

        held = make()
        """
    mod = package.module("tx_runtime", v1)
    f, cls, held = mod.f, mod.C, mod.held
    assert mod.cached() == "c1"
    before = _snapshot(vars(mod))
    code = {"f": f.__code__, "m": cls.m.__code__, "held": held.__code__}
    v2 = (
        textwrap.dedent(v1)
        .replace('"f1"', '"f2"')
        .replace('"m1"', '"m2"')
        .replace('"i1"', '"i2"')
        .replace('"c1"', '"c2"')
        .replace("attr = 1", "attr = 2")
        .replace("LIMIT = 1", "LIMIT = 2")
        + "\nNEW = 1\nregistry = ['rebound']\nratio = LIMIT / 0\n\ndef later():\n    pass\n"
    )
    with pytest.raises(relive.ReloadError) as info:
        apply_edit(mod, v2, dedent=False)
    error = info.value
    lines = Path(mod.__file__ or "").read_text().splitlines()
    assert error.path == mod.__file__
    assert error.lineno is not None and lines[error.lineno - 1] == "ratio = LIMIT / 0"
    assert error.line == "ratio = LIMIT / 0"
    assert error.module == "tx_runtime"
    assert isinstance(error.__cause__, ZeroDivisionError)
    assert _snapshot(vars(mod)) == before
    assert mod.registry is before["registry"] and not hasattr(mod, "NEW")
    assert f.__code__ is code["f"] and f() == "f1"
    assert cls.m.__code__ is code["m"] and cls().m() == "m1" and cls.attr == 1
    assert held.__code__ is code["held"] and held() == "i1"
    assert mod.cached() == "c1"


def test_exception_inside_a_function_called_at_top_level(
    package: TemporaryPackage, engine: Engine
) -> None:
    mod = package.module("tx_nested_raise", "def f():\n    return 1\n")
    with pytest.raises(relive.ReloadError) as info:
        apply_edit(mod, "def f():\n    return 1\n\ndef g():\n    raise KeyError('k')\n\ng()\n")
    assert info.value.lineno == 5
    assert isinstance(info.value.__cause__, KeyError)
    assert not hasattr(mod, "g")


def test_the_module_works_after_a_failed_reload(package: TemporaryPackage, engine: Engine) -> None:
    v1 = "calls = []\ncalls.append(1)\n\ndef f():\n    return 1\n"
    mod = package.module("tx_then_ok", v1)
    with pytest.raises(relive.ReloadError):
        apply_edit(mod, v1.replace("return 1", "return 2") + "\n1 / 0\n")
    report = apply_edit(mod, v1.replace("return 1", "return 3"))
    assert mod.f() == 3 and mod.calls == [1]
    assert report.modules[0].executed == ()


def test_failed_dependent_rolls_back_the_batch(package: TemporaryPackage, engine: Engine) -> None:
    a = package.module("txdep_a", "X = 1\nY = 2\n\ndef f():\n    return 1\n")
    b = package.module("txdep_b", "from txdep_a import X, Y\n\nTOTAL = X + Y\n")
    with pytest.raises(relive.ReloadError) as info:
        apply_edit(a, "Y = 3\n\ndef f():\n    return 2\n")
    assert info.value.path == b.__file__ and info.value.lineno == 1
    assert info.value.module == "txdep_b"
    assert isinstance(info.value.__cause__, ImportError)
    assert a.X == 1 and a.Y == 2 and a.f() == 1
    assert b.X == 1 and b.Y == 2 and b.TOTAL == 3


def test_dependent_failing_with_new_values(package: TemporaryPackage, engine: Engine) -> None:
    a = package.module("txzero_a", "ZERO = 1\n")
    b = package.module("txzero_b", "import txzero_a\n\nY = 1 / txzero_a.ZERO\n")
    with pytest.raises(relive.ReloadError) as info:
        apply_edit(a, "ZERO = 0\n")
    assert info.value.path == b.__file__ and info.value.lineno == 3
    assert isinstance(info.value.__cause__, ZeroDivisionError)
    assert a.ZERO == 1 and b.Y == 1.0
    apply_edit(a, "ZERO = 2\n")
    assert b.Y == 0.5


def test_deleted_file_is_an_error_reported_once(package: TemporaryPackage, engine: Engine) -> None:
    mod = package.module("tx_deleted", "def f():\n    return 1\n")
    path = Path(mod.__file__ or "")
    path.unlink()
    with pytest.raises(relive.ReloadError) as info:
        relive.refresh()
    assert info.value.path == str(path)
    assert not isinstance(info.value, relive.RestartRequired)
    assert not relive.refresh()
    assert mod.f() == 1
    write_source(path, "def f():\n    return 2\n")
    assert relive.refresh().reloaded == ("tx_deleted",)
    assert mod.f() == 2


def test_deleted_file_restored_unchanged(package: TemporaryPackage, engine: Engine) -> None:
    source = "calls = []\ncalls.append(1)\n"
    mod = package.module("tx_restored", source)
    path = Path(mod.__file__ or "")
    path.unlink()
    with pytest.raises(relive.ReloadError):
        relive.refresh()
    write_source(path, source)
    assert not relive.refresh()
    assert mod.calls == [1]


def test_unreadable_file_is_an_error(package: TemporaryPackage, engine: Engine) -> None:
    mod = package.module("tx_binary", "def f():\n    return 1\n")
    Path(mod.__file__ or "").write_bytes(b"\xff\xfe\x00bad")
    with pytest.raises(relive.ReloadError):
        relive.refresh()
    assert mod.f() == 1


def test_module_removed_from_sys_modules_is_forgotten(
    package: TemporaryPackage, engine: Engine
) -> None:
    import sys

    mod = package.module("tx_forgotten", "def f():\n    return 1\n")
    relive.refresh()
    del sys.modules["tx_forgotten"]
    write_source(mod.__file__ or "", "def f():\n    return 2\n")
    assert not relive.refresh()
    assert mod.f() == 1


def test_identical_rewrite_and_touch_do_nothing(package: TemporaryPackage, engine: Engine) -> None:
    source = "calls = []\ncalls.append(1)\n\ndef f():\n    return 1\n"
    mod = package.module("tx_identical", source)
    f_code = mod.f.__code__
    path = mod.__file__ or ""
    write_source(path, source)
    assert relive.refresh() == relive._engine.Report() or not relive.refresh()
    stat = os.stat(path)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 5_000_000_000))
    assert not relive.refresh()
    assert relive.reload(mod).reloaded == ()
    assert mod.calls == [1] and mod.f.__code__ is f_code


def test_reloads_from_two_threads_are_serialized(package: TemporaryPackage, engine: Engine) -> None:
    package.module(
        "tx_probe",
        """
        import threading
        import time

        lock = threading.Lock()
        active = 0
        most = 0
        runs = 0

        def enter(step):
            global active, most, runs
            with lock:
                active += 1
                runs += 1
                most = max(most, active)
            time.sleep(0.002)
            with lock:
                active -= 1
        """,
    )
    import tx_probe

    mods = [package.module(f"tx_serial_{i}", "import tx_probe\n\nSTEP = 0\n") for i in range(2)]
    errors: list[BaseException] = []

    def worker(mod: object, rounds: int) -> None:
        try:
            for step in range(1, rounds + 1):
                apply_edit(mod, f"import tx_probe\n\nSTEP = {step}\ntx_probe.enter(STEP)\n")  # type: ignore[arg-type]
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [
        threading.Thread(target=worker, args=(mod, 15), name=f"reloader-{i}")
        for i, mod in enumerate(mods)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors
    assert tx_probe.runs == 30 and tx_probe.most == 1
    assert [mod.STEP for mod in mods] == [15, 15]


def test_thread_calling_edited_code_never_sees_the_swap(
    package: TemporaryPackage, engine: Engine
) -> None:
    def version(n: int) -> str:
        return textwrap.dedent(
            f"""
            K = {n}

            def helper{n}():
                return K

            class Box:
                size = {n}

                def get(self):
                    return self.size + helper{n}()

            def f(box):
                return helper{n}() + box.get() + K
            """
        )

    mod = package.module("tx_threads", version(0))
    box = mod.Box()
    stop = threading.Event()
    failures: list[BaseException] = []
    calls = [0]

    def hammer() -> None:
        f = mod.f
        while not stop.is_set():
            try:
                result = f(box)
                assert isinstance(result, int)
                calls[0] += 1
            except BaseException as exc:
                failures.append(exc)
                return

    thread = threading.Thread(target=hammer, name="hammer", daemon=True)
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)  # switch threads often: more interleavings, faster reloads
    thread.start()
    try:
        for n in range(1, 201):
            apply_edit(mod, version(n % 3), dedent=False)
            assert not failures, failures
    finally:
        stop.set()
        thread.join(timeout=10)
        sys.setswitchinterval(interval)
    assert not failures, failures
    assert calls[0] > 0
