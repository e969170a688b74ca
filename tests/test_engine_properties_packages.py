"""Random multi-file saves to a package, each checked against a fresh import of the texts.

A package of four modules: ``bus`` holds registries, ``m0`` constants, a function and a
class, ``m1`` imports from ``m0`` (``from`` copies and module attributes) and registers a
decorated function into ``bus``, ``m2`` derives values from ``m1``. Each step rewrites one
to three of ``m0``..``m2`` with new numbers, sometimes with one file broken (a syntax error,
a statement that raises): a valid batch must leave everything as a fresh import of the same
texts (old references, registries and values derived from changed code included); a broken
batch must leave everything exactly as it was. Set RELIVE_PROPERTY_SEED to replay a run,
RELIVE_PROPERTY_STEPS for longer runs.
"""

from __future__ import annotations

import importlib
import os
import random
import sys
import time
from pathlib import Path

import pytest

from relive._engine import Engine
from relive._errors import ReloadError
from relive.testing import write_source

STEPS = int(os.environ.get("RELIVE_PROPERTY_STEPS", "120"))
SEED = int(os.environ.get("RELIVE_PROPERTY_SEED") or time.time_ns() % 10**6)

BUS = """
HANDLERS = []
REGISTRY = {}


def on(function):
    HANDLERS.append(function)
    REGISTRY[function.__name__] = function
    return function


def tag(function):
    function.tagged = True
    return function
"""

M0 = """
A = {a}


def f(x):
    return x * {k} + A


class C:
    K = {c}

    def m(self):
        return {m} + f(1)
"""

M1 = """
from . import m0
from .bus import on, tag
from .m0 import A, f


{decorator}def h():
    return f({n}) + A


{decorator2}def {second}():
    return {n} + 1


D = f({d})
E = m0.C.K + {e}
L = list(map(f, range(3)))


class R:
    X = {e}

    {decorator3}def r(self):
        return {n}

    {decorator4}def r(self):
        return {n} + 1


{tagged}def k3():
    return 3
"""

M2 = """
from .m1 import D, h


T = D + {t}


def g():
    return h() * 2 + {g}
"""

TEMPLATES = {"m0": M0, "m1": M1, "m2": M2}
BROKEN = ("\nBROKEN = (\n", "\nBROKEN = 1 / 0\n", "\nBROKEN = undefined_name\n")
# In m1, a broken batch may first register another function into bus (undone on rollback).
REGISTERS = "\n\n@on\ndef extra():\n    return 0\n\n\nBROKEN = 1 / 0\n"


def _text(rng: random.Random, module: str) -> str:
    numbers: dict[str, object] = {key: rng.randint(0, 9) for key in "akcmndetg"}
    # m1 registers h, and a second function (renamed at times), or not: a registration
    # whose definition is gone or undecorated must leave the registries.
    numbers["decorator"] = "@on\n" if rng.random() < 0.8 else ""
    numbers["decorator2"] = "@on\n" if rng.random() < 0.5 else ""
    numbers["second"] = rng.choice(("k1", "k2"))
    # Stacked registered methods in a class body, a decorator that sets an attribute.
    numbers["decorator3"] = "@on\n    " if rng.random() < 0.5 else ""
    numbers["decorator4"] = "@on\n    " if rng.random() < 0.5 else ""
    numbers["tagged"] = "@tag\n" if rng.random() < 0.5 else ""
    return TEMPLATES[module].format(**numbers)


def _observe(package: str) -> dict[str, object]:
    """What the program sees: values, calls, registries, and held references."""
    bus, m0, m1, m2 = (sys.modules[f"{package}.{name}"] for name in ("bus", "m0", "m1", "m2"))
    return {
        "A": m0.A,
        "f": m0.f(2),
        "K": m0.C.K,
        "m": m0.C().m(),
        "m1.A": m1.A,
        "m1.f": m1.f(3),
        "h": m1.h(),
        "D": m1.D,
        "E": m1.E,
        "T": m2.T,
        "m2.D": m2.D,
        "g": m2.g(),
        # (as a multiset: a function decorated again registers after those that stayed)
        "handlers": sorted(handler.__name__ for handler in bus.HANDLERS),
        "registry": {
            name: fn(*[None] * fn.__code__.co_argcount) for name, fn in bus.REGISTRY.items()
        },
        "handled": sorted(fn(*[None] * fn.__code__.co_argcount) for fn in bus.HANDLERS),
        "L": m1.L,
        "r": m1.R().r(),
        "k3": dict(vars(m1.k3)),
    }


def _fresh(root: Path, texts: dict[str, str], index: int) -> dict[str, object] | None:
    """A fresh import of ``texts`` as a package of its own; None when it fails."""
    name = f"prop_fresh_{index}"
    for module, text in {"__init__": "", "bus": BUS, **texts}.items():
        write_source(root / name / f"{module}.py", text, dedent=False)
    importlib.invalidate_caches()
    try:
        for module in ("m0", "m1", "m2"):
            importlib.import_module(f"{name}.{module}")
        return _observe(name)
    except Exception:
        return None
    finally:
        for loaded in [key for key in sys.modules if key.split(".")[0] == name]:
            del sys.modules[loaded]


def test_random_multi_file_saves_behave_like_a_fresh_import(tmp_path: Path) -> None:
    rng = random.Random(SEED)
    live, fresh_root = tmp_path / "live", tmp_path / "fresh"
    sys.path[:0] = [str(live), str(fresh_root)]
    texts = {module: _text(rng, module) for module in TEMPLATES}
    for module, text in {"__init__": "", "bus": BUS, **texts}.items():
        write_source(live / "prop_pkg" / f"{module}.py", text, dedent=False)
    engine = Engine()  # before the imports: it knows the texts they ran
    for module in ("m0", "m1", "m2"):
        importlib.import_module(f"prop_pkg.{module}")
    try:
        held_h = sys.modules["prop_pkg.m1"].h
        held_c = sys.modules["prop_pkg.m0"].C()
        for step in range(STEPS):
            _step(rng, engine, texts, live, fresh_root, step, (held_h, held_c))
    finally:
        engine.close()


def _step(
    rng: random.Random,
    engine: Engine,
    texts: dict[str, str],
    live: Path,
    fresh_root: Path,
    step: int,
    held: tuple[object, object],
) -> None:
    where = f"seed {SEED}, step {step} (RELIVE_PROPERTY_SEED={SEED} replays it)"
    before = _observe("prop_pkg")
    edited = rng.sample(sorted(TEMPLATES), rng.randint(1, 3))
    batch = {module: _text(rng, module) for module in edited}
    broken = rng.random() < 0.2
    if broken:
        target = rng.choice(edited)
        registers = target == "m1" and rng.random() < 0.5
        batch[target] += REGISTERS if registers else rng.choice(BROKEN)
    for module, text in batch.items():
        write_source(live / "prop_pkg" / f"{module}.py", text, dedent=False)
    if broken:
        with pytest.raises(ReloadError):
            engine.refresh()
        assert _observe("prop_pkg") == before, f"a rejected batch left traces: {where}"
        for module in edited:  # put the files back as they run
            write_source(live / "prop_pkg" / f"{module}.py", texts[module], dedent=False)
        assert not engine.refresh(), where
        return
    texts.update(batch)
    expected = _fresh(fresh_root, texts, step)
    assert expected is not None, where
    engine.refresh()
    seen = _observe("prop_pkg")
    assert seen == expected, f"{where}: {batch}"
    held_h, held_c = held
    assert held_h() == expected["h"], where  # type: ignore[operator]
    assert held_c.m() == expected["m"], where  # type: ignore[attr-defined]
