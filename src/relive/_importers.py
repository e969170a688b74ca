"""An importer's part in an edit elsewhere, worked out from its statement index: which of
its top-level statements read what changed, and which must run again.

An edit that rebinds ``ROOT`` or changes ``root_func`` makes each importer run again the
statements that read them (``from m import ROOT``, ``DERIVED = ROOT * 2``,
``REGISTRY["root"] = root_func(2)``) and those that read what these rebind. The
whole-module way parses the importer and visits all of its statements; here only the
statements whose text mentions one of the names involved are cut out of the source
(``_segments``) and looked at, with the same rules (:func:`may_run_again` is the
applier's own test, made with every name the run could rebind). Anything the few
statements cannot decide alone (a definition or class that must be rebuilt, a name that
only an earlier, deleted definition provides) sends the importer the whole-module way.
"""

from __future__ import annotations

import ast
import bisect
import builtins
import functools
import marshal
import re
import sys
import types
from collections.abc import Callable, Iterable, Iterator
from typing import Any, NamedTuple

from relive._derived import called_keys, only_called
from relive._handed import Handed, bound_names, handed_values
from relive._scan import class_values
from relive._segments import DEFINITION, IMPORT, StatementIndex, block_statements, mentioning
from relive._stale import Staleness
from relive._statements import Key, Statement, class_body, class_has_values, reads
from relive._tracker import TrackedModule

__all__ = [
    "Summarised",
    "Summary",
    "computing_statements",
    "derived_inputs",
    "indexed_statements",
    "judge_inputs",
    "mentions_at_top",
    "reads_rebound",
    "statements_to_run",
    "summary_at",
    "top_level_text",
]


def reads_rebound(uses: Iterable[Key], local: set[str], triggers: set[Key]) -> bool:
    """Whether a statement reading ``uses`` reads a name rebound here (``local``) or one
    of the ``triggers`` (``(module, name)``; a star import of the module reads them all)."""
    for module, name in uses:
        if not module:
            if name in local:
                return True
        elif (module, name) in triggers or (
            name == "*" and any(source == module for source, _ in triggers)
        ):
            return True
    return False


def computing_statements(statement: Statement) -> list[Statement]:
    """The plain statements whose values ``statement`` computes: itself (not an import),
    or a class body's (``K = f(1)``); none for a class of methods alone."""
    node = statement.node
    if statement.kind == "class":
        if not isinstance(node, ast.ClassDef) or not class_has_values(node):
            return []
        return [member for member in class_body(node) if member.kind == "stmt"]
    return [] if isinstance(node, (ast.Import, ast.ImportFrom)) else [statement]


def indexed_statements(
    tracked: TrackedModule, index: StatementIndex, module: str, *, plain: bool = False
) -> Callable[[set[str]], Iterator[Summarised]]:
    """The statements of ``tracked`` that may read names of ``module``, in order, for
    ``_transaction._reads_any``: asked for with a set of names that grows while they are
    read (names an import copied), each is looked for after the last one found.

    Such a statement mentions one of the names first asked for and is an import or
    mentions a name bound to ``module`` (``m.X``; ``C.K`` for a class imported from it),
    or it mentions a name added since. ``plain``: ``def`` statements are left out (what
    they read at the top level is never a plain use).
    """
    source = tracked.source or ""
    guard = [alias for alias, target in index.alias_map().items() if _reaches(target, module)]

    def statements(wanted: set[str]) -> Iterator[Summarised]:
        first = set(wanted) - {"*"}
        number = 0
        while True:
            found = [
                candidate
                for candidate in mentioning(index, source, first, number, definitions=not plain)
                if IMPORT.match(source, index.offsets[candidate])
                or _reading(tracked, index, candidate, first, guard)
            ][:1]
            found += mentioning(index, source, wanted - first - {"*"}, number, definitions=False)
            if not found:
                return
            number = min(found)
            yield Summarised(index.text(source, number), summary_at(tracked, number))
            number += 1

    return statements


def mentions_at_top(tracked: TrackedModule, index: StatementIndex, words: set[str]) -> bool:
    """Whether one of ``words`` occurs where ``tracked``'s code runs at import (not in a
    plain function's body, nor in an import): a statement there may use it."""
    source = tracked.source or ""
    return any(
        not IMPORT.match(source, index.offsets[number]) and _reading(tracked, index, number, words)
        for number in mentioning(index, source, words - {"*"})
    )


def _reading(
    tracked: TrackedModule,
    index: StatementIndex,
    number: int,
    words: Iterable[str],
    guard: Iterable[str] = (),
) -> bool:
    """Whether statement ``number`` may mention one of ``words`` (and one of ``guard``,
    when given) where it runs at import: a plain ``def`` only in its signature."""
    text = top_level_text(tracked, index, number)
    if not any(word in text for word in words):
        return False
    return not guard or any(word in text for word in guard)


def top_level_text(tracked: TrackedModule, index: StatementIndex, number: int) -> str:
    """Statement ``number``'s text, without the body of a plain ``def`` whose function the
    module holds (its code says where the body starts): what a function's body mentions
    never runs at import. Where it ends is kept while the source stays."""
    source = tracked.source or ""
    text = index.text(source, number)
    end = tracked.top_level_ends.get(number)
    if end is None:
        end = _top_level_end(tracked, index, number, text)
        tracked.top_level_ends[number] = end
    return text[:end]


def _top_level_end(tracked: TrackedModule, index: StatementIndex, number: int, text: str) -> int:
    found = _PLAIN_DEF.match(text)
    module = sys.modules.get(tracked.name) if found else None
    function = vars(module).get(found.group(1)) if module and found else None
    if type(function) is not types.FunctionType:
        return len(text)
    code = function.__code__
    first = index.lines[number]
    if code.co_filename != tracked.filename or code.co_firstlineno != first:
        return len(text)
    body = [(line, column) for line, _, column, _ in code.co_positions() if line and line > first]
    if not body:
        return len(text)
    line, column = min(body, key=lambda position: (position[0], position[1] or 0))
    end = 0
    for _ in range(line - first):  # the lines before the body's
        end = text.find("\n", end) + 1
        if not end:
            return len(text)
    start_of_body = text[end:].split("\n", 1)[0].encode()[: column or 0]
    if start_of_body.strip():  # the body starts on the signature's last line
        return len(text)
    return end


_PLAIN_DEF = re.compile(r"(?:async[ \t]+)?def[ \t]+(\w+)")


def _reaches(target: str, module: str) -> bool:
    """Whether a local name bound to ``target`` reads names of ``module`` through its
    attributes (``target`` is the module, a package above it, or a name in it)."""
    return target == module or module.startswith(target + ".") or target.startswith(module + ".")


def statements_to_run(
    tracked: TrackedModule,
    index: StatementIndex,
    namespace: dict[str, Any],
    triggers: set[Key],
    staleness: Staleness,
) -> list[Statement] | None:
    """The statements of an importer that may run again for ``triggers`` (names rebound
    elsewhere) and what ``staleness`` says changed, in order; None when the importer must
    take the whole-module way.

    A superset of those the applier runs: every name a chosen statement binds counts as
    rebound here while they are chosen, so what reads it is chosen too. A statement not
    chosen would be kept as it is by the whole-module run.

    Raises:
        Untrusted: A statement the index cut out is not one statement.
    """
    rebound: set[str] = set()
    staleness.share(tracked.name, rebound)  # what calls a function reading them is stale
    try:
        return _choose(tracked, index, namespace, triggers, staleness, rebound)
    finally:
        staleness.unshare(tracked.name, rebound)


def _choose(
    tracked: TrackedModule,
    index: StatementIndex,
    namespace: dict[str, Any],
    triggers: set[Key],
    staleness: Staleness,
    rebound: set[str],
) -> list[Statement] | None:
    source = tracked.source or ""
    trigger_names = {name for _, name in triggers}
    chosen: dict[int, Statement] = {}
    summaries: dict[int, Summary] = {}
    grew = True
    while grew:
        grew = False
        # A plain ``def`` runs again only for what its decorators, defaults and annotations
        # read, never for what it would call; an import never for what it calls.
        words = (trigger_names | rebound) - {"*"}
        found = mentioning(index, source, words)
        reading = {number for number in found if _reading(tracked, index, number, words)}
        calling = set(_calling(tracked, index, namespace)) if staleness.anything() else set()
        for number in sorted(reading | calling):
            if number in chosen or (number not in reading and tracked.plain_classes >> number & 1):
                continue  # a class of methods alone: what it calls never makes it run again
            if number not in summaries:  # each looked at once, then known without a parse
                summaries[number] = summary_at(tracked, number)
            summary = summaries[number]
            if summary.kind == "class" and not summary.inputs:
                tracked.plain_classes |= 1 << number  # its methods are patched as members
            text = index.text(source, number)
            if not may_run_again(
                summary, text, rebound, triggers, trigger_names, (staleness, namespace)
            ):
                continue
            if summary.kind != "stmt" or _borrows(summary, namespace, tracked, index, number):
                return None
            chosen[number] = tracked.statement_at(number)
            # What it computes with is known: the applier asks again, without a walk.
            chosen[number].remember("derived inputs", summary.inputs)
            if not summary.binds <= rebound:
                rebound |= summary.binds
                grew = True
    return [chosen[number] for number in sorted(chosen)]


Inputs = tuple[
    tuple[frozenset[Key], frozenset[Key], bool, frozenset[Key], frozenset[Handed], frozenset[str]],
    ...,
]


class Summary(NamedTuple):
    """What :func:`may_run_again` reads of a top-level statement, without its tree: kept
    per module (marshalled: one bytes object per statement, which the collector does not
    track) while the module's source stays, so a later edit does not parse it again."""

    kind: str  # "def", "class" or "stmt"
    name: str | None
    binds: frozenset[str]
    uses: frozenset[Key]
    inputs: Inputs  # see :func:`derived_inputs`
    computes: bool  # a class whose body computes values (``K = f(1)``), not methods alone


class Summarised(NamedTuple):
    """A statement's :class:`Summary` with its text: what ``_transaction._reads_any``
    reads of a statement, without a parse."""

    text: str
    summary: Summary

    @property
    def kind(self) -> str:
        return self.summary.kind

    @property
    def binds(self) -> frozenset[str]:
        return self.summary.binds

    @property
    def uses(self) -> frozenset[Key]:
        return self.summary.uses

    @property
    def computes(self) -> bool:
        return self.summary.computes

    def mentions(self, names: Iterable[str]) -> bool:
        return any(name in self.text for name in names)


def summary_at(tracked: TrackedModule, number: int) -> Summary:
    """Statement ``number`` of ``tracked``'s index, summarised (parsed the first time).

    Raises:
        Untrusted: The index was wrong about it.
    """
    known = tracked.summaries.get(number)
    if known is not None:
        return Summary(*marshal.loads(known))
    statement = tracked.statement_at(number)
    inputs = derived_inputs(statement) if statement.kind != "def" else ()
    node = statement.node
    computes = isinstance(node, ast.ClassDef) and class_has_values(node)
    summary = Summary(
        statement.kind, statement.name, statement.binds, statement.uses, inputs, computes
    )
    tracked.summaries[number] = marshal.dumps(tuple(summary))
    return summary


def derived_inputs(statement: Statement) -> Inputs:
    """What each plain statement ``statement`` computes (see :func:`computing_statements`)
    reads, calls, whether it binds what it computes, what it only calls, what it hands to
    calls (see _handed) and the names it binds: the inputs of
    :meth:`Staleness.uses_stale`, from its text and imports, not its lines."""
    aliases = statement.scope.aliases
    # A lean class's values are parsed from its text without its methods (a wide module's
    # first edit asks for every class); what reads nothing is never stale.
    values = class_values(statement) if statement.is_lean and statement.kind == "class" else None
    if values is None:
        members = [(member.uses, member.node) for member in computing_statements(statement)]
    else:
        members = [(reads(node, statement.scope), node) for node in values]
    return tuple(
        (
            uses,
            called_keys(node, aliases),
            isinstance(node, (ast.Assign, ast.AnnAssign)),
            only_called(node, aliases),
            handed_values(node, aliases),
            bound_names(node),
        )
        for uses, node in members
        if uses
    )


def judge_inputs(
    staleness: Staleness,
    namespace: dict[str, Any],
    inputs: Inputs,
    owner: str | None,
) -> bool:
    """Whether one of a statement's ``inputs`` (see :func:`derived_inputs`) computed its
    value with code that changed; ``owner``: the class whose body it is, if it is one
    (what its statements bound is in the class)."""
    return any(
        staleness.uses_stale(
            namespace,
            uses,
            called,
            binds=binds,
            only_called=only,
            handed=handed,
            results=functools.partial(_bound_values, namespace, owner, names),
        )
        for uses, called, binds, only, handed, names in inputs
    )


def _bound_values(
    namespace: dict[str, Any], owner: str | None, names: frozenset[str]
) -> list[object]:
    """What ``names`` hold in the module, or in its class ``owner``."""
    scope: Any = namespace
    if owner is not None:
        cls = namespace.get(owner)
        scope = cls.__dict__ if isinstance(cls, type) else {}
    return [scope.get(name) for name in names]


def may_run_again(
    statement: Summary,
    text: str,
    rebound: set[str],
    triggers: set[Key],
    trigger_names: set[str],
    stale: tuple[Staleness, dict[str, Any]],
) -> bool:
    """Whether the applier could run ``statement`` (its text ``text``) again when the names
    ``rebound`` here and ``triggers`` changed, with ``stale``: what changed code, and the
    namespace (the applier's tests, with every name that may be rebound)."""
    staleness, namespace = stale
    names = rebound | trigger_names
    if any(name in text for name in names) and reads_rebound(statement.uses, rebound, triggers):
        return True
    if statement.kind == "stmt" and not statement.binds.isdisjoint(rebound):
        return True  # an earlier statement rebinds a name it binds again
    if statement.kind != "stmt" and statement.name in rebound:
        return True  # a definition bound again after a statement rebound its name
    if statement.kind == "def" or not staleness.anything():
        return False
    owner = statement.name if statement.kind == "class" else None
    return judge_inputs(staleness, namespace, statement.inputs, owner)


_METHOD_CALL = re.compile(r"\.\s*\w+\s*\(")


def _calling(tracked: TrackedModule, index: StatementIndex, namespace: dict[str, Any]) -> list[int]:
    """The statements whose value may come from code that changed: not imports nor plain
    ``def`` statements; those that name a function, class or module of the namespace (one
    the top-level code loads, when its code object says), or call a method of something.
    Kept while the source and those names stay."""
    used = tracked.top_level_uses()
    if used is None:
        names = [name for name, value in list(namespace.items()) if _runs_code(value)]
    else:
        names = [name for name in used if _runs_code(namespace.get(name))]
    key = "\0".join(sorted(names))
    if tracked.calling is not None and tracked.calling[0] == key:
        return list(tracked.calling[1])
    source = tracked.source or ""
    found = set(mentioning(index, source, names, definitions=False))
    offsets = index.offsets
    position = offsets[0]
    while (call := _METHOD_CALL.search(source, position)) is not None:
        number = bisect.bisect_right(offsets, call.start()) - 1
        found.add(number)
        position = offsets[number + 1] if number + 1 < len(offsets) else len(source)
    calling = tuple(
        number
        for number in sorted(found)
        if not IMPORT.match(source, offsets[number])
        and not _DEF_START.match(source, offsets[number])
        and not methods_only(index.text(source, number))
    )
    tracked.calling = (key, calling)
    return list(calling)


_DEF_START = re.compile(r"(?:async[ \t]+)?def\b")
# What a class body may hold and still compute nothing: ``pass``, ``...``, a plain string
# (trailing comments and blank lines after it).
_NOTHING = re.compile(
    r"""(?:pass|\.\.\.|"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*'"""
    r"""|\"\"\"(?:[^"\\]|\\.|"(?!""))*\"\"\"|'''(?:[^'\\]|\\.|'(?!''))*''')"""
    r"[ \t]*(?:#[^\n]*)?(?:\n[ \t]*(?:#[^\n]*)?)*",
    re.DOTALL,
)


def methods_only(text: str) -> bool:
    """Whether the class statement ``text`` surely computes nothing but its methods (the
    statements of its body, as the segmenter finds them, are definitions, decorated
    ones, nested classes, ``pass``, ``...`` or a plain string): read without a parse, as
    ``class_has_values`` would judge its tree. False when not sure."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").rstrip()
    found = block_statements(text)
    if not found:
        return False
    ends = [at for at, _ in found[1:]] + [len(text)]
    for (_, begin), end in zip(found, ends, strict=True):
        while end > begin and text[end - 1] in " \t\n":
            end -= 1
        member = text.startswith("@", begin) or DEFINITION.match(text, begin) is not None
        if not (member or _NOTHING.fullmatch(text, begin, end)):
            return False
    return True


def _runs_code(value: object) -> bool:
    """A function, class, module or other callable: what a statement reading it may run."""
    return callable(value) or issubclass(type(value), types.ModuleType)


def _borrows(
    statement: Summary,
    namespace: dict[str, Any],
    tracked: TrackedModule,
    index: StatementIndex,
    number: int,
) -> bool:
    """Whether ``statement`` reads a name the namespace lacks that an earlier definition
    binds (a later ``del`` removed it): the applier lends it, from what it knows of every
    statement before."""
    missing = {
        name
        for module, name in statement.uses
        if not module and "." not in name and name not in namespace and name not in _BUILTINS
    }
    source = tracked.source or ""
    for earlier in mentioning(index, source, missing):
        if earlier >= number:
            return False
        found = tracked.statement_at(earlier)
        if found.kind != "stmt" and found.name in missing:
            return True
    return False


_BUILTINS = frozenset(vars(builtins))
