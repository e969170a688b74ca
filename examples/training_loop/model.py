"""A stand-in for an expensive model: built once, kept across every edit."""

import random
from collections.abc import Iterator


class Model:
    """A linear model fitted by stochastic gradient descent to y = 3x + 1."""

    def __init__(self) -> None:
        print("building the model (the expensive part: once per process)", flush=True)
        self.weight, self.bias = 0.0, 0.0
        self.steps = 0

    def step(self, batch: list[float], lr: float) -> float:
        """One SGD step on ``batch``; the mean squared error before it."""
        loss = 0.0
        for x in batch:
            error = self.weight * x + self.bias - (3 * x + 1)
            self.weight -= lr * error * x / len(batch)
            self.bias -= lr * error / len(batch)
            loss += error * error / len(batch)
        self.steps += 1
        return loss

    # Add a field to the class, and existing instances get it here (called on each one
    # after the class is patched, inside the reload):
    #
    # def __relive_migrate__(self) -> None:
    #     if not hasattr(self, "best"):
    #         self.best = float("inf")


def batches(count: int | None, size: int = 8) -> Iterator[list[float]]:
    """Random inputs in [0, 1), ``count`` batches (or forever)."""
    rng = random.Random(0)
    produced = 0
    while count is None or produced < count:
        yield [rng.random() for _ in range(size)]
        produced += 1
