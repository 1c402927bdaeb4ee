"""--report-to on sft and rl-stage (train/report.py through train/run.py): every metrics row reaches TensorBoard
(read back with TensorBoard's own EventAccumulator) and W&B (an offline run's records, decoded with wandb's own
protobuf schema), whatever its keys; a resumed run shows each step once; a missing package is one line."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from r1ci_cli.cli import cli
from r1ci_cli.errors import R1ciError
from r1ci_cli.train import report
from r1ci_cli.train.checkpoint import CheckpointOptions
from r1ci_cli.train.engine import EngineOptions
from r1ci_cli.train.options import SftOptions
from r1ci_cli.train.report import ReportOptions
from r1ci_cli.train.run import open_run
from report_readers import tensorboard_scalars, wandb_history, wandb_offline_run, wandb_records


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture
def inputs(training_inputs: dict[str, str]) -> dict[str, str]:
    return training_inputs


def _sft_options(inputs: dict[str, str], out: Path, report_options: ReportOptions, **kw: Any) -> SftOptions:
    resume = kw.pop("resume", False)
    return SftOptions(model=inputs["model"], checkpoint=CheckpointOptions(str(out), save_every=3, resume=resume),
                      epochs=1, batch_size=4, max_steps=6, seed=0, max_seq_len=256, report=report_options,
                      engine=EngineOptions(lr=3e-3, micro_batch_size=4, device="cpu"), **kw)


def _rows(out: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


_scalars = tensorboard_scalars


# ------------------------------------------------------------------------------------------------ units

def test_destinations_are_parsed_in_order_and_checked() -> None:
    assert report.destinations("none") == () and report.destinations("") == ()
    assert report.destinations("wandb, TensorBoard,wandb") == ("wandb", "tensorboard")
    with pytest.raises(R1ciError, match="unknown destination 'tensorbord'"):
        report.destinations("tensorbord")
    with pytest.raises(R1ciError, match="'none' cannot be combined"):
        report.destinations("none,wandb")


def test_flatten_sends_every_number_whatever_its_keys() -> None:
    row = {"step": 3, "loss": 0.5, "stage": 2, "new_metric_of_another_issue": 7, "ok": True, "name": "x",
           "missing": None, "eval": {"accuracy": 0.25, "finish": {"answer": 0.5}}, "mismatch": {"kl": 1e-4}}
    assert report.flatten(row) == {"train/loss": 0.5, "train/stage": 2.0, "train/new_metric_of_another_issue": 7.0,
                                   "train/ok": 1.0, "eval/accuracy": 0.25, "eval/finish/answer": 0.5,
                                   "mismatch/kl": 1e-4}


def test_markdown_table_keeps_cells_on_one_line_and_escapes_pipes() -> None:
    table = report.markdown_table(["a", "b"], [["x|y", "line1\nline2 <b>"]])
    assert table.splitlines() == ["| a | b |", "|---|---|", "| x\\|y | line1<br>line2 &lt;b&gt; |"]


# ------------------------------------------------------------------------------------------------ TensorBoard

def test_every_row_appended_reaches_tensorboard_whatever_its_keys(tmp_path: Path) -> None:
    """The hook is Run.append (both trainers): keys another issue adds arrive without a change here."""
    options = CheckpointOptions(str(tmp_path / "run"))
    run = open_run(options, key="k")
    run.start({}, SftOptions(model="m", checkpoint=options, report=ReportOptions(report_to="tensorboard")), {})
    rows = [{"step": s, "loss": 1.0 / s, "infra_error_share": 0.1 * s, "mismatch": {"k3": 0.01 * s}}
            for s in (1, 2, 3)]
    with run:
        for row in rows:
            run.append(row)
    scalars = _scalars(tmp_path / "run" / "tb")
    assert set(scalars) == {"train/loss", "train/infra_error_share", "mismatch/k3"}
    assert [s for s, _ in scalars["mismatch/k3"]] == [1, 2, 3]
    assert [v for _, v in scalars["train/infra_error_share"]] == pytest.approx([0.1, 0.2, 0.3])


def test_sft_writes_every_metric_of_every_row_to_tensorboard(tmp_path: Path, inputs: dict[str, str]) -> None:
    from r1ci_cli.train.sft import sft

    sft([inputs["teacher"]], _sft_options(inputs, tmp_path / "sft", ReportOptions(report_to="tensorboard")))
    rows = _rows(tmp_path / "sft")
    scalars = _scalars(tmp_path / "sft" / "tb")
    assert len(rows) == 6
    for key in ("loss", "lr", "grad_norm", "num_tokens", "num_loss_tokens", "tokens_per_s", "epoch"):
        assert scalars[f"train/{key}"] == [(row["step"], pytest.approx(row[key], rel=1e-6)) for row in rows], key
    assert not (tmp_path / "sft" / "wandb").exists()


def test_a_resumed_run_shows_each_step_once_in_tensorboard(tmp_path: Path, inputs: dict[str, str],
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """Steps 4-5 are logged, the run dies before its step-6 checkpoint, the resume redoes 4-6: TensorBoard's
    purge_step hides the first attempt's 4-5 (without it, EventAccumulator would hold them twice)."""
    from r1ci_cli.train import sft as sft_module

    out = tmp_path / "sft"
    real_step, calls = sft_module._train_step, {"n": 0}

    def dying_step(*args: Any, **kw: Any):
        calls["n"] += 1
        if calls["n"] == 6:
            raise KeyboardInterrupt
        return real_step(*args, **kw)

    monkeypatch.setattr(sft_module, "_train_step", dying_step)
    with pytest.raises(KeyboardInterrupt):
        sft_module.sft([inputs["teacher"]], _sft_options(inputs, out, ReportOptions(report_to="tensorboard")))
    monkeypatch.setattr(sft_module, "_train_step", real_step)
    sft_module.sft([inputs["teacher"]], _sft_options(inputs, out, ReportOptions(report_to="tensorboard"),
                                                      resume=True))
    losses = _scalars(out / "tb")["train/loss"]
    assert [step for step, _ in losses] == [1, 2, 3, 4, 5, 6]
    assert [value for _, value in losses] == pytest.approx([row["loss"] for row in _rows(out)], rel=1e-6)
    assert len(list((out / "tb").glob("events.out.tfevents.*"))) == 2  # both attempts' files are there


# ------------------------------------------------------------------------------------------------ W&B

def test_sft_writes_its_history_to_an_offline_wandb_run(tmp_path: Path, inputs: dict[str, str],
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_PROJECT", "r1ci-test")
    monkeypatch.delenv("WANDB_DIR", raising=False)
    from r1ci_cli.train.sft import sft

    out = tmp_path / "sft"
    sft([inputs["teacher"]], _sft_options(inputs, out, ReportOptions(report_to="wandb", run_name="tour")))
    run_id = (out / "wandb-run-id").read_text().strip()
    records = wandb_offline_run(out)
    history = wandb_history(records)
    rows = _rows(out)
    assert sorted(history) == [row["step"] for row in rows]
    for row in rows:
        assert history[row["step"]]["train/loss"] == pytest.approx(row["loss"], rel=1e-9)
        assert history[row["step"]]["train/lr"] == pytest.approx(row["lr"], rel=1e-9)
    [run] = [r.run for r in records if r.WhichOneof("record_type") == "run"]
    assert run.run_id == run_id and run.display_name == "tour" and run.project == "r1ci-test"
    config = {item.key: json.loads(item.value_json) for item in run.config.update}
    assert config["batch_size"] == 4 and config["engine"]["lr"] == 3e-3  # the run's options


# ------------------------------------------------------------------------------------------------ the command line

@pytest.mark.parametrize("name", ["tensorboard", "wandb"])
def test_a_missing_package_is_one_line_naming_the_extra(tmp_path: Path, name: str,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, name, None)  # what an environment without the package gives
    for command in (["sft", "-", "--model", "m"], ["rl-stage", "-", "--stage", "1", "--model", "m"]):
        result = CliRunner().invoke(cli, [*command, "-o", str(tmp_path / "out"), "--report-to", name],
                                    input="")
        assert result.exit_code == 1, result.output
        assert result.stderr.strip().splitlines() == [
            f"Error: {name} is not installed: --report-to {name} needs it: pip install 'r1ci[{name}]'"]
        assert result.stdout == "" and not (tmp_path / "out").exists()


def test_an_unknown_destination_is_a_usage_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["sft", "-", "--model", "m", "-o", str(tmp_path / "o"), "--report-to", "mlflow"])
    assert result.exit_code == 2 and "unknown destination 'mlflow'" in result.stderr


def test_report_options_are_runtime_and_do_not_change_the_run_key() -> None:
    from r1ci_cli.settings import fingerprint

    checkpoint = CheckpointOptions("out")
    plain = SftOptions(model="m", checkpoint=checkpoint)
    reported = SftOptions(model="m", checkpoint=checkpoint, report=ReportOptions(report_to="tensorboard,wandb"))
    assert fingerprint(plain) == fingerprint(reported)


def test_wandb_names_come_from_flags_then_environment_and_a_resume_continues_the_run(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """--wandb-project beats $WANDB_PROJECT, $WANDB_NAME names the run when --run-name is not given, and a resumed
    run logs under the id kept in OUT/wandb-run-id (an offline run of each process, the same id)."""
    pytest.importorskip("wandb")
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_PROJECT", "from-env")
    monkeypatch.setenv("WANDB_NAME", "named-by-env")
    monkeypatch.delenv("WANDB_DIR", raising=False)
    monkeypatch.delenv("WANDB_RUN_ID", raising=False)
    out = tmp_path / "run"
    for resume in (False, True):
        options = CheckpointOptions(str(out), resume=resume)
        run = open_run(options, key="k")
        run.start({}, SftOptions(model="m", checkpoint=options,
                                 report=ReportOptions(report_to="wandb", wandb_project="from-flag")), {})
        with run:
            run.append({"step": 1 + resume, "loss": 0.5})
    run_id = (out / "wandb-run-id").read_text().strip()
    # one directory per process (wandb adds "-1" to the second when both start within a second)
    datastores = sorted((out / "wandb").glob(f"offline-run-*-{run_id}*/run-{run_id}.wandb"), key=len_then_name)
    assert len(datastores) == 2  # both processes logged to the one run
    [info] = [r.run for r in wandb_records(datastores[0]) if r.WhichOneof("record_type") == "run"]
    assert info.project == "from-flag" and info.display_name == "named-by-env" and info.run_id == run_id
    assert sorted(wandb_history(wandb_records(datastores[1]))) == [2]


def len_then_name(path: Path) -> tuple[str, int, str]:
    """Offline run directories in the order they were made: time stamp, then wandb's "-1", "-2" … suffix."""
    stamp = path.parent.name.split("-")[2]
    return stamp, len(path.parent.name), path.parent.name


def test_report_to_can_come_from_the_environment(tmp_path: Path) -> None:
    """Like every flag, --report-to reads R1CI_<COMMAND>_REPORT_TO (shown by a refused value)."""
    result = CliRunner().invoke(cli, ["rl-stage", "-", "--stage", "1", "--model", "m", "-o", str(tmp_path / "o")],
                                env={"R1CI_RL_STAGE_REPORT_TO": "mlflow"}, input="", auto_envvar_prefix="R1CI")
    assert result.exit_code == 2 and "--report-to mlflow: unknown destination 'mlflow'" in result.stderr
