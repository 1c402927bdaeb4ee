"""The four rollout styles used for potential scoring (docs/paper.md "Multi-stage curriculum").

* ``agent``: the multi-turn format (code blocks run, results come back, the model answers with <<<…>>>).
* ``text``: no code; fences are plain text and do not end a turn; only an answer (or a limit) ends it.
* ``code``: one program; it runs once and its output is the answer (the last ``<<<…>>>`` it prints, or
  its whole stripped stdout when it prints none). The trajectory ends after that single execution.
* ``steer``: the agent format plus a guide message each round asking for code or for text reasoning.
  The guide is rule-based (``steer_hint``): code first; after a failed execution, code again to fix it;
  after a successful one, text to check the result; then alternate. The first hint goes into the user
  message, later hints are appended to the observation text (so they live in the exec turns, which are
  masked out of training like every observation). A guide *model* is not implemented.
"""

from __future__ import annotations

from dataclasses import dataclass

from r1ci_cli.rollout.prompts import STYLES, load_prompts

CODE_HINT = "Guide: use code for the next step. Write one Python block that computes or searches for what you need."
FIX_HINT = "Guide: the code failed. Use code again: fix the error and run the corrected script."
TEXT_HINT = ("Guide: use text reasoning for the next step. Check the output against the question; if it is "
             "right, give the final answer as <<<answer>>>.")


@dataclass(frozen=True)
class Style:
    name: str
    allow_code: bool
    single_program: bool
    steered: bool
    system_prompt: str

    def user_message(self, question: str) -> str:
        if self.steered:
            return f"{question}\n\n{CODE_HINT}"
        return question


def get_style(name: str, prompts: str = "paper") -> Style:
    """The style ``name`` with its system prompt from ``prompts`` (a prompt set or JSON file, see
    ``prompts.load_prompts``)."""
    if name not in STYLES:
        raise ValueError(f"unknown style {name!r} (choose from {', '.join(STYLES)})")
    return Style(name=name, allow_code=name != "text", single_program=name == "code", steered=name == "steer",
                 system_prompt=load_prompts(prompts)[name])


def steer_hint(round_index: int, last_status: str | None) -> str:
    """The rule-based guide's message before round ``round_index`` (1-based after the first round)."""
    if last_status is not None and last_status != "ok":
        return FIX_HINT
    return TEXT_HINT if round_index % 2 == 1 else CODE_HINT
