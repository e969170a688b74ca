"""relive's start-up hook for the processes a program under ``relive run`` spawns.

``relive run`` puts this directory first on ``PYTHONPATH``, so every Python process the
program starts (multiprocessing "spawn", ``uvicorn --workers``, any ``python``) runs this
as it starts: with ``RELIVE_HUB`` set, it joins the program's edits (``relive._member``).
It then runs the ``sitecustomize`` it hides, if there is one.
"""

import importlib.machinery
import importlib.util
import os
import sys


def _join_the_program() -> None:
    try:
        from relive._member import arm_spawned
    except ImportError:  # another Python, without relive: nothing to join
        return
    arm_spawned()


def _run_the_hidden_sitecustomize() -> None:
    here = os.path.dirname(os.path.realpath(__file__))
    path = [p for p in sys.path if os.path.realpath(p or ".") != here]
    spec = importlib.machinery.PathFinder.find_spec("sitecustomize", path)
    if spec is None or spec.loader is None:
        return
    module = importlib.util.module_from_spec(spec)
    sys.modules["sitecustomize"] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:  # as site.py does: reported, not fatal
        print(f"Error in sitecustomize; set PYTHONVERBOSE for traceback: {exc!r}", file=sys.stderr)


if os.environ.get("RELIVE_HUB"):
    _join_the_program()
_run_the_hidden_sitecustomize()
