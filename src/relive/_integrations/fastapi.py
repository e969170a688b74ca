"""FastAPI routes after an edit: analysed again from their endpoint's new signature.

FastAPI reads an endpoint's signature (query and path parameters, dependencies, body and
response models) once, when its ``APIRoute`` is created. relive records the arguments of
each ``APIRoute`` as it is created and, after a reload, runs the constructor again on the
same route object: the endpoint, patched in place, is analysed anew.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from types import ModuleType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from relive._integrations.servers import ServerSupport

__all__ = ["rebuild_route", "record_route_arguments"]

RECORD = "_relive_init"  # on each APIRoute: (the original __init__, args, kwargs)


def record_route_arguments(routing: ModuleType, support: ServerSupport | None = None) -> None:
    """Wrap ``APIRoute.__init__`` so each route keeps the arguments it was built with."""
    route_class: Any = routing.APIRoute
    original: Callable[..., None] = route_class.__init__
    if getattr(original, "_relive_wrapped", False):
        return

    @functools.wraps(original)
    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        vars(self)[RECORD] = (original, args, dict(kwargs))

    __init__._relive_wrapped = True  # type: ignore[attr-defined]
    route_class.__init__ = __init__


def rebuild_route(route: object) -> bool:
    """Build ``route`` again from its recorded arguments; False when none were recorded.

    On an error the route is left exactly as it was and the error raised.
    """
    state = vars(route)
    recorded = state.get(RECORD)
    if recorded is None:
        return False
    original, args, kwargs = recorded
    saved = dict(state)
    try:
        original(route, *args, **kwargs)
    except BaseException:
        state.clear()
        state.update(saved)
        raise
    state[RECORD] = recorded
    return True
