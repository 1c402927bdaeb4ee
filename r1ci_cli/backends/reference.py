"""The reference teacher: writes the task's reference program as the code turn, then the answer it printed.

It is the teacher of the built-in demo and an end-to-end check that tasks, verifiers and the sandbox agree:
the answer it gives is read from the sandbox's output, not from the stored answer, so a trajectory is correct
only if the reference program really ran and the verifier accepts what it printed.

Contract: first turn (no turns yet) → a short sentence and one python block holding
``family.reference_program(instance)``; a later turn → ``<<<output>>>`` where output is the program's stdout.
It cannot write text-only solutions (``--style text`` is refused). No tokens: ids are None.

What it knows beyond the conversation it keeps itself, through ``watch`` (``base.Generator``): the rollout
loop passes its task stream and its sandbox through it, and the teacher remembers each task by id and the
full stdout of each execution by trajectory (the observation a model sees may be cut to its head and tail;
a long answer must not be). A request names its trajectory (``key``), which names its task
(``records.task_id_of``). It holds every task of the run (a few KB each) and one output per trajectory
until that trajectory's answer turn.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future
from typing import Any

from r1ci_cli.backends.base import Completion, GenRequest
from r1ci_cli.errors import R1ciError
from r1ci_cli.interaction import parse_observation
from r1ci_cli.records import ExecResult, Task, task_id_of, trajectory_id_of
from r1ci_cli.tasks.registry import Instance, get_family


class _RecordingSandbox:
    """The loop's sandbox as the teacher sees it: every result's stdout is kept before the loop gets it."""

    def __init__(self, sandbox: Any, outputs: dict[str, str]):
        self._sandbox, self._outputs = sandbox, outputs

    def submit(self, code: str, timeout_s: float | None = None, request_id: str = "") -> Future[ExecResult]:
        inner = self._sandbox.submit(code, timeout_s=timeout_s, request_id=request_id)
        outer: Future[ExecResult] = Future()

        def done(future: Future[ExecResult]) -> None:
            try:
                result = future.result()
            except BaseException as err:  # noqa: BLE001 - handed on to the loop unchanged
                outer.set_exception(err)
                return
            self._outputs[trajectory_id_of(request_id)] = result.stdout
            outer.set_result(result)

        inner.add_done_callback(done)
        return outer


class ReferenceGenerator:
    model_name = "reference"
    tokenizer_fingerprint = None

    def __init__(self) -> None:
        self._tasks: dict[str, Task] = {}
        self._outputs: dict[str, str] = {}

    def watch(self, tasks: Iterable[Task], sandbox: Any) -> tuple[Iterator[Task], Any]:
        return self._remember(tasks), _RecordingSandbox(sandbox, self._outputs)

    def _remember(self, tasks: Iterable[Task]) -> Iterator[Task]:
        for task in tasks:
            self._tasks[task.id] = task
            yield task

    def encode_prompt(self, messages: Sequence[Mapping[str, str]]) -> None:
        return None

    def encode_text(self, text: str) -> None:
        return None

    def generate(self, requests: Sequence[GenRequest]) -> list[Completion]:
        return [self._one(request) for request in requests]

    def _one(self, request: GenRequest) -> Completion:
        if not request.allow_code:
            raise R1ciError("the reference backend writes programs: it cannot roll out --style text")
        observations = [text for role, text in request.turns if role == "exec"]
        if not observations:
            task = self._tasks.get(task_id_of(request.key))
            if task is None:
                raise R1ciError("the reference backend saw no task for this request (the loop calls watch first)")
            family = get_family(task.task, task.source)
            source = family.reference_program(Instance(question=task.question, check=task.check, answer=task.answer))
            text = f"I will compute the answer with a program.\n\n```python\n{source.rstrip()}\n```"
            return Completion(text=text, finish="stop")
        raw = self._outputs.pop(request.key, None)
        output = (raw if raw is not None else parse_observation(observations[-1])).strip()
        # An answer ending in ">" (dyck languages) runs into the closing ">>>"; answer.ANSWER_RE reads it right,
        # and a space keeps it plain for any other reader. Answers are stripped before they are checked.
        if output.endswith(">"):
            output += " "
        return Completion(text=f"\n\nThe program printed the answer.\n\n<<<{output}>>>", finish="stop")

    def close(self) -> None:
        return None
