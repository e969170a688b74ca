"""Modules are ordered by what runs at import time: imports inside functions run later."""

from __future__ import annotations

import pytest

import relive
from relive._engine import Engine
from relive._tracker import imported_names
from relive.testing import TemporaryPackage


def test_a_rename_across_two_files_with_a_function_level_import_back(
    package: TemporaryPackage, engine: Engine
) -> None:
    package.write("fl_pkg/__init__.py", "")
    m1 = "def f1():\n    return 1\n\n\ndef use():\n    from .m2 import h\n\n    return h()\n"
    package.write("fl_pkg/m1.py", m1)
    package.write("fl_pkg/m2.py", "from .m1 import f1\n\n\ndef h():\n    return f1() + 10\n")
    first = package.module("fl_pkg.m1")
    second = package.module("fl_pkg.m2")
    assert first.use() == 11
    package.write("fl_pkg/m1.py", m1.replace("f1", "f2").replace("return 1", "return 2"))
    package.write("fl_pkg/m2.py", "from .m1 import f2\n\n\ndef h():\n    return f2() + 10\n")
    report = relive.refresh()
    assert report.reloaded == ("fl_pkg.m1", "fl_pkg.m2")
    assert first.use() == 12 and second.h() == 12
    assert not hasattr(first, "f1") and not hasattr(second, "f1")


def test_imports_inside_functions_are_not_import_time_dependencies() -> None:
    source = (
        "import a\n"
        "if a.FAST:\n"
        "    from b import x\n"
        "try:\n"
        "    import c.d\n"
        "except ImportError:\n"
        "    pass\n"
        "def f():\n"
        "    import e\n"
        "    def g():\n"
        "        from f import y\n"
        "    return 1\n"
        "class K:\n"
        "    import g2\n"
        "    async def m(self):\n"
        "        from .h import z\n"
        "    x = [1,\n"
        "2]\n"
        "    from .i import w\n"
    )
    assert imported_names(source, "pkg") == {"a", "b", "c", "c.d", "g2", "pkg.i"}


def test_an_import_cycle_that_keeps_changing_is_an_error_naming_its_modules(
    package: TemporaryPackage, engine: Engine
) -> None:
    first = "import cy_b\n\nX = (getattr(cy_b, 'Y', None), object())\n"
    package.write("cy_a.py", first)
    package.write(
        "cy_b.py", "import cy_a\n\nY = (cy_a.X if hasattr(cy_a, 'X') else None, object())\n"
    )
    a = package.module("cy_a")
    b = package.module("cy_b")
    x, y = a.X, b.Y
    package.write(
        "cy_a.py",
        first.replace("object())", "object(), 1)").replace("getattr(cy_b, 'Y', None)", "cy_b.Y"),
    )
    with pytest.raises(relive.ReloadError) as info:
        relive.refresh()
    message = str(info.value)
    assert "import cycle" in message and "cy_a" in message and "cy_b" in message
    assert a.X is x and b.Y is y
