"""Markdown table of the curriculum ablation from run directories (each with
eval-{base,sft,rl1..4,flat,online4}.jsonl.zst).

    python shell/ablation_table.py runs/ablation-s0 runs/ablation-s1 ...

Accuracy is ``eval report``'s overall accuracy (``r1ci_cli.evaluate.accuracy``: the mean over tasks of each
task's pass@1 at the eval temperature), so this table and the eval reports agree; one row per seed and a mean
row. "curriculum" is the last stage (rl4), the fair comparison with flat GRPO and with the online arm (online4:
stages 2-4 regrouped by the running pass rates) after the same steps; "best stage" (of rl1..rl4) is shown too but
is chosen on the same held-out set, so it is optimistic.
"""

from __future__ import annotations

import os
import sys

from r1ci_cli.evaluate import overall_accuracy
from r1ci_cli.records import Trajectory
from r1ci_cli.streams import open_records

COLUMNS = ["base", "sft", "rl1", "rl2", "rl3", "rl4", "flat", "online4"]


def accuracy(path: str) -> float:
    """The overall accuracy of one eval file; raises FileNotFoundError when the eval is missing."""
    with open_records(path, Trajectory) as rows:
        return overall_accuracy(rows)


def table(runs: list[str]) -> str:
    """The markdown table: per run, accuracy of every column, then the mean over runs."""
    header = "| run | base | SFT | rl1 | rl2 | rl3 | curriculum (rl4) | flat GRPO | online (stage 4) | best stage |"
    lines = [header, "|" + "---|" * 10]
    sums = [0.0] * (len(COLUMNS) + 1)
    for run in runs:
        acc = [accuracy(os.path.join(run, f"eval-{c}.jsonl.zst")) for c in COLUMNS]
        acc.append(max(acc[2:6]))
        sums = [s + a for s, a in zip(sums, acc)]
        lines.append(f"| {os.path.basename(run)} | " + " | ".join(f"{a:.3f}" for a in acc) + " |")
    lines.append("| mean | " + " | ".join(f"{s / len(runs):.3f}" for s in sums) + " |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.stdout.write(table(sys.argv[1:]))
