"""``r1ci exec-sandbox``: records on stdout only, flag checks before input, the done criterion."""

from __future__ import annotations

import json
import subprocess
import sys

from click.testing import CliRunner

from r1ci_cli.commands.exec_sandbox import exec_sandbox_cmd


def _records(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines()]


def test_done_criterion_through_the_console_script():
    proc = subprocess.run([sys.executable, "-m", "r1ci_cli", "exec-sandbox", "--workers", "1"],
                          input=b'{"id":"a","code":"print(6*7)"}\n', capture_output=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    (record,) = _records(proc.stdout.decode())
    assert (record["id"], record["status"], record["stdout"], record["exit_code"]) == ("a", "ok", "42\n", 0)
    assert set(record) >= {"id", "status", "exit_code", "stdout", "stderr", "wall_ms", "truncated"}
    assert b"sandbox isolation: " in proc.stderr


def test_results_in_input_order_with_extra_fields(tmp_path):
    src = tmp_path / "req.jsonl"
    lines = [{"id": "slow", "code": "import time\ntime.sleep(0.3)\nprint('s')", "task": 1},
             {"id": "fast", "code": "print('f')"},
             {"id": "bad", "code": "1/0"},
             {"id": "loop", "code": "while True: pass", "timeout_s": 0.5}]
    src.write_text("".join(json.dumps(line) + "\n" for line in lines))
    out = tmp_path / "res.jsonl.zst"
    result = CliRunner().invoke(exec_sandbox_cmd, [str(src), "-o", str(out), "--workers", "2", "--preload", "",
                                                   "-q"])
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    from r1ci_cli.streams import read_all

    records = [r.to_dict() if hasattr(r, "to_dict") else r for r in read_all(str(out))]
    assert [r["id"] for r in records] == ["slow", "fast", "bad", "loop"]
    assert [r["status"] for r in records] == ["ok", "ok", "error", "timeout"]
    assert records[0]["task"] == 1


def test_serve_needs_a_token_file():
    result = CliRunner().invoke(exec_sandbox_cmd, ["--serve", "127.0.0.1:0"], input="")
    assert result.exit_code == 2
    assert "--token-file" in result.stderr
    assert result.stdout == ""


def test_bad_record_is_one_line_and_exit_1():
    result = CliRunner().invoke(exec_sandbox_cmd, ["--workers", "1", "--preload", ""],
                                input='{"id":"a","code":"print(1)"}\n{"id":"b"}\n')
    assert result.exit_code == 1
    assert "field 'code'" in result.stderr


def test_help_has_summary_and_example():
    result = CliRunner().invoke(exec_sandbox_cmd, ["--help"])
    assert result.exit_code == 0
    assert "Example:" in result.stdout and "--isolation" in result.stdout


def test_help_does_not_import_torch():
    code = ("import sys\nfrom r1ci_cli.cli import main\ntry:\n    main(['exec-sandbox', '--help'])\n"
            "except SystemExit:\n    pass\nprint('torch' in sys.modules, 'numpy' in sys.modules, file=sys.stderr)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.stderr.strip().endswith("False False")
