"""Pydantic models: add a field and the running app validates and returns it."""

from pydantic import BaseModel


class Item(BaseModel):
    id: int
    name: str
