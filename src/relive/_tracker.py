"""Tracked modules: which modules are the user's, their source as last applied, who imports whom.

A module is tracked when it was loaded from a ``.py`` file outside the standard library
and site-packages (unless included explicitly), from the moment relive first sees it.
Content decides whether a module changed; file status is only a fast first check.
"""

from __future__ import annotations

import ast
import bisect
import importlib.abc
import importlib.machinery
import importlib.util
import itertools
import os
import re
import sys
import sysconfig
import types
import weakref
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType, ModuleType

from relive._codenames import STAR_IMPORT, load_code, loaded_and_used, may_load
from relive._heap import thread_frames
from relive._reparse import source_lines
from relive._scan import scan_statements
from relive._segments import StatementIndex, build_index, statement_at
from relive._sources import (
    StatKey,
    bytecode_matches,
    compiled_from,
    process_start_time,
    read_source,
    stat_key,
    written_recently,
)
from relive._statements import Statement, analyze_body
from relive._writers import being_written

__all__ = [
    "TrackedModule",
    "Tracker",
    "Unreadable",
    "excluded_prefixes",
    "function_bodies",
    "imported_names",
    "not_loaded_yet",
]

_IMPORT_STATEMENT = re.compile(
    r"^([ \t]*)(?:from[ \t]+(\.*[\w.]*)[ \t]+import\b"
    r"|import[ \t]+([\w.]+(?:[ \t]*,[ \t]*[\w.]+)*))",
    re.MULTILINE,
)
_STAR_IMPORT = re.compile(r"import[\s\\]*\*")  # ``from m import *``, continued or not
_DEF_LINE = re.compile(r"^([ \t]*)(?:async[ \t]+)?def[ \t]", re.MULTILINE)
_DEDENT: dict[int, re.Pattern[str]] = {}  # by the indentation of a def: its body's end
_RELIVE_DIR = str(Path(__file__).resolve().parent) + os.sep

_KEPT_TEXT = 200  # characters: a statement cut out this short is kept for the whole edit
Buried = dict[tuple[str, str], list[object]]  # (kind, name) -> removed definitions' objects
SCAN_ABOVE = 100_000  # characters: a source this large is scanned for its statements
_REACHES_KEPT = 100_000  # Tracker.may_reach answers remembered (then all forgotten)
_GRAVEYARD_SIZE = 64  # removed definitions kept per module (the oldest leave first)
# The code object last read for a module, with the source it belongs to (one at a time).
_LAST_CODE: dict[str, tuple[str, types.CodeType]] = {}


@dataclass
class Definitions:
    """The object bound by each definition statement of a module, by the statement's first
    line in the current source, and the objects of definitions an edit removed (its
    graveyard: one restored under the same name is the object it was).

    A reload stages its changes (:meth:`stage`); they become the record on :meth:`commit`.
    """

    made: dict[int, object] = field(default_factory=dict)
    graveyard: Buried = field(default_factory=dict)
    _staged: tuple[dict[int, object], Buried] | None = field(default=None, repr=False)

    def current(self) -> tuple[dict[int, object], Buried]:
        """The record as the running reload sees it (staged by an earlier visit, or not)."""
        return self._staged or (self.made, self.graveyard)

    def stage(self, made: dict[int, object], graveyard: Buried) -> bool:
        """Stage a new record; True the first time in a reload."""
        first = self._staged is None
        self._staged = (made, graveyard)
        return first

    def unstage(self) -> None:
        """Drop what a reload staged (it was rolled back)."""
        self._staged = None

    def commit(self) -> None:
        """Make the staged record the record."""
        if self._staged is not None:
            self.made, self.graveyard = self._staged
            self._staged = None
            _trim(self.graveyard)


def _trim(graveyard: Buried) -> None:
    count = sum(len(objects) for objects in graveyard.values())
    while count > _GRAVEYARD_SIZE:
        key = next(iter(graveyard))
        graveyard[key].pop(0)
        if not graveyard[key]:
            del graveyard[key]
        count -= 1


@dataclass(eq=False)
class TrackedModule:
    """One module relive manages, with the source it was last applied from.

    ``source`` is None when the file changed between its import and the moment relive
    first saw it, so the imported text is unknown: its first reload then re-runs it whole
    (functions and classes still patched in place).
    """

    name: str
    path: str  # the real path of the file, for the file system
    filename: str  # the path as the module's code objects name it (``__file__``)
    source: str | None
    stat: StatKey
    imports: frozenset[str] = frozenset()
    missing: bool = False
    failed: str | None = None  # the text of the last edit that failed to apply
    # The text its top-level code started from, when known: a ``<module>`` frame still
    # running (the script's main loop, an import in progress) runs that text, not ``source``.
    started: str | None = None
    # Why the file as it is now cannot be read as Python source (not valid UTF-8, an
    # unknown encoding), with the line and the status of the file it was found in.
    unreadable: Unreadable | None = None
    # The last text read from the file by :meth:`Tracker.changed_on_disk`, with the status it
    # was read at: what a commit of that very text records (a status taken later could be
    # that of a newer save, which would then pass for applied).
    read: tuple[str, StatKey] | None = field(default=None, repr=False)
    module_ref: Callable[[], object] = field(default=lambda: None, repr=False)
    definitions: Definitions = field(default_factory=Definitions, repr=False)
    _statements: list[Statement] | None = field(default=None, repr=False)
    _lean: bool = field(default=False, repr=False)  # the statements' trees let go (some)
    # What the top-level code of ``source`` loads (see ``_codenames``); False: not known yet.
    # Kept as tuples: the collector stops tracking a tuple of strings, never a frozenset.
    _top_names: tuple[str, ...] | bool | None = field(default=False, repr=False)
    # Every name its top-level code loads (its own too: see ``_codenames.names_used``).
    _top_uses: tuple[str, ...] | None = field(default=None, repr=False)
    # Where its top-level statements start (see ``_segments``); None: not to be trusted,
    # False: not built yet. Statements cut out of it are kept until :meth:`lean`.
    _index: StatementIndex | bool | None = field(default=False, repr=False)
    _cut: dict[int, Statement] | None = field(default=None, repr=False)
    # The statements of the index that are classes computing nothing but their methods (a
    # bit each): what changes elsewhere never makes one run again.
    plain_classes: int = field(default=0, repr=False)
    # What an edit elsewhere read of its statements (``_importers.summary_at``), by number:
    # marshalled, kept while ``source`` stays (a later edit parses none of them again).
    summaries: dict[int, bytes] = field(default_factory=dict, repr=False)
    # Where each statement's text that runs at import ends (a plain ``def``'s before its
    # body), by number; and the statements that may call changed code, with the names
    # they were found for (``_importers``). Kept while ``source`` stays.
    top_level_ends: dict[int, int] = field(default_factory=dict, repr=False)
    calling: tuple[str, tuple[int, ...]] | None = field(default=None, repr=False)

    @property
    def package(self) -> str:
        """The package relative imports resolve against."""
        module = sys.modules.get(self.name)
        package = getattr(module, "__package__", None)
        if isinstance(package, str):
            return package
        return self.name.rpartition(".")[0]

    def statements(self) -> list[Statement]:
        """The analysed top-level statements of ``source`` (read once, then cached).

        A large source is scanned, not parsed (see ``relive._scan``): its definitions'
        trees are parsed one by one when asked for.
        """
        if self._statements is None:
            text = self.source or ""
            if len(text) >= SCAN_ABOVE:
                package = self.package
                scanned = scan_statements(
                    text, module=self.name, package=package, filename=self.path
                )
                if scanned is not None:
                    self._statements, self._lean = scanned, True
                    return scanned
            tree = ast.parse(text, self.path)
            self._statements = analyze_body(
                tree.body, source_lines(text), module=self.name, package=self.package
            )
        return self._statements

    def may_read(self, names: Iterable[str]) -> bool:
        """Whether the top-level code of ``source`` may load one of ``names`` (a first
        filter on the code object's names: False rules the module out without a parse)."""
        if self._top_names is False:
            code = self._read_names()
            if code is not None and may_load(self.top_level_loads(), names):
                self._build_index(code)  # about to be asked: from the code object in hand
        return may_load(self.top_level_loads(), names)

    def _read_names(self) -> types.CodeType | None:
        """Read what the top-level code loads from the code object (returned)."""
        code = self._code()
        if code is None or STAR_IMPORT.search(self.source or ""):
            self._top_names = self._top_uses = None
        else:
            loaded, used = loaded_and_used(code)
            self._top_names, self._top_uses = tuple(sorted(loaded)), tuple(sorted(used))
        return code

    def top_level_loads(self) -> frozenset[str] | None:
        """The names of other modules the top-level code of ``source`` loads (imported
        names, attributes), or None when that cannot be said (a star import...)."""
        if self._top_names is False:
            self._read_names()
        assert not isinstance(self._top_names, bool)
        return None if self._top_names is None else frozenset(self._top_names)

    def top_level_uses(self) -> frozenset[str] | None:
        """Every name the top-level code of ``source`` loads (its own bindings, builtins,
        attributes; not function bodies), or None when that cannot be said."""
        if self._top_names is False:
            self._read_names()
        return None if self._top_uses is None else frozenset(self._top_uses)

    def index(self) -> StatementIndex | None:
        """Where the top-level statements of ``source`` start (None: not known for sure)."""
        if self._index is False:
            self._build_index(self._code())
        assert not isinstance(self._index, bool)
        return self._index

    def statement_at(self, number: int) -> Statement:
        """Top-level statement ``number`` of :meth:`index`, parsed alone (a short one is
        kept until :meth:`drop_cut`: the edit asks for it again; a long one, a class or a
        function, is parsed again when asked: many of them kept at once would weigh).

        Raises:
            Untrusted: The index was wrong about it (see :meth:`distrust`).
        """
        index = self.index()
        assert index is not None
        cut = self._cut if self._cut is not None else {}
        self._cut = cut
        found = cut.get(number)
        if found is None:
            source = self.source or ""
            found = statement_at(index, source, number, self.name, self.package)
            if len(found.text) <= _KEPT_TEXT:
                cut[number] = found
        return found

    def drop_cut(self) -> None:
        """Let go of the statements :meth:`statement_at` cut out (an edit is over)."""
        self._cut = None

    def distrust(self) -> None:
        """Drop an index that proved wrong: the module takes the whole-module path."""
        self._index, self._cut = None, None
        self.summaries, self.top_level_ends, self.calling = {}, {}, None

    def _code(self) -> types.CodeType | None:
        """The module's code object (its ``.pyc``, or ``source`` compiled). The last one
        read is held until another is read or the edit is over (:meth:`Tracker.drop_code`):
        an importer's names and its index are read from it one after the other."""
        source = self.source
        if source is None:
            return None
        held = _LAST_CODE.get(self.name)
        if held is not None and held[0] is source:
            return held[1]
        code = load_code(source, self.filename, self.path, self.stat)
        _LAST_CODE.clear()
        if code is not None:
            _LAST_CODE[self.name] = (source, code)
        return code

    def _build_index(self, code: types.CodeType | None) -> None:
        source = self.source
        if code is None or source is None:
            self._index = None
        else:
            self._index = build_index(source, code, self.name, self.package)

    def lean(self, names: Iterable[str] = ()) -> None:
        """Let go of the statements' syntax trees; they are parsed again as needed.

        For a module relive read only to follow an edit elsewhere: its text, what each
        statement binds and what it reads (worked out now for those mentioning ``names``)
        are kept.
        """
        if self._statements is None:
            return
        self._statements = [statement.lean(names) for statement in self._statements]
        self._lean = True

    @property
    def is_analysed(self) -> bool:
        """Whether its statements were parsed and are kept (see :meth:`statements`)."""
        return self._statements is not None

    @property
    def is_lean(self) -> bool:
        """Whether some statements have let go of their trees (see :meth:`lean`)."""
        return self._lean

    def update(
        self,
        source: str,
        statements: list[Statement],
        stat: StatKey | None,
        imports: frozenset[str] | None = None,
    ) -> None:
        """Record that ``source`` is now what the module runs (and imports)."""
        self.source = source
        self._statements = statements
        self._top_names, self._top_uses = False, None
        self._index, self._cut, self.plain_classes = False, None, 0
        self.summaries, self.top_level_ends, self.calling = {}, {}, None
        self._lean = False
        self.imports = imported_names(source, self.package) if imports is None else imports
        if stat is not None:
            self.stat = stat
        self.missing = False
        self.failed = None


class _SourceRecorder(importlib.abc.MetaPathFinder):
    """Records the source of the user's modules as they are imported.

    Sits first in ``sys.meta_path``: the file is read once, here, so the tracker knows the
    imported text even if the file changes before its first reload, whichever finder
    loads it (pytest's assertion rewriting hook compiles a rewritten tree of the same
    text: its code is not the file's compiled, but the text is what ran). It returns what
    ``PathFinder`` finds when ``PathFinder`` comes right after it (the module is found
    exactly as it would have been, looked up once), and nothing otherwise, so the
    finders before ``PathFinder`` still decide.
    """

    def __init__(self, tracker: Tracker) -> None:
        self.tracker = weakref.ref(tracker)

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        spec = importlib.machinery.PathFinder.find_spec(fullname, path, target)
        tracker = self.tracker()
        origin = getattr(spec, "origin", None)
        if tracker is not None and isinstance(origin, str) and origin.endswith(".py"):
            tracker.capture(os.path.realpath(origin), fullname, spec)
        return spec if self._before_path_finder() else None

    def _before_path_finder(self) -> bool:
        finders = sys.meta_path
        for index, finder in enumerate(finders):
            if finder is self:
                following = finders[index + 1] if index + 1 < len(finders) else None
                return following is importlib.machinery.PathFinder
        return False


class Tracker:
    """The set of tracked modules, their source cache and the import index."""

    def __init__(self, *, include: Sequence[str | os.PathLike[str]] = ()) -> None:
        self._excluded = excluded_prefixes()
        self._included = tuple(str(Path(p).resolve()) + os.sep for p in include)
        self._modules: dict[str, TrackedModule] = {}
        self._by_path: dict[str, list[TrackedModule]] = {}
        # Modules imported through a symbolic link, by the link's path (as ``__file__``).
        self._by_link: dict[str, list[TrackedModule]] = {}
        self._seen: set[str] = set()
        self._started = process_start_time()
        self._captured: dict[str, tuple[str, StatKey]] = {}
        self._importers: dict[str, set[str]] = {}  # module → tracked modules importing it
        self._reaches: dict[tuple[str, str], tuple[str, bool]] = {}  # see may_reach
        self._failed: dict[str, TrackedModule] = {}  # modules whose last edit failed
        self._recorder: _SourceRecorder | None = None
        self._real_directories: dict[str, str] = {}
        # Told what a user module imported now will import (during a transaction).
        self.on_import: Callable[[frozenset[str]], None] | None = None
        self._main: Callable[[], object] = _nothing  # the ``__main__`` module last scanned

    def record_imports(self) -> None:
        """Record the source of user modules imported from now on (idempotent)."""
        if self._recorder is not None and self._recorder in sys.meta_path:
            return
        self._recorder = _SourceRecorder(self)
        sys.meta_path.insert(0, self._recorder)

    def stop_recording(self) -> None:
        """Remove the import recorder."""
        if self._recorder is not None and self._recorder in sys.meta_path:
            sys.meta_path.remove(self._recorder)
        self._recorder = None

    def remember(self, path: str, source: str, stat: StatKey) -> None:
        """Remember the text a user file had when it was imported (read by someone else)."""
        if self.is_user_file(path):
            self._captured.setdefault(path, (source, stat))

    def capture(
        self, path: str, name: str = "", spec: importlib.machinery.ModuleSpec | None = None
    ) -> None:
        """Remember a user file's source as it is being imported."""
        if not self.is_user_file(path):
            return
        try:
            self._captured[path] = (read_source(path), stat_key(path))
        except (OSError, UnicodeDecodeError, SyntaxError):
            self._captured.pop(path, None)
            return
        if self.on_import is not None and spec is not None:
            package = (
                name if spec.submodule_search_locations is not None else name.rpartition(".")[0]
            )
            self.on_import(_import_targets(self._captured[path][0], package))

    # -- discovery ------------------------------------------------------------------

    def scan(self) -> list[TrackedModule]:
        """Start tracking modules imported since the last scan; returns the new ones."""
        self._see_main()
        if len(self._seen) == len(sys.modules) and all(
            name in self._seen for name in itertools.islice(reversed(sys.modules), 8)
        ):
            return []
        added: list[TrackedModule] = []
        modules = list(sys.modules.items())
        if "__main__" in sys.modules:  # first: its other names (``__mp_main__``) are aliases
            modules.insert(0, ("__main__", sys.modules["__main__"]))
        for name, module in modules:
            if name in self._seen or not_loaded_yet(module):
                continue  # a lazy module is looked at once the program loads it
            self._seen.add(name)
            tracked = self._track(name, module, explicit=False)
            if tracked is not None:
                added.append(tracked)
        self._seen.intersection_update(sys.modules)
        return added

    def _see_main(self) -> None:
        """Scan ``__main__`` again when it is another module (``runpy`` runs the script as
        a new ``__main__``)."""
        main = sys.modules.get("__main__")
        if main is not self._main():
            self._main = weakref.ref(main) if main is not None else _nothing
            self._seen.discard("__main__")
            self.forget("__main__")

    def track(self, module: ModuleType) -> TrackedModule:
        """Track a module the user named explicitly, wherever its file is."""
        tracked = self._modules.get(module.__name__)
        if tracked is not None and tracked.module_ref() is module:
            return tracked
        self.forget(module.__name__)
        tracked = self._track(module.__name__, module, explicit=True)
        if tracked is None:
            raise LookupError(f"module {module.__name__} has no Python source file to reload")
        self._seen.add(module.__name__)
        return tracked

    def _track(self, name: str, module: object, *, explicit: bool) -> TrackedModule | None:
        path = _source_path(name, module, self._real_directories)
        if path is None or not (explicit or self.is_user_file(path)):
            return None
        if any(other.module_ref() is module for other in self._by_path.get(path, ())):
            return None  # one module under two names (``__mp_main__`` is ``__main__``)
        captured = self._captured.pop(path, None)
        try:
            source, stat = captured or (read_source(path), stat_key(path))
        except (OSError, UnicodeDecodeError, SyntaxError):
            return None
        if captured is None and not self._baseline_trusted(module, path, stat):
            source_known: str | None = None
        else:
            source_known = source
        filename = source_file(module) or path if isinstance(module, ModuleType) else path
        tracked = TrackedModule(name, path, filename, source_known, stat, started=source_known)
        tracked.module_ref = (
            weakref.ref(module) if isinstance(module, ModuleType) else tracked.module_ref
        )
        self._modules[name] = tracked
        self._by_path.setdefault(path, []).append(tracked)
        link = _link_path(filename, path)
        if link is not None:
            self._by_link.setdefault(link, []).append(tracked)
        self._index(tracked, imported_names(source, tracked.package))
        return tracked

    def _index(self, tracked: TrackedModule, imports: frozenset[str]) -> None:
        """Record what ``tracked`` imports in the reverse index (imported → importers)."""
        for name in tracked.imports - imports:
            self._importers.get(name, set()).discard(tracked.name)
        for name in imports:
            self._importers.setdefault(name, set()).add(tracked.name)
        tracked.imports = imports

    def commit(
        self,
        tracked: TrackedModule,
        source: str,
        statements: list[Statement],
        stat: StatKey | None,
        imports: frozenset[str],
    ) -> None:
        """Record that ``tracked`` now runs ``source`` (after a successful reload)."""
        indexed = tracked.imports
        self._failed.pop(tracked.name, None)
        tracked.update(source, statements, stat, imports)
        tracked.imports = indexed  # what the reverse index holds, until _index moves it
        self._index(tracked, imports)

    def mark_failed(self, tracked: TrackedModule, source: str | None) -> None:
        """Record that applying ``source`` to ``tracked`` failed (until a reload commits)."""
        tracked.failed = source
        self._failed[tracked.name] = tracked

    def _reverted(self, tracked: TrackedModule) -> None:
        """The file is back to the text the module runs: an edit that failed before is
        tried again (and refused again) when it is saved again."""
        if tracked.failed is not None:
            tracked.failed = None
            self._failed.pop(tracked.name, None)

    def failed(self) -> list[TrackedModule]:
        """The tracked modules whose last edit failed to apply, still imported."""
        return [tracked for tracked in list(self._failed.values()) if self.alive(tracked)]

    def is_user_file(self, path: str) -> bool:
        """Whether a file is the user's code (not the standard library, site-packages, relive)."""
        if self._included and path.startswith(self._included):
            return True
        return not path.startswith(self._excluded)

    def _baseline_trusted(self, module: object, path: str, stat: StatKey) -> bool:
        """Whether the file on disk is what the module was imported from."""
        if stat[0] / 1e9 < self._started:
            return True
        if bytecode_matches(getattr(module, "__cached__", None), stat, path):
            return True
        return _code_matches(module, path)

    # -- queries --------------------------------------------------------------------

    def get(self, name: str) -> TrackedModule | None:
        """The tracked module of that name, if it is still imported."""
        tracked = self._modules.get(name)
        return tracked if tracked is not None and self.alive(tracked) else None

    def modules(self) -> list[TrackedModule]:
        """All tracked modules still imported (others are forgotten on the way)."""
        live: list[TrackedModule] = []
        for tracked in list(self._modules.values()):
            if self.alive(tracked):
                live.append(tracked)
        return live

    def alive(self, tracked: TrackedModule) -> bool:
        """Whether the module is still the one in ``sys.modules``; forgets it if not."""
        module = sys.modules.get(tracked.name)
        if module is not None and module is tracked.module_ref():
            return True
        self.forget(tracked.name)
        self._seen.discard(tracked.name)
        return False

    def by_path(self, path: str) -> list[TrackedModule]:
        """The tracked modules loaded from a file (usually one), or through a symbolic
        link at ``path`` (retargeted, maybe)."""
        found = [*self._by_path.get(path, ()), *self._by_link.get(path, ())]
        return [tracked for tracked in dict.fromkeys(found) if self.alive(tracked)]

    def _follow_link(self, tracked: TrackedModule) -> None:
        """A module imported through a symbolic link follows the link as it is now, as a
        fresh import would (the link was pointed at another file)."""
        link = _link_path(tracked.filename, tracked.path)
        if link is None:
            return
        real = os.path.realpath(link)
        if real == tracked.path or not os.path.isfile(real):
            return
        self._by_path[tracked.path].remove(tracked)
        if not self._by_path[tracked.path]:
            del self._by_path[tracked.path]
        tracked.path = real
        tracked.stat = (0, -1, 0)  # another file: its content decides
        self._by_path.setdefault(real, []).append(tracked)

    def directories(self) -> set[str]:
        """The directories the tracked modules were loaded from."""
        return {os.path.dirname(path) for path in self._by_path}

    def importers_of(self, name: str, *, direct: bool = False) -> list[TrackedModule]:
        """Tracked modules whose source may import ``name`` (or import from its package,
        unless ``direct``)."""
        candidates = self._importers.get(name, set())
        if not direct:
            candidates = candidates | self._importers.get(name.rpartition(".")[0], set())
        found: list[TrackedModule] = []
        for importer in sorted(candidates - {name}):
            tracked = self._modules.get(importer)
            if tracked is not None and self.alive(tracked):
                found.append(tracked)
        return found

    def may_reach(self, importer: TrackedModule, name: str, source: str | None) -> bool:
        """Whether ``importer`` (its text ``source``) may reach module ``name``: it imports
        it, or imports its package (``import pkg.other``) and its text names the module
        (``pkg.name``, ``from pkg import name``) or star-imports. Remembered per source."""
        if source is None or importer.name in self._importers.get(name, ()):
            return True
        key = (importer.name, name)
        known = self._reaches.get(key)
        if known is not None and known[0] is source:
            return known[1]
        found = name.rpartition(".")[2] in source or _STAR_IMPORT.search(source) is not None
        if len(self._reaches) >= _REACHES_KEPT:
            self._reaches.clear()  # forgotten modules' entries go too
        self._reaches[key] = (source, found)
        return found

    def drop_code(self) -> None:
        """Let go of the code object last read for a module (an edit is over: a large
        module's code would stay on the heap until the next edit)."""
        _LAST_CODE.clear()

    def forget(self, name: str) -> None:
        """Stop tracking a module (it left ``sys.modules``)."""
        tracked = self._modules.pop(name, None)
        self._failed.pop(name, None)
        if tracked is not None:
            self._index(tracked, frozenset())
            self._by_path[tracked.path].remove(tracked)
            if not self._by_path[tracked.path]:
                del self._by_path[tracked.path]
            link = _link_path(tracked.filename, tracked.path)
            if link is not None and tracked in self._by_link.get(link, ()):
                self._by_link[link].remove(tracked)
                if not self._by_link[link]:
                    del self._by_link[link]

    def changed_on_disk(
        self, modules: Iterable[TrackedModule]
    ) -> list[tuple[TrackedModule, str | None]]:
        """Modules whose content differs from the cache, with the new source (None: gone)."""
        changed: list[tuple[TrackedModule, str | None]] = []
        for tracked in modules:
            self._follow_link(tracked)
            try:
                found = self._read_settled(tracked)
            except OSError:
                if not tracked.missing:
                    changed.append((tracked, None))
                continue
            if found is None:
                continue
            source, stat = found
            if source is None:
                changed.append((tracked, None))
                continue
            if source == tracked.source and not tracked.missing:
                tracked.stat = stat
                self._reverted(tracked)
                continue
            tracked.read = (source, stat)
            changed.append((tracked, source))
        return changed

    def _read_settled(self, tracked: TrackedModule) -> tuple[str | None, StatKey] | None:
        """The file's text (None: unreadable or gone) and the status it was read at;
        None when it is unchanged, already reported unreadable, or still being written.

        Raises:
            OSError: The file cannot be looked at (gone).
        """
        for _attempt in range(_READ_ATTEMPTS):
            stat = stat_key(tracked.path)
            if _unchanged(tracked, stat):
                return None
            if tracked.unreadable is not None and tracked.unreadable.stat == stat:
                return None  # told already
            tracked.unreadable = None
            try:
                source: str | None = read_source(tracked.path)
            except (UnicodeDecodeError, SyntaxError) as exc:
                source, tracked.unreadable = None, Unreadable.of(exc, stat)
            except OSError:
                source = None
            if being_written(tracked.path):
                tracked.unreadable = None
                return None  # a save in progress: the close of its writer brings it again
            if _same_status(tracked.path, stat):
                return source, stat
            # Written again (or only touched: no event would come) while it was read.
            tracked.unreadable = None
        return None


# How many times a file that keeps changing while it is read is read again.
_READ_ATTEMPTS = 5


@dataclass(frozen=True)
class Unreadable:
    """Why a file cannot be read as Python source, where, and its status then."""

    message: str
    lineno: int | None
    line: str | None
    stat: StatKey

    @classmethod
    def of(cls, exc: UnicodeDecodeError | SyntaxError, stat: StatKey) -> Unreadable:
        """From the error decoding the file's bytes (or reading its coding line)."""
        if isinstance(exc, SyntaxError):  # the coding line names an unknown encoding
            return cls(exc.msg, exc.lineno, (exc.text or "").strip() or None, stat)
        data = bytes(exc.object)
        lineno = data.count(b"\n", 0, exc.start) + 1
        start = data.rfind(b"\n", 0, exc.start) + 1
        end = data.find(b"\n", exc.start)
        line = data[start : end if end >= 0 else len(data)].decode(exc.encoding, "replace")
        encoding = "UTF-8" if exc.encoding.replace("-", "").lower() == "utf8" else exc.encoding
        message = (
            f"not valid {encoding} (byte 0x{data[exc.start]:02x}): save the"
            " file as UTF-8, or name its encoding in a coding line"
        )
        return cls(message, lineno, line.strip() or None, stat)


def not_loaded_yet(module: object) -> bool:
    """Whether ``module`` waits to be loaded on first use (``importlib.util.LazyLoader``):
    reading any attribute of it would load it, so relive does not look at it yet."""
    lazy = getattr(importlib.util, "_LazyModule", None)
    return lazy is not None and type(module) is lazy


def _unchanged(tracked: TrackedModule, stat: StatKey) -> bool:
    """Whether the file's status tells that it still holds the text relive knows.

    Not when the text is unknown (the file changed between the import and relive's first
    look, so the same status is no sign of the same text, however long ago it was
    written: such a file is compared every time), nor for a file written so recently that
    another write could share its status.
    """
    if tracked.source is None or tracked.missing or stat != tracked.stat:
        return False
    return not written_recently(stat[0])


def _same_status(path: str, stat: StatKey) -> bool:
    """Whether the file read after ``stat`` was taken is still the file of that status."""
    try:
        return stat_key(path) == stat
    except OSError:
        return False


def _link_path(filename: str, path: str) -> str | None:
    """Where a module imported as ``filename`` (resolved: ``path``) was linked from, when a
    symbolic link led to it; None otherwise."""
    absolute = os.path.abspath(filename)
    return absolute if absolute != path and absolute.endswith(".py") else None


def _nothing() -> None:
    return None


def _source_path(name: str, module: object, directories: dict[str, str]) -> str | None:
    if not isinstance(module, ModuleType):
        return None
    path = source_file(module)
    if path is None:
        return None
    spec = getattr(module, "__spec__", None)
    if spec is not None and not getattr(spec, "has_location", True):
        return None
    return _realpath(path, directories)


def source_file(module: ModuleType) -> str | None:
    """The file a module's code came from, as its code objects name it: its spec's origin
    when the program set ``__file__`` to another file after the import (``tlz`` shows
    ``toolz``'s file: an edit of that file is not an edit of ``tlz``), else ``__file__``."""
    path = getattr(module, "__file__", None)
    if not isinstance(path, str) or not path.endswith(".py"):
        return None
    origin = getattr(getattr(module, "__spec__", None), "origin", None)
    if (
        isinstance(origin, str)
        and origin.endswith(".py")
        and origin != path
        and os.path.abspath(origin) != os.path.abspath(path)
    ):
        return origin
    return path


def _realpath(path: str, directories: dict[str, str]) -> str:
    """``os.path.realpath``, resolving each directory once (modules share few of them)."""
    directory, base = os.path.split(os.path.abspath(path))
    if os.path.islink(path):
        return os.path.realpath(path)
    real = directories.get(directory)
    if real is None:
        real = directories[directory] = os.path.realpath(directory)
    return os.path.join(real, base)


def excluded_prefixes() -> tuple[str, ...]:
    import site

    paths = sysconfig.get_paths()
    candidates = {
        paths[key] for key in ("stdlib", "platstdlib", "purelib", "platlib") if key in paths
    }
    candidates.update(getattr(site, "getsitepackages", list)())
    user_site = getattr(site, "getusersitepackages", lambda: None)()
    if isinstance(user_site, str):
        candidates.add(user_site)
    prefixes = {os.path.realpath(p) + os.sep for p in candidates if p}
    prefixes.add(_RELIVE_DIR)
    return tuple(sorted(prefixes))


def imported_names(source: str, package: str) -> frozenset[str]:
    """The modules a source may import when it runs (a quick scan of its text, not a parse).

    Imports inside function bodies run when the function is called, not at import time:
    they are left out, so they make no false cycles (an ``if``/``try``/class body counts).
    """
    names: set[str] = set()
    bodies: list[tuple[int, int]] | None = None
    for match in _IMPORT_STATEMENT.finditer(source):
        if match.group(1):  # indented: inside a function body, or in an if, try, class
            bodies = function_bodies(source) if bodies is None else bodies
            index = bisect.bisect_right(bodies, (match.start(), sys.maxsize)) - 1
            if index >= 0 and bodies[index][0] <= match.start() < bodies[index][1]:
                continue
        if match.group(2) is not None:
            names.add(_absolute(match.group(2), package))
            continue
        for part in match.group(3).split(","):
            dotted = part.strip()
            while dotted:
                names.add(dotted)
                dotted = dotted.rpartition(".")[0]
    names.discard("")
    return frozenset(names)


def _import_targets(source: str, package: str) -> frozenset[str]:
    """Every module ``source`` may import, ``from pkg import mod`` submodules included."""
    names = set(imported_names(source, package))
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return frozenset(names)
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            base = _absolute("." * node.level + (node.module or ""), package)
            names.update(f"{base}.{alias.name}" if base else alias.name for alias in node.names)
    return frozenset(names)


def function_bodies(source: str) -> list[tuple[int, int]]:
    """The spans of the outermost function definitions of ``source``, in order.

    A body ends at the first line indented no deeper than its ``def`` that starts a
    statement (a name, a keyword or a decorator).
    """
    spans: list[tuple[int, int]] = []
    for match in _DEF_LINE.finditer(source):
        if spans and match.start() < spans[-1][1]:
            continue  # a function nested in one already spanned
        line_end = source.find("\n", match.end())
        depth = len(match.group(1))
        if depth not in _DEDENT:
            _DEDENT[depth] = re.compile(rf"^[ \t]{{0,{depth}}}(?=[A-Za-z_@])", re.MULTILINE)
        found = _DEDENT[depth].search(source, line_end + 1) if line_end >= 0 else None
        spans.append((match.start(), found.start() if found else len(source)))
    return spans


def _absolute(target: str, package: str) -> str:
    level = len(target) - len(target.lstrip("."))
    if not level:
        return target
    parts = package.split(".") if package else []
    if level > 1:
        parts = parts[: len(parts) - (level - 1)]
    rest = target[level:]
    if rest:
        parts.append(rest)
    return ".".join(parts)


def _code_matches(module: object, path: str) -> bool:
    """Whether the top-level code the module is running was compiled from the file as it
    is now.

    For a file written about when the process started (its time stamp cannot tell) and no
    .pyc to compare with, such as the script being run: the code of a ``<module>`` frame
    of the module still running (the script's main loop) is compared with the file
    compiled now. Code objects compare their bytecode, constants (nested code included),
    names and line table, so equal code means the same statements on the same lines. A
    module whose top-level code has finished cannot be checked this way: not trusted.
    """
    namespace = getattr(module, "__dict__", None)
    if not isinstance(namespace, dict):
        return False
    running = None
    for frame in thread_frames(this_thread=True):
        current: FrameType | None = frame
        while current is not None and running is None:
            if current.f_code.co_name == "<module>" and current.f_globals is namespace:
                running = current.f_code
            current = current.f_back
    if running is None:
        return False
    return compiled_from(path, running) is not None
