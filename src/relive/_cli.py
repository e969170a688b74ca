"""The command line: ``relive run``, its arguments, and the production guard ``RELIVE=0``.

``relive run SCRIPT|-m MODULE|-- COMMAND`` builds a ``RunConfig`` for ``relive._supervisor``.
With ``RELIVE=0`` in the environment it runs the program plainly instead (exec, no watcher,
no supervisor), so the same command line is safe where hot reload must stay off.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

from relive._output import Console
from relive._supervisor import DEFAULT_GRACE, RunConfig, run
from relive._switch import disabled

__all__ = ["build_parser", "main"]


RUN_USAGE = "relive run [OPTIONS] (SCRIPT [ARGS] | -m MODULE [ARGS] | -- COMMAND [ARGS])"
RUN_DESCRIPTION = """\
Run a Python program with hot reload: edits are applied in place (same process, state kept);
the program is restarted only when an edit needs it. After --, run any command and restart
it on every change under the watched directories. RELIVE=0 runs the program plainly."""


class UsageError(Exception):
    """Bad command-line input: reported in one line, exit code 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(2, f"relive: {message} (see '{self.prog} --help')\n")


def build_parser() -> tuple[argparse.ArgumentParser, argparse.ArgumentParser]:
    """The ``relive`` parser, with one subcommand per verb (``run`` for now), and the
    ``run`` subcommand's own parser."""
    parser = _Parser(prog="relive", description="Apply source edits to a running program.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    run_parser = commands.add_parser("run", help="run a program with hot reload", usage=RUN_USAGE)
    _add_run(run_parser)
    return parser, run_parser


def _add_run(run_parser: argparse.ArgumentParser) -> None:
    run_parser.description = RUN_DESCRIPTION
    add = run_parser.add_argument
    add(
        "--restart-on",
        action="append",
        default=[],
        metavar="GLOB",
        help="restart when a file matching GLOB changes (e.g. '*.toml', .env); repeatable",
    )
    add(
        "--restart",
        action="store_true",
        help="restart on every .py change instead of reloading in place",
    )
    add(
        "--watch",
        action="append",
        default=[],
        metavar="DIR",
        help="watch DIR (default: the current directory); repeatable",
    )
    add(
        "--include",
        action="append",
        default=[],
        metavar="GLOB",
        help="also treat files matching GLOB as code; repeatable",
    )
    add(
        "--exclude",
        action="append",
        default=[],
        metavar="GLOB",
        help="ignore files matching GLOB; repeatable",
    )
    add(
        "--livereload",
        action="store_true",
        help="reload open browser pages after each applied edit (uvicorn, Flask, Django)",
    )
    add(
        "--keep-alive",
        action="store_true",
        help="after a clean exit, wait for a change and restart instead of ending",
    )
    add(
        "--grace",
        type=_seconds,
        default=DEFAULT_GRACE,
        metavar="SECONDS",
        help=f"wait this long after SIGTERM before SIGKILL (default: {DEFAULT_GRACE:g})",
    )
    add("-q", "--quiet", action="store_true", help="only report exits and errors")
    add("-v", "--verbose", action="store_true", help="also say what is watched and started")
    add(
        "-m",
        dest="module",
        nargs=argparse.REMAINDER,
        metavar="MODULE ...",
        help="-m MODULE [ARGS]: run a module, as python -m does",
    )
    add(
        "target",
        nargs=argparse.REMAINDER,
        metavar="SCRIPT ...",
        help="the script and its arguments, or -- and a command",
    )


def _seconds(text: str) -> float:
    value = float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must not be negative: {text}")
    return value


def _version() -> str:
    from relive import __version__

    return __version__


def parse_run(parser: argparse.ArgumentParser, argv: list[str]) -> RunConfig:
    """The ``RunConfig`` for ``relive run`` with ``argv`` (what follows ``relive``)."""
    options, target, python = _split_target(parser, argv)
    if python and target[0] != "-m" and not os.path.exists(target[0]):
        raise UsageError(f"no such file: {target[0]}")
    if not python and shutil.which(target[0]) is None:
        raise UsageError(f"no such command: {target[0]}")
    for directory in options.watch:
        if not os.path.isdir(directory):
            raise UsageError(f"no such directory: {directory}")
    return RunConfig(
        argv=tuple(target),
        python=python,
        label=_label(target, python),
        roots=_roots(options.watch, target if python else []),
        worker_paths=tuple(options.watch),
        include=tuple(options.include),
        exclude=tuple(options.exclude),
        restart_on=tuple(options.restart_on),
        always_restart=options.restart,
        keep_alive=options.keep_alive,
        livereload=options.livereload and python,
        grace=options.grace,
        quiet=options.quiet,
        verbose=options.verbose,
    )


def _split_target(
    parser: argparse.ArgumentParser, argv: list[str]
) -> tuple[argparse.Namespace, list[str], bool]:
    """Relive's options, the program's argv, and whether it is a Python program."""
    if "--" in argv:
        # ``relive run [OPTIONS] -- COMMAND``: split here, whatever argparse does with "--".
        cut = argv.index("--")
        options = parser.parse_args(argv[:cut])
        if options.module is None and not options.target:
            if cut + 1 == len(argv):
                raise UsageError("no command after --")
            return options, argv[cut + 1 :], False
    options = parser.parse_args(argv)
    if options.module is not None:
        if not options.module:
            raise UsageError("-m needs a module name")
        return options, ["-m", *options.module], True
    if not options.target:
        raise UsageError("nothing to run: give SCRIPT, -m MODULE or -- COMMAND")
    return options, list(options.target), True


def _label(target: list[str], python: bool) -> str:
    if python and target[0] == "-m":
        return target[1]
    return target[0] if python else os.path.basename(target[0])


def _roots(watch: list[str], target: list[str]) -> tuple[Path, ...]:
    """The directories the supervisor watches: --watch, else the current directory and
    the script's own directory when it lies outside it."""
    if watch:
        return tuple(Path(directory).resolve() for directory in watch)
    cwd = Path.cwd()
    if not target or target[0] == "-m":
        return (cwd,)
    script_dir = Path(target[0]).resolve().parent
    return (cwd,) if script_dir.is_relative_to(cwd) else (cwd, script_dir)


def exec_plainly(config: RunConfig) -> NoReturn:
    """Replace this process with the program itself, as if relive were not there."""
    sys.stdout.flush()
    sys.stderr.flush()
    if config.python:
        os.execv(sys.executable, [sys.executable, *config.argv])
    os.execvp(config.argv[0], list(config.argv))


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``relive`` command; the exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    parser, run_parser = build_parser()
    if not args:
        parser.print_help(sys.stderr)
        return 2
    if args[0] != "run":
        parser.parse_args(args)  # --help, --version, unknown commands
        parser.print_usage(sys.stderr)
        return 2
    try:
        config = parse_run(run_parser, args[1:])
    except UsageError as error:
        Console().warn(str(error))
        return 2
    if disabled():
        exec_plainly(config)
    return run(config)
