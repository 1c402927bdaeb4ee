"""The interaction format (docs/paper.md "Interaction format"): where a model turn ends, and how an execution result
reads to the model. A leaf module: every backend stops turns with ``find_stop`` and the rollout loop writes
observations with ``format_observation``, so the rule is the same everywhere.

Contract:

* A model turn ends when a complete python fence closes (an opening line that starts with three backticks
  and ``python``, the code, then a line that starts with three backticks), or when the model ends its message.
  An answer span does not end it: the verdict is the *last* ``<<<…>>>`` span, so a draft answer followed by a
  correction must reach the grader as the model wrote it. ``stop_at_answer`` (``--stop-at-answer``, off by
  default) restores the paper's early stop: the turn also ends at the first answer span *outside* an open fence
  (``print("<<<x>>>")`` inside code does not end it), whichever comes first; it saves the tokens a model
  writes after its answer and grades a draft. The answer span is ``answer.ANSWER_RE``, the verifiers' own (it
  ends at the last ``>>>`` of a run of ``>``, so ``<<<] >>>>`` is the answer ``] >``). ``find_stop`` reports
  the character position just after the stop, so backends can stop at the token that completes it; the
  token's remaining characters are kept (token ids are never split).
* An observation is ``Code Execution Results:`` plus stdout and stderr; errors, timeouts and memory kills
  are written as text the model can read (the paper reports a timeout as an error message). Long output is
  cut to its head and tail with a note saying how many characters were dropped (ours: 4,000 characters,
  about 1,000 tokens). ``sandbox_error`` is an infrastructure failure, not the model's: the rollout loop ends
  the trajectory with finish ``infra_error`` instead of showing it.

Not handled: fences in other languages (```` ```bash ````) are plain text and do not end a turn; a fence
opened with four or more backticks is treated like a three-backtick one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from r1ci_cli.answer import ANSWER_RE
from r1ci_cli.records import ExecResult

# docs/paper.md "Interaction format": stop after 8 code calls; 60 s per script.
DEFAULT_MAX_CODE_CALLS = 8
DEFAULT_TIMEOUT_S = 60.0
# Ours (docs/paper.md "Interaction format": head and tail, about 1,000 tokens): ~4 characters per token.
DEFAULT_MAX_OBSERVATION_CHARS = 4000

OBSERVATION_HEADER = "Code Execution Results:"

# The opening line of a python fence, at the start of a line (leading spaces allowed: list items).
_FENCE_OPEN = re.compile(r"(?m)^[ \t]*```+[ \t]*python[^\n]*\n")
# A closing fence: a line that starts with three backticks. Stopping as soon as the backticks appear (no
# newline needed) lets backends stop at the token that closes the block.
_FENCE_CLOSE = re.compile(r"(?m)^[ \t]*```")


@dataclass(frozen=True)
class Stop:
    """Where a turn ends: ``kind`` is ``code`` or ``answer``; ``end`` is the character index after it."""

    kind: str
    end: int
    code: str | None = None


def find_stop(text: str, allow_code: bool = True, stop_at_answer: bool = False) -> Stop | None:
    """The first complete code block (or, with ``stop_at_answer``, answer) in a model turn's text, or None
    while the turn goes on (until the model ends its message).

    With ``allow_code=False`` (text style) fences are ordinary text: only the end of the message (or, with
    ``stop_at_answer``, an answer) ends the turn.
    """
    opening = _FENCE_OPEN.search(text) if allow_code else None
    answer = ANSWER_RE.search(text, 0, opening.start() if opening else len(text)) if stop_at_answer else None
    if answer is not None:
        return Stop("answer", answer.end())
    if opening is None:
        return None
    closing = _FENCE_CLOSE.search(text, opening.end())
    if closing is None:
        return None
    code = text[opening.end():closing.start()]
    return Stop("code", closing.end(), code)


def extract_code(text: str) -> str | None:
    """The code of the first complete python block of a turn (None when there is none)."""
    stop = find_stop(text, stop_at_answer=True)
    return stop.code if stop is not None and stop.kind == "code" else None


def truncate_middle(text: str, max_chars: int) -> str:
    """Keep the head and tail of ``text`` within ``max_chars`` and say how much was cut from the middle."""
    if max_chars <= 0 or len(text) <= max_chars:
        return text
    head = max_chars // 2
    tail = max_chars - head
    cut = len(text) - head - tail
    return f"{text[:head]}\n... [{cut} characters cut from the middle of the output] ...\n{text[len(text) - tail:]}"


def observation_body(result: ExecResult, timeout_s: float) -> str:
    """What the model reads about one execution: output first, then any failure in words."""
    parts = [result.stdout]
    if result.stderr:
        parts.append(result.stderr)
    body = "\n".join(p.rstrip("\n") for p in parts if p)
    note = {
        "ok": "",
        "error": f"Error: the script exited with code {result.exit_code}." if not result.stderr else "",
        "timeout": f"Error: the script was stopped after {timeout_s:g} seconds (time limit).",
        "oom": "Error: the script was stopped because it used too much memory.",
        "output_limit": "Note: the script printed too much; its output was cut.",
    }.get(result.status, "")
    if result.truncated and result.status != "output_limit":
        note = (note + "\n" if note else "") + "Note: the output was cut by the sandbox."
    if note:
        body = f"{body}\n{note}" if body else note
    return body if body else "(no output)"


def format_observation(result: ExecResult, timeout_s: float, max_chars: int = DEFAULT_MAX_OBSERVATION_CHARS) -> str:
    """The text appended to the assistant message after a code block (never for ``sandbox_error``)."""
    body = truncate_middle(observation_body(result, timeout_s), max_chars)
    return f"\n{OBSERVATION_HEADER}\n{body}\n\n"


def parse_observation(text: str) -> str:
    """The body of an observation written by ``format_observation`` (used by the reference teacher)."""
    start = text.find(OBSERVATION_HEADER)
    body = text[start + len(OBSERVATION_HEADER):] if start >= 0 else text
    return body.strip("\n")
