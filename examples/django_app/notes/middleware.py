"""Function middleware: edit the inner function and the next response shows it."""

import os
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse


def served_by(
    get_response: Callable[[HttpRequest], HttpResponse],
) -> Callable[[HttpRequest], HttpResponse]:
    def middleware(request: HttpRequest) -> HttpResponse:
        response = get_response(request)
        response["X-Served-By"] = f"relive pid {os.getpid()}"
        return response

    return middleware
