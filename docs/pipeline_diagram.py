"""Draw the "How it works" diagram: relive's pipeline from a saved file to a patched object.

Drawn with matplotlib into an SVG (no JavaScript, no outside server needed to view it).
Usage: `.venv/bin/python docs/pipeline_diagram.py [OUT.svg]` (`make plots` runs it).
"""

from __future__ import annotations

import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
from matplotlib.axes import Axes
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

DEFAULT_OUT = Path(__file__).resolve().parent / "generated" / "pipeline.svg"
WIDTH, HEIGHT = 1.9, 1.25
STAGE = "#fff4e6"
OUTCOME = "#e7f5ff"
REFUSED = "#fff5f5"
EDGE = "#495057"

# name, x, y, title, detail, fill
BOXES = [
    ("save", 0.0, 3.0, "file saved", "by your editor,\na formatter, git", OUTCOME),
    (
        "watch",
        2.4,
        3.0,
        "watch",
        "OS file events\n(inotify, FSEvents, …;\npolling as a fallback)",
        STAGE,
    ),
    ("batch", 4.8, 3.0, "batch", "write complete?\nburst over?\n(2 ms; 50 ms quiet)", STAGE),
    ("track", 7.2, 3.0, "track", "path → modules;\ncontent changed?", STAGE),
    ("prepare", 9.6, 3.0, "prepare", "parse what changed,\ndiff, plan, compile", STAGE),
    ("apply", 12.0, 3.0, "apply", "hooks, statements,\npatch in place,\nimporters follow", STAGE),
    ("report", 14.4, 3.0, "report", "one line:\nm.py: 1 patched\nin 0.8 ms", OUTCOME),
    ("supervisor", 4.9, 0.9, "supervisor", "relive run restarts\nthe program", OUTCOME),
    ("restart", 8.2, 0.9, "RestartRequired", "valid, not in place:\nnothing changed", REFUSED),
    ("refused", 10.9, 0.9, "ReloadError", "file:line, one line;\nnothing changed", REFUSED),
    ("rollback", 13.6, 0.9, "roll back", "undo journal:\nas before the edit", REFUSED),
]
# from (box, dx, side), to (box, dx, side), label: straight arrows between box edges
ARROWS = [
    (("save", 0, "right"), ("watch", 0, "left"), ""),
    (("watch", 0, "right"), ("batch", 0, "left"), ""),
    (("batch", 0, "right"), ("track", 0, "left"), ""),
    (("track", 0, "right"), ("prepare", 0, "left"), ""),
    (("prepare", 0, "right"), ("apply", 0, "left"), ""),
    (("apply", 0, "right"), ("report", 0, "left"), ""),
    (("prepare", -0.5, "bottom"), ("restart", 0.3, "top"), "bases, metaclass,\n__slots__ changed"),
    (("prepare", 0.5, "bottom"), ("refused", -0.2, "top"), "syntax\nerror"),
    (("apply", 0.5, "bottom"), ("rollback", -0.2, "top"), "an exception"),
    (("rollback", 0, "left"), ("refused", 0, "right"), ""),
    (("restart", 0, "left"), ("supervisor", 0, "right"), ""),
]


def anchor(box: tuple[float, float], shift: float, side: str) -> tuple[float, float]:
    x, y = box[0] + shift, box[1]
    return {
        "left": (x - WIDTH / 2, y),
        "right": (x + WIDTH / 2, y),
        "top": (x, y + HEIGHT / 2),
        "bottom": (x, y - HEIGHT / 2),
    }[side]


def draw_box(axes: Axes, x: float, y: float, title: str, detail: str, fill: str) -> None:
    corner = (x - WIDTH / 2, y - HEIGHT / 2)
    shape = FancyBboxPatch(corner, WIDTH, HEIGHT, boxstyle="round,pad=0.02,rounding_size=0.12",
                           facecolor=fill, edgecolor=EDGE, linewidth=1.0)  # fmt: skip
    axes.add_patch(shape)
    axes.text(x, y + HEIGHT / 2 - 0.2, title, ha="center", va="center", weight="bold", size=9.5)
    axes.text(x, y - 0.12, detail, ha="center", va="center", size=7.5, linespacing=1.3)


def draw_arrow(
    axes: Axes, start: tuple[float, float], end: tuple[float, float], label: str
) -> None:
    arrow = FancyArrowPatch(start, end, arrowstyle="-|>", mutation_scale=12, color=EDGE,
                            linewidth=1.0)  # fmt: skip
    axes.add_patch(arrow)
    if label:
        leftwards = end[0] < start[0]  # label on the outer side of the arrow
        middle = ((start[0] + end[0]) / 2 + (-0.12 if leftwards else 0.12), (start[1] + end[1]) / 2)
        axes.text(*middle, label, ha="right" if leftwards else "left", va="center", size=7,
                  style="italic", color=EDGE)  # fmt: skip


def draw(out: Path) -> Path:
    plt.rcParams.update({"svg.fonttype": "none", "svg.hashsalt": "relive"})
    figure, axes = plt.subplots(figsize=(13, 3.6))
    places = {name: (x, y) for name, x, y, *_ in BOXES}
    for _, x, y, title, detail, fill in BOXES:
        draw_box(axes, x, y, title, detail, fill)
    for (source, source_shift, source_side), (target, target_shift, target_side), label in ARROWS:
        start = anchor(places[source], source_shift, source_side)
        end = anchor(places[target], target_shift, target_side)
        draw_arrow(axes, start, end, label)
    axes.text((4.9 + 8.2) / 2, 0.9 - 0.2, "under\nrelive run", ha="center", va="center", size=7,
              style="italic", color=EDGE)  # fmt: skip
    axes.set_xlim(-1.1, 15.5)
    axes.set_ylim(0.1, 3.8)
    axes.set_aspect("equal")
    axes.axis("off")
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, format="svg", bbox_inches="tight", metadata={"Date": None})
    plt.close(figure)
    return out


if __name__ == "__main__":
    print(draw(Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_OUT), file=sys.stderr)
