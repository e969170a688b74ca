"""Helpers the app imports: an edit here is applied in place too."""


def greet(name: str) -> str:
    return f"Hello, {name}!"
