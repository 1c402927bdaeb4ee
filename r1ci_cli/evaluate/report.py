"""Markdown reports and PNG plots of ``evaluate.summarize`` rows, one or several models side by side."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from r1ci_cli.evaluate.accuracy import Paired, Row

HEADLINE = ("SymBench", "BBH", "Reasoning-Gym", "train", "test", "all")


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f}"


def _lookup(rows: Sequence[Row]) -> dict[tuple[str, str], Row]:
    return {(r.level, r.name): r for r in rows}


def _headline_cell(table: dict[tuple[str, str], Row], column: str) -> str:
    level = "overall" if column == "all" else ("split" if column in ("train", "test") else "source")
    row = table.get((level, column))
    if row is None:
        return "–"
    return f"{_pct(row.accuracy)} [{_pct(row.ci_low)}, {_pct(row.ci_high)}] ({row.num_tasks})"


def render_report(rows_by_model: dict[str, list[Row]], title: str = "r1ci evaluation",
                  image: str | None = None, pairs: Sequence[Paired] = ()) -> str:
    """The report: headline accuracies (Table 3 style), paired comparisons, behaviour, per-task accuracies."""
    lines = [f"# {title}", "",
             "Accuracy in % (95% interval) (number of tasks); source, split and overall numbers average the "
             "per-task accuracies, as the paper does.", ""]
    lines += ["| model | " + " | ".join(HEADLINE) + " |", "|---" * (len(HEADLINE) + 1) + "|"]
    for model, rows in rows_by_model.items():
        table = _lookup(rows)
        lines.append(f"| {model} | " + " | ".join(_headline_cell(table, c) for c in HEADLINE) + " |")
    k_values = {r.pass_at_k is not None for rows in rows_by_model.values() for r in rows}
    if True in k_values:
        lines += ["", "pass@k (overall): " + ", ".join(
            f"{m}: {_pct(_lookup(rows)[('overall', 'all')].pass_at_k)}" for m, rows in rows_by_model.items())]
    if image:
        lines += ["", f"![accuracy per source and model]({image})"]
    if pairs:
        lines += ["", "## Paired on the same instances", "",
                  "Each model against another on the instances both answered: wins (losses) = instances it scores "
                  "higher (lower) on, Δ = mean score difference in points, p = exact two-sided sign test over wins "
                  "and losses. p < 0.05: the difference is beyond the noise of which questions were asked.", "",
                  "| model | against | instances | wins | losses | Δ (points) | sign test p |",
                  "|---|---|---|---|---|---|---|"]
        for pair in pairs:
            lines.append(f"| {pair.model} | {pair.baseline} | {pair.instances} | {pair.wins} | {pair.losses} | "
                         f"{100 * pair.delta:+.1f} | {pair.p_value:.3f} |")
    lines += ["", "## Behaviour", "",
              "| model | trajectories | mean code calls | uses code | self-check | mean response tokens | finish |",
              "|---|---|---|---|---|---|---|"]
    for model, rows in rows_by_model.items():
        row = _lookup(rows)[("overall", "all")]
        finish = ", ".join(f"{k} {v}" for k, v in row.finish.items())
        lines.append(f"| {model} | {row.num_trajectories} | {row.mean_code_calls:.2f} | {_pct(row.code_use_rate)}% | "
                     f"{_pct(row.self_check_rate)}% | {row.mean_response_tokens:.0f} | {finish} |")
    models = list(rows_by_model)
    tasks = sorted({r.name for rows in rows_by_model.values() for r in rows if r.level == "task"})
    lines += ["", "## Per task", "", "| task | " + " | ".join(models) + " |", "|---" * (len(models) + 1) + "|"]
    for task in tasks:
        cells = []
        for model in models:
            row = _lookup(rows_by_model[model]).get(("task", task))
            cells.append("–" if row is None else f"{_pct(row.accuracy)} ({row.num_trajectories})")
        lines.append(f"| {task} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def plot(rows_by_model: dict[str, list[Row]], path: str | Path, stages: Sequence[str] | None = None) -> Any:
    """Grouped bars (accuracy per source and overall, one bar per model) and, when ``stages`` names
    models in curriculum order, accuracy over the stages. Writes a PNG and returns the Figure."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    columns = [c for c in ("SymBench", "BBH", "Reasoning-Gym") if any(
        ("source", c) in _lookup(rows) for rows in rows_by_model.values())] + ["all"]
    panels = 2 if stages else 1
    fig, axes = plt.subplots(1, panels, figsize=(6.5 * panels, 4.2), squeeze=False)
    ax = axes[0][0]
    models = list(rows_by_model)
    width = 0.8 / max(len(models), 1)
    for i, model in enumerate(models):
        table = _lookup(rows_by_model[model])
        values = []
        for column in columns:
            row = table.get(("overall", "all") if column == "all" else ("source", column))
            values.append(100 * row.accuracy if row else 0.0)
        positions = [j + (i - (len(models) - 1) / 2) * width for j in range(len(columns))]
        ax.bar(positions, values, width=width, label=model)
    ax.set_xticks(range(len(columns)), ["overall" if c == "all" else c for c in columns])
    ax.set_ylabel("accuracy (%)")
    ax.set_ylim(0, 100)
    ax.set_title("accuracy per source")
    ax.legend(fontsize=8)
    if stages:
        ax2 = axes[0][1]
        missing = [s for s in stages if s not in rows_by_model]
        if missing:
            raise ValueError(f"stages {missing} are not among the compared models")
        for level, name, label in (("overall", "all", "all tasks"), ("split", "test", "test tasks"),
                                   ("split", "train", "train tasks")):
            points = [_lookup(rows_by_model[s]).get((level, name)) for s in stages]
            if all(p is not None for p in points):
                ax2.plot(range(len(stages)), [100 * p.accuracy for p in points], marker="o", label=label)
        ax2.set_xticks(range(len(stages)), list(stages))
        ax2.set_ylim(0, 100)
        ax2.set_ylabel("accuracy (%)")
        ax2.set_title("accuracy over the curriculum")
        ax2.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, format="png", dpi=110)
    plt.close(fig)
    return fig
