"""Rollout throughput on the tiny model: tokens/s and the share of wall time spent waiting on the sandbox.

Not a shipped command. Run from the repository root:

    .venv/bin/python bench/rollout.py [--model DIR] [--tasks 8] [--samples 2] [--threads 1]

Three runs of the hf backend over game24 tasks, each on the real sandbox pool:

* ``no_tools``: ``--style text`` (no code runs): the generation-only baseline.
* ``tools``: ``--style agent`` with the tiny random model steered to a fixed program after
  ``--free-tokens`` sampled tokens per turn (a random model never writes a fence by itself), so every
  trajectory makes ``--max-code-calls`` real executions (numpy + a small loop) while the other cohort
  generates. ``cohorts=2`` (overlap) and ``cohorts=1`` (strict rounds) are both measured.

``sandbox wait`` is the wall time the loop spent blocked on execution results (code that ran while another
cohort generated costs nothing). The target is ≤5% with overlap. One JSON line per run goes to stdout.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
from pathlib import Path

import torch

from r1ci_cli.backends.hf import HfGenerator
from r1ci_cli.records import Task
from r1ci_cli.rollout.loop import RolloutOptions, RolloutStats, rollout
from r1ci_cli.sandbox import SandboxOptions, open_sandbox
from r1ci_cli.seeds import derive_rng
from r1ci_cli.tasks.registry import get_family

PROGRAM = "\n```python\nimport numpy as np\nx = np.arange(200000)\nprint(int((x * x % 7).sum()))\n```"


class SteerToProgram:
    """Wraps a causal LM: each generate call samples ``free`` tokens, then writes ``script`` token by token."""

    def __init__(self, model, script: list[int], free: int):
        self.model, self.script, self.free = model, script, free
        self.forward, self.config = model.forward, model.config
        self.step = 0

    def __call__(self, input_ids, **kwargs):
        if input_ids.shape[1] > 1:
            self.step = 0
        out = self.model(input_ids=input_ids, **kwargs)
        k = self.step - self.free
        if 0 <= k < len(self.script):
            out.logits[:, -1, :] = -1e9
            out.logits[:, -1, self.script[k]] = 0.0
        self.step += 1
        return out


def make_tasks(num: int) -> list[Task]:
    family = get_family("game24")
    tasks = []
    for i in range(num):
        inst = family.generate(derive_rng(0, "bench-rollout", i), family.knobs)
        tasks.append(Task(id=f"game24/{i}", source=family.source, task="game24", split="train", seed=i,
                          question=inst.question, check=dict(inst.check), answer=inst.answer))
    return tasks


def measure(name: str, generator, sandbox, tasks: list[Task], opts: RolloutOptions) -> dict:
    stats = RolloutStats()
    started = time.monotonic()
    trajs = list(rollout(tasks, generator, sandbox, opts, stats=stats))
    wall = time.monotonic() - started
    return {"run": name, "style": opts.style, "cohorts": opts.cohorts, "trajectories": len(trajs),
            "code_calls": stats.num_code_calls, "new_tokens": stats.num_new_tokens, "wall_s": round(wall, 2),
            "tokens_per_s": round(stats.num_new_tokens / wall, 1),
            "sandbox_wait_share": round(stats.sandbox_wait_s / wall, 4),
            "generate_share": round(stats.generate_s / wall, 4)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="a checkpoint dir; default: a fresh tiny model")
    parser.add_argument("--tasks", type=int, default=8)
    parser.add_argument("--samples", type=int, default=2)
    parser.add_argument("--max-new-tokens", type=int, default=96)
    parser.add_argument("--free-tokens", type=int, default=24)
    parser.add_argument("--max-code-calls", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    parser.add_argument("--workers", type=int, default=2, help="sandbox pool workers")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = args.model
        if model_dir is None:
            from r1ci_cli.models import InitModelOptions, init_model

            model_dir = str(init_model(Path(tmp) / "tiny", InitModelOptions(preset="tiny", seed=0)))
        generator = HfGenerator(model_dir, device="cpu", batch_size=args.tasks * args.samples)
        tasks = make_tasks(args.tasks)
        base = dict(samples=args.samples, temperature=1.0, max_new_tokens=args.max_new_tokens,
                    max_total_tokens=args.max_new_tokens * (args.max_code_calls + 1), max_code_calls=args.max_code_calls,
                    max_in_flight=args.tasks * args.samples)
        with open_sandbox(None, SandboxOptions(workers=args.workers, timeout_s=60.0)) as sandbox:
            sandbox.run("print(1)")  # workers up before timing
            results = [measure("no_tools", generator, sandbox, tasks, RolloutOptions(style="text", cohorts=2, **base))]
            real = generator.model
            generator.model = SteerToProgram(real, list(generator.encode_text(PROGRAM)), args.free_tokens)
            for cohorts in (2, 1):
                results.append(measure("tools", generator, sandbox, tasks,
                                       RolloutOptions(style="agent", cohorts=cohorts, **base)))
            generator.model = real
    for row in results:
        sys.stdout.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
