"""Django under ``relive run manage.py runserver`` end to end: real server, HTTP and edits.

The headline: 50 edits (views, helpers, middleware, a class, the URLconf) applied under
steady load, with no failed request, no restart, the in-memory state kept, every edit
served and no request seeing half an edit.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from harness import (
    EVENT_TIMEOUT,
    EditsUnderLoad,
    Response,
    Start,
    copy_example,
    exists,
    free_port,
    request,
    served_by_another,
    served_pid,
    wait_for_answer,
    wait_for_server,
)
from relive.testing import wait_until, write_source

pytest.importorskip("django")


# The example, as its README shows it ----------------------------------------------------


def test_example_is_edited_live_then_restarted_for_settings_and_models(
    tmp_path: Path, start: Start
) -> None:
    copy_example("django_app", tmp_path)
    port = free_port()
    relive = start("manage.py", "runserver", f"127.0.0.1:{port}")
    first = wait_for_server(relive, port)
    pid = served_pid(first)
    relive.pids.add(pid)
    assert first.json() == {"message": "Hello, Django!", "visit": 1}
    relive.wait_for_line(
        "relive: Django's autoreloader is off (as with --noreload): relive applies edits in"
        " place, between requests",
        stream="stderr",
    )

    greetings = tmp_path / "notes" / "greetings.py"
    write_source(greetings, greetings.read_text().replace("Hello", "Howdy"))
    edited = wait_for_answer(port, "/", lambda r: "Howdy" in r.body)
    assert edited.json()["visit"] > 1 and served_pid(edited) == pid  # in place, state kept
    relive.wait_for_line("relive: notes/greetings.py: 1 patched in ", stream="stderr")

    template = tmp_path / "notes" / "templates" / "notes" / "page.html"
    write_source(template, template.read_text().replace("<h1>", "<h1 class='edited'>"))
    wait_for_answer(port, "/page/", lambda r: "<h1 class='edited'>Howdy, Django!" in r.body)

    middleware = tmp_path / "notes" / "middleware.py"
    write_source(middleware, middleware.read_text().replace("relive pid", "edited pid"))
    wait_for_answer(port, "/", lambda r: r.headers["x-served-by"].startswith("edited"))

    urls = tmp_path / "mysite" / "urls.py"
    write_source(urls, urls.read_text().replace("]", '    path("again/", views.index),\n]'))
    assert wait_for_answer(port, "/again/", lambda r: r.status == 200).json()["visit"] > 2

    views = tmp_path / "notes" / "views.py"
    write_source(views, views.read_text().replace("def index(", "def index(("))
    error = relive.wait_for_line("SyntaxError", stream="stderr")
    assert error.startswith("relive: notes/views.py:13: SyntaxError")  # relative, with line
    assert "Howdy" in request(port, "/").body  # the last good code keeps serving
    write_source(views, views.read_text().replace("def index((", "def index("))

    settings = tmp_path / "mysite" / "settings.py"
    write_source(settings, settings.read_text() + "LANGUAGE_CODE = 'fr'\n")
    relive.wait_for_line(
        "relive: restarting: mysite/settings.py: Django reads its settings once, at start-up",
        stream="stderr",
    )
    restarted = wait_for_answer(port, "/", served_by_another(pid))
    assert restarted.json()["visit"] == 1
    second = served_pid(restarted)
    relive.pids.add(second)
    wait_until(lambda: not exists(pid), timeout=EVENT_TIMEOUT)

    models = tmp_path / "notes" / "models.py"
    write_source(models, models.read_text().replace("200", "300"))
    relive.wait_for_line(
        "relive: restarting: notes/models.py: Django registers models once, at start-up",
        stream="stderr",
    )
    relive.pids.add(served_pid(wait_for_answer(port, "/", served_by_another(second))))


# 50 edits under load ---------------------------------------------------------------------

MANAGE = """\
import os
import sys

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
"""

SETTINGS = """\
SECRET_KEY = "test"
DEBUG = True
ALLOWED_HOSTS = ["127.0.0.1"]
INSTALLED_APPS = []
MIDDLEWARE = ["middleware.stamp"]
ROOT_URLCONF = "urls"
DATABASES = {}
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "loggers": {"django.server": {"level": "ERROR"}},  # no line per request
}
"""

URLS = """\
from django.urls import path

import views

urlpatterns = [path("", views.index, {"url": V_URLS})]
"""

VIEWS = """\
import itertools
import os
import time
import uuid

from django.http import JsonResponse

import helpers
import services

BOOT = uuid.uuid4().hex  # module state: an in-place edit keeps it
hits = itertools.count(1)


def index(request, url):
    first = helpers.first()
    time.sleep(0.002)  # in flight while an edit may arrive
    return JsonResponse(
        {
            "pid": os.getpid(),
            "boot": BOOT,
            "hit": next(hits),
            "view": V_VIEW,
            "url": url,
            "first": first,
            "second": helpers.second(),
            "service": services.pricing.version(),
        }
    )
"""

MIDDLEWARE = """\
def stamp(get_response):
    def middleware(request):
        response = get_response(request)
        response["X-Middleware"] = "V_MIDDLEWARE"
        return response

    return middleware
"""

FILES = {
    "manage.py": MANAGE,
    "settings.py": SETTINGS,
    "urls.py": URLS,
    "views.py": VIEWS,
    "middleware.py": MIDDLEWARE,
    "helpers.py": "def first():\n    return V_HELPERS\n\n\ndef second():\n    return V_HELPERS\n",
    "services.py": "class Pricing:\n    def version(self):\n        return V_SERVICE\n\n\n"
    "pricing = Pricing()  # an instance made at start-up: it sees the edits\n",
}
KINDS = ("VIEW", "HELPERS", "SERVICE", "MIDDLEWARE", "URLS")
FIELD = {"VIEW": "view", "HELPERS": "first", "SERVICE": "service", "URLS": "url"}
FIELD["MIDDLEWARE"] = "middleware"
WHERE = {"VIEW": "views.py", "HELPERS": "helpers.py", "SERVICE": "services.py"}
WHERE.update(MIDDLEWARE="middleware.py", URLS="urls.py")


def parse(response: Response) -> dict[str, object]:
    record: dict[str, object] = response.json()
    record["middleware"] = int(response.headers["x-middleware"])
    return record


SCENARIO = EditsUnderLoad(FILES, KINDS, WHERE, FIELD, parse)


def test_fifty_edits_under_load_fail_no_request(tmp_path: Path, start: Start) -> None:
    SCENARIO.run(
        tmp_path,
        start,
        lambda port: ["manage.py", "runserver", f"127.0.0.1:{port}"],
        threads=4,
        pause=0.005,
    )
