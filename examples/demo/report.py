"""What the demo prints each tick: edit this file while the demo runs."""


def describe(tick: int) -> str:
    return f"{tick} ticks so far"
