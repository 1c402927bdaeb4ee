"""Properties every generated task family must have, parametrized over the whole registry.

For each family: 20 seeded instances whose reference program, run in the sandbox, prints an answer its
verifier accepts; perturbed answers and malformed strings rejected without an exception; golden hashes
of the first instances at seed 0; and (once for all families) identical bytes across processes with
different PYTHONHASHSEEDs.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from r1ci_cli.seeds import derive_rng
from r1ci_cli.tasks.generate import GenOptions, generate_family, pool_of
from r1ci_cli.tasks.registry import Instance, TaskFamily, families, score
from r1ci_cli.tasks.split import split_of

GOLDEN = Path(__file__).with_name("golden") / "task_hashes.json"
NUM_REFERENCE = 20
FAMILIES = [f for f in families() if f.generate is not None]
IDS = [f.name for f in FAMILIES]

MALFORMED = ["", " ", "garbage", "x" * 100_000, "<<<>>>", "[[[", "{'a':", "None", "1e999", "\x00\x01",
             "🙂" * 50, "[1, 2", "((((((((((((((((((((1))))))))))))))))))))", "-" * 5000, "1/0", "__import__('os')"]


def _instances(family: TaskFamily, count: int) -> list[Instance]:
    return [family.generate(derive_rng(0, family.name, "reference-test", i), family.knobs) for i in range(count)]


@pytest.mark.parametrize("family", FAMILIES, ids=IDS)
def test_reference_program_passes_and_perturbations_fail(family: TaskFamily, run_programs) -> None:
    instances = _instances(family, NUM_REFERENCE)
    results = run_programs([family.reference_program(inst) for inst in instances])
    rng = derive_rng(0, family.name, "perturb")
    for inst, (stdout, stderr, code) in zip(instances, results):
        assert code == 0, f"{family.name}: reference program failed: {stderr[-500:]}"
        answer = stdout.strip()
        assert family.verify(inst, answer), f"{family.name}: reference answer {answer[:200]!r} rejected"
        assert score(family, inst, f"thinking...\n<<<{answer}>>>").correct
        if family.perturb is not None:
            wrong = family.perturb(inst, answer, rng)
            assert len(wrong) >= 2, f"{family.name}: perturb gave {len(wrong)} answers"
            for bad in wrong:
                assert bad != answer
                assert not family.verify(inst, bad), f"{family.name}: perturbed {bad[:200]!r} accepted"


@pytest.mark.parametrize("family", FAMILIES, ids=IDS)
def test_malformed_answers_are_rejected_without_exceptions(family: TaskFamily) -> None:
    inst = _instances(family, 1)[0]
    for text in MALFORMED:
        assert not family.verify(inst, text), f"{family.name}: accepted {text[:40]!r}"
    assert not score(family, inst, "no answer span here").correct
    assert not score(family, inst, "").correct


@pytest.mark.parametrize("family", FAMILIES, ids=IDS)
def test_generation_is_deterministic_and_pooled(family: TaskFamily) -> None:
    opts = GenOptions(sources=(family.source,), tasks=(family.name,), num_per_task=3, seed=0)
    first = [r.to_dict() for r in generate_family(family, opts, "train", {})]
    again = [r.to_dict() for r in generate_family(family, opts, "train", {})]
    held_out = [r.to_dict() for r in generate_family(family, opts, "eval", {})]
    assert first == again
    assert all(pool_of(r["question"]) == "train" for r in first)
    assert not {r["question"] for r in first} & {r["question"] for r in held_out}


def _golden_digest(family: TaskFamily) -> str:
    opts = GenOptions(sources=(family.source,), tasks=(family.name,), num_per_task=3, seed=0)
    pool = "eval" if split_of(family.name) == "test" else "train"
    data = b"".join(orjson.dumps(r.to_dict()) + b"\n" for r in generate_family(family, opts, pool, {}))
    return hashlib.sha256(data).hexdigest()


def test_golden_hashes_of_first_instances() -> None:
    """Generators must not change silently. After an intended change: UPDATE_GOLDEN=1 pytest -k golden."""
    digests = {f.name: _golden_digest(f) for f in FAMILIES}
    if os.environ.get("UPDATE_GOLDEN") == "1":
        GOLDEN.write_text(json.dumps(digests, indent=1, sort_keys=True) + "\n")
    stored = json.loads(GOLDEN.read_text())
    changed = sorted(name for name, digest in digests.items() if stored.get(name) != digest)
    assert not changed, f"instances changed for {changed} (UPDATE_GOLDEN=1 after an intended change)"


@pytest.mark.slow
def test_same_bytes_across_processes_and_hash_seeds(tmp_path: Path) -> None:
    outputs = []
    for hash_seed in ("0", "1", "4242"):
        out = tmp_path / f"tasks-{hash_seed}.jsonl"
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        subprocess.run([sys.executable, "-m", "r1ci_cli", "gen-tasks", "-q", "--num-per-task", "2",
                        "--seed", "7", "-o", str(out)], check=True, env=env, timeout=600)
        outputs.append(out.read_bytes())
    assert outputs[0] and outputs[0] == outputs[1] == outputs[2]
