"""The system prompt of each rollout style (docs/paper.md "Interaction format"): the paper's, a short set for tiny
models, or a JSON file. ``load_prompts(spec)`` is what ``--prompts`` selects."""

from __future__ import annotations

from r1ci_cli.errors import R1ciError

STYLES = ("agent", "text", "code", "steer")

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
