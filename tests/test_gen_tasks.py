"""gen-tasks as a new user meets it: generators that raise, --difficulty mistakes, --list -v, --check naming
the field that differs, and the SymBench originals' flags."""

from __future__ import annotations

import logging
import random
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner

from r1ci_cli.cli import cli
from r1ci_cli.errors import R1ciError
from r1ci_cli.tasks import generate
from r1ci_cli.tasks.generate import GenOptions
from r1ci_cli.tasks.registry import Instance, TaskFamily


def _family(name: str, fails) -> TaskFamily:
    """A generated family whose generator raises when ``fails(rng's first draw, knobs)`` says so."""

    def gen(rng: random.Random, knobs):
        value = rng.randrange(10**9)
        if fails(value, knobs):
            raise RuntimeError(f"unlucky draw {value}")
        return Instance(question=f"{name} question {value} {knobs.get('size')}", check={"answer": str(value)},
                        answer=str(value))

    return TaskFamily(name=name, source="bbh", verify=lambda inst, ans: ans == inst.answer,
                      reference_program=lambda inst: f"print({inst.answer!r})", generate=gen, knobs={"size": 3})


def _run(monkeypatch, chosen, **kw):
    monkeypatch.setattr(generate, "chosen_families", lambda opts: chosen)
    monkeypatch.setattr(generate, "split_of", lambda name: "train")
    return list(generate.generate_tasks(GenOptions(sources=("bbh",), pool="train", seed=0, **kw)))


def test_a_generator_that_raises_now_and_then_is_retried_with_the_next_attempt_seed(monkeypatch):
    flaky = _family("flaky", lambda value, knobs: value % 3 == 0)
    first = _run(monkeypatch, [flaky], num_per_task=30)
    assert [t.extra["index"] for t in first] == list(range(30))
    assert _run(monkeypatch, [flaky], num_per_task=30) == first  # the retries are seeded too


def test_a_generator_that_always_raises_is_skipped_with_one_line(monkeypatch, caplog):
    broken = _family("broken", lambda value, knobs: True)
    fine = _family("fine", lambda value, knobs: False)
    with caplog.at_level(logging.WARNING, logger="r1ci"):
        tasks = _run(monkeypatch, [broken, fine], num_per_task=4)
    assert [t.task for t in tasks] == ["fine"] * 4
    lines = [r.getMessage() for r in caplog.records if "broken" in r.getMessage()]
    assert len(lines) == 1 and lines[0].startswith("skipping broken:") and "RuntimeError" in lines[0]


def test_a_generator_that_fails_only_with_the_users_knobs_is_an_error_naming_them(monkeypatch):
    picky = _family("picky", lambda value, knobs: knobs.get("size") != 3)
    with pytest.raises(R1ciError, match=r"--difficulty.*size.*picky"):
        _run(monkeypatch, [picky], num_per_task=2, difficulty=("picky.size=4",))


@pytest.mark.slow
def test_maze_from_the_report_no_longer_stops_the_run():
    """The README example died in Reasoning-Gym's maze generator (it raises on some seeds)."""
    result = CliRunner().invoke(cli, ["gen-tasks", "-q", "--tasks", "maze", "--pool", "eval", "--num-per-task", "20"])
    assert result.exit_code == 0, result.output
    rows = [orjson.loads(line) for line in result.stdout.splitlines()]
    assert len(rows) == 20 and {r["task"] for r in rows} == {"maze"}


@pytest.mark.parametrize(("flag", "named"), [
    ("game24.numbers=abc", "numbers"),
    ("game24.number_range=7x", "number_range"),
    ("logical_equation.unique=3", "unique"),
])
def test_a_difficulty_value_of_the_wrong_kind_is_one_line_naming_the_knob(flag, named):
    result = CliRunner().invoke(cli, ["gen-tasks", "-q", "--tasks", "game24,logical_equation", "--num-per-task",
                                      "2", "--difficulty", flag])
    assert result.exit_code == 1 and result.stdout == ""
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert named in result.stderr and result.stderr.count("\n") == 1, result.stderr


def test_difficulty_values_of_the_right_kind_still_work():
    result = CliRunner().invoke(cli, ["gen-tasks", "-q", "--tasks", "game24", "--num-per-task", "2",
                                      "--difficulty", "game24.numbers=[4, 5]", "--difficulty", "target=24.0"])
    assert result.exit_code == 0, result.output
    assert len(result.stdout.splitlines()) == 2


def test_list_verbose_shows_each_tasks_knobs():
    plain = CliRunner().invoke(cli, ["gen-tasks", "--list", "--tasks", "game24,maze"])
    verbose = CliRunner().invoke(cli, ["gen-tasks", "--list", "-v", "--tasks", "game24,maze"])
    assert plain.exit_code == 0 and verbose.exit_code == 0
    assert "number_range" not in plain.stdout
    assert "numbers=4" in verbose.stdout and "number_range=[1, 13]" in verbose.stdout
    assert "min_dist=" in verbose.stdout  # a Reasoning-Gym config field


# ------------------------------------------------------------------ the published SymBench instances

@pytest.fixture
def codesteer(tmp_path):
    from test_symbench_original import reference_records, write_tree

    write_tree(tmp_path / "CodeSteer", reference_records("cryptanalysis")[:40])
    return str(tmp_path / "CodeSteer")


def _originals(*args):
    result = CliRunner().invoke(cli, ["gen-tasks", "-q", "--source", "symbench", "--tasks", "cryptanalysis", *args])
    assert result.exit_code == 0, result.output
    return [orjson.loads(line) for line in result.stdout.splitlines()]


def test_symbench_dir_reads_every_published_instance_by_default(codesteer):
    rows = _originals("--symbench-dir", codesteer)
    assert len(rows) == 40 and rows[0]["id"] == "cryptanalysis-orig-00000"


def test_symbench_dir_honours_num_per_task(codesteer):
    rows = _originals("--symbench-dir", codesteer, "--num-per-task", "7")
    assert [r["id"] for r in rows] == [f"cryptanalysis-orig-{i:05d}" for i in range(7)]


@pytest.mark.parametrize("pool", ["train", "eval"])
def test_symbench_dir_honours_pool(codesteer, pool):
    everything = _originals("--symbench-dir", codesteer)
    rows = _originals("--symbench-dir", codesteer, "--pool", pool)
    assert rows == [r for r in everything if generate.pool_of(r["question"]) == pool]
    assert 0 < len(rows) < len(everything)
    assert all(r["pool"] == pool for r in rows)


def test_from_data_refuses_tasks_that_have_no_data_to_load(tmp_path):
    result = CliRunner().invoke(cli, ["gen-tasks", "--tasks", "game24,boolean_expressions", "--from-data",
                                      "--data-dir", str(tmp_path)])
    assert result.exit_code == 2 and result.stdout == ""
    assert "game24" in result.stderr and "--symbench-dir" in result.stderr
    assert "boolean_expressions" not in result.stderr.split("(")[0]


@pytest.mark.parametrize("field, change", [
    ("question", lambda r: {**r, "question": r["question"] + " (edited)"}),
    ("check.numbers", lambda r: {**r, "check": {**r["check"], "numbers": [1, 1, 1, 1]}}),
])
def test_check_names_the_field_that_differs(tmp_path, field, change):
    frozen = tmp_path / "frozen.jsonl"
    args = ["gen-tasks", "-q", "--tasks", "game24", "--num-per-task", "3"]
    assert CliRunner().invoke(cli, [*args, "-o", str(frozen)]).exit_code == 0
    lines = frozen.read_bytes().splitlines()
    lines[1] = orjson.dumps(change(orjson.loads(lines[1])))
    frozen.write_bytes(b"\n".join(lines) + b"\n")
    result = CliRunner().invoke(cli, [*args, "--check", str(frozen)])
    assert result.exit_code == 1 and f"{frozen}:2:" in result.stderr
    assert f"field '{field}'" in result.stderr, result.stderr
