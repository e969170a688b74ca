"""relive: apply source edits to a running Python program.

Edited functions and classes are patched in place, module state the edit did not touch is
kept, dependents follow, and a broken edit changes nothing. See README.md and DESIGN.md.

The names below are loaded on first use, so ``relive run``'s supervisor, which imports
none of them, starts without loading the engine.
"""

import importlib as _importlib
import typing as _typing

if _typing.TYPE_CHECKING:
    from relive._engine import Engine, ModuleReport, Report, get_engine, refresh, reload
    from relive._errors import ReloadError, RestartRequired
    from relive._ipython import load_ipython_extension, unload_ipython_extension
    from relive._lifecycle import after_reload, before_reload, drop_kept, keep
    from relive._loops import loop
    from relive._watcher import Watcher, watch

__version__ = "0.1.0"

__all__ = [
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

_HOMES = {
    "Engine": "relive._engine",
    "ModuleReport": "relive._engine",
    "Report": "relive._engine",
    "get_engine": "relive._engine",
    "refresh": "relive._engine",
    "reload": "relive._engine",
    "ReloadError": "relive._errors",
    "RestartRequired": "relive._errors",
    "load_ipython_extension": "relive._ipython",
    "unload_ipython_extension": "relive._ipython",
    "after_reload": "relive._lifecycle",
    "before_reload": "relive._lifecycle",
    "drop_kept": "relive._lifecycle",
    "keep": "relive._lifecycle",
    "loop": "relive._loops",
    "Watcher": "relive._watcher",
    "watch": "relive._watcher",
}


def __getattr__(name: str) -> object:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'relive' has no attribute {name!r}")
    value = getattr(_importlib.import_module(home), name)
    globals()[name] = value  # looked up once
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
