"""Values computed with a function handed to other code, or with a method reached through
a receiver that is no plain name, are computed again as a fresh import computes them.

``list(map(f, xs))``, ``sorted(xs, key=f)``, ``functools.reduce(f, ...)``, a lambda
calling ``f`` handed to ``reduce``, ``apply(f, xs)`` (a helper that calls what it is
given), ``COUNTERS[0].val(3)``, ``H.C.val(3)``, ``map(Counter().val, xs)``: the statement
runs again when ``f``'s or ``val``'s code changed. What holds the function it was handed
(``functools.partial(f, 1)``, ``[f]``, a wrapper, a thread's target) runs the new code
and is kept, as is state that depends on no changed code (``CACHE = {}``, a counter).
"""

from __future__ import annotations

import pytest

from harness import fresh_import
from relive._engine import Engine
from relive.testing import TemporaryPackage, apply_edit

BASE = """\
import functools
import threading

CACHE = {}
COUNT = [0]


def f(x):
    return x + 1


def apply(g, xs):
    return [g(x) for x in xs]


class Counter:
    def val(self, x):
        return x + 1


class H:
    C = Counter()


COUNTERS = [Counter()]
BY_NAME = {"c": Counter()}


def wrapper(g):
    def wrapped(*args):
        return g(*args)

    return wrapped


"""
DERIVED = {
    "map": "T = list(map(f, range(3)))\n",
    "max, key a lambda": "T = max(range(3), key=lambda x: f(x) % 4)\n",
    "sorted, key a function": (
        "def rank(x):\n    return f(x) % 4\n\n\nT = sorted(range(3), key=rank)\n"
    ),
    "reduce with a lambda": "T = functools.reduce(lambda a, b: a + f(b), range(3), 0)\n",
    "reduce with a function": "T = functools.reduce(lambda a, b: a + b, map(f, range(3)))\n",
    "a helper calling what it is handed": "T = apply(f, range(3))\n",
    "a method of a list's item": "T = COUNTERS[0].val(3)\n",
    "a method of a dict's item": "T = BY_NAME['c'].val(3)\n",
    "a method of a class attribute": "T = H.C.val(3)\n",
    "a bound method handed on": "T = list(map(Counter().val, range(3)))\n",
    "an unbound method handed on": (
        "T = list(map(functools.partial(Counter.val, None), range(3)))\n"
    ),
    "in a class body": "class K:\n    T = list(map(f, range(3)))\n",
}
HOLDING = (
    "P = functools.partial(f, 1)\nHANDLERS = [f, COUNTERS[0].val]\nW = wrapper(f)\n"
    "THREAD = threading.Thread(target=f)\n"
)


def edited(text: str) -> str:
    return text.replace("return x + 1", "return x + 10")


@pytest.mark.parametrize("case", sorted(DERIVED))
def test_a_value_computed_with_a_handed_function_is_computed_again(
    package: TemporaryPackage, engine: Engine, case: str
) -> None:
    v1 = BASE + HOLDING + DERIVED[case]
    module = package.module(f"handed_{sorted(DERIVED).index(case)}", v1)
    kept = {name: getattr(module, name) for name in ("CACHE", "COUNT", "P", "HANDLERS", "W")}
    kept["THREAD"] = module.THREAD
    apply_edit(module, edited(v1), dedent=False)
    fresh = fresh_import(module)
    owner, fresh_owner = (module.K, fresh.K) if "K" in vars(module) else (module, fresh)
    assert owner.T == fresh_owner.T
    assert all(getattr(module, name) is value for name, value in kept.items())
    assert module.P() == fresh.P() and module.W(1) == fresh.W(1)


def test_an_importer_computes_again_with_the_handed_function(
    package: TemporaryPackage, engine: Engine
) -> None:
    base = package.module("handed_base", BASE)
    importer = package.module(
        "handed_importer",
        "import functools\n\nimport handed_base\nfrom handed_base import COUNTERS, f\n\n"
        "T1 = list(map(f, range(3)))\nT2 = sorted(range(3), key=handed_base.f)\n"
        "T3 = COUNTERS[0].val(1)\nT4 = list(map(handed_base.Counter().val, range(2)))\n"
        "P = functools.partial(f, 1)\n",
    )
    partial = importer.P
    apply_edit(base, edited(BASE), dedent=False)
    fresh = fresh_import(importer)
    assert [importer.T1, importer.T2, importer.T3, importer.T4] == [
        fresh.T1,
        fresh.T2,
        fresh.T3,
        fresh.T4,
    ]
    assert importer.P is partial and partial() == 11
