"""The record types that flow between commands, with validation at the boundary.

Every record is a frozen dataclass with a stable ``id`` and a schema version ``v``. ``from_dict`` checks
the fields a command relies on and raises ``BadRecord`` naming path, line and field; fields it does not
know are kept in ``extra`` and written back by ``to_dict`` so stages compose (a Trajectory carries the
fields of the Task it came from, ``score-potential`` adds its own to a Task, and so on).

Kinds (fields in the order they are written):

* ``Task``        id, source, task, split, seed, question, answer?, check
* ``ExecRequest`` id, code, timeout_s?
* ``ExecResult``  id, status, exit_code, stdout, stderr, wall_ms, truncated
* ``Turn``        role (model | exec), text, ids?, status?, logprobs? (the sampler's, one per id)
* ``Trajectory``  id, task_id, style, temperature, model, turns, answer, correct, reward,
                  num_code_calls, finish (+ the Task's fields in ``extra``); ``is_infra_error`` tells the
                  trajectories the infrastructure ended (no outcome of the model) from the others

Words: a ``Task`` record is one *instance* (one question, its id is ``task_id`` in a Trajectory); its ``task``
field names the *task*, the family the instance was drawn from (``game24``, ``word_sorting``). Every "per
task" of the commands means per family, as in the paper (docs/paper.md "SFT": at most 70 trajectories per task):
``gen-tasks --num-per-task``, ``rollout``/``sft --max-per-task``, the accuracy tables of ``eval``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar

from r1ci_cli.errors import BadRecord

SCHEMA_VERSION = 1

EXEC_STATUSES = ("ok", "error", "timeout", "oom", "output_limit", "sandbox_error")
# The longest timeout a sandbox request may ask for (a day): past it, a timeout is a mistake, not a limit.
MAX_TIMEOUT_S = 86400.0
# answer: ended with a <<<…>>> answer; stop: ended without one; context: the model's context was full.
FINISH_REASONS = ("answer", "stop", "max_calls", "max_tokens", "context", "infra_error", "error")
# ``infra_error``: the infrastructure failed (a sandbox_error, a backend/server error, a verifier exception), not
# the model; such a trajectory is no outcome of the model and never a reward. ``error`` is how files written
# before this name said it (read as infra_error).
INFRA_FINISHES = frozenset({"infra_error", "error"})
TURN_ROLES = ("model", "exec")

_TYPE_NAMES = {str: "a string", int: "an integer", float: "a number", bool: "true or false",
               list: "a list", dict: "an object"}


@dataclass(frozen=True)
class _Field:
    name: str
    types: tuple[type, ...]
    required: bool = True
    choices: tuple[str, ...] | None = None
    nullable: bool = False


class _Where:
    """Where a record came from, for error messages."""

    def __init__(self, path: str, line: int):
        self.path, self.line = path, line

    def fail(self, name: str | None, problem: str) -> BadRecord:
        return BadRecord(self.path, self.line, name, problem)


def _describe(types: tuple[type, ...]) -> str:
    return " or ".join(_TYPE_NAMES.get(t, t.__name__) for t in types)


def _check_value(spec: _Field, value: Any, where: _Where) -> Any:
    if value is None:
        if spec.nullable or not spec.required:
            return None
        raise where.fail(spec.name, f"must be {_describe(spec.types)}, got null")
    ok = isinstance(value, spec.types)
    # JSON has one number type: accept ints where floats are expected, never bools for numbers.
    if isinstance(value, bool) and bool not in spec.types:
        ok = False
    elif float in spec.types and isinstance(value, int) and not isinstance(value, bool):
        ok, value = True, float(value)
    if not ok:
        raise where.fail(spec.name, f"must be {_describe(spec.types)}, got {type(value).__name__}")
    if isinstance(value, float) and not math.isfinite(value):
        raise where.fail(spec.name, "must be a finite number")
    if spec.choices is not None and value not in spec.choices:
        raise where.fail(spec.name, f"must be one of {', '.join(spec.choices)}, got {value!r}")
    return value


@dataclass(frozen=True)
class Record:
    """Base: validation from a JSON object and round-tripping of unknown fields."""

    KIND: ClassVar[str] = "record"
    SPEC: ClassVar[tuple[_Field, ...]] = ()

    @classmethod
    def from_dict(cls, data: Any, path: str = "<record>", line: int = 0):
        where = _Where(path, line)
        if not isinstance(data, dict):
            raise where.fail(None, f"expected a JSON object ({cls.KIND} record), got {type(data).__name__}")
        values: dict[str, Any] = {}
        for spec in cls.SPEC:
            if spec.name not in data:
                if spec.required:
                    raise where.fail(spec.name, f"missing (required in a {cls.KIND} record)")
                continue
            values[spec.name] = _check_value(spec, data[spec.name], where)
        cls._check_more(values, where)
        known = {s.name for s in cls.SPEC} | {"v"}
        version = data.get("v", SCHEMA_VERSION)
        if version != SCHEMA_VERSION:
            raise where.fail("v", f"schema version {version!r} is not supported (this r1ci reads {SCHEMA_VERSION})")
        extra = {k: v for k, v in data.items() if k not in known}
        return cls(**cls._convert(values, where), extra=extra)

    @classmethod
    def _check_more(cls, values: dict[str, Any], where: _Where) -> None:
        """Cross-field checks of a subclass."""

    @classmethod
    def _convert(cls, values: dict[str, Any], where: _Where) -> dict[str, Any]:
        return values

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in fields(self):
            if f.name == "extra":
                continue
            value = getattr(self, f.name)
            if isinstance(value, tuple) and value and isinstance(value[0], Record):
                value = [item.to_dict() for item in value]
            elif isinstance(value, tuple):
                value = list(value)
            out[f.name] = value
        out["v"] = SCHEMA_VERSION
        for key, value in self.extra.items():
            out.setdefault(key, value)
        return out


@dataclass(frozen=True)
class Task(Record):
    """One task instance. ``check`` holds what the family's verifier needs; ``answer`` is for people."""

    KIND: ClassVar[str] = "Task"
    SPEC: ClassVar[tuple[_Field, ...]] = (
        _Field("id", (str,)),
        _Field("source", (str,)),
        _Field("task", (str,)),
        _Field("split", (str,), choices=("train", "test")),
        _Field("seed", (int,)),
        _Field("question", (str,)),
        _Field("answer", (str, int, float, list, dict, bool), required=False, nullable=True),
        _Field("check", (dict,)),
    )
    id: str
    source: str
    task: str
    split: str
    seed: int
    question: str
    check: Mapping[str, Any]
    answer: Any = None
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ExecRequest(Record):
    """A piece of untrusted code to run in the sandbox; ``timeout_s`` overrides the pool's default."""

    KIND: ClassVar[str] = "ExecRequest"
    SPEC: ClassVar[tuple[_Field, ...]] = (
        _Field("id", (str,)),
        _Field("code", (str,)),
        _Field("timeout_s", (float,), required=False, nullable=True),
    )
    id: str
    code: str
    timeout_s: float | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def _check_more(cls, values: dict[str, Any], where: _Where) -> None:
        timeout = values.get("timeout_s")
        if timeout is not None and not 0 < timeout <= MAX_TIMEOUT_S:
            raise where.fail("timeout_s", f"must be positive and at most {MAX_TIMEOUT_S:g} s, got {timeout}")


@dataclass(frozen=True)
class ExecResult(Record):
    """The typed outcome of one execution. ``status`` is never folded into a number."""

    KIND: ClassVar[str] = "ExecResult"
    SPEC: ClassVar[tuple[_Field, ...]] = (
        _Field("id", (str,)),
        _Field("status", (str,), choices=EXEC_STATUSES),
        _Field("exit_code", (int,), nullable=True),
        _Field("stdout", (str,)),
        _Field("stderr", (str,)),
        _Field("wall_ms", (float,)),
        _Field("truncated", (bool,)),
    )
    id: str
    status: str
    exit_code: int | None
    stdout: str
    stderr: str
    wall_ms: float
    truncated: bool
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Turn(Record):
    """One turn of a trajectory: text the model wrote, or an execution result appended to the context."""

    KIND: ClassVar[str] = "Turn"
    SPEC: ClassVar[tuple[_Field, ...]] = (
        _Field("role", (str,), choices=TURN_ROLES),
        _Field("text", (str,)),
        _Field("ids", (list,), required=False, nullable=True),
        _Field("status", (str,), required=False, nullable=True, choices=EXEC_STATUSES),
        _Field("logprobs", (list,), required=False, nullable=True),
    )
    role: str
    text: str
    ids: tuple[int, ...] | None = None
    status: str | None = None
    logprobs: tuple[float, ...] | None = None  # model turns: the sampler's log-prob of each id (after temperature)
    extra: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def _convert(cls, values: dict[str, Any], where: _Where) -> dict[str, Any]:
        ids = values.get("ids")
        if ids is not None:
            if not all(isinstance(i, int) and not isinstance(i, bool) and i >= 0 for i in ids):
                raise where.fail("ids", "must be a list of non-negative integer token ids")
            values["ids"] = tuple(ids)
        logprobs = values.get("logprobs")
        if logprobs is not None:
            if not all(isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) and x <= 1e-6
                       for x in logprobs):
                raise where.fail("logprobs", "must be a list of finite log-probabilities (<= 0)")
            if ids is None or len(logprobs) != len(ids):
                raise where.fail("logprobs", "must hold one log-prob per token id")
            values["logprobs"] = tuple(float(x) for x in logprobs)
        return values

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        out.pop("v")
        for name in ("ids", "status", "logprobs"):
            if out[name] is None:
                del out[name]
        return out


@dataclass(frozen=True)
class Trajectory(Record):
    """One rollout of one task instance. Carries the Task's fields (in ``extra``) so stages compose."""

    KIND: ClassVar[str] = "Trajectory"
    SPEC: ClassVar[tuple[_Field, ...]] = (
        _Field("id", (str,)),
        _Field("task_id", (str,)),
        _Field("style", (str,)),
        _Field("temperature", (float,)),
        _Field("model", (str,)),
        _Field("turns", (list,)),
        _Field("answer", (str,), nullable=True),
        _Field("correct", (bool,)),
        _Field("reward", (float,)),
        _Field("num_code_calls", (int,)),
        _Field("finish", (str,), choices=FINISH_REASONS),
    )
    id: str
    task_id: str
    style: str
    temperature: float
    model: str
    turns: tuple[Turn, ...]
    answer: str | None
    correct: bool
    reward: float
    num_code_calls: int
    finish: str
    extra: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def _convert(cls, values: dict[str, Any], where: _Where) -> dict[str, Any]:
        turns = []
        for i, raw in enumerate(values["turns"]):
            try:
                turns.append(Turn.from_dict(raw, where.path, where.line))
            except BadRecord as err:
                raise where.fail(f"turns[{i}].{err.field}" if err.field else f"turns[{i}]", err.problem) from None
        if not turns:
            raise where.fail("turns", "must hold at least one turn")
        values["turns"] = tuple(turns)
        return values


RECORD_KINDS: dict[str, type[Record]] = {
    cls.KIND: cls for cls in (Task, ExecRequest, ExecResult, Trajectory)
}


# A Trajectory carries the fields of its Task so stages compose. The Task's ``answer`` would collide with the
# Trajectory's own (the model's answer): it travels as ``reference_answer``. The Task's ``seed`` keeps its
# name (the rollout's seeds are ``rollout_seed`` and ``sample_seed``).
_TASK_RENAMES = {"answer": "reference_answer"}
# Extra fields a rollout adds to a Trajectory; they are not the Task's and do not go back into it.
TRAJECTORY_OWNED = frozenset({
    "prompt", "prompt_ids", "tokenizer", "sample_index", "sample_seed", "rollout_seed", "well_formed", "usage",
    "error", "verify_error", "infra_retries",
})


def is_infra_error(trajectory: Trajectory | Mapping[str, Any]) -> bool:
    """Whether the infrastructure ended this trajectory (``finish`` infra_error, or ``error`` in older files):
    it is left out of rewards, group statistics and pass rates, never counted as the model's mistake."""
    finish = trajectory.finish if isinstance(trajectory, Trajectory) else trajectory.get("finish")
    return finish in INFRA_FINISHES


def trajectory_id(task_id: str, style: str, temperature: float, sample: int) -> str:
    """The id of sample ``sample`` of a task instance: ``{task_id}/{style}/t{T}/s{k}``."""
    return f"{task_id}/{style}/t{temperature:g}/s{sample}"


def task_id_of(trajectory_id: str) -> str:
    """The instance id inside a trajectory id (style, temperature and sample never hold a '/')."""
    return trajectory_id.rsplit("/", 3)[0]


def exec_request_id(trajectory_id: str, call: int) -> str:
    """The id of a trajectory's ``call``-th code execution (1-based): ``{trajectory id}/c{call}``."""
    return f"{trajectory_id}/c{call}"


def trajectory_id_of(exec_request_id: str) -> str:
    """The trajectory an execution request belongs to (inverse of ``exec_request_id``)."""
    return exec_request_id.rsplit("/", 1)[0]


def task_family(trajectory: Trajectory | Mapping[str, Any]) -> str:
    """The task (family) a trajectory record or row belongs to: its ``task`` field; one without that field
    (written by hand, not by rollout) counts as a family of its own, its ``task_id``."""
    if isinstance(trajectory, Trajectory):
        family, instance = trajectory.extra.get("task"), trajectory.task_id
    else:
        family, instance = trajectory.get("task"), trajectory.get("task_id")
    return family if isinstance(family, str) else str(instance)


def task_fields_for_trajectory(task: Task) -> dict[str, Any]:
    """The Task's fields as they are stored in a Trajectory's extra (``id`` becomes ``task_id`` there)."""
    data = task.to_dict()
    data.pop("id")
    data.pop("v")
    return {_TASK_RENAMES.get(key, key): value for key, value in data.items()}


def task_from_trajectory(traj: Trajectory) -> Task:
    """Rebuild the Task a Trajectory was rolled out from (inverse of ``task_fields_for_trajectory``)."""
    back = {value: key for key, value in _TASK_RENAMES.items()}
    data: dict[str, Any] = {"id": traj.task_id}
    for key, value in traj.extra.items():
        if key not in TRAJECTORY_OWNED:
            data[back.get(key, key)] = value
    return Task.from_dict(data, f"trajectory {traj.id}", 0)
