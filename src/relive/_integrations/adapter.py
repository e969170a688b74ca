"""What relive does around each reload for one served app, framework by framework.

An adapter is told before a reload which modules changed (it may ask for a restart
instead), gets ready for the engine (``prepare``), and afterwards brings the framework's
own derived state up to date (``settle``): routes built from signatures, a middleware
stack, URL caches. The base class only checks that the server still holds the app the
program defines; ``relive._integrations.servers`` calls them all.
"""

from __future__ import annotations

from collections.abc import Sequence, Set
from pathlib import Path
from typing import Any

from relive._engine import Report
from relive._integrations.binding import AppBinding
from relive._tracker import TrackedModule

__all__ = ["AppAdapter"]


class AppAdapter:
    """Hooks around a reload for one served app; subclasses add their framework's rules.

    The hooks run inside the request gate's exclusive side: no request runs meanwhile.

    Args:
        app: The app object the server holds (unwrapped from the server's own layers).
        binding: Where the program binds it, if known.
        name: How it is named in messages (``FastAPI app``).
    """

    def __init__(self, app: Any, binding: AppBinding | None, name: str = "app") -> None:
        self.app: Any = app
        self.binding = binding
        self.name = name

    def check(self, changed: Sequence[TrackedModule]) -> None:
        """Before anything is applied: raise ``RestartRequired`` when one of the
        ``changed`` modules holds what the framework reads once, at start-up."""

    def prepare(self) -> None:
        """Just before the engine applies the edit: note what the edit may change."""

    def settle(self, report: Report | None) -> None:
        """After the engine: ``report`` when the edit was applied, None when it was
        rejected (undo what the failed attempt did to the app). Raise ``RestartRequired``
        when the app cannot follow the edit in place: here, when the edit made a new app
        object or changed the function that built the served one."""
        if report is not None and self.binding is not None:
            self.binding.check(self.app, report)

    def asset_roots(self) -> list[Path]:
        """Directories of files the framework caches (templates), watched for changes."""
        return []

    def assets_changed(self, paths: Set[Path]) -> None:
        """Templates or static files changed (inside the gate): drop what caches them."""
