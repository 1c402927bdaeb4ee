"""The eval command: the reference backend scores 100%, reports render, stdout carries only records."""

from __future__ import annotations

import subprocess
import sys

import orjson
import pytest

PY = [sys.executable, "-m", "r1ci_cli"]


@pytest.fixture(scope="module")
def test_tasks(tmp_path_factory):
    path = tmp_path_factory.mktemp("eval") / "test.jsonl"
    subprocess.run(PY + ["gen-tasks", "-q", "--source", "symbench,bbh", "--split", "test", "--num-per-task", "2",
                         "-o", str(path)], check=True, timeout=300)
    return path


def test_reference_backend_scores_everything_on_the_test_split(test_tasks, tmp_path):
    out = tmp_path / "refs.jsonl.zst"
    proc = subprocess.run(PY + ["eval", str(test_tasks), "--backend", "reference", "--summary", "-o", str(out),
                                "--report", str(tmp_path / "report.md")], capture_output=True, timeout=600)
    assert proc.returncode == 0, proc.stderr.decode()[-2000:]
    rows = [orjson.loads(line) for line in proc.stdout.splitlines()]
    overall = [r for r in rows if r["level"] == "overall"]
    assert len(overall) == 1 and overall[0]["accuracy"] == 1.0
    sources = {r["name"] for r in rows if r["level"] == "source"}
    assert sources == {"SymBench", "BBH"}
    assert {r["name"] for r in rows if r["level"] == "split"} == {"test"}
    assert out.read_bytes()[:4] == b"\x28\xb5\x2f\xfd"
    assert (tmp_path / "report.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "| reference | 100.0 [" in (tmp_path / "report.md").read_text()


def test_report_compares_files_and_rejects_mismatched_names(test_tasks, tmp_path):
    refs = tmp_path / "refs.jsonl"
    subprocess.run(PY + ["eval", str(test_tasks), "--backend", "reference", "-q", "-o", str(refs)], check=True,
                   timeout=600)
    # A second "model": the same trajectories with every answer marked wrong.
    wrong = tmp_path / "wrong.jsonl"
    wrong.write_bytes(b"".join(orjson.dumps({**orjson.loads(line), "correct": False}) + b"\n"
                               for line in refs.read_bytes().splitlines()))
    proc = subprocess.run(PY + ["eval", "report", str(wrong), str(refs), "--names", "base,sft", "--stages", "base,sft",
                                "--report", str(tmp_path / "cmp.md")], capture_output=True, timeout=120)
    assert proc.returncode == 0, proc.stderr.decode()
    text = (tmp_path / "cmp.md").read_text()
    assert "| base | 0.0 [" in text and "| sft | 100.0 [" in text
    assert proc.stdout == b""  # --report without --summary writes no rows
    # Paired on the same instances: sft wins every instance over base.
    n = len(refs.read_bytes().splitlines())
    assert f"| sft | base | {n} | {n} | 0 | +100.0 |" in text
    third = subprocess.run(PY + ["eval", "report", str(wrong), str(refs), str(wrong), "--names", "base,sft,rl1",
                                 "--baseline", "sft", "--report", str(tmp_path / "three.md")],
                           capture_output=True, timeout=120)
    assert third.returncode == 0, third.stderr.decode()
    three = (tmp_path / "three.md").read_text()
    assert f"| rl1 | sft | {n} | 0 | {n} | -100.0 |" in three and f"| sft | base | {n} | {n} | 0 |" in three
    assert f"| base | sft | {n} |" not in three  # the pair sft/base is there once
    unknown = subprocess.run(PY + ["eval", "report", str(wrong), str(refs), "--names", "base,sft", "--baseline",
                                   "rl9", "--report", str(tmp_path / "x.md")], capture_output=True, timeout=120)
    assert unknown.returncode == 1 and b"--baseline rl9: not among the compared models" in unknown.stderr
    assert not (tmp_path / "x.md").exists()
    bad = subprocess.run(PY + ["eval", "report", str(refs), "--names", "a,b"], capture_output=True, timeout=120)
    assert bad.returncode == 1 and b"2 names for 1 files" in bad.stderr and bad.stdout == b""


def test_eval_needs_a_model_for_model_backends():
    proc = subprocess.run(PY + ["eval", "--backend", "hf"], capture_output=True, timeout=60, input=b"")
    assert proc.returncode == 2 and b"needs --model" in proc.stderr


@pytest.mark.parametrize("content", [b"", b"\n\n"])
def test_report_on_a_file_without_trajectories_is_an_error(tmp_path, content):
    empty = tmp_path / "empty.jsonl"
    empty.write_bytes(content)
    proc = subprocess.run(PY + ["eval", "report", str(empty)], capture_output=True, timeout=120)
    assert proc.returncode == 1 and proc.stdout == b""
    assert f"{empty}: no trajectories".encode() in proc.stderr


@pytest.mark.parametrize("output", ["x.jsonl.zst", "x.jsonl", "x.zst"])
def test_compare_refuses_a_file_name_as_its_output_directory(tmp_path, output):
    proc = subprocess.run(PY + ["eval", "--backend", "hf", "--compare", "a", "--compare", "b", "-o",
                                str(tmp_path / output)], capture_output=True, timeout=60, input=b"")
    assert proc.returncode == 2 and b"-o is a directory" in proc.stderr
    assert not (tmp_path / output).exists()
