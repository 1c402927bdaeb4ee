"""``r1ci rollout`` through click: records on stdout only, pipeline flags, resume after a crash."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from r1ci_cli.cli import cli

NUM_TASKS = 5


@pytest.fixture(scope="module")
def tasks_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("tasks") / "tasks.jsonl"
    result = CliRunner().invoke(cli, ["gen-tasks", "--tasks", "game24", "--num-per-task", str(NUM_TASKS),
                                      "-o", str(path), "-q"])
    assert result.exit_code == 0, result.stderr
    return str(path)


@pytest.fixture(scope="module")
def shared_pool():
    from test_rollout_loop import real_or_double_sandbox

    with real_or_double_sandbox() as box:
        yield box


@pytest.fixture
def reuse_pool(shared_pool, monkeypatch):
    """One pool for the whole module: starting a pool per invocation costs seconds on a busy machine."""
    from contextlib import nullcontext

    monkeypatch.setattr("r1ci_cli.rollout.job.open_sandbox", lambda settings, timeout_s: nullcontext(shared_pool))


def rollout(*args):
    return CliRunner().invoke(cli, ["rollout", *args], catch_exceptions=False)


def lines(path):
    with open(path) as handle:
        return [json.loads(line) for line in handle if line.strip()]


def stderr_and_logs(result, caplog):
    """The handler of progress.setup_logging keeps the stderr of its first command; logs land in caplog."""
    return result.stderr + caplog.text


def test_reference_rollout_on_stdout_is_all_correct(tasks_file, caplog):
    result = rollout(tasks_file, "--backend", "reference")
    assert result.exit_code == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(rows) == NUM_TASKS and all(r["correct"] and r["finish"] == "answer" for r in rows)
    for row in rows:
        exec_turn = row["turns"][1]
        assert exec_turn["role"] == "exec" and row["answer"] in exec_turn["text"]
    text = stderr_and_logs(result, caplog)
    assert "accuracy 1.000" in text and "finish: answer 5" in text


def test_same_seed_same_bytes(tasks_file, tmp_path, reuse_pool):
    outs = []
    for name in ("a.jsonl", "b.jsonl"):
        result = rollout(tasks_file, "--backend", "reference", "--samples", "2", "-o", str(tmp_path / name), "-q")
        assert result.exit_code == 0 and result.stdout == ""
        outs.append((tmp_path / name).read_bytes())
    assert outs[0] == outs[1] and len(outs[0].splitlines()) == 2 * NUM_TASKS
    assert not (tmp_path / "a.jsonl.partial").exists()


def test_resume_after_a_crash_skips_done_ids(tasks_file, tmp_path, caplog, reuse_pool):
    full = tmp_path / "full.jsonl"
    assert rollout(tasks_file, "--backend", "reference", "-o", str(full), "-q").exit_code == 0
    done = full.read_bytes().splitlines(keepends=True)
    out = tmp_path / "out.jsonl"
    (tmp_path / "out.jsonl.partial").write_bytes(done[2] + done[0] + b'{"id": "torn')
    result = rollout(tasks_file, "--backend", "reference", "-o", str(out), "--resume")
    assert result.exit_code == 0, result.stderr
    assert out.read_bytes() == full.read_bytes()
    assert "5 trajectories (2 resumed)" in stderr_and_logs(result, caplog) and not (tmp_path / "out.jsonl.partial").exists()


def test_keep_correct_and_max_per_task(tasks_file, tmp_path, reuse_pool):
    out = tmp_path / "kept.jsonl"
    result = rollout(tasks_file, "--backend", "reference", "--samples", "3", "--keep", "correct",
                     "--max-per-task", "2", "-o", str(out), "-q")
    assert result.exit_code == 0
    rows = lines(out)
    # Per task family (all NUM_TASKS instances are game24), as the paper's "at most 70 per task" means.
    first = lines(tasks_file)[0]["id"]
    assert len(rows) == 2 and [(r["task_id"], r["sample_index"]) for r in rows] == [(first, 0), (first, 1)]
    result = rollout(tasks_file, "--backend", "reference", "--samples", "3", "--keep", "correct", "-o", str(out), "-q")
    assert result.exit_code == 0 and len(lines(out)) == 3 * NUM_TASKS


def test_shard_takes_every_nth_task(tasks_file, reuse_pool):
    result = rollout(tasks_file, "--backend", "reference", "--shard", "1/2", "-q")
    ids = [json.loads(line)["task_id"] for line in result.stdout.splitlines()]
    all_ids = [row["id"] for row in lines(tasks_file)]
    assert ids == all_ids[1::2]


@pytest.mark.parametrize("args, message", [
    (["--resume"], "--resume needs a file output"),
    (["--backend", "hf"], "--backend hf needs --model"),
    (["--shard", "3/2"], "need 0 <= i < n"),
    (["--backend", "hf", "--model", "m", "--text-share", "0.5"], "--text-share is the reference teacher's"),
    (["--backend", "reference", "--style", "code", "--text-share", "0.3"], "--text-share mixes text answers"),
])
def test_flag_misuse_exits_2_before_reading(args, message):
    result = rollout("/nonexistent.jsonl", *args)
    assert result.exit_code == 2 and message in result.stderr and result.stdout == ""


def test_text_style_with_reference_is_a_one_line_error(tasks_file, reuse_pool):
    result = rollout(tasks_file, "--backend", "reference", "--style", "text", "-q")
    assert result.exit_code == 1 and "cannot roll out --style text" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.slow
def test_hf_backend_end_to_end_on_cpu(tasks_file, tmp_path, caplog):
    from r1ci_cli.models import InitModelOptions, init_model

    model = init_model(tmp_path / "model", InitModelOptions(preset="tiny", seed=0))
    out = tmp_path / "hf.jsonl"
    result = rollout(tasks_file, "--backend", "hf", "--model", str(model), "--max-new-tokens", "32",
                     "--max-total-tokens", "64", "--samples", "2", "-o", str(out))
    assert result.exit_code == 0, result.stderr
    rows = lines(out)
    assert len(rows) == 2 * NUM_TASKS and all(r["prompt_ids"] and r["tokenizer"] for r in rows)
    assert "tokens/s" in stderr_and_logs(result, caplog)


def test_prompt_sets_reach_the_trajectory_prompt(tasks_file, tmp_path, reuse_pool):
    from r1ci_cli.rollout.prompts import SHORT_PROMPTS, SYSTEM_PROMPTS

    for prompts, want in (("paper", SYSTEM_PROMPTS["agent"]), ("short", SHORT_PROMPTS["agent"])):
        result = rollout(tasks_file, "--backend", "reference", "--prompts", prompts)
        assert result.exit_code == 0, result.stderr
        rows = [json.loads(line) for line in result.stdout.splitlines()]
        assert rows and all(r["prompt"][0] == {"role": "system", "content": want} for r in rows)
    custom = tmp_path / "prompts.json"
    custom.write_text(json.dumps({"agent": "Use Python. Answer as <<<answer>>>."}))
    result = rollout(tasks_file, "--backend", "reference", "--prompts", str(custom))
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert rows[0]["prompt"][0]["content"] == "Use Python. Answer as <<<answer>>>." and rows[0]["correct"]


@pytest.mark.parametrize("content, message", [
    ('{"agnet": "x"}', "field 'agnet': unknown style"),
    ('{"agent": 3}', "field 'agent': expected a non-empty string"),
    ('[1]', "expected a JSON object"),
    ('{', "not a JSON object"),
])
def test_bad_prompt_files_are_one_line_errors(tasks_file, tmp_path, content, message):
    custom = tmp_path / "prompts.json"
    custom.write_text(content)
    result = CliRunner().invoke(cli, ["rollout", tasks_file, "--backend", "reference", "--prompts", str(custom)])
    assert result.exit_code == 1 and message in result.stderr and str(custom) in result.stderr
    assert result.stdout == ""
    result = CliRunner().invoke(cli, ["rollout", tasks_file, "--backend", "reference", "--prompts", "tiny"])
    assert result.exit_code == 1 and "neither a prompt set" in result.stderr


# ------------------------------------------------------------------ one sandbox-token mechanism for every command

TOKEN = "rollout-test-token"


@pytest.fixture(scope="module")
def service(shared_pool):
    import threading

    from r1ci_cli.sandbox.service import SandboxServer

    server = SandboxServer(shared_pool, ("127.0.0.1", 0), TOKEN)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"{server.address[0]}:{server.address[1]}"
    server.close()
    thread.join(5)


def test_sandbox_service_token_from_file_or_environment(tasks_file, tmp_path, service):
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    by_file = rollout(tasks_file, "--backend", "reference", "--sandbox", service, "--sandbox-token-file",
                      str(token_file), "-q")
    assert by_file.exit_code == 0, by_file.stderr
    rows = [json.loads(line) for line in by_file.stdout.splitlines()]
    assert len(rows) == NUM_TASKS and all(r["correct"] for r in rows)
    by_env = CliRunner().invoke(cli, ["rollout", tasks_file, "--backend", "reference", "--sandbox", service, "-q"],
                                env={"R1CI_SANDBOX_TOKEN": TOKEN})
    assert by_env.exit_code == 0 and by_env.stdout == by_file.stdout
    token_file.write_text("wrong")
    refused = rollout(tasks_file, "--backend", "reference", "--sandbox", service, "--sandbox-token-file",
                      str(token_file), "-q")
    assert not any(json.loads(line)["correct"] for line in refused.stdout.splitlines())


@pytest.mark.parametrize("command", [["rollout"], ["eval", "run"], ["rl-stage", "--stage", "1", "--model", "m",
                                                                   "-o", "out"]])
def test_a_token_file_needs_a_service_and_a_service_needs_a_token(command, tasks_file, tmp_path):
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN)
    result = CliRunner().invoke(cli, [*command, "/nonexistent.jsonl", "--sandbox-token-file", str(token_file)])
    assert result.exit_code == 2 and "--sandbox-token-file goes with --sandbox" in result.stderr
    missing = CliRunner().invoke(cli, ["rollout", tasks_file, "--backend", "reference", "--sandbox", "127.0.0.1:9"])
    assert missing.exit_code == 1 and "--sandbox-token-file FILE, or the token in $R1CI_SANDBOX_TOKEN" in missing.stderr
