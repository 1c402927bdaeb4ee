"""The reference teacher: writes the task's reference program as the code turn, then the answer it printed.

It is the teacher of the built-in demo and an end-to-end check that tasks, verifiers and the sandbox agree:
the answer it gives is read from the sandbox's output (the observation), not from the stored answer, so a
trajectory is correct only if the reference program really ran and the verifier accepts what it printed.

Contract: first turn (no turns yet) → a short sentence and one python block holding
``family.reference_program(instance)``; a later turn → ``<<<output>>>`` where output is the program's stdout
(``request.last_output``, untruncated: the observation the model sees may be cut to its head and tail). It cannot write text-only solutions (``--style text`` is refused). No tokens: ids are None.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from r1ci_cli.backends.base import Completion, GenRequest
from r1ci_cli.errors import R1ciError
from r1ci_cli.rollout.protocol import parse_observation
from r1ci_cli.tasks.registry import Instance, get_family


class ReferenceGenerator:
    model_name = "reference"
    tokenizer_fingerprint = None

    def encode_prompt(self, messages: Sequence[Mapping[str, str]]) -> None:
        return None

    def encode_text(self, text: str) -> None:
        return None

    def generate(self, requests: Sequence[GenRequest]) -> list[Completion]:
        return [self._one(request) for request in requests]

    def _one(self, request: GenRequest) -> Completion:
        if not request.allow_code:
            raise R1ciError("the reference backend writes programs: it cannot roll out --style text")
        if request.task is None:
            raise R1ciError("the reference backend needs the task record of every request")
        observations = [text for role, text in request.turns if role == "exec"]
        if not observations:
            task = request.task
            family = get_family(task.task, task.source)
            source = family.reference_program(Instance(question=task.question, check=task.check, answer=task.answer))
            text = f"I will compute the answer with a program.\n\n```python\n{source.rstrip()}\n```"
            return Completion(text=text, finish="stop")
        # The untruncated stdout when the loop passes it: a long answer must not be cut by the observation limit.
        raw = request.last_output if request.last_output is not None else parse_observation(observations[-1])
        output = raw.strip()
        # An answer ending in ">" (dyck languages) would merge with the closing ">>>": the first ">>>" ends
        # the span. A space keeps it intact; answers are stripped before they are checked.
        if output.endswith(">"):
            output += " "
        return Completion(text=f"\n\nThe program printed the answer.\n\n<<<{output}>>>", finish="stop")

    def close(self) -> None:
        return None
