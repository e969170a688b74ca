"""Views: edit them while the server runs; the visit counter lives in memory."""

import itertools

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render

from notes import greetings

visits = itertools.count(1)  # kept across in-place edits, reset by a restart


def index(request: HttpRequest) -> HttpResponse:
    return JsonResponse({"message": greetings.greet("Django"), "visit": next(visits)})


def page(request: HttpRequest) -> HttpResponse:
    return render(request, "notes/page.html", {"message": greetings.greet("Django")})
