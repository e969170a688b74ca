"""The exception tree: every error relive raises or reports.

    ReloadError              an edit could not be applied; nothing was changed
     └── RestartRequired     the edit is valid but cannot be applied in place faithfully

Each error carries where it happened (``path``, ``lineno``, ``line``: the offending
source line) and the module's name as attributes; the original exception, when there is
one, is its ``__cause__``. ``str(error)`` is one line: ``path:lineno: what happened``.
"""

from __future__ import annotations

__all__ = ["ReloadError", "RestartRequired"]


class ReloadError(Exception):
    """An edit could not be applied; the running program was left exactly as it was.

    Attributes:
        message: What went wrong, without the location.
        path: The file the error is in, if known.
        lineno: The 1-based line in ``path``, if known.
        line: The text of that line (stripped), if known.
        module: The dotted name of the module being reloaded, if known.
    """

    def __init__(
        self,
        message: str,
        *,
        path: str | None = None,
        lineno: int | None = None,
        line: str | None = None,
        module: str | None = None,
    ) -> None:
        self.message = message
        self.path = path
        self.lineno = lineno
        self.line = line
        self.module = module
        super().__init__(self._one_line())

    def _one_line(self) -> str:
        if self.path is None:
            return self.message
        where = self.path if self.lineno is None else f"{self.path}:{self.lineno}"
        return f"{where}: {self.message}"

    def describe(self) -> str:
        """The one-line message, followed by the offending source line when known."""
        if self.line:
            return f"{self}\n    {self.line}"
        return str(self)


class RestartRequired(ReloadError):
    """The edit is valid but cannot be applied to the live objects faithfully.

    Examples: a class's bases, metaclass or ``__slots__`` changed. Under ``relive run``
    the program is restarted instead; elsewhere nothing was changed.
    """
