"""Helpers the app imports: an edit here is applied in place too."""

GREETINGS = {"en": "Hello", "fr": "Bonjour"}


def greet(name: str, lang: str) -> str:
    return f"{GREETINGS[lang]}, {name}!"
