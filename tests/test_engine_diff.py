"""diff.py, pure: source text in, plan out. Nothing is imported or executed here."""

from __future__ import annotations

import ast
import textwrap

import pytest

from relive._diff import Action, BodyPlan, Step, count_kinds, plan_module
from relive._statements import Statement, analyze_body, future_flags


def statements(source: str, *, module: str = "pkg.mod", package: str = "pkg") -> list[Statement]:
    text = textwrap.dedent(source)
    tree = ast.parse(text)
    return analyze_body(tree.body, text.splitlines(), module=module, package=package)


def plan(old: str, new: str) -> BodyPlan:
    return plan_module(statements(old), statements(new))


def actions(body: BodyPlan) -> list[tuple[Action, str | None]]:
    return [(step.action, step.new.name) for step in body.steps]


def step_named(body: BodyPlan, name: str) -> Step:
    return next(step for step in body.steps if step.new.name == name)


# ---------------------------------------------------------------------------------------
# Module bodies

MODULE = textwrap.dedent(
    """
    import os

    LIMIT = 1

    def f(x, y=1):
        return x + y

    class C:
        a = 1

        def m(self):
            return 1
    """
)


def test_identical_source_keeps_everything() -> None:
    body = plan(MODULE, MODULE)
    assert {step.action for step in body.steps} == {Action.KEEP}
    assert not body.changed and not body.moved and not body.removed


def test_body_edit_patches_the_body() -> None:
    body = plan(MODULE, MODULE.replace("return x + y", "return x * y"))
    assert actions(body)[2] == (Action.PATCH_BODY, "f")
    assert body.changed


def test_docstring_edit_patches_the_body() -> None:
    old = 'def f():\n    """One."""\n'
    assert actions(plan(old, old.replace("One", "Two"))) == [(Action.PATCH_BODY, "f")]


@pytest.mark.parametrize(
    "new_def",
    ["def f(x, y=2):", "def f(x, y=1, *, z=0):", "def f(x: int, y=1):", "def f(x, y=1) -> int:"],
)
def test_signature_edit_patches_the_function(new_def: str) -> None:
    body = plan(MODULE, MODULE.replace("def f(x, y=1):", new_def))
    assert step_named(body, "f").action is Action.PATCH_FUNCTION


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("def f():\n    pass\n", "@d\ndef f():\n    pass\n"),
        ("@d(1)\ndef f():\n    pass\n", "@d(2)\ndef f():\n    pass\n"),
        ("@d\ndef f():\n    pass\n", "def f():\n    pass\n"),
        ("def f():\n    pass\n", "async def f():\n    pass\n"),
    ],
    ids=["added", "arguments", "removed", "async"],
)
def test_decorator_or_kind_edit_redefines(old: str, new: str) -> None:
    assert actions(plan(old, new)) == [(Action.REDEFINE, "f")]


def test_decorated_function_body_edit_is_a_body_patch() -> None:
    old = "@app.route('/')\ndef index():\n    return 1\n"
    assert actions(plan(old, old.replace("1", "2"))) == [(Action.PATCH_BODY, "index")]


def test_new_definitions_and_statements() -> None:
    body = plan(MODULE, MODULE + "\nimport json\nNEW = 2\n\ndef g():\n    pass\n")
    assert actions(body)[-3:] == [
        (Action.EXECUTE, None),
        (Action.EXECUTE, None),
        (Action.DEFINE, "g"),
    ]
    assert step_named(body, "g").old is None


def test_changed_statement_is_executed_with_its_old_self() -> None:
    body = plan(MODULE, MODULE.replace("LIMIT = 1", "LIMIT = 2"))
    step = body.steps[1]
    assert step.action is Action.EXECUTE and step.old is not None
    assert step.old.text == "LIMIT = 1" and step.new.text == "LIMIT = 2"


def test_reformatted_statement_is_kept() -> None:
    body = plan("x = [1,2]\ncall( x )\n", "x = [\n    1,\n    2,\n]\ncall(x)  # why\n")
    assert [step.action for step in body.steps] == [Action.KEEP, Action.KEEP]
    assert body.steps[1].line_delta == 3


def test_removed_names() -> None:
    body = plan(MODULE, "class C:\n    a = 1\n\n    def m(self):\n        return 1\n")
    assert body.removed == {"os", "LIMIT", "f"}


def test_a_name_still_bound_elsewhere_is_not_removed() -> None:
    body = plan("X = 1\nX = 2\n", "X = 2\n")
    assert not body.removed
    assert body.changed is False or [s.action for s in body.steps] == [Action.KEEP]


def test_moved_definitions_report_their_line_delta() -> None:
    body = plan(MODULE, "\n\n# header\n" + textwrap.dedent(MODULE))
    assert {step.action for step in body.steps} == {Action.KEEP}
    assert body.moved and not body.changed
    assert {step.line_delta for step in body.steps} == {3}


def test_reordered_definitions_are_matched_by_name() -> None:
    old = "def a():\n    return 1\n\ndef b():\n    return 2\n"
    new = "def b():\n    return 2\n\ndef a():\n    return 1\n"
    body = plan(old, new)
    assert [(s.action, s.new.name, s.line_delta) for s in body.steps] == [
        (Action.KEEP, "b", -3),
        (Action.KEEP, "a", 3),
    ]


def test_repeated_identical_statements_match_one_to_one() -> None:
    old = "calls.append(1)\ncalls.append(1)\n"
    body = plan(old, old + "calls.append(1)\n")
    assert [step.action for step in body.steps] == [Action.KEEP, Action.KEEP, Action.EXECUTE]


def test_duplicate_definitions_match_in_order() -> None:
    old = "def f():\n    return 1\n\ndef f():\n    return 2\n"
    body = plan(old, old.replace("return 2", "return 3"))
    assert [step.action for step in body.steps] == [Action.KEEP, Action.PATCH_BODY]


def test_class_turned_function_is_new() -> None:
    body = plan("class X:\n    pass\n", "def X():\n    pass\n")
    assert actions(body) == [(Action.DEFINE, "X")]
    assert not body.removed


def test_count_kinds() -> None:
    body = plan(MODULE, MODULE.replace("return x + y", "return 0") + "\nZ = 1\n")
    counts = count_kinds(body.steps)
    assert counts[Action.PATCH_BODY] == 1 and counts[Action.EXECUTE] == 1


# ---------------------------------------------------------------------------------------
# Class bodies


def test_method_body_edit_patches_the_class_in_place() -> None:
    body = plan(MODULE, MODULE.replace("        return 1", "        return 2"))
    step = step_named(body, "C")
    assert step.action is Action.PATCH_CLASS and step.cls is not None
    assert not step.cls.rebuild
    assert actions(step.cls.body) == [(Action.KEEP, None), (Action.PATCH_BODY, "m")]


@pytest.mark.parametrize(
    "edit",
    [
        ("a = 1", "a = 2"),
        ("def m(self):", "def m(self, x=1):"),
        ("def m(self):", "@property\n    def m(self):"),
        ("a = 1", "a = 1\n    b = 2"),
        ("    a = 1\n", ""),
    ],
    ids=["attribute", "signature", "decorator", "added-attribute", "removed-attribute"],
)
def test_class_edits_that_rebuild(edit: tuple[str, str]) -> None:
    body = plan(MODULE, MODULE.replace(*edit))
    step = step_named(body, "C")
    assert step.action is Action.PATCH_CLASS and step.cls is not None and step.cls.rebuild


def test_removed_plain_method_does_not_rebuild() -> None:
    old = "class C:\n    def a(self):\n        pass\n\n    def b(self):\n        pass\n"
    new = "class C:\n    def a(self):\n        pass\n"
    step = plan(old, new).steps[0]
    assert step.cls is not None and not step.cls.rebuild
    assert step.cls.body.removed == {"b"}


def test_added_method_rebuilds() -> None:
    old = "class C:\n    def a(self):\n        pass\n"
    step = plan(old, old + "\n    def b(self):\n        pass\n").steps[0]
    assert step.cls is not None and step.cls.rebuild


def test_class_decorator_edit_rebuilds() -> None:
    old = "@dataclass\nclass C:\n    x: int = 1\n"
    step = plan(old, old.replace("@dataclass", "@dataclass(frozen=True)")).steps[0]
    assert step.cls is not None and step.cls.rebuild


def test_nested_class_method_edit_patches_in_place() -> None:
    old = "class A:\n    class B:\n        def m(self):\n            return 1\n"
    step = plan(old, old.replace("return 1", "return 2")).steps[0]
    assert step.cls is not None and not step.cls.rebuild
    inner = step.cls.body.steps[0]
    assert inner.action is Action.PATCH_CLASS and inner.cls is not None
    assert actions(inner.cls.body) == [(Action.PATCH_BODY, "m")]


def test_method_moved_inside_the_class() -> None:
    old = "class C:\n    def m(self):\n        return 1\n"
    step = plan(old, old.replace("class C:\n", "class C:\n    # note\n\n")).steps[0]
    assert step.cls is not None and not step.cls.rebuild
    assert step.cls.body.steps[0].line_delta == 2


@pytest.mark.parametrize(
    ("old", "new", "reason"),
    [
        ("class C:\n    x = 1\n", "class C(metaclass=M):\n    x = 1\n", "metaclass"),
        ("class C:\n    __slots__ = ('a',)\n", "class C:\n    __slots__ = ('b',)\n", "__slots__"),
        ("class C:\n    pass\n", "class C:\n    __slots__ = ()\n", "__slots__"),
    ],
)
def test_edits_that_need_a_restart(old: str, new: str, reason: str) -> None:
    body = plan(old, new)
    assert body.restart_reasons
    lineno, why = body.restart_reasons[0]
    assert reason in why and lineno >= 1


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("class C(A):\n    x = 1\n", "class C(B):\n    x = 1\n"),
        ("class C(m0.A):\n    x = 1\n", "class C(A):\n    x = 1\n"),
        ("class O:\n    class I(A):\n        pass\n", "class O:\n    class I(B):\n        pass\n"),
    ],
)
def test_bases_written_otherwise_rebuild_the_class_and_compare_objects(old: str, new: str) -> None:
    # ``m0.A`` and ``A`` imported from m0 are one class: only the built class can tell.
    body = plan(old, new)
    assert not body.restart_reasons
    step = body.steps[0]
    assert step.cls is not None and step.cls.rebuild


def test_slots_reformatted_is_not_a_restart() -> None:
    old = "class C:\n    __slots__ = ('a',)\n    x = 1\n"
    assert not plan(
        old, old.replace("('a',)", "( 'a', )").replace("x = 1", "x = 2")
    ).restart_reasons


def test_new_class_with_bases_is_not_a_restart() -> None:
    assert not plan("", "class C(A, metaclass=M):\n    __slots__ = ()\n").restart_reasons


# ---------------------------------------------------------------------------------------
# What statements bind and read


def _one(source: str, **kwargs: str) -> Statement:
    (statement,) = statements(source, **kwargs)
    return statement


@pytest.mark.parametrize(
    ("source", "binds"),
    [
        ("import os.path", {"os"}),
        ("import os.path as p", {"p"}),
        ("from a import b, c as d", {"b", "d"}),
        ("from a import *", set()),
        ("x, (y, *z) = v", {"x", "y", "z"}),
        ("for i in r:\n    j = i", {"i", "j"}),
        ("with open(p) as h:\n    pass", {"h"}),
        ("try:\n    import json\nexcept ImportError:\n    json = None", {"json"}),
        ("if X:\n    def f():\n        pass\nelse:\n    class f:\n        pass", {"f"}),
        ("def f():\n    inner = 1", {"f"}),
        ("class C:\n    attr = 1", {"C"}),
        ("del x", {"x"}),
        ("x: int = 1", {"x"}),
        ("x += 1", {"x"}),
        ("(y := 2)", {"y"}),
    ],
)
def test_binds(source: str, binds: set[str]) -> None:
    assert _one(source).binds == binds


@pytest.mark.parametrize(
    ("source", "uses"),
    [
        ("from a import b", {("a", "b")}),
        ("from . import b", {("pkg", "b")}),
        ("from .sub import b", {("pkg.sub", "b")}),
        ("from a import *", {("a", "*")}),
        ("x = y + 1", {("", "y")}),
        ("def f(a=DEFAULT) -> RET:\n    return BODY", {("", "DEFAULT"), ("", "RET")}),
        ("@deco(ARG)\ndef f():\n    return BODY", {("", "deco"), ("", "ARG")}),
        ("f = lambda a=D: BODY", {("", "D")}),
        ("class C(Base):\n    x = LIMIT", {("", "Base"), ("", "LIMIT")}),
    ],
)
def test_uses(source: str, uses: set[tuple[str, str]]) -> None:
    assert _one(source, module="pkg.mod", package="pkg").uses == uses


def test_relative_imports_resolve_against_the_package() -> None:
    statement = _one("from ..up import x", module="a.b.c", package="a.b")
    assert statement.uses == {("a.up", "x")}


def test_attribute_reads_resolve_module_aliases() -> None:
    found = statements(
        """
        import config
        import pkg.settings as settings
        from pkg import tools

        A = config.LIMIT
        B = settings.DEBUG
        C = tools.helper()
        """
    )
    assert ("config", "LIMIT") in found[3].uses
    assert ("pkg.settings", "DEBUG") in found[4].uses
    assert ("pkg.tools", "helper") in found[5].uses


def test_statement_text_and_first_line() -> None:
    found = statements("X = 1\n\n@deco\ndef f():\n    pass\n")
    assert found[1].lineno == 3 and found[1].text.startswith("@deco")
    assert found[1].kind == "def" and found[1].name == "f"
    assert found[0].kind == "stmt" and found[0].name is None


def test_future_flags() -> None:
    import __future__

    tree = ast.parse('"""doc"""\nfrom __future__ import annotations\nx = 1\n')
    assert future_flags(tree) == __future__.annotations.compiler_flag
    assert future_flags(ast.parse("x = 1\nfrom __future__ import annotations\n")) == 0
