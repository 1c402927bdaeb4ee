"""`r1ci show`: trajectories, tasks and execution results for people — plain text when stdout is not a
terminal (no escape codes, code and outputs exactly), the filters, bad input, and a pager on a terminal."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from r1ci_cli.cli import cli

CODE = "words = ['olive', 'algebra']\n\nprint(' '.join(sorted(words)))\n"


def trajectory(index: int, correct: bool = True, finish: str = "answer", task: str = "word_sorting",
               **extra: Any) -> dict[str, Any]:
    answer = "algebra olive" if correct else "olive algebra"
    turns = [{"role": "model", "text": f"I will sort them.\n```python\n{CODE}```", "ids": [5, 6, 7]},
             {"role": "exec", "text": "\nCode Execution Results:\nalgebra olive\n\n", "status": "ok"},
             {"role": "model", "text": f"So the answer is <<<{answer}>>>", "ids": [8, 9]}]
    if finish == "max_tokens":
        turns = [{"role": "model", "text": "```python\nprint('never closed'", "ids": [1]}]
        answer = None
    return {"id": f"{task}-{index}/agent/t0.6/s0", "task_id": f"{task}-{index}", "style": "agent",
            "temperature": 0.6, "model": "ckpt/sft", "turns": turns, "answer": answer, "correct": correct,
            "reward": 1.1 if correct else -0.1 + 0.2 * (finish == "answer"), "num_code_calls": 1, "finish": finish,
            "task": task, "source": "bbh", "split": "test",
            "question": "Sort the following words alphabetically: List: olive algebra",
            "reference_answer": "algebra olive", "well_formed": finish == "answer",
            "usage": {"prompt_tokens": 40, "completion_tokens": 5, "observation_tokens": 4, "requests": 2}, **extra}


def write(path: Path, rows: list[dict[str, Any]]) -> str:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return str(path)


def show(*args: str, input: str | None = None):
    result = CliRunner().invoke(cli, ["show", *args], input=input)
    return result


def shown_ids(output: str) -> list[str]:
    return [line.split(" ")[0] for line in output.splitlines() if line.endswith("─") and " ──" in line]


def test_a_trajectory_in_plain_text(tmp_path: Path) -> None:
    result = show(write(tmp_path / "t.jsonl", [trajectory(0)]))
    assert result.exit_code == 0, result.stderr
    out = result.stdout
    assert "\x1b" not in out  # not a terminal: no escape codes
    lines = out.splitlines()
    assert lines[0].startswith("word_sorting-0/agent/t0.6/s0 ─")
    assert lines[1] == "task word_sorting · source bbh · split test · model ckpt/sft · style agent · temperature 0.6"
    assert lines[2:4] == ["Question", "Sort the following words alphabetically: List: olive algebra"]
    assert lines[4:7] == ["Model, turn 1 (3 tokens)", "I will sort them.", "    ```python"]
    assert "\n".join(lines[7:10]) + "\n" == "".join(("    " + line if line.strip() else line)
                                                    for line in CODE.splitlines(keepends=True))
    assert lines[10:13] == ["    ```", "Execution result: ok", "    algebra olive"]
    assert lines[13:15] == ["Model, turn 2 (2 tokens)", "So the answer is <<<algebra olive>>>"]
    assert lines[15] == ("Answer 'algebra olive'  reference 'algebra olive'  verdict correct  reward 1.1  "
                         "finish answer")
    assert lines[16] == ("tokens: prompt 40 · completion 5 · observation 4 · requests 2 · code calls 1 · "
                         "well formed True")
    assert result.stderr == ""


def test_long_lines_are_never_wrapped_or_cut_in_plain_text(tmp_path: Path) -> None:
    row = trajectory(0)
    long_line = "print(" + " + ".join(str(i) for i in range(200)) + ")"
    row["turns"][0]["text"] = f"```python\n{long_line}\n```"
    out = show(write(tmp_path / "t.jsonl", [row])).stdout
    assert "    " + long_line in out.splitlines()


def test_an_unclosed_block_and_a_wrong_answer_are_said(tmp_path: Path) -> None:
    out = show(write(tmp_path / "t.jsonl", [trajectory(0, correct=False, finish="max_tokens")])).stdout
    assert "    print('never closed'" in out and "    (the block was not closed)" in out
    assert "Answer none  reference 'algebra olive'  verdict wrong" in out and "finish max_tokens" in out


@pytest.mark.parametrize("flags, want", [
    ([], ["word_sorting-0", "word_sorting-1", "game24-2", "word_sorting-3"]),
    (["--task", "game*"], ["game24-2"]),
    (["--task", "word_sorting-1,game24"], ["word_sorting-1", "game24-2"]),
    (["--correct"], ["word_sorting-0", "game24-2"]),
    (["--wrong"], ["word_sorting-1", "word_sorting-3"]),
    (["--finish", "max_tokens"], ["word_sorting-3"]),
    (["--wrong", "--finish", "answer"], ["word_sorting-1"]),
    (["--id", "*-3/*"], ["word_sorting-3"]),
    (["--id", "word_sorting-1"], ["word_sorting-1"]),  # a trajectory's task_id matches too
    (["--limit", "2"], ["word_sorting-0", "word_sorting-1"]),
    (["--task", "word_sorting", "--limit", "2", "--wrong"], ["word_sorting-1", "word_sorting-3"]),
])
def test_filters(tmp_path: Path, flags: list[str], want: list[str]) -> None:
    rows = [trajectory(0), trajectory(1, correct=False), trajectory(2, task="game24"),
            trajectory(3, correct=False, finish="max_tokens")]
    result = show(write(tmp_path / "t.jsonl", rows), *flags)
    assert result.exit_code == 0, result.stderr
    assert [i.split("/")[0] for i in shown_ids(result.stdout)] == want


def test_reads_stdin_and_zstd(tmp_path: Path) -> None:
    from r1ci_cli.streams import record_sink

    with record_sink(str(tmp_path / "t.jsonl.zst")) as sink:
        sink.write(trajectory(7))
    assert shown_ids(show(str(tmp_path / "t.jsonl.zst")).stdout) == ["word_sorting-7/agent/t0.6/s0"]
    assert shown_ids(show(input=json.dumps(trajectory(8)) + "\n").stdout) == ["word_sorting-8/agent/t0.6/s0"]


def test_tasks_and_exec_records_are_recognised_in_one_stream(tmp_path: Path) -> None:
    task = {"id": "game24-0", "source": "symbench", "task": "game24", "split": "train", "seed": 0,
            "question": "Use 4 8 6 4 to make 24.", "answer": "(4 + 8) * (6 - 4)", "check": {}, "group": 2,
            "potential": 0.75}
    request = {"id": "r1", "code": "print(6 * 7)\n", "timeout_s": 5.0}
    result = {"id": "r1", "status": "timeout", "exit_code": None, "stdout": "partial\n", "stderr": "", "wall_ms": 5003.0,
              "truncated": False}
    out = show(write(tmp_path / "mixed.jsonl", [task, request, result])).stdout
    assert shown_ids(out) == ["game24-0", "r1", "r1"]
    assert "Use 4 8 6 4 to make 24." in out and "Answer '(4 + 8) * (6 - 4)'" in out and "group 2 · potential 0.75" in out
    assert "timeout 5 s\n    print(6 * 7)\n" in out
    assert "status timeout  exit code None  wall 5003 ms" in out and "stdout\n    partial\n" in out
    # Verdict filters keep only trajectories: a task has no verdict.
    assert shown_ids(show(str(tmp_path / "mixed.jsonl"), "--correct").stdout) == []
    assert shown_ids(show(str(tmp_path / "mixed.jsonl"), "--task", "game24").stdout) == ["game24-0"]


def test_a_bad_record_is_one_line_naming_file_line_and_field(tmp_path: Path) -> None:
    bad = trajectory(1)
    bad["correct"] = "yes"
    path = write(tmp_path / "t.jsonl", [trajectory(0), bad])
    result = show(path)
    assert result.exit_code == 1 and result.stderr.strip().splitlines() == [
        f"Error: {path}:2: field 'correct': must be true or false, got str"]
    unknown = write(tmp_path / "u.jsonl", [{"id": "x"}])
    result = show(unknown)
    assert result.exit_code == 1 and f"{unknown}:1: not a Trajectory, Task, ExecRequest or ExecResult" in result.stderr
    result = show(str(tmp_path / "missing.jsonl"))
    assert result.exit_code == 1 and "no such file" in result.stderr


def test_on_a_terminal_it_pages_with_colours(tmp_path: Path) -> None:
    """stdout a pseudo-terminal: the output goes through $PAGER (here a command that saves it) in colour."""
    path = write(tmp_path / "t.jsonl", [trajectory(0)])
    saved = tmp_path / "paged.txt"
    env = {**os.environ, "PAGER": f"cat > {saved}", "TERM": "xterm-256color", "COLUMNS": "100"}
    parent, child = pty.openpty()
    try:
        proc = subprocess.run([sys.executable, "-m", "r1ci_cli", "show", path], stdout=child, stderr=subprocess.PIPE,
                              stdin=child, env=env, timeout=120)
    finally:
        os.close(child)
        os.close(parent)
    assert proc.returncode == 0, proc.stderr
    paged = saved.read_text()
    assert "\x1b[" in paged and "algebra" in paged and "Execution result" in paged
    assert "print" in paged and "sorted" in paged  # the code, highlighted (split by colour codes)


def test_help_lists_the_filters_and_an_example() -> None:
    result = show("--help")
    assert result.exit_code == 0
    for flag in ("--task", "--correct / --wrong", "--finish", "--id", "--limit", "Example:"):
        assert flag in result.stdout
