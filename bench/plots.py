"""Plots and tables of the recorded benchmark results, for the documentation site.

Reads bench/results/{engine,run,web}.json (written by the benchmarks' `--json PATH`, see
`recorded.py`) and writes, for each, an SVG plot, a markdown table of the same numbers and
a markdown line saying where they come from, into `--out` (docs/generated/bench for
`make docs`). Nothing here is measured or typed in: every number comes from those files.
Usage: `.venv/bin/python bench/plots.py [--results DIR] [--out DIR]`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only: no display, no GUI toolkit

import matplotlib.pyplot as plt
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogLocator, NullLocator

import recorded

Document = dict[str, Any]
Grouped = dict[str, dict[str, dict[str, Any]]]  # tool -> group (program, app) -> its row
RELIVE = "#d9480f"
ANCHOR_COLOURS = ["#1c7ed6", "#37b24d", "#7048e8", "#868e96", "#f59f00"]
SCENARIOS = {
    "leaf": "Leaf edit: one function body",
    "root_body": "Root edit: a function every module imports",
    "root_constant": "Root edit: a constant every module copies",
    "noop": "Nothing changed: the check",
}


def setup_style() -> None:
    plt.rcParams.update(
        {
            "svg.hashsalt": "relive",  # the same SVG for the same numbers
            "svg.fonttype": "none",  # text stays text: it takes the page's font
            "font.size": 9,
            "axes.spines.top": False,
            "axes.spines.right": False,
            "axes.grid": True,
            "grid.alpha": 0.3,
        }
    )


def plain_log_axis(axis: Any) -> None:
    """Ticks at 1, 2 and 5 times each power of ten, labelled as plain numbers of ms."""
    axis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    axis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:,g}"))
    axis.set_minor_locator(LogLocator(base=10, subs="auto"))
    axis.set_minor_formatter(FuncFormatter(lambda value, _: ""))


def save(figure: Figure, path: Path) -> None:
    figure.savefig(path, format="svg", bbox_inches="tight", metadata={"Date": None})
    plt.close(figure)


def number(value: float | None) -> str:
    if value is None:
        return "—"
    if value >= 100:
        return f"{value:,.0f}"
    return f"{value:.2f}" if value < 1 else f"{value:.1f}"


def ratio(value: float | None, base: float | None) -> str:
    if value is None or not base:
        return "—"
    return f"{value / base:,.0f}x" if value / base >= 10 else f"{value / base:.1f}x"


def table(header: list[str], rows: list[list[str]], text_columns: int = 1) -> str:
    """A markdown table; the columns after the first `text_columns` are right-aligned."""
    align = ["---"] * text_columns + ["--:"] * (len(header) - text_columns)
    lines = [header, align, *rows]
    return "\n".join("| " + " | ".join(cells) + " |" for cells in lines) + "\n"


def provenance_line(document: Document) -> str:
    """One paragraph: the commit, the command, the machine; and whether it was transcribed."""
    prov = document["provenance"]
    versions = ", ".join(f"{name} {v}" for name, v in prov.get("versions", {}).items())
    parts = [
        f"Recorded at relive commit `{prov['commit']}` with `{prov['command']}`",
        f"on {prov.get('date', 'an unrecorded date')}",
        f"({prov.get('machine', 'machine not recorded')}; Python {prov.get('python', '?')};",
        f"{versions}).",
    ]
    if prov["kind"] == "transcribed":
        parts.append(
            f"The numbers were transcribed from the run recorded in {prov['transcribed_from']};"
            " run the command to record a new one."
        )
    if note := prov.get("note"):
        parts.append(f"{note[0].upper()}{note[1:]}.")
    return " ".join(parts) + "\n"


# --- engine: edit cost against project size ----------------------------------------------


def engine_tools(medians: dict[str, list[float | None]]) -> list[str]:
    return [tool for tool in medians if not tool.startswith("floor:") or tool == "floor:compile"]


def engine_panel(axes: Axes, data: dict[str, Any], scenario: str) -> None:
    medians = data["medians"][scenario]
    leaf = engine_tools(data["medians"]["leaf"])
    anchors = [tool for tool in leaf if not tool.startswith("relive")]
    colours = dict(zip(anchors, ANCHOR_COLOURS, strict=False))  # one colour per tool throughout
    for tool in engine_tools(medians):
        points = [(s, v) for s, v in zip(data["sizes"], medians[tool], strict=True) if v]
        if not points:
            continue
        relive = tool.startswith("relive")
        style = "--" if tool.startswith("floor") or tool == "relive-refresh" else "-"
        colour = RELIVE if relive else colours.get(tool, "black")
        marker = "s" if tool == "relive-refresh" else "o"
        sizes, values = zip(*points, strict=True)
        width = 2 if relive else 1.2
        label = data["labels"][tool]
        axes.plot(sizes, values, style, marker=marker, color=colour, lw=width, label=label)
    axes.set_xscale("log")
    axes.set_yscale("log")
    plain_log_axis(axes.yaxis)
    axes.set_xticks(data["sizes"], [str(size) for size in data["sizes"]])
    axes.xaxis.set_minor_locator(NullLocator())
    axes.set_title(SCENARIOS[scenario], fontsize=9)
    axes.set_xlabel("modules in the project")
    axes.set_ylabel(f"median {data['unit']}")


def engine_plot(document: Document, out: Path) -> None:
    data = document["data"]
    figure, grid = plt.subplots(2, 2, figsize=(10, 7.5))
    for axes, scenario in zip(grid.flat, SCENARIOS, strict=True):
        engine_panel(axes, data, scenario)
    handles, labels = grid.flat[0].get_legend_handles_labels()
    figure.legend(handles, labels, loc="lower center", ncol=3, frameon=False)
    figure.tight_layout(rect=(0, 0.08, 1, 1))
    save(figure, out / "engine.svg")


def engine_tables(document: Document) -> str:
    data = document["data"]
    blocks = []
    for scenario, title in SCENARIOS.items():
        medians = data["medians"][scenario]
        header = [f"**{title}** (median {data['unit']})"]
        header += [f"{size} modules" for size in data["sizes"]]
        rows = [[data["labels"][tool], *map(number, medians[tool])] for tool in medians]
        blocks.append(table(header, rows))
    followed = data["dependents_followed"]
    header = ["Did the importers follow the root edit?", "function body", "constant"]
    rows = [
        [data["labels"][tool], marks["root_body"], marks["root_constant"]]
        for tool, marks in followed.items()
    ]
    blocks.append(table(header, rows, text_columns=3))
    return "\n".join(blocks)


# --- run: save-to-live against restart tools ----------------------------------------------


def by_tool(rows: list[dict[str, Any]], key: str) -> Grouped:
    grouped: Grouped = {}
    for row in rows:
        grouped.setdefault(row["tool"], {})[row[key]] = row
    return grouped


def bar_groups(axes: Axes, groups: list[str], tools: Grouped, label: Callable[[str], str]) -> None:
    """Horizontal bars, one group per `groups` entry, one bar per tool; log scale in ms."""
    height = 0.8 / len(tools)
    anchors = iter(ANCHOR_COLOURS)
    for index, (tool, rows) in enumerate(tools.items()):
        colour = RELIVE if tool == "relive" else next(anchors)
        values = [rows[group]["median_ms"] if group in rows else None for group in groups]
        places = [g + index * height for g, v in enumerate(values) if v]
        shown = [v for v in values if v]
        bars = axes.barh(places, shown, height=height * 0.9, color=colour, label=label(tool))
        axes.bar_label(bars, [number(v) for v in shown], padding=2, fontsize=7)
    axes.set_yticks([g + 0.4 - height / 2 for g in range(len(groups))], groups)
    axes.invert_yaxis()
    axes.set_xscale("log")
    plain_log_axis(axes.xaxis)
    axes.set_xlabel("median ms from the save to the new code running (log scale)")
    axes.legend(frameon=False, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=3)


def run_plot(document: Document, out: Path) -> None:
    data = document["data"]
    tools = by_tool(data["rows"], "program")
    programs = list(dict.fromkeys(row["program"] for row in data["rows"]))
    commands = data.get("commands", {})
    figure, axes = plt.subplots(figsize=(9, 4.5))
    groups = [f"{program} program" for program in programs]
    renamed = {
        tool: {f"{p} program": row for p, row in runs.items()} for tool, runs in tools.items()
    }
    bar_groups(axes, groups, renamed, lambda tool: commands.get(tool, "floor: event + compile"))
    save(figure, out / "run.svg")


def run_table(document: Document) -> str:
    data = document["data"]
    tools = by_tool(data["rows"], "program")
    programs = list(dict.fromkeys(row["program"] for row in data["rows"]))
    relive = tools.get("relive", {})
    header = ["tool", "mode"]
    for program in programs:
        header += [f"{program}: median (p90) ms", "vs relive"]
    rows = []
    for tool, runs in tools.items():
        mode = next(iter(runs.values()))["mode"]
        cells = [data.get("commands", {}).get(tool, "floor: event + compile"), mode]
        for program in programs:
            run = runs.get(program, {})
            base = relive.get(program, {}).get("median_ms")
            median, p90 = run.get("median_ms"), run.get("p90_ms")
            cells += [f"{number(median)} ({number(p90)})", ratio(median, base)]
        rows.append(cells)
    return table(header, rows, text_columns=2)


# --- web: an edit to the next response -----------------------------------------------------


def web_plot(document: Document, out: Path) -> None:
    rows = document["data"]["rows"]
    groups = list(dict.fromkeys(f"{row['framework']}, {row['app']} app" for row in rows))
    tools: Grouped = {"relive": {}, "own reloader": {}}
    for row in rows:
        role = "relive" if row["tool"] == "relive" else "own reloader"
        tools[role][f"{row['framework']}, {row['app']} app"] = row
    figure, axes = plt.subplots(figsize=(9, 5))
    labels = {"relive": "relive run", "own reloader": "the framework's own reloader (a restart)"}
    bar_groups(axes, groups, tools, labels.__getitem__)
    axes.set_xlabel("median ms from the save to the first response showing it (log scale)")
    save(figure, out / "web.svg")


def web_table(document: Document) -> str:
    rows = document["data"]["rows"]
    pairs: dict[tuple[str, str], dict[str, dict[str, Any]]] = {}
    for row in rows:
        role = "relive" if row["tool"] == "relive" else "own"
        pairs.setdefault((row["framework"], row["app"]), {})[role] = row
    header = ["framework, app", "relive ms", "own reloader ms", "faster",
              "failed requests: relive / own", "longest request ms: relive / own"]  # fmt: skip
    lines = []
    for (framework, app), pair in pairs.items():
        ours, theirs = pair["relive"], pair["own"]
        lines.append(
            [
                f"{framework}, {app}",
                number(ours["median_ms"]),
                f"{number(theirs['median_ms'])} ({theirs['tool']})",
                ratio(theirs["median_ms"], ours["median_ms"]),
                f"{ours['failed_requests']} of {ours['requests']}"
                f" / {theirs['failed_requests']} of {theirs['requests']}",
                f"{number(ours['longest_request_ms'])} / {number(theirs['longest_request_ms'])}",
            ]
        )
    return table(header, lines, text_columns=3)


# --- main ----------------------------------------------------------------------------------

BENCHMARKS: dict[str, tuple[Callable[[Document, Path], None], Callable[[Document], str]]] = {
    "engine": (engine_plot, engine_tables),
    "run": (run_plot, run_table),
    "web": (web_plot, web_table),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, default=recorded.RESULTS_DIR)
    parser.add_argument("--out", type=Path, default=recorded.REPO / "docs" / "generated" / "bench")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    setup_style()
    for name, (plot, tabulate) in BENCHMARKS.items():
        document = recorded.read(args.results / f"{name}.json")
        if document["benchmark"] != name:
            raise ValueError(f"{name}.json holds the {document['benchmark']!r} benchmark")
        plot(document, args.out)
        (args.out / f"{name}_table.md").write_text(tabulate(document))
        (args.out / f"{name}_source.md").write_text(provenance_line(document))
        print(f"{name}: {args.out / name}.svg, tables and source", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
