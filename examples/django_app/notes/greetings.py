"""Helpers the views import: an edit here is applied in place too."""


def greet(name: str) -> str:
    return f"Hello, {name}!"
