"""The training loop: edit its body while it runs; the model and the loop's state stay.

Try, while ``python train.py`` (or ``relive run train.py``) runs:
- change ``lr`` or the print line below: the next step runs the new body;
- add ``if loss < 0.001: break``: the loop ends, ``main`` carries on after it;
- make a typo: relive logs it and the old body keeps running.
"""

import time

from model import Model, batches

import relive

# Built once; re-running this line (an edit of it, a reload of the module) returns the
# same model. relive.keep("model", Model, rebuild=True) would build a fresh one.
model = relive.keep("model", Model)


@relive.after_reload
def announce() -> None:
    """Runs after each reload of this module (rebuild caches, re-register handlers…)."""
    print(f"trainer.py reloaded; the model has taken {model.steps} steps", flush=True)


def main(steps: int | None = None, delay: float = 0.2) -> None:
    """Train until ``steps`` batches are used (forever when None)."""
    history: list[float] = []
    for step, batch in relive.loop(enumerate(batches(steps))):
        lr = 0.5
        loss = model.step(batch, lr)
        history.append(loss)
        if step % 5 == 0:
            print(f"step {step:4d}  loss {loss:.5f}  lr {lr}", flush=True)
        time.sleep(delay)
    print(f"done after {len(history)} steps; last loss {history[-1]:.5f}", flush=True)
