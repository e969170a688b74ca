"""Which files are source: built-in ignores (VCS, caches, virtualenvs, editor files) and globs.

Pure path logic used by the watcher (watch.py) and the supervisor; no file events here.
"""

from __future__ import annotations

from collections.abc import Sequence
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Final

__all__ = [
    "IGNORED_DIRS",
    "IGNORED_FILES",
    "is_ignored",
    "is_ignored_dir",
    "matches",
    "under_ignored_dir",
]


IGNORED_DIRS: Final = frozenset(
    {".git", ".hg", ".svn", "__pycache__", ".mypy_cache", ".pytest_cache", ".ruff_cache"}
    | {".tox", ".nox", ".venv", "site-packages", "node_modules"}
)
"""Directory names never looked into (a virtualenv is also recognised by its `pyvenv.cfg`)."""

IGNORED_FILES: Final = (
    ".*.sw?",  # vim swap files: .x.py.swp, .swx, .swo
    "*~",  # backups: vim's x.py~, emacs
    ".#*",  # emacs lock files
    "#*#",  # emacs auto-save files
    "4913",  # vim's probe for a writable directory
    "*.tmp",
    "*___jb_tmp___",  # JetBrains safe write
    "*___jb_old___",
    ".~*",  # LibreOffice and some editors' lock/temp files
)
"""File-name globs of editor swap, backup and temporary files."""


def is_ignored(path: Path, *, root: Path | None = None) -> bool:
    """Tell whether `path` is never source: VCS and tool caches, virtualenvs, editor files.

    Args:
        path: An absolute file path.
        root: The watched directory `path` is under; only the part below it is looked at,
            so a project inside a directory called `env` is still watched.

    Returns:
        True when a directory on the way is one of `IGNORED_DIRS` or a virtualenv (it holds
        `pyvenv.cfg`), or the file name matches one of `IGNORED_FILES`.
    """
    parts = _relative(path, root).parts
    if not parts:
        return False
    if not IGNORED_DIRS.isdisjoint(parts) or _glob_hit(IGNORED_FILES, parts[-1]):
        return True
    return _inside_virtualenv(path, depth=len(parts) - 1)


def is_ignored_dir(path: Path, exclude: Sequence[str] = ()) -> bool:
    """Tell whether nothing under the directory `path` is ever source, so it need no watch.

    True for `IGNORED_DIRS`, a virtualenv (it holds `pyvenv.cfg`), and a directory whose
    name an `exclude` glob matches (every file below it is excluded, see `matches`).
    """
    if path.name in IGNORED_DIRS or _glob_hit(exclude, path.name):
        return True
    return (path / "pyvenv.cfg").is_file()


def under_ignored_dir(path: Path, root: Path) -> bool:
    """Tell whether the directory `path`, below `root`, lies in a tree never watched there.

    Such a directory asked for on its own (an editable install under ``.venv/src``) needs a
    watch of its own: `root`'s watch leaves that tree out.
    """
    if not path.is_relative_to(root):
        return False
    parts = path.relative_to(root).parts
    if not IGNORED_DIRS.isdisjoint(parts):
        return True
    return _inside_virtualenv(path / "_", depth=len(parts))


def matches(
    path: Path, include: Sequence[str], exclude: Sequence[str], *, root: Path | None = None
) -> bool:
    """Tell whether the user's globs select `path` (fnmatch-style, case-sensitive).

    Args:
        path: An absolute file path.
        include: Globs matched on the file name and on the path relative to `root`; an empty
            sequence selects every file.
        exclude: Globs matched on the file name, the relative path and each directory name
            below `root`; a hit removes the file.
        root: The watched directory `path` is under (without it, the whole path is used).

    Returns:
        True when some include glob matches and no exclude glob does.
    """
    relative = _relative(path, root)
    name, posix = path.name, relative.as_posix()
    if include and not _glob_hit(include, name, posix):
        return False
    return not _glob_hit(exclude, name, posix, *relative.parts[:-1])


def _relative(path: Path, root: Path | None) -> Path:
    if root is not None and path.is_relative_to(root):
        return path.relative_to(root)
    return path


def _glob_hit(globs: Sequence[str], *names: str) -> bool:
    return any(fnmatchcase(name, glob) for glob in globs for name in names)


def _inside_virtualenv(path: Path, *, depth: int) -> bool:
    """Whether one of the `depth` directories right above `path` holds a `pyvenv.cfg`."""
    return any((parent / "pyvenv.cfg").is_file() for parent in path.parents[:depth])
