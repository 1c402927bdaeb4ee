"""rl-stage's step metrics of what the rollouts ended in: shares of finish reasons, sandbox statuses and
curriculum groups (every known value present, so curves in TensorBoard/W&B have no gaps), and tokens/s."""

from __future__ import annotations

from r1ci_cli.records import EXEC_STATUSES, FINISH_REASONS, Trajectory, Turn
from r1ci_cli.train.rl import outcome_metrics


def _trajectory(i: int, finish: str, statuses: tuple[str, ...], group: int, tokens: int) -> Trajectory:
    turns = [Turn("model", "x")]
    for status in statuses:
        turns += [Turn("exec", "r", status=status), Turn("model", "y")]
    return Trajectory(id=f"t{i}/agent/t1/s0", task_id=f"t{i}", style="agent", temperature=1.0, model="m",
                      turns=tuple(turns), answer=None, correct=False, reward=0.0, num_code_calls=len(statuses),
                      finish=finish, extra={"group": group, "usage": {"completion_tokens": tokens}})


def test_shares_of_finish_reasons_sandbox_statuses_and_groups() -> None:
    trajectories = [_trajectory(0, "answer", ("ok", "error"), 1, 10), _trajectory(1, "answer", ("ok",), 1, 20),
                    _trajectory(2, "max_tokens", ("timeout", "ok"), 2, 30), _trajectory(3, "max_calls", (), 1, 40)]
    metrics = outcome_metrics(trajectories, generate_s=4.0, stage=3)
    assert metrics["finish"] == {"answer": 0.5, "stop": 0.0, "max_calls": 0.25, "max_tokens": 0.25, "context": 0.0,
                                 "infra_error": 0.0, "error": 0.0}
    assert list(metrics["finish"]) == list(FINISH_REASONS) and list(metrics["sandbox"]) == list(EXEC_STATUSES)
    assert metrics["sandbox"]["ok"] == 0.6 and metrics["sandbox"]["error"] == 0.2 and metrics["sandbox"]["oom"] == 0.0
    assert metrics["group"] == {"1": 0.75, "2": 0.25, "3": 0.0}
    assert metrics["tokens_per_s"] == 25.0


def test_no_code_and_no_time_give_zeros_not_errors() -> None:
    metrics = outcome_metrics([_trajectory(0, "answer", (), 1, 5)], generate_s=0.0, stage=1)
    assert set(metrics["sandbox"].values()) == {0.0} and metrics["tokens_per_s"] == 0.0
