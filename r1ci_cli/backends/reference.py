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

``text_share`` (``rollout --text-share S``, default 0): in a share S of the trajectories, chosen per trajectory
from its request seed (``--seed`` and the trajectory id), the first turn answers at once in text, under the
same prompt, with the task's stored answer (``I will answer directly.`` and ``<<<answer>>>``, no code). Only an
answer the family's verifier accepts is written this way; a task without a stored answer, or whose stored answer
does not verify as written, gets the program, so every text trajectory is correct and the share reached can be
below S for such families. A mix of code and text trajectories is the paper's SFT data: the model learns
*whether* to use the interpreter, which RL can then change.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future
from typing import Any

from r1ci_cli.backends.base import Completion, GenRequest
from r1ci_cli.errors import R1ciError
from r1ci_cli.interaction import parse_observation
from r1ci_cli.records import ExecResult, Task, task_id_of, trajectory_id_of
from r1ci_cli.seeds import derive_rng
from r1ci_cli.tasks.registry import Instance, TaskFamily, get_family, score

CODE_OPENING = "I will compute the answer with a program."
TEXT_OPENING = "I will answer directly."


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

    def __init__(self, text_share: float = 0.0) -> None:
        if not 0.0 <= text_share <= 1.0:
            raise R1ciError(f"--text-share {text_share}: must be between 0 and 1")
        self.text_share = text_share
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
            instance = Instance(question=task.question, check=task.check, answer=task.answer)
            text = self._text_answer(request, family, instance)
            if text is None:
                source = family.reference_program(instance)
                text = f"{CODE_OPENING}\n\n```python\n{source.rstrip()}\n```"
            return Completion(text=text, finish="stop")
        raw = self._outputs.pop(request.key, None)
        output = (raw if raw is not None else parse_observation(observations[-1])).strip()
        # An answer ending in ">" (dyck languages) runs into the closing ">>>"; answer.ANSWER_RE reads it right,
        # and a space keeps it plain for any other reader. Answers are stripped before they are checked.
        if output.endswith(">"):
            output += " "
        return Completion(text=f"\n\nThe program printed the answer.\n\n<<<{output}>>>", finish="stop")

    def _text_answer(self, request: GenRequest, family: TaskFamily, instance: Instance) -> str | None:
        """The direct text answer when this trajectory's seeded draw picks text and the verifier accepts the
        stored answer; None otherwise (the program is written)."""
        if self.text_share <= 0.0 or instance.answer is None:
            return None
        if derive_rng(request.seed, "reference-text-share").random() >= self.text_share:
            return None
        text = f"{TEXT_OPENING}\n\n<<<{_spelled(instance.answer)}>>>"
        return text if score(family, instance, text).correct else None

    def close(self) -> None:
        return None


def _spelled(answer: object) -> str:
    """The stored answer as an answer span holds it: a string as it is, another value as JSON; a space after a
    trailing ">" (see the answer turn above)."""
    text = answer if isinstance(answer, str) else json.dumps(answer)
    return text + " " if text.endswith(">") else text
