"""relive: apply source edits to a running Python program.

Edited functions and classes are patched in place, module state the edit did not touch is
kept, dependents follow, and a broken edit changes nothing. See README.md and DESIGN.md.
"""

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
