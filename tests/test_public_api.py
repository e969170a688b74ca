"""The public API is what relive/__init__.py exports, sorted, every name documented.

A newcomer tells the supported API from the internals by the file names: every module
under relive/ is private (``_name``) except ``relive.testing`` and ``__main__``.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
import subprocess
import sys
from pathlib import Path

import relive

PUBLIC_MODULES = {"relive", "relive.dask", "relive.testing", "relive.__main__"}

EXPORTED = [
    "Engine",
    "ModuleReport",
    "ReloadError",
    "Report",
    "RestartRequired",
    "Watcher",
    "__version__",
    "after_reload",
    "before_reload",
    "drop_kept",
    "get_engine",
    "keep",
    "load_ipython_extension",
    "loop",
    "refresh",
    "reload",
    "unload_ipython_extension",
    "watch",
]


def _modules() -> list[str]:
    """Every module of the package, by walking the files (nothing is imported)."""
    root = Path(relive.__file__).parent
    names = []
    for path in root.rglob("*.py"):
        parts = path.relative_to(root).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        names.append(".".join(("relive", *parts)))
    return sorted(names)


def test_all_is_pinned_and_sorted() -> None:
    assert relive.__all__ == EXPORTED == sorted(EXPORTED)


def test_every_exported_name_exists_and_is_documented() -> None:
    for name in relive.__all__:
        obj = getattr(relive, name)
        if callable(obj):
            assert inspect.getdoc(obj), f"relive.{name} has no docstring"


def test_every_public_name_is_exported() -> None:
    for name in relive.__all__:
        getattr(relive, name)  # loaded on first use
    assert set(dir(relive)) >= set(relive.__all__)
    public = {
        name
        for name, value in vars(relive).items()
        if not name.startswith("_") and not inspect.ismodule(value)  # relive.testing
    }
    assert public == set(relive.__all__) - {"__version__"}


def test_no_public_name_shadows_a_submodule() -> None:
    submodules = {name.split(".")[1] for name in _modules() if name.count(".") >= 1}
    assert not submodules & set(relive.__all__)
    for name in submodules:  # `import relive.x` then `relive.x.Y` means the module
        importlib.import_module(f"relive.{name}")
        assert inspect.ismodule(getattr(relive, name)), name


def test_every_module_but_the_public_ones_is_private_by_its_name() -> None:
    modules = _modules()
    assert set(modules) >= PUBLIC_MODULES
    for name in set(modules) - PUBLIC_MODULES:
        parts = name.split(".")[1:]
        assert any(part.startswith("_") for part in parts), f"{name} looks public"


def test_every_module_has_a_docstring_and_the_public_ones_an_all() -> None:
    for info in pkgutil.walk_packages(relive.__path__, "relive."):
        module = importlib.import_module(info.name)
        assert module.__doc__, f"{info.name} has no module docstring"
    assert relive.testing.__all__ == sorted(relive.testing.__all__)
    for name in relive.testing.__all__:
        assert inspect.getdoc(getattr(relive.testing, name)), f"relive.testing.{name}"


def test_watch_takes_only_what_users_set() -> None:
    options = ["include", "exclude", "force_polling", "on_report", "on_error", "quiet", "verbose"]
    watch = inspect.signature(relive.watch).parameters
    assert list(watch) == ["paths", *options]
    assert all(watch[name].kind is inspect.Parameter.KEYWORD_ONLY for name in options)
    assert list(inspect.signature(relive.Watcher).parameters) == ["paths", *options]
    public = {name for name in vars(relive.Watcher) if not name.startswith("_")}
    assert public == {"describe", "engine", "roots", "running", "start", "stop"}


def test_the_state_api_reads_one_way() -> None:
    assert list(inspect.signature(relive.keep).parameters) == ["name", "factory", "rebuild"]
    assert list(inspect.signature(relive.drop_kept).parameters) == ["module", "name"]
    assert not hasattr(relive, "forget")


def test_the_supervisor_starts_without_loading_the_engine() -> None:
    # `relive run`'s parent process only watches files and restarts the worker: the
    # engine (tracker, diff, patcher) is loaded in the worker alone.
    code = "import sys, relive._cli; print(sorted(m for m in sys.modules if 'relive' in m))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = set(ast.literal_eval(out.stdout))
    assert loaded == {
        "relive",
        "relive._batching",
        "relive._cli",
        "relive._filewatch",
        "relive._filters",
        "relive._observers",
        "relive._output",
        "relive._protocol",
        "relive._supervisor",
        "relive._switch",
        "relive._tree",
    }


def test_import_relive_loads_a_name_on_first_use() -> None:
    code = (
        "import sys, relive; before = 'relive._engine' in sys.modules;"
        " relive.refresh; print(before, 'relive._engine' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "True"]
