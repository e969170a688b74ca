"""Random edit sequences, each checked against a fresh import of the same source.

A module is generated from a small model (constants, functions combining constants and
other functions, classes with an attribute and methods, top-level statements computed
from the constants) and edited several times; some edits are broken (a syntax error, a statement
that raises, a name read before it exists). After each refresh every function and method
must behave as in a fresh import of the new text, old references included; after a broken
edit, nothing may have changed.
"""

from __future__ import annotations

import functools
import itertools
import os
import sys
import traceback
import types
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from relive._engine import Engine
from relive._errors import ReloadError
from relive.testing import TemporaryPackage

CONSTANTS = ("C0", "C1", "C2")
FUNCTIONS = ("f0", "f1", "f2", "f3")
CLASSES = ("K0", "K1")
METHODS = ("m0", "m1", "m2")
DERIVED = ("D0", "D1")
# More examples, or a random seed instead of the fixed one: set these to hunt for bugs.
EXAMPLES = int(os.environ.get("RELIVE_PROPERTY_EXAMPLES", "60"))
RANDOM = os.environ.get("RELIVE_PROPERTY_RANDOM", "") == "1"

_names = itertools.count()
_ABSENT = object()


# ---------------------------------------------------------------------------------------
# The model of a module, and its source


@dataclass(frozen=True)
class ClassModel:
    attr: int
    base: str | None  # "K0" for K1 sometimes: a change of bases needs a restart
    methods: dict[str, tuple[str, list[str]]]  # name -> ("method" or "property", body)

    def source(self, name: str) -> str:
        members = [f"    attr = {self.attr}"]
        for method, (kind, body) in self.methods.items():
            decorator = "    @property\n" if kind == "property" else ""
            members.append(decorator + _function(method, body, indent="    "))
        bases = f"({self.base})" if self.base else ""
        return f"class {name}{bases}:\n" + "\n\n".join(members)


@dataclass(frozen=True)
class Model:
    constants: dict[str, int]
    functions: dict[str, list[str]]  # name -> body lines (the last one returns)
    classes: dict[str, ClassModel]
    shifting: str  # what SHIFTING is: "", "constant", "function" or "class"
    # name -> expression of constants. Not of function calls: a statement whose text did
    # not change is not run again when a function it calls is patched (its state is kept),
    # so a fresh import is not the reference for those.
    derived: dict[str, str]
    gaps: tuple[int, ...]  # blank lines before each statement
    broken: str  # "", "syntax" or "raise"
    broken_at: int
    tag: int = 0  # what the decorator ``tagged`` adds
    decorated: frozenset[str] = frozenset()  # functions wrapped by ``tagged``
    closure: str | None = None  # what ``make()``'s closure returns; HELD is one made once

    def source(self) -> str:
        blocks = [_TAGGED.format(tag=self.tag)]
        blocks += [f"{name} = {value}" for name, value in self.constants.items()]
        blocks += [
            ("@tagged\n" if name in self.decorated else "") + _function(name, body)
            for name, body in self.functions.items()
        ]
        if self.closure is not None:
            blocks += [_CLOSURE.format(expression=self.closure), "HELD = make()"]
        blocks += [cls.source(name) for name, cls in self.classes.items()]
        blocks += [f"{name} = {expression}" for name, expression in self.derived.items()]
        blocks += [_SHIFTING[self.shifting]] if self.shifting else []
        if self.broken:
            bad = "def broken(:\n    pass" if self.broken == "syntax" else "_boom = 1 // 0"
            blocks.insert(self.broken_at % (len(blocks) + 1), bad)
        gaps = itertools.cycle(self.gaps or (1,))
        return "".join("\n" * next(gaps) + block + "\n" for block in blocks)


_TAGGED = """import functools

def tagged(fn):
    @functools.wraps(fn)
    def wrapper():
        return fn() + {tag}
    return wrapper"""
_CLOSURE = "def make():\n    def inner():\n        return {expression}\n    return inner"

_SHIFTING = {
    "constant": "SHIFTING = 5",
    "function": "def SHIFTING():\n    return 6",
    "class": "class SHIFTING:\n    attr = 7",
}


def _function(name: str, body: list[str], indent: str = "") -> str:
    header = f"{indent}def {name}(self):" if indent else f"def {name}():"
    return "\n".join([header, *(f"{indent}    {line}" for line in body)])


@functools.cache
def _expressions(readable: tuple[str, ...], depth: int = 2) -> st.SearchStrategy[str]:
    leaves = st.one_of(st.integers(0, 9).map(str), st.sampled_from(readable))
    if depth == 0:
        return leaves
    smaller = _expressions(readable, depth - 1)
    return st.one_of(leaves, st.tuples(smaller, smaller).map(lambda p: f"{p[0]} + {p[1]}"))


@functools.cache
def _body(readable: tuple[str, ...]) -> st.SearchStrategy[list[str]]:
    expression = _expressions(readable)
    one_line = expression.map(lambda e: [f"return {e}"])
    two_lines = st.tuples(expression, expression).map(
        lambda p: [f"x = {p[0]}", f"return x + {p[1]}"]
    )
    return st.one_of(one_line, two_lines)


@st.composite
def class_models(draw: st.DrawFn, name: str) -> ClassModel:
    methods: dict[str, tuple[str, list[str]]] = {}
    for index, method in enumerate(METHODS):
        if draw(st.booleans()):
            readable = (
                *CONSTANTS,
                "self.attr",
                "super().attr",
                *(f"{f}()" for f in FUNCTIONS),
                *(f"self.{m}()" for m in METHODS[:index]),
            )
            kind = draw(st.sampled_from(["method", "method", "property"]))
            methods[method] = (kind, draw(_body(readable)))
    base = "K0" if name == "K1" and draw(st.booleans()) else None
    return ClassModel(draw(st.integers(0, 3)), base, methods)


@st.composite
def models(draw: st.DrawFn) -> Model:
    constants = {name: draw(st.integers(0, 3)) for name in CONSTANTS if draw(st.booleans())}
    functions: dict[str, list[str]] = {}
    for index, name in enumerate(FUNCTIONS):
        if draw(st.booleans()):
            readable = (*CONSTANTS, *(f"{f}()" for f in FUNCTIONS[:index]))
            functions[name] = draw(_body(readable))
    classes = {name: draw(class_models(name)) for name in CLASSES if draw(st.booleans())}
    derived = {
        name: draw(_expressions(CONSTANTS, depth=1)) for name in DERIVED if draw(st.booleans())
    }
    return Model(
        constants,
        functions,
        classes,
        draw(st.sampled_from(["", "constant", "function", "class"])),
        derived,
        tuple(draw(st.lists(st.integers(0, 2), max_size=4))),
        draw(st.sampled_from(["", "", "", "", "syntax", "raise"])),
        draw(st.integers(0, 20)),
        draw(st.integers(0, 2)),
        frozenset(name for name in functions if draw(st.booleans())),
        draw(st.none() | _expressions(CONSTANTS, depth=1)),
    )


def bases_changed(before: Model, after: Model) -> bool:
    """Whether a class kept by the edit got other bases (the edit needs a restart)."""
    return any(
        name in before.classes and before.classes[name].base != cls.base
        for name, cls in after.classes.items()
    )


# ---------------------------------------------------------------------------------------
# Observing a module


def _outcome(call: Callable[[], object]) -> object:
    """What a call returns, or the exception it raises and the line it raised at."""
    try:
        return call()
    except Exception as exc:
        frames = traceback.extract_tb(exc.__traceback__, limit=-1)
        return (type(exc).__name__, str(exc), frames[-1].lineno)


def observe(namespace: dict[str, object]) -> dict[str, object]:
    """Everything the model defines, as values: constants, results, class attributes."""
    seen: dict[str, object] = {}
    make = namespace.get("make")
    if callable(make):
        seen["make"] = _outcome(lambda: make()())  # type: ignore[operator]
    for name in (*CONSTANTS, *DERIVED, *FUNCTIONS, *CLASSES, "SHIFTING", "HELD"):
        value = namespace.get(name, _ABSENT)
        if isinstance(value, type):
            seen[name] = observe_class(value, value())
        elif callable(value):
            seen[name] = _outcome(value)
        elif value is not _ABSENT:
            seen[name] = value
    return seen


def observe_class(cls: type, instance: object) -> dict[str, object]:
    seen: dict[str, object] = {"attr": getattr(cls, "attr", None), "mro": len(cls.__mro__)}
    for method in METHODS:
        if method in dir(cls):
            seen[method] = _outcome(functools.partial(_member, instance, method))
    return seen


def _member(instance: object, name: str) -> object:
    value = getattr(instance, name)
    return value() if callable(value) else value


def fresh_import(source: str, filename: str) -> dict[str, object] | None:
    """The namespace of the source imported anew under another name; None if it fails."""
    module = types.ModuleType(f"relive_fresh_{next(_names)}")
    module.__file__ = filename
    try:
        exec(compile(source, filename, "exec"), module.__dict__)
    except Exception:
        return None
    return module.__dict__


@dataclass
class Held:
    """References taken after one version was applied, checked after the next."""

    functions: dict[str, object] = field(default_factory=dict)
    classes: dict[str, type] = field(default_factory=dict)
    instances: dict[str, object] = field(default_factory=dict)

    decorated: frozenset[str] = frozenset()

    @classmethod
    def take(cls, namespace: dict[str, object], model: Model) -> Held:
        held = cls(decorated=model.decorated)
        for name in (*FUNCTIONS, "HELD"):
            if callable(namespace.get(name)):
                held.functions[name] = namespace[name]
        for name in CLASSES:
            value = namespace.get(name)
            if isinstance(value, type):
                held.classes[name] = value
                held.instances[name] = value()
        return held

    def check(
        self, namespace: dict[str, object], expected: dict[str, object], model: Model
    ) -> None:
        for name, function in self.functions.items():
            # A decorator added or removed makes another object: a reference to the old one
            # (the bare function, or the old wrapper) keeps what it was.
            if name in expected and (name in model.decorated) == (name in self.decorated):
                assert namespace[name] is function, f"{name} lost its identity"
                assert _outcome(function) == expected[name], f"old reference to {name}"  # type: ignore[operator]
        for name, cls in self.classes.items():
            if name in expected:
                assert namespace[name] is cls, f"class {name} lost its identity"
                assert observe_class(cls, self.instances[name]) == expected[name], name


# ---------------------------------------------------------------------------------------
# The property


# The module that imports the edited one (written with the edited module's name for A).
DEPENDENTS = {
    "star": "from A import *\n\nE0 = C0 + 1\n",
    "names": (
        "import A\n"
        "from A import C1, f1\n"
        "\n"
        "E0 = A.C0 + 1\n"
        "E1 = C1 * 2\n"
        "\n"
        "def g():\n"
        "    return f1() + A.C2\n"
    ),
}


def observe_dependent(namespace: dict[str, object]) -> dict[str, object]:
    seen = observe(namespace)
    for name in ("E0", "E1", "g"):
        value = namespace.get(name, _ABSENT)
        if value is not _ABSENT:
            seen[name] = _outcome(value) if callable(value) else value
    return seen


def fresh_dependent(source: str, name: str, imported: dict[str, object]) -> object:
    """The dependent imported anew against ``imported`` (the edited module, fresh)."""
    module = types.ModuleType(name)
    module.__dict__.update(imported)
    module.__name__ = name  # error messages name the module
    saved = sys.modules.get(name)
    sys.modules[name] = module
    try:
        namespace = fresh_import(source, "<dependent>")
    finally:
        if saved is None:
            del sys.modules[name]
        else:
            sys.modules[name] = saved
    return None if namespace is None else observe_dependent(namespace)


@dataclass
class Subject:
    """The edited module and its dependent, live, with what was last applied."""

    engine: Engine
    package: TemporaryPackage
    name: str
    dependent_source: str
    namespace: dict[str, object] = field(default_factory=dict)
    dependent: dict[str, object] = field(default_factory=dict)

    def observe(self) -> tuple[dict[str, object], object]:
        return observe(self.namespace), observe_dependent(self.dependent)

    def expected(self, source: str) -> tuple[dict[str, object], object] | None:
        fresh = fresh_import(source, str(self.package.root / f"{self.name}.py"))
        if fresh is None:
            return None
        dependent = fresh_dependent(self.dependent_source, self.name, fresh)
        return None if dependent is None else (observe(fresh), dependent)


def test_random_edits_behave_like_a_fresh_import() -> None:
    engine = Engine()
    try:
        _edit_sequences(engine)
    finally:
        engine.close()


def _edit_sequences(engine: Engine) -> None:
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        derandomize=not RANDOM,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(st.lists(models(), min_size=2, max_size=5), st.sampled_from(sorted(DEPENDENTS)))
    def check(versions: list[Model], dependent: str) -> None:
        modules_before = set(sys.modules)
        name = f"relive_prop_{next(_names)}"
        try:
            with TemporaryPackage() as package:
                source = DEPENDENTS[dependent].replace("A", name)
                _check_versions(Subject(engine, package, name, source), versions)
        finally:
            for added in [name for name in sys.modules if name not in modules_before]:
                del sys.modules[added]

    check()


def _check_versions(subject: Subject, versions: list[Model]) -> None:
    first = next((v for v in versions if subject.expected(v.source()) is not None), None)
    if first is None:
        return
    module = subject.package.module(subject.name, first.source())
    dependent = subject.package.module(f"{subject.name}_user", subject.dependent_source)
    subject.namespace, subject.dependent = vars(module), vars(dependent)
    engine = subject.engine
    held = Held.take(subject.namespace, first)
    written, applied = first.source(), first
    for version in versions[versions.index(first) + 1 :]:
        source = version.source()
        before = subject.observe()
        subject.package.write(f"{subject.name}.py", source, dedent=False)
        expected = subject.expected(source)
        if source == written:  # content decides: the same text again is nothing to do
            assert not engine.refresh()
            assert subject.observe() == before
            continue
        written = source
        if expected is None or bases_changed(applied, version):
            with pytest.raises(ReloadError):
                engine.refresh()
            assert subject.observe() == before, source
            held.check(subject.namespace, before[0], applied)
            assert not engine.refresh()  # a failed batch is not tried again
            continue
        engine.refresh()
        assert subject.observe() == expected, source
        held.check(subject.namespace, expected[0], version)
        held, applied = Held.take(subject.namespace, version), version
