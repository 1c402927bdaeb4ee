"""Survey every Reasoning-Gym dataset through r1ci's wrapper, to choose (and re-check) the 84 we use.

Not a shipped command. Run from the repository root:

    .venv/bin/python bench/rgym_survey.py -o /tmp/rgym_survey.json [--datasets a,b] > survey.md
    .venv/bin/python bench/rgym_survey.py --hash-only --min-seeds 300 --max-seeds 300 --datasets a,b

A full run over the 105 datasets takes about 15 minutes on a busy 2-core machine. Rare effects need many
seeds: list_functions changes ~5% of its instances, so its non-determinism shows only with ~100+ seeds.

It starts two worker processes with different ``PYTHONHASHSEED`` values; each generates the same seeds of
every dataset through ``rgym.make_family(name).generate`` and reports, per dataset:

* ``rate_per_s`` / ``cpu_rate_per_s``: instances per second of wall-clock / of this process's CPU time, after
  one warm-up instance (the CPU-time rate is what one unloaded core would do);
* ``repeat_ok``: every seed generated again in the same process, after re-seeding the global ``random`` and
  ``numpy.random`` state, gives the same instance (catches generators that draw from the global RNGs);
* digests, compared across the two workers: equal means generation does not depend on the hash seed;
* ``self_ok``: the stored answer, printed and re-extracted from ``<<<…>>>``, scores exactly 1.0;
* ``codec_ok``: scoring the JSON round-tripped entry gives the same score as the original entry for the
  answer, junk answers and perturbations;
* ``junk``: the best score of non-answers ("", "x", "0", "hello world", a 20k-character string), which of
  them scored 1.0 and which made the scorer raise; ``prefix_full``: proper prefixes of the answer that
  scored 1.0 (a short "0" accepted for "0.3125" is broken scoring; "82" for "82 days" is fine);
* ``perturb_ok``: perturb() found at least two answers that the scorer rejects.

The markdown table goes to stdout; the raw results to ``-o``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
JUNK = ("", "x", "0", "hello world", "9" * 20000)
GEN_TIMEOUT_S = 60
SCORED_SEEDS = 8


class _Timeout(Exception):
    pass


def _alarm(_signum, _frame):
    raise _Timeout()


def _generate(family, name: str, index: int):
    from r1ci_cli.seeds import derive_seed

    signal.alarm(GEN_TIMEOUT_S)
    try:
        return family.generate(random.Random(derive_seed(0, "rgym-survey", name, index)), family.knobs)
    finally:
        signal.alarm(0)


def survey_one(name: str, min_seeds: int, max_seeds: int, budget_s: float, hash_only: bool = False) -> dict:
    import numpy as np
    from reasoning_gym.factory import DATASETS

    from r1ci_cli.answer import extract_answer
    from r1ci_cli.tasks import rgym
    from r1ci_cli.tasks.rgym_codec import canonical_json, decode

    family = rgym.make_family(name)
    out: dict = {"name": name, "digests": [], "errors": []}
    instances = []
    try:
        # The first instance pays one-off costs (lazy imports such as sympy, cached data): not timed.
        instances.append(_generate(family, name, 0))
        start, cpu_start = time.perf_counter(), time.process_time()
        while len(instances) < max_seeds and (len(instances) < min_seeds or time.perf_counter() - start < budget_s):
            instances.append(_generate(family, name, len(instances)))
        elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu_start
        # Wall-clock rates swing with the machine's load; CPU-time rates estimate one unloaded core.
        out["rate_per_s"] = round((len(instances) - 1) / elapsed, 2) if len(instances) > 1 else 0.0
        out["cpu_rate_per_s"] = round((len(instances) - 1) / cpu, 2) if len(instances) > 1 and cpu > 0 else 0.0
    except _Timeout:
        out["errors"].append(f"generate: over {GEN_TIMEOUT_S} s")
    except Exception as err:  # noqa: BLE001 - the survey records every failure kind
        out["errors"].append(f"generate: {type(err).__name__}: {err}"[:200])
    for inst in instances:
        blob = json.dumps({"q": inst.question, "c": inst.check, "a": inst.answer}, sort_keys=True)
        out["digests"].append(hashlib.sha256(blob.encode()).hexdigest()[:16])
    if not instances or out["errors"] or hash_only:
        return out

    # Regenerate every seed with the *global* RNGs moved: code that draws from them is caught here.
    random.seed(12345)
    np.random.seed(12345)
    repeat_ok, fresh_ok = True, True
    for i, inst in enumerate(instances):
        again = _generate(family, name, i)
        repeat_ok &= json.dumps(again.check, sort_keys=True) == json.dumps(inst.check, sort_keys=True)
        if name in rgym.REUSABLE:
            fresh = rgym.make_entry(name, inst.check["config"], inst.check["seed"], reuse=False)
            fresh_ok &= canonical_json(fresh) == canonical_json(decode(inst.check["entry"]))
    out["repeat_ok"], out["reuse_ok"] = repeat_ok, fresh_ok

    dataset_cls, config_cls = DATASETS[name]
    scorer = dataset_cls(config=config_cls())
    self_ok, codec_ok, perturb_ok, str_answers = True, True, True, True
    junk_best, junk_raises, junk_full, prefix_full = 0.0, set(), set(), set()
    max_q, max_a = 0, 0
    for k, inst in enumerate(instances[:SCORED_SEEDS]):
        answer = decode(inst.answer)
        if not isinstance(answer, str):
            str_answers = False
            answer = str(answer)
        max_q, max_a = max(max_q, len(inst.question)), max(max_a, len(answer))
        shown = extract_answer(f"<<<{answer}>>>")
        self_ok &= shown is not None and family.verify(inst, shown)
        original = rgym.make_entry(name, inst.check["config"], inst.check["seed"], reuse=False)
        wrong = family.perturb(inst, answer, random.Random(k))
        perturb_ok &= len(wrong) >= 2 and not any(family.verify(inst, w) for w in wrong)
        prefixes = {answer.strip()[:n] for n in (1, 2, len(answer.strip()) // 2)} - {answer.strip(), ""}
        for text in (answer, *JUNK, *wrong, *prefixes):
            try:
                want = float(scorer.score_answer(text, original))
            except Exception as err:  # noqa: BLE001
                want = f"raise {type(err).__name__}"
                if text in JUNK:
                    junk_raises.add(f"{text[:12]!r}: {type(err).__name__}")
            try:
                got = rgym.raw_score(inst, text)
            except Exception as err:  # noqa: BLE001
                got = f"raise {type(err).__name__}"
            codec_ok &= want == got
            if text in JUNK and isinstance(want, float):
                junk_best = max(junk_best, want)
                if want == 1.0:
                    junk_full.add(f"{text[:12]!r} (answer {answer[:20]!r})")
            if text in prefixes and want == 1.0:
                prefix_full.add(f"{text[:12]!r} (answer {answer[:20]!r})")
    out.update(self_ok=self_ok, codec_ok=codec_ok, perturb_ok=perturb_ok, str_answers=str_answers,
               junk_best=junk_best, junk_raises=sorted(junk_raises), junk_full=sorted(junk_full)[:3],
               prefix_full=sorted(prefix_full)[:3], max_question_chars=max_q, max_answer_chars=max_a)
    return out


def worker(names: list[str], args: argparse.Namespace) -> None:
    import logging

    logging.disable(logging.WARNING)  # verify() logs each scorer exception; the survey counts them instead
    signal.signal(signal.SIGALRM, _alarm)
    for name in names:
        try:
            row = survey_one(name, args.min_seeds, args.max_seeds, args.budget_s, args.hash_only)
        except Exception as err:  # noqa: BLE001
            row = {"name": name, "digests": [], "errors": [f"survey: {type(err).__name__}: {err}"[:200]]}
        # A file, not stdout: some generators (bf) print to stdout themselves.
        with open(args.rows_file, "a", encoding="utf-8") as rows:
            rows.write(json.dumps(row) + "\n")


def run_workers(names: list[str], args: argparse.Namespace, hash_seeds: tuple[str, ...]) -> list[dict[str, dict]]:
    procs, files = [], []
    for hash_seed in hash_seeds:
        files.append(tempfile.NamedTemporaryFile(prefix="rgym-survey-", suffix=".jsonl", delete=False).name)
        env = dict(os.environ, PYTHONHASHSEED=hash_seed, PYTHONPATH=str(ROOT))
        cmd = [sys.executable, __file__, "--worker", "--min-seeds", str(args.min_seeds), "--max-seeds",
               str(args.max_seeds), "--budget-s", str(args.budget_s), "--rows-file", files[-1], "--datasets", ",".join(names)]
        cmd += ["--hash-only"] if args.hash_only else []
        procs.append(subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL))
    results = []
    for proc, path in zip(procs, files, strict=True):
        proc.wait()
        rows = [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines()]
        os.unlink(path)
        results.append({row["name"]: row for row in rows})
    return results


def table(rows: list[dict]) -> str:
    lines = ["| dataset | inst/s (cpu) | repeat | hashseed (n) | self 1.0 | codec | junk max | 1.0 for junk/prefix | "
             "raises on | perturb | notes |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['name']} | {r.get('rate_per_s', 0)} ({r.get('cpu_rate_per_s', 0)}) | {r.get('repeat_ok')} | "
                     f"{r.get('hash_ok')} ({r.get('hash_compared')}) | "
                     f"{r.get('self_ok')} | {r.get('codec_ok')} | {r.get('junk_best')} | "
                     f"{'; '.join(r.get('junk_full', [])[:1] + r.get('prefix_full', [])[:1])} | "
                     f"{'; '.join(r.get('junk_raises', []))} | {r.get('perturb_ok')} | "
                     f"{'; '.join(r.get('errors', []))[:80]} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--min-seeds", type=int, default=6, help="instances per dataset at least")
    parser.add_argument("--max-seeds", type=int, default=60, help="instances per dataset at most")
    parser.add_argument("--budget-s", type=float, default=2.0, help="generate until this time is used")
    parser.add_argument("--hash-only", action="store_true", help="only compare instances across hash seeds")
    parser.add_argument("--rows-file", default="", help=argparse.SUPPRESS)
    parser.add_argument("--datasets", default="", help="comma-separated names (default: all)")
    parser.add_argument("-o", "--output", default="", help="write the raw results here as JSON")
    args = parser.parse_args()
    names = [n for n in args.datasets.split(",") if n]
    if args.worker:
        worker(names, args)
        return
    if not names:
        sys.path.insert(0, str(ROOT))
        from r1ci_cli.tasks.rgym import dataset_names

        names = dataset_names()
    first, second = run_workers(names, args, ("0", "1"))
    rows = []
    for name in names:
        row = dict(first.get(name, {"name": name, "errors": ["worker died"]}))
        other = second.get(name, {})
        # The workers stop on a time budget, so they may reach different counts: compare the common prefix.
        common = min(len(row.get("digests", [])), len(other.get("digests", [])))
        row["hash_compared"] = common
        row["cpu_rate_per_s_other"] = other.get("cpu_rate_per_s")
        row["hash_ok"] = common > 0 and row["digests"][:common] == other["digests"][:common]
        rows.append(row)
    if args.output:
        Path(args.output).write_text(json.dumps(rows, indent=1) + "\n")
    sys.stdout.write(table(rows) + "\n")


if __name__ == "__main__":
    main()
