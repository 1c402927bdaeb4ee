"""The interaction protocol: system prompts per style, where a model turn ends, how an execution result is
shown to the model, and the reward (PAPER.md "Interaction format" and "GRPO").

Contract:

* A model turn ends when a complete python fence closes (an opening line that starts with three backticks
  and ``python``, the code, then a line that starts with three backticks) or when a ``<<<…>>>`` answer span
  appears *outside* an open fence (``print("<<<x>>>")`` inside code does not end the turn). Whichever comes
  first wins. ``find_stop`` reports the character position just after the stop, so backends can stop at
  the token that completes it; the token's remaining characters are kept (token ids are never split).
* An observation is ``Code Execution Results:`` plus stdout and stderr; errors, timeouts and memory kills
  are written as text the model can read (the paper reports a timeout as an error message). Long output is
  cut to its head and tail with a note saying how many characters were dropped (ours: 4,000 characters,
  about 1,000 tokens). ``sandbox_error`` is an infrastructure failure, not the model's: the loop ends the
  trajectory with finish ``error`` instead of showing it (see ``loop.py``).
* Reward (each term a flag): +``correct_reward`` when the verifier accepts the answer; +``format_reward``
  when every turn is well formed, else −``format_reward``; −``turn_penalty`` when there are more than
  ``max_free_turns`` model turns. A trajectory that ended on a sandbox failure gets reward 0 and is
  marked, never scored as the model's mistake.

Not handled: fences in other languages (```` ```bash ````) are plain text and do not end a turn; a fence
opened with four or more backticks is treated like a three-backtick one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from r1ci_cli.records import ExecResult

STYLES = ("agent", "text", "code", "steer")

# PAPER.md "Interaction format": stop after 8 code calls; 60 s per script.
DEFAULT_MAX_CODE_CALLS = 8
DEFAULT_TIMEOUT_S = 60.0
# Ours (PAPER.md: "keep head and tail, about 1,000 tokens"): ~4 characters per token.
DEFAULT_MAX_OBSERVATION_CHARS = 4000

OBSERVATION_HEADER = "Code Execution Results:"

_AGENT_PROMPT = """\
You are a helpful assistant that solves problems by reasoning step by step. You may write Python code \
for searching, optimisation, simulation and exact computation whenever it helps, or reason in text when \
that is enough.
To run code, write one markdown block that starts with ```python and ends with ```. Each block must be a \
complete, self-contained script (the standard library, numpy and sympy are available) that prints \
everything you need to see. After the block, stop and wait: its output will be returned to you after \
"Code Execution Results:". You may then continue reasoning and write more code if needed.
When you are done, give the final answer in the form <<<answer>>> at the end of your response, \
for example <<<42>>> or <<<[1, 2, 3]>>>."""

_TEXT_PROMPT = """\
You are a helpful assistant that solves problems by reasoning step by step in plain text. Do not write \
or run any code.
When you are done, give the final answer in the form <<<answer>>> at the end of your response, \
for example <<<42>>> or <<<[1, 2, 3]>>>."""

_CODE_PROMPT = """\
You are a helpful assistant that solves problems by writing one Python program. Write exactly one \
markdown block that starts with ```python and ends with ```, containing a complete, self-contained \
script (the standard library, numpy and sympy are available) that computes the answer and prints it in \
the form <<<answer>>>, for example print(f"<<<{result}>>>"). The program's output is your final answer: \
do not write anything after the block."""

_STEER_PROMPT = _AGENT_PROMPT + """
A guide will tell you before each step whether to use code or text reasoning next; follow its advice."""

SYSTEM_PROMPTS = {"agent": _AGENT_PROMPT, "text": _TEXT_PROMPT, "code": _CODE_PROMPT, "steer": _STEER_PROMPT}

# The same four contracts in a few words each (ours, not the paper's): a tiny model spends most of its
# sequence on the ~250-token paper prompts; these are ~30-45 tokens. Select them with ``--prompts short``.
_SHORT_AGENT = ("Solve the problem. To run Python, write one ```python block and stop; its output comes back "
                "after \"Code Execution Results:\". End with the final answer as <<<answer>>>.")
SHORT_PROMPTS = {
    "agent": _SHORT_AGENT,
    "text": "Solve the problem by reasoning in text, without code. End with the final answer as <<<answer>>>.",
    "code": ("Solve the problem with one ```python block that prints the final answer as <<<answer>>>. "
             "Write nothing after the block."),
    "steer": _SHORT_AGENT + " Follow the guide's advice on using code or text.",
}
PROMPT_SETS = {"paper": SYSTEM_PROMPTS, "short": SHORT_PROMPTS}


def load_prompts(spec: str) -> dict[str, str]:
    """The system prompt of every style: a named set (``paper``, ``short``) or a JSON file whose object maps
    style names to prompts (styles it leaves out keep the paper's prompt)."""
    if spec in PROMPT_SETS:
        return dict(PROMPT_SETS[spec])
    import json
    from pathlib import Path

    from r1ci_cli.errors import R1ciError

    path = Path(spec)
    if not path.is_file():
        raise R1ciError(f"--prompts {spec!r}: neither a prompt set ({', '.join(PROMPT_SETS)}) nor a JSON file")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise R1ciError(f"{path}: not a JSON object of style prompts ({exc})") from None
    if not isinstance(data, dict):
        raise R1ciError(f"{path}: expected a JSON object mapping styles to prompts")
    prompts = dict(SYSTEM_PROMPTS)
    for style, prompt in data.items():
        if style not in SYSTEM_PROMPTS:
            raise R1ciError(f"{path}: field {style!r}: unknown style (choose from {', '.join(STYLES)})")
        if not isinstance(prompt, str) or not prompt.strip():
            raise R1ciError(f"{path}: field {style!r}: expected a non-empty string")
        prompts[style] = prompt
    return prompts

# The opening line of a python fence, at the start of a line (leading spaces allowed: list items).
_FENCE_OPEN = re.compile(r"(?m)^[ \t]*```+[ \t]*python[^\n]*\n")
# A closing fence: a line that starts with three backticks. Stopping as soon as the backticks appear (no
# newline needed) lets backends stop at the token that closes the block.
_FENCE_CLOSE = re.compile(r"(?m)^[ \t]*```")
_ANSWER = re.compile(r"<<<(.*?)>>>", re.DOTALL)


@dataclass(frozen=True)
class Stop:
    """Where a turn ends: ``kind`` is ``code`` or ``answer``; ``end`` is the character index after it."""

    kind: str
    end: int
    code: str | None = None


def find_stop(text: str, allow_code: bool = True) -> Stop | None:
    """The first complete code block or answer in a model turn's text, or None while the turn goes on.

    With ``allow_code=False`` (text style) fences are ordinary text and only an answer ends the turn.
    """
    opening = _FENCE_OPEN.search(text) if allow_code else None
    answer = _ANSWER.search(text, 0, opening.start() if opening else len(text))
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
    stop = find_stop(text)
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


@dataclass(frozen=True)
class RewardOptions:
    """PAPER.md "GRPO": +1 correct; ±0.1 format; −0.1 beyond 6 turns. Set a term to 0 to switch it off."""

    correct_reward: float = 1.0
    format_reward: float = 0.1
    turn_penalty: float = 0.1
    max_free_turns: int = 6


def well_formed(model_turn_stops: list[str | None], finish: str) -> bool:
    """Every model turn ends in a complete code block except the last, which gives an answer.

    ``model_turn_stops`` holds, per model turn, what ended it: ``code``, ``answer`` or None (end of text,
    token limit). A trajectory that ran out of calls or tokens is not well formed.
    """
    if finish != "answer" or not model_turn_stops or model_turn_stops[-1] != "answer":
        return False
    return all(kind == "code" for kind in model_turn_stops[:-1])


def reward(correct: bool, formed: bool, num_model_turns: int, opts: RewardOptions) -> float:
    """The scalar reward of one finished trajectory (not for sandbox failures: those get 0, see loop)."""
    value = opts.correct_reward if correct else 0.0
    value += opts.format_reward if formed else -opts.format_reward
    if num_model_turns > opts.max_free_turns:
        value -= opts.turn_penalty
    return round(value, 10)
