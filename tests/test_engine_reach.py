"""A statement run again records only what its code can reach, and a rollback still puts
back every list, dict, set and class attribute that code changed in other modules."""

from __future__ import annotations

import sys
import textwrap

import pytest

import relive
from relive._engine import Engine
from relive._reach import reached_modules
from relive.testing import TemporaryPackage

BUS = """
LOG = []
BY_NAME = {}
SEEN = set()


def record(value):
    LOG.append(value)
    BY_NAME[value] = len(LOG)
    SEEN.add(value)
    return value


class Registry:
    entries = []
    count = 0

    @classmethod
    def add(cls, value):
        cls.entries.append(value)
        cls.count += 1
        cls.latest = value
        return value


HELD = []
"""

# How the re-run statement reaches the other module's state: each a way the walk follows.
READERS = {
    "function": ("from rc_bus import record\n", "record(f())"),
    "module": ("import rc_bus\n", "rc_bus.record(f())"),
    "class": ("from rc_bus import Registry\n", "Registry.add(f())"),
    "default": (
        "from rc_bus import HELD\n\n\ndef keep(value, into=HELD):\n"
        "    into.append(value)\n    return value\n",
        "keep(f())",
    ),
    "closure": (
        "from rc_bus import HELD\n\n\ndef make():\n    held = HELD\n\n"
        "    def keep(value):\n        held.append(value)\n        return value\n\n"
        "    return keep\n\n\nkeep = make()\n",
        "keep(f())",
    ),
    "deleted import": ("import rc_bus\n", "rc_bus.record(f())\ndel rc_bus"),
    "import inside": (
        "def via(value):\n    import rc_bus\n\n    return rc_bus.record(value)\n",
        "via(f())",
    ),
}


def _state(bus: object) -> tuple[object, ...]:
    registry = vars(bus)["Registry"]
    return (
        list(vars(bus)["LOG"]),
        dict(vars(bus)["BY_NAME"]),
        set(vars(bus)["SEEN"]),
        list(vars(bus)["HELD"]),
        list(registry.entries),
        dict(vars(registry)),
    )


@pytest.mark.parametrize("how", sorted(READERS))
def test_a_rolled_back_statement_run_again_leaves_other_modules_as_they_were(
    package: TemporaryPackage, engine: Engine, how: str
) -> None:
    bus = package.module("rc_bus", BUS)
    prefix, call = READERS[how]
    source = f"{prefix}\n\ndef f():\n    return 1\n\n\nVALUE = {call}\n"
    mod = package.module(f"rc_{how.replace(' ', '_')}", source)
    before = _state(bus)
    assert mod.VALUE == 1
    # f changes: VALUE runs again (its value follows f), then the edit fails further down.
    broken = source.replace("return 1", "return 2") + "\nBROKEN = undefined\n"
    package.write(f"{mod.__name__}.py", broken)
    with pytest.raises(relive.ReloadError):
        relive.refresh()
    assert _state(bus) == before and mod.VALUE == 1
    package.write(f"{mod.__name__}.py", source.replace("return 1", "return 2"))
    assert relive.refresh().reloaded == (mod.__name__,)
    assert mod.VALUE == 2 and _state(bus) != before


def test_the_walk_stops_at_what_the_statement_can_reach(
    package: TemporaryPackage, engine: Engine
) -> None:
    package.module("rc_far", "ITEMS = []\n\n\ndef add(x):\n    ITEMS.append(x)\n")
    near = package.module(
        "rc_near",
        textwrap.dedent(
            """
            from rc_far import add


            class Pipeline:
                def __init__(self):
                    self.steps = []

                def then(self, step):
                    self.steps.append(step)
                    return self

                @classmethod
                def default(cls):
                    return cls().then(max).then(transform)


            def transform(value):
                return value * 3


            def importing():
                import rc_far

                return rc_far


            def printing():
                print("x")
            """
        ),
    )
    namespace = vars(near)

    def reached(statement: str) -> set[str] | None:
        walked = reached_modules(
            compile(statement, near.__file__ or "", "exec"),
            namespace,
            lambda name: name in ("rc_far", "rc_near"),
            lambda function: function.__code__,
        )
        return None if walked is None else walked[0]

    assert reached("P = Pipeline.default()") == {"rc_near"}  # not rc_far, which it imports
    assert reached("add(1)") == {"rc_near", "rc_far"}
    assert reached("importing()") == {"rc_near", "rc_far"}  # an import inside: what it names
    assert reached("printing()") is None  # print may run any stream's code
    assert reached("import rc_far") == {"rc_near", "rc_far"}
    assert reached("getattr(transform, 'x')") is None  # a name no walk can see
    assert reached("Pipeline.__subclasses__()") is None
    namespace["sys"] = sys
    assert reached("sys.modules") is None  # a module not tracked: anything may follow
