"""Statements are cut from the lines the compiler counts: ``\\n``, ``\\r\\n`` and ``\\r`` only.

``str.splitlines()`` also splits at form feeds, vertical tabs, ``\\x1c``-``\\x1e``, ``\\x85``
and the Unicode line and paragraph separators; code that maps line numbers to text with it
takes a statement's text from the wrong lines, and an edit below such a character is then
seen as unchanged (or the wrong statement is patched).
"""

from __future__ import annotations

import pytest

from relive import ReloadError
from relive._engine import Engine
from relive._reparse import source_lines
from relive.testing import TemporaryPackage, apply_edit

# Every character str.splitlines() splits at but the compiler does not.
OTHER_BREAKS = ["\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029"]


def places(char: str) -> list[str]:
    """Sources with ``char`` between two functions: a page break, in a comment, in a string."""
    found = [
        f"def a():\n    return 1\n# note{char}here\n\ndef f():\n    return 1\n",
        f"def a():\n    return 's{char}t', 1\n\ndef f():\n    return 1\n",
    ]
    if char == "\x0c":
        found.append("def a():\n    return 1\n\x0c\ndef f():\n    return 1\n")
    return found


@pytest.mark.parametrize("char", OTHER_BREAKS, ids=[f"U+{ord(c):04X}" for c in OTHER_BREAKS])
def test_source_lines_split_where_the_compiler_does(char: str) -> None:
    text = f"a = 1\n# x{char}y\r\nb = 2\rc = 3"
    assert source_lines(text) == ["a = 1", f"# x{char}y", "b = 2", "c = 3"]
    assert "".join(source_lines(text, keepends=True)) == text
    assert source_lines("a\n") == ["a"]
    assert source_lines("a\n", keepends=True) == ["a\n"]


@pytest.mark.parametrize("char", OTHER_BREAKS, ids=[f"U+{ord(c):04X}" for c in OTHER_BREAKS])
def test_edits_below_another_line_break_apply(
    char: str, package: TemporaryPackage, engine: Engine
) -> None:
    for index, v1 in enumerate(places(char)):
        name = f"breaks_{ord(char)}_{index}"
        mod = package.module(name, v1)
        a, f = mod.a, mod.f
        v2 = v1.replace("1\n", "2\n")
        apply_edit(mod, v2, dedent=False)
        assert (a()[-1] if isinstance(a(), tuple) else a(), f()) == (2, 2), v2
        # Again, from the statements the first edit left (not from the import's).
        apply_edit(mod, v2.replace("2\n", "3\n"), dedent=False)
        assert (a()[-1] if isinstance(a(), tuple) else a(), f()) == (3, 3)
        assert mod.f is f and mod.a is a


def test_an_error_names_its_own_line_below_a_form_feed(
    package: TemporaryPackage, engine: Engine
) -> None:
    v1 = "A = 1\n\x0c\n# page two\x0c\nB = 2\n"
    mod = package.module("breaks_error", v1)
    with pytest.raises(ReloadError) as caught:
        apply_edit(mod, v1.replace("B = 2", "B = undefined_name"), dedent=False)
    assert caught.value.lineno == 4
    assert caught.value.line == "B = undefined_name"
    assert mod.B == 2


def test_a_class_below_a_form_feed_patches_the_edited_method(
    package: TemporaryPackage, engine: Engine
) -> None:
    v1 = "class K:\n    def a(self):\n        return 1\n\x0c\n    def b(self):\n        return 1\n"
    mod = package.module("breaks_class", v1)
    k = mod.K()
    apply_edit(mod, v1.replace("return 1\n", "return 2\n"), dedent=False)
    assert (k.a(), k.b()) == (2, 2)


@pytest.mark.parametrize("char", ["\x0c", "\u2028"], ids=["U+000C", "U+2028"])
def test_an_importer_read_without_its_trees_keeps_its_lines(
    char: str, package: TemporaryPackage, engine: Engine
) -> None:
    dep = package.module("breaks_dep", "X = 1\n")
    v1 = (
        f"from breaks_dep import X\n# page{char}two\nY = X\n\n"
        f"class K:\n    '''a{char}b'''\n    def m(self):\n        return 1\n\n"
        "def f():\n    return 1\n"
    )
    user = package.module("breaks_user", v1)
    apply_edit(dep, "X = 2\n")  # the importer is read to follow it, then let go of its trees
    assert user.Y == 2
    k = user.K()
    apply_edit(user, v1.replace("return 1", "return 3"), dedent=False)
    assert (user.f(), k.m(), user.Y) == (3, 3, 2)


def test_a_live_loop_names_the_line_the_compiler_counts() -> None:
    from relive._loops import _line

    data = "a = 1\n\x0c# page two\u2028still line two\nb = 2\n".encode()
    assert _line(data, 3) == "b = 2"
