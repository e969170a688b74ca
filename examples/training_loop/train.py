"""Entry point: ``python train.py`` or ``relive run train.py`` (see README.md).

The loop lives in trainer.py, not here: under ``relive run`` an edit of the running script
itself restarts the program, while an edit of an imported module is applied in place.
"""

import argparse

import trainer

parser = argparse.ArgumentParser(description=__doc__)
parser.add_argument("--steps", type=int, default=None, help="stop after this many (default: never)")
parser.add_argument("--delay", type=float, default=0.2, help="seconds per step (default: 0.2)")
arguments = parser.parse_args()
trainer.main(steps=arguments.steps, delay=arguments.delay)
