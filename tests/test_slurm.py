"""The SLURM scripts in shell/: their glue without SLURM (fast), then for real on a one-node cluster (slow).

Fast tests source shell/lib.sh (shards, generator flags), run merge.sbatch as plain bash, and run submit.sh
against a recording ``sbatch`` to check the dependency chain of the whole method (rl-stage and eval included).
The slow test's fixture writes a slurm.conf into a temporary directory (auth/none, so no munge; state, spool,
logs and pid files all there; ports picked free on 127.0.0.1), starts both daemons in the foreground as
children of the test, waits for the node to be idle, and shuts them down afterwards, also when the test fails.
``shell/submit.sh`` then submits the tiny pipeline up to SFT: gen-tasks, init-model, the exec-sandbox service,
the reference-teacher rollout as a 2-task array reaching the service with its token, the merge with ``cat``,
and SFT through ``srun`` + ``torchrun``; the test checks every job's end state and the outputs.

Needs the Debian packages ``slurmctld slurmd slurm-client`` (``apt-get install slurm-wlm``) and root (slurmd
launches jobs as their user); skips otherwise. About a minute on 2 cores.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from r1ci_cli.streams import open_records

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
DAEMONS = ("slurmctld", "slurmd", "sbatch", "squeue", "sinfo", "scontrol")
TASKS = "game24,blocksworld,boxlift"
NUM_PER_TASK = 2
DEADLINE_S = 240


SCRIPTS = sorted((ROOT / "shell").glob("*.sbatch")) + [ROOT / "shell" / "submit.sh", ROOT / "shell" / "lib.sh"]


def _bash(script: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run bash code after sourcing shell/lib.sh, with SLURM's variables removed unless given."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("SLURM_")}
    full = dict(base, SHELL_DIR=str(ROOT / "shell"), **(env or {}))
    return subprocess.run(["bash", "-c", f'source "$SHELL_DIR/lib.sh"; {script}'], env=full, capture_output=True,
                          text=True, timeout=30)


@pytest.mark.parametrize("path", SCRIPTS, ids=lambda p: p.name)
def test_script_is_strict_bash_that_parses(path: Path) -> None:
    text = path.read_text()
    assert text.startswith("#!/usr/bin/env bash\n") or path.name == "lib.sh"
    assert "set -euo pipefail" in text
    assert subprocess.run(["bash", "-n", str(path)], capture_output=True, text=True).returncode == 0


@pytest.mark.parametrize(("env", "expected"), [
    ({}, "0/1"),
    ({"SLURM_ARRAY_TASK_ID": "0", "SLURM_ARRAY_TASK_MIN": "0", "SLURM_ARRAY_TASK_COUNT": "2"}, "0/2"),
    ({"SLURM_ARRAY_TASK_ID": "5", "SLURM_ARRAY_TASK_MIN": "4", "SLURM_ARRAY_TASK_COUNT": "3"}, "1/3"),
])
def test_array_shard_numbers_tasks_from_the_range_start(env: dict[str, str], expected: str) -> None:
    result = _bash("array_shard", env)
    assert result.returncode == 0, result.stderr
    assert result.stdout == expected + "\n"


def test_array_shard_refuses_a_sparse_array() -> None:
    result = _bash("array_shard", {"SLURM_ARRAY_TASK_ID": "2", "SLURM_ARRAY_TASK_MIN": "0",
                                   "SLURM_ARRAY_TASK_COUNT": "2", "SLURM_ARRAY_TASK_STEP": "2"})
    assert result.returncode == 1
    assert "dense --array range" in result.stderr


@pytest.mark.parametrize(("spec", "env", "expected"), [
    ("reference", {}, ["--backend", "reference"]),
    ("openai:gpt-4o", {}, ["--backend", "openai", "--model", "gpt-4o", "--base-url", "https://api.openai.com/v1"]),
    ("http://10.0.0.5:8000/v1", {"TEACHER_MODEL": "Qwen/Qwen2.5-72B-Instruct"},
     ["--backend", "openai", "--model", "Qwen/Qwen2.5-72B-Instruct", "--base-url", "http://10.0.0.5:8000/v1"]),
    ("runs/x/sft", {"BACKEND": "vllm"}, ["--backend", "vllm", "--model", "runs/x/sft"]),
])
def test_generator_flags_follow_the_teacher_syntax(spec: str, env: dict[str, str], expected: list[str]) -> None:
    result = _bash(f'generator_flags "{spec}"; printf "%s\\n" "${{GENERATOR_FLAGS[@]}}"', env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == expected


def test_generator_flags_need_the_served_model_name_for_a_url() -> None:
    result = _bash('generator_flags "http://10.0.0.5:8000/v1"')
    assert result.returncode == 1
    assert "TEACHER_MODEL" in result.stderr


def _shard(path: Path, ids: list[str]) -> None:
    import zstandard

    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(zstandard.ZstdCompressor().compress("".join(json.dumps({"id": i}) + "\n" for i in ids).encode()))


def test_merge_concatenates_complete_shards_in_order(tmp_path: Path) -> None:
    _shard(tmp_path / "a" / "shard-0001-of-0002.jsonl.zst", ["t1"])
    _shard(tmp_path / "a" / "shard-0000-of-0002.jsonl.zst", ["t0", "t2"])
    _shard(tmp_path / "b" / "shard-0000-of-0001.jsonl.zst", ["u0"])
    out = tmp_path / "merged.jsonl.zst"
    result = _bash(f'bash "$SHELL_DIR/merge.sbatch" {out} {tmp_path / "a"} {tmp_path / "b"}')
    assert result.returncode == 0, result.stderr
    with open_records(str(out)) as rows:
        assert [row["id"] for row in rows] == ["t0", "t2", "t1", "u0"]


@pytest.mark.parametrize("present", [["0000-of-0002"], ["0000-of-0002", "0001-of-0002", "0002-of-0003"]])
def test_merge_refuses_an_incomplete_or_mixed_array(tmp_path: Path, present: list[str]) -> None:
    for name in present:
        _shard(tmp_path / "parts" / f"shard-{name}.jsonl.zst", [name])
    out = tmp_path / "merged.jsonl.zst"
    result = _bash(f'bash "$SHELL_DIR/merge.sbatch" {out} {tmp_path / "parts"}')
    assert result.returncode == 1
    assert "shard" in result.stderr
    assert not out.exists()


@pytest.mark.parametrize(("name", "stage"), [("zero2.json", 2), ("zero3.json", 3)])
def test_zero_configs_leave_optimizer_and_batch_to_r1ci(name: str, stage: int) -> None:
    config = json.loads((ROOT / "shell" / name).read_text())
    assert config["zero_optimization"]["stage"] == stage
    # deepspeed_engine.read_config refuses these sections and overwrites the batch geometry from the flags.
    assert not {"optimizer", "scheduler", "train_batch_size", "train_micro_batch_size_per_gpu"} & set(config)
    assert "auto" not in json.dumps(config)


FAKE_SBATCH = """#!/usr/bin/env bash
# Stands in for the scheduler: records each submission (arguments + the variables the job would inherit).
n=$(( $(cat "$FAKE_DIR/count" 2>/dev/null || echo 100) + 1 ))
echo "$n" >"$FAKE_DIR/count"
python3 -c 'import json, os, sys; print(json.dumps({"id": sys.argv[1], "args": sys.argv[2:], "env": {k: os.environ.get(k, "") for k in ("GENERATOR", "MODEL", "REF_MODEL", "SEED", "SANDBOX_JOB")}}))' "$n" "$@" >>"$FAKE_DIR/calls"
echo "$n"
"""


def _plan(tmp_path: Path, **env: str) -> dict[str, dict]:
    """Run submit.sh against a recording sbatch; returns each submission by job name."""
    fake = tmp_path / "fake"
    fake.mkdir(exist_ok=True)
    (fake / "sbatch").write_text(FAKE_SBATCH.replace("{python}", sys.executable))
    (fake / "sbatch").chmod(0o755)
    (fake / "calls").unlink(missing_ok=True)
    base = {k: v for k, v in os.environ.items() if not k.startswith("SLURM_")}
    full = dict(base, FAKE_DIR=str(fake), PATH=f"{fake}:{os.environ['PATH']}", RUN=str(tmp_path / "run"), **env)
    result = subprocess.run(["bash", str(ROOT / "shell" / "submit.sh")], env=full, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    plan = {}
    for line in (fake / "calls").read_text().splitlines():
        call = json.loads(line)
        name = next(a for a in call["args"] if a.startswith("--job-name=")).split("=", 1)[1].removeprefix("r1ci-")
        call["dependency"] = next((a.split("=", 1)[1] for a in call["args"] if a.startswith("--dependency=")), "")
        plan[name] = call
    return plan


def test_submit_chains_the_whole_method_by_dependencies(tmp_path: Path) -> None:
    plan = _plan(tmp_path, SANDBOX="service", GPUS="8", NODES="2", BACKEND="vllm", TEACHER="openai:gpt-4o",
                 MODEL="Qwen/Qwen2.5-7B-Instruct")
    ids = {name: call["id"] for name, call in plan.items()}
    potential = [name for name in plan if name.startswith("potential-") and name != "potential-merge"]
    assert len(potential) == 20  # docs/paper.md: 4 styles x 5 temperatures
    assert plan["teacher-rollout"]["env"]["GENERATOR"] == "openai:gpt-4o"
    assert plan["teacher-rollout"]["dependency"] == f"afterok:{ids['tasks']},after:{ids['sandbox']}"
    assert plan["sft"]["dependency"] == f"afterok:{ids['teacher-merge']}"
    assert {"--nodes=2", "--gpus-per-node=8", "--exclusive"} <= set(plan["sft"]["args"])
    assert plan["potential-merge"]["dependency"] == "afterok:" + ":".join(ids[name] for name in potential)
    assert len({plan[name]["env"]["SEED"] for name in potential}) == 20
    assert plan["score-potential"]["dependency"] == f"afterok:{ids['potential-merge']}"
    previous = "sft"
    for stage in range(1, 5):
        call = plan[f"rl{stage}"]
        assert call["env"]["MODEL"].endswith(f"/{previous}")
        assert call["env"]["REF_MODEL"].endswith("/sft")
        assert call["dependency"] == f"afterok:{ids['score-potential']}:{ids[previous]},after:{ids['sandbox']}"
        assert f"eval-{previous}" in plan and plan[f"eval-{previous}"]["dependency"].endswith(f":{ids[previous]}")
        previous = f"rl{stage}"
    evals = ":".join(ids[f"eval-{name}"] for name in ("sft", "rl1", "rl2", "rl3", "rl4"))
    assert plan["sandbox-stop"]["dependency"] == f"afterany:{evals}"
    assert f"--wrap=scancel {ids['sandbox']}" in plan["sandbox-stop"]["args"]


def test_submit_skips_stages_whose_outputs_exist(tmp_path: Path) -> None:
    run = tmp_path / "run"
    (run / "sft").mkdir(parents=True)
    for path in (run / "tasks.jsonl.zst", run / "teacher.jsonl.zst", run / "sft" / "config.json"):
        path.write_text("x")
    plan = _plan(tmp_path, UNTIL="potential", MODEL="m0")
    assert not {"tasks", "init-model", "teacher-rollout", "sft", "sandbox"} & set(plan)
    assert all(plan[name]["dependency"] == "" for name in plan if name.startswith("potential-agent"))
    assert list(plan)[-1] == "score-potential"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _slurm_conf(root: Path, cpus: int) -> str:
    """One node called localhost on 127.0.0.1; more CPUs than the host has, so service and shards run together."""
    return "\n".join([
        "ClusterName=r1citest",
        "SlurmctldHost=localhost(127.0.0.1)",
        f"SlurmctldPort={_free_port()}",
        f"SlurmdPort={_free_port()}",
        "SlurmUser=root",
        "SlurmdUser=root",
        "AuthType=auth/none",
        "CredType=cred/none",
        f"StateSaveLocation={root}/state",
        f"SlurmdSpoolDir={root}/spool",
        f"SlurmctldPidFile={root}/slurmctld.pid",
        f"SlurmdPidFile={root}/slurmd.pid",
        f"SlurmctldLogFile={root}/slurmctld.log",
        f"SlurmdLogFile={root}/slurmd.log",
        "ProctrackType=proctrack/linuxproc",
        "TaskPlugin=task/none",
        "SelectType=select/cons_tres",
        "SelectTypeParameters=CR_Core",
        # The node's CPUs come from this file, not the hardware (the test host has 2 cores).
        "SlurmdParameters=config_overrides",
        "ReturnToService=2",
        "MpiDefault=none",
        "JobAcctGatherType=jobacct_gather/none",
        "AccountingStorageType=accounting_storage/none",
        "MinJobAge=600",
        f"NodeName=localhost NodeAddr=127.0.0.1 CPUs={cpus} RealMemory=4000 State=UNKNOWN",
        "PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP",
        "",
    ])


def _query(env: dict[str, str], *argv: str) -> str:
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=30, check=True).stdout


@pytest.fixture
def slurm(tmp_path: Path) -> Iterator[dict[str, str]]:
    """Environment (SLURM_CONF …) of a running one-node cluster; the daemons stop when the test ends."""
    missing = [name for name in DAEMONS if shutil.which(name) is None]
    if missing:
        pytest.skip(f"SLURM not installed ({', '.join(missing)} missing): apt-get install slurm-wlm")
    if os.geteuid() != 0:
        pytest.skip("slurmd must run as root to launch jobs")
    root = tmp_path / "slurm"
    (root / "state").mkdir(parents=True)
    (root / "spool").mkdir()
    conf = root / "slurm.conf"
    conf.write_text(_slurm_conf(root, cpus=4))
    env = dict(os.environ, SLURM_CONF=str(conf))
    stderr = [open(root / "slurmctld.stderr", "wb"), open(root / "slurmd.stderr", "wb")]
    daemons = [subprocess.Popen(["slurmctld", "-D", "-i", "-f", str(conf)], env=env, stdout=subprocess.DEVNULL,
                                stderr=stderr[0])]
    try:
        time.sleep(1)
        daemons.append(subprocess.Popen(["slurmd", "-D", "-N", "localhost", "-f", str(conf)], env=env,
                                        stdout=subprocess.DEVNULL, stderr=stderr[1]))
        deadline = time.monotonic() + 30
        state = ""
        while time.monotonic() < deadline:
            probe = subprocess.run(["sinfo", "-h", "-o", "%T"], env=env, capture_output=True, text=True, timeout=10)
            state = probe.stdout.strip()
            if state == "idle":
                break
            time.sleep(0.5)
        else:
            logs = "".join((root / name).read_text(errors="replace")[-2000:]
                           for name in ("slurmctld.log", "slurmd.log") if (root / name).exists())
            pytest.fail(f"node not idle after 30 s (state {state!r}):\n{logs}")
        yield env
    finally:
        _stop(env, daemons, root)
        for handle in stderr:
            handle.close()


def _stop(env: dict[str, str], daemons: list[subprocess.Popen], root: Path) -> None:
    """Cancel every job and let the steps end while slurmd still runs, then shut both daemons down."""
    subprocess.run(["scancel", "--user", "root"], env=env, capture_output=True, timeout=30)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        queued = subprocess.run(["squeue", "-h"], env=env, capture_output=True, text=True, timeout=10)
        if queued.returncode != 0 or not queued.stdout.strip():
            break
        time.sleep(0.5)
    subprocess.run(["scontrol", "shutdown"], env=env, capture_output=True, timeout=30)
    for daemon in daemons:
        try:
            daemon.wait(timeout=30)
        except subprocess.TimeoutExpired:
            daemon.kill()
            daemon.wait(timeout=10)
    # A slurmstepd orphaned by a killed slurmd would wait forever; ours are the ones holding this cluster's log.
    log = str(root / "slurmd.log")
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            holds_log = any(os.readlink(fd) == log for fd in (proc / "fd").iterdir())
        except OSError:
            continue
        if holds_log:
            try:
                os.kill(int(proc.name), 9)
            except ProcessLookupError:
                pass


def _job_states(env: dict[str, str], job_id: str) -> list[str]:
    """JobState of a job, one entry per array task."""
    lines = _query(env, "scontrol", "show", "job", "-o", job_id).splitlines()
    return [field.split("=", 1)[1] for line in lines for field in line.split() if field.startswith("JobState=")]


def _wait_for(env: dict[str, str], job_ids: list[str], logs: Path) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while time.monotonic() < deadline:
        queued = _query(env, "squeue", "-h", "-o", "%i").split()
        if not any(q == j or q.startswith(j + "_") for q in queued for j in job_ids):
            return
        time.sleep(1)
    pytest.fail(f"jobs still queued after {DEADLINE_S} s:\n{_query(env, 'squeue')}\n{_logs(logs)}")


def _logs(logs: Path) -> str:
    return "\n".join(f"== {path.name}\n{path.read_text(errors='replace')[-3000:]}" for path in sorted(logs.glob("*")))


@pytest.mark.slow
def test_submit_runs_tiny_pipeline_through_sft(slurm: dict[str, str], tmp_path: Path) -> None:
    run = tmp_path / "run"
    env = dict(slurm, RUN=str(run), UNTIL="sft", TASKS=TASKS, NUM_PER_TASK=str(NUM_PER_TASK), SHARDS="2",
               SANDBOX="service", SANDBOX_CPUS="1", SANDBOX_HOST="127.0.0.1", SANDBOX_WORKERS="2",
               ROLLOUT_CPUS="1", R1CI=str(BIN / "r1ci"), TORCHRUN=str(BIN / "torchrun"),
               # The torch engine (one rank): DeepSpeed's first start JIT-compiles an extension for minutes on a
               # busy 2-core machine, and a job cancelled mid-compile leaves a lock that blocks every later
               # DeepSpeed run; test_deepspeed.py covers ZeRO with 2 ranks under torchrun.
               DEEPSPEED="", NPROC="1",
               SFT_ARGS="--max-steps 2 --batch-size 2 --micro-batch-size 2 --lr 1e-3 --max-seq-len 1024 --save-every 1",
               PATH=f"{BIN}:{os.environ['PATH']}")
    submitted = subprocess.run(["bash", str(ROOT / "shell" / "submit.sh")], cwd=tmp_path, env=env,
                               capture_output=True, text=True, timeout=60)
    assert submitted.returncode == 0, submitted.stderr
    jobs = dict(line.split("\t") for line in (run / "jobs.tsv").read_text().splitlines())
    assert set(jobs) == {"tasks", "init-model", "sandbox", "teacher-rollout", "teacher-merge", "sft", "sandbox-stop"}
    _wait_for(slurm, list(jobs.values()), run / "logs")

    for name, job_id in jobs.items():
        states = _job_states(slurm, job_id)
        expected = "CANCELLED" if name == "sandbox" else "COMPLETED"
        assert states and set(states) == {expected}, f"{name} ({job_id}): {states}\n{_logs(run / 'logs')}"
    assert len(_job_states(slurm, jobs["teacher-rollout"])) == 2

    with open_records(str(run / "tasks.jsonl.zst")) as rows:
        task_ids = [row["id"] for row in rows]
    assert len(task_ids) == len(TASKS.split(",")) * NUM_PER_TASK
    shards = sorted((run / "teacher.parts").iterdir())
    assert [p.name for p in shards] == ["shard-0000-of-0002.jsonl.zst", "shard-0001-of-0002.jsonl.zst"]
    with open_records(str(run / "teacher.jsonl.zst")) as rows:
        trajectories = list(rows)
    # Every task once (one sample), split over both shards, each solved by its reference program.
    assert sorted(t["task_id"] for t in trajectories) == sorted(task_ids)
    assert all(t["correct"] for t in trajectories)
    for shard in shards:
        with open_records(str(shard)) as rows:
            assert sum(1 for _ in rows) == len(task_ids) // 2
    # The shards ran their code in the sandbox service (a wrong token would have failed them).
    sandbox_log = next((run / "logs").glob("r1ci-sandbox-*.log")).read_text()
    address = sandbox_log.split("sandbox service at ", 1)[1].split()[0]
    for shard_log in (run / "logs").glob("r1ci-teacher-rollout-*.log"):
        assert f"--sandbox {address} " in shard_log.read_text()

    sft = run / "sft"
    assert (sft / "config.json").is_file()
    assert list(sft.glob("*.safetensors")), sorted(p.name for p in sft.iterdir())
    metrics = [json.loads(line) for line in (sft / "metrics.jsonl").read_text().splitlines()]
    assert [m["step"] for m in metrics] == [1, 2]
    assert (sft / "checkpoints" / "step-000002").is_dir()
