"""``RELIVE=0``: the switch that turns relive off in a process (production).

Every front end (``relive.watch()``, ``%load_ext relive``, ``relive run``) asks it first;
it imports nothing, so the supervisor can ask before loading anything else.
"""

from __future__ import annotations

import os

__all__ = ["disabled"]


def disabled() -> bool:
    """Whether relive is switched off for this process (``RELIVE=0``: production)."""
    return os.environ.get("RELIVE", "").strip().lower() in {"0", "false", "no", "off"}
