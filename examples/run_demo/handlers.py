"""What the server answers: edit this file while it runs."""


def respond(path: str, hits: int, settings: dict[str, object]) -> str:
    return f"{settings['greeting']} You asked for {path}; request number {hits}.\n"
