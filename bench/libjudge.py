"""A real library's own test suite as the judge of relive's engine.

Imports every module of a library (a copy unpacked from its sdist: the files are edited),
then under relive: for each module and each neutral edit (a comment on top, a function
appended, ``pass`` after every body, a method added to every class, blank lines in bodies,
the last top-level definition removed), writes the edited text, ``relive.refresh()``,
writes the original back, ``relive.refresh()``. With ``--keep``, it then leaves an
equivalent edit of every module applied (``pass`` after every body and blank lines in
bodies) while the tests run, and puts the files back afterwards. Finally it runs the
library's own pytest suite in the same process. Compare with ``--mode plain`` (no relive,
no edits) on another copy: the outcome must be the same.

Each edit that relive refuses is printed as ``PROBLEM``: removing a definition that another
module imports must be refused (a fresh import fails too); a neutral edit must not be.

    cd toolz-1.2.0 && python bench/libjudge.py . toolz,tlz toolz/tests --mode edited
    cd jinja2-3.1.6 && python bench/libjudge.py src jinja2 tests --mode edited --keep -- \
        --ignore=tests/test_async.py

See bench/README.md ("Real libraries' own test suites") for the runs recorded.
"""

from __future__ import annotations

import argparse
import ast
import importlib
import pathlib
import pkgutil
import sys
import time
from collections.abc import Callable
from types import ModuleType

Edit = Callable[[str], str]


def _body_ends(text: str, *, classes_only: bool = False) -> list[tuple[int, int]]:
    """(last line, column) of the last statement of every multi-line def/class body."""
    kinds: tuple[type[ast.stmt], ...] = (ast.ClassDef,)
    if not classes_only:
        kinds += (ast.FunctionDef, ast.AsyncFunctionDef)
    ends = set()
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and isinstance(
            node, kinds
        ):
            last = node.body[-1]
            if last.lineno != node.lineno and last.end_lineno is not None:
                ends.add((last.end_lineno, last.col_offset))
    # Inserted from the bottom; at one line the outer body's first, so the inner's goes above.
    return sorted(ends, key=lambda end: (-end[0], end[1]))


def pass_everywhere(text: str) -> str:
    """A ``pass`` after the last statement of every function and class body."""
    lines = text.splitlines(keepends=True)
    for end, col in _body_ends(text):
        lines.insert(end, " " * col + "pass\n")
    return "".join(lines)


def method_in_every_class(text: str) -> str:
    lines = text.splitlines(keepends=True)
    for end, col in _body_ends(text, classes_only=True):
        pad = " " * col
        lines.insert(end, f"{pad}def _relive_judge_method(self):\n{pad}    return 1\n")
    return "".join(lines)


def blank_lines_in_bodies(text: str) -> str:
    at = {
        node.body[1].lineno - 1
        for node in ast.walk(ast.parse(text))
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and len(node.body) > 1
    }
    lines = text.splitlines(keepends=True)
    for line in sorted(at, reverse=True):
        lines.insert(line, "\n")
    return "".join(lines)


def drop_last_def(text: str) -> str:
    defs = [
        node
        for node in ast.parse(text).body
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
    ]
    if not defs:
        return text
    node = defs[-1]
    start = min([node.lineno] + [d.lineno for d in node.decorator_list])
    lines = text.splitlines(keepends=True)
    del lines[start - 1 : node.end_lineno]
    return "".join(lines)


EDITS: dict[str, Edit] = {
    "last definition removed": drop_last_def,
    "method in every class": method_in_every_class,
    "blank lines in bodies": blank_lines_in_bodies,
    "comment on top": lambda text: "# relive judge\n" + text,
    "function appended": lambda text: text + "\n\ndef _relive_judge_extra():\n    return 1\n",
    "pass in every body": pass_everywhere,
}


def kept_edit(text: str) -> str:
    """An equivalent text, left in place while the tests run."""
    return blank_lines_in_bodies(pass_everywhere(text))


def import_all(packages: str) -> list[ModuleType]:
    modules = []
    for top in packages.split(","):
        module = importlib.import_module(top)
        modules.append(module)
        for info in pkgutil.walk_packages(getattr(module, "__path__", []), top + "."):
            if ".tests" in info.name or ".test_" in info.name:
                continue
            try:
                modules.append(importlib.import_module(info.name))
            except Exception as exc:  # an optional dependency missing: not judged
                print("skip import", info.name, type(exc).__name__)
    return modules


def _source(module: ModuleType) -> pathlib.Path | None:
    """The module's file: its spec's origin (``tlz`` sets ``__file__`` to ``toolz``'s)."""
    path = getattr(getattr(module, "__spec__", None), "origin", None)
    return pathlib.Path(path) if isinstance(path, str) and path.endswith(".py") else None


def _edited(text: str, edit: Edit, path: pathlib.Path) -> str | None:
    try:
        new = edit(text)
        compile(new, str(path), "exec", dont_inherit=True)
    except SyntaxError:
        return None
    return new if new != text else None


def _refresh(relive: ModuleType, name: str, label: str, problems: list[str]) -> bool:
    try:
        report = relive.refresh()
    except relive.ReloadError as exc:
        problems.append(f"{name}: {label}: {type(exc).__name__}: {exc}")
        return False
    if name not in report.reloaded:
        problems.append(f"{name}: {label}: not applied ({report.summary()})")
    return True


def edit_and_revert(relive: ModuleType, modules: list[ModuleType]) -> list[str]:
    """Every neutral edit of every module, each reverted; what relive refused."""
    problems: list[str] = []
    start, count = time.perf_counter(), 0
    for module in modules:
        path = _source(module)
        if path is None:
            continue
        text = path.read_text()
        for label, edit in EDITS.items():
            new = _edited(text, edit, path)
            if new is None:
                continue
            path.write_text(new)
            count += 1
            applied = _refresh(relive, module.__name__, label, problems)
            path.write_text(text)
            count += 1
            known = len(problems)
            if not _refresh(relive, module.__name__, label + " (reverted)", problems):
                problems.append(f"{module.__name__}: revert failed")
            elif not applied:
                del problems[known:]  # a refused edit's revert changes nothing: not a problem
    print(f"{count} reloads of {len(modules)} modules in {time.perf_counter() - start:.1f} s")
    return problems


def keep_edits(
    relive: ModuleType, modules: list[ModuleType], originals: dict[pathlib.Path, str]
) -> None:
    """An equivalent edit of every module, applied and left (the texts into ``originals``).
    If relive refuses it, the tests run on the code as it was (the files are put back)."""
    for module in modules:
        path = _source(module)
        if path is None or path in originals:
            continue
        text = path.read_text()
        new = _edited(text, kept_edit, path)
        if new is not None:
            originals[path] = text
            path.write_text(new)
    try:
        print("kept edits:", relive.refresh().summary())
    except relive.ReloadError as exc:
        print("PROBLEM kept edits refused:", exc)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("root", help="the directory to put first on sys.path (src or .)")
    parser.add_argument("packages", help="top-level packages, comma-separated")
    parser.add_argument("tests", help="the library's test directory")
    parser.add_argument("--mode", choices=("plain", "edited"), default="edited")
    parser.add_argument("--keep", action="store_true", help="leave an equivalent edit applied")
    args, extra = parser.parse_known_args(argv)
    extra = [arg for arg in extra if arg != "--"]
    sys.path.insert(0, str(pathlib.Path(args.root).resolve()))
    relive: ModuleType | None = None
    if args.mode == "edited":
        import relive as imported

        relive = imported
        relive.get_engine()
    modules = import_all(args.packages)
    originals: dict[pathlib.Path, str] = {}
    if relive is not None:
        for problem in edit_and_revert(relive, modules):
            print("PROBLEM", problem)
    import pytest

    try:
        if relive is not None and args.keep:
            keep_edits(relive, modules, originals)
        options = ["-q", "-p", "no:cacheprovider", "--no-header", "-W", "ignore"]
        code = pytest.main([args.tests, *options, *extra])
    finally:
        for path, text in originals.items():
            path.write_text(text)
    print("pytest exit", int(code))
    return int(code)


if __name__ == "__main__":
    sys.exit(main())
