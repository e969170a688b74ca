"""A FastAPI app to edit while it serves; its state lives in memory.

    cd examples/fastapi_app
    relive run -m uvicorn app:app --reload

relive switches uvicorn's --reload off and applies each saved edit inside this process,
between requests: edit a route, the dependency, the middleware, models.py or
greetings.py, and the next request runs the new code with the visit counter intact.
"""

import itertools
import os

import greetings
from fastapi import Depends, FastAPI, Request, Response
from fastapi.responses import HTMLResponse
from models import Item

app = FastAPI(title="relive FastAPI example")
visits = itertools.count(1)  # kept across in-place edits, reset by a restart
names = {1: "kettle", 2: "teapot"}


def language() -> str:
    """A dependency: edit it and every route that depends on it follows."""
    return "en"


@app.middleware("http")
async def served_by(request: Request, call_next):
    response: Response = await call_next(request)
    response.headers["X-Served-By"] = f"relive pid {os.getpid()}"
    return response


@app.get("/")
def index(lang: str = Depends(language)) -> dict[str, object]:
    return {"message": greetings.greet("FastAPI", lang), "visit": next(visits)}


@app.get("/items/{item_id}")
def item(item_id: int) -> Item:
    return Item(id=item_id, name=names[item_id])


@app.get("/page", response_class=HTMLResponse)
def page() -> str:
    """A page to keep open with --livereload: it reloads itself after each edit."""
    return f"<!doctype html><html><body><h1>{greetings.greet('FastAPI', 'en')}</h1></body></html>"
