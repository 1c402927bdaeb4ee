"""What every BIG-Bench-Hard family shares: answer kinds, the answer instruction, verification, perturbation,
the loader for the official BBH JSON files, and the family constructor.

Every BBH instance carries ``check = {"kind": K, "target": T, ...}`` where ``K`` is one of :data:`KINDS` and ``T``
is the canonical target in its normal form (an option letter ``"B"``, ``"Yes"``, ``"valid"``, ``"True"``, an
integer, a list of words, a string of closing brackets). One verifier (:func:`verify`) serves every family, so
generated items and items loaded from the official files are checked by the same rule.

Items loaded from a file (official BBH JSON, or the output of ``make data-bbh``) carry ``check["stored"] = True``;
their reference program prints the stored target (``registry.print_stored``), because there is no structured
data to compute from. Generated items compute their answer in the reference program.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from r1ci_cli.answer import normalize_text, parse_number, parse_option, strip_wrapping
from r1ci_cli.errors import MissingData, R1ciError
from r1ci_cli.tasks.registry import Instance, TaskFamily, print_stored

LETTERS = "ABCDEFGHIJKLMNOPQR"
KINDS = ("option", "yesno", "validity", "truth", "number", "words", "dyck")

# The instruction that ends every question: the answer form with a short example of it.
_EXAMPLES = {
    "option": "(A)",
    "yesno": "Yes",
    "validity": "valid",
    "truth": "True",
    "number": "42",
    "words": "apple banana cherry",
    "dyck": "] ) }",
}
_FORMS = {
    "option": "the letter of the correct option",
    "yesno": "Yes or No",
    "validity": "valid or invalid",
    "truth": "True or False",
    "number": "a single integer",
    "words": "the sorted words separated by spaces",
    "dyck": "the closing brackets separated by spaces",
}


def instruction(kind: str) -> str:
    return (f"Put your final answer ({_FORMS[kind]}) in <<<...>>>, e.g. <<<{_EXAMPLES[kind]}>>>.")


def ask(text: str, kind: str) -> str:
    """BBH's own input text followed by the answer instruction."""
    return f"{text}\n\n{instruction(kind)}"


def options_block(options: list[str]) -> str:
    """``Options:\\n(A) first\\n(B) second`` as BBH writes lettered options."""
    return "Options:\n" + "\n".join(f"({LETTERS[i]}) {text}" for i, text in enumerate(options))


# ---------------------------------------------------------------------------------------------- answers

_WORD_SPLIT = re.compile(r"[\s,]+")


def normalize(kind: str, text: str, num_options: int = len(LETTERS)) -> Any:
    """The answer text in the kind's normal form, or None when it cannot be read. Never raises."""
    if not isinstance(text, str):
        return None
    if kind == "option":
        return parse_option(text, LETTERS[:num_options])
    if kind == "yesno":
        return {"yes": "Yes", "no": "No"}.get(normalize_text(text))
    if kind == "validity":
        return {"valid": "valid", "invalid": "invalid"}.get(normalize_text(text))
    if kind == "truth":
        return {"true": "True", "false": "False"}.get(normalize_text(text))
    if kind == "number":
        value = parse_number(text)
        if value is None or isinstance(value, float) or value.denominator != 1:
            return None
        return int(value)
    if kind == "words":
        words = [w for w in _WORD_SPLIT.split(strip_wrapping(text).strip("[]")) if w]
        return [w.strip("\"'").lower() for w in words] or None
    if kind == "dyck":
        compact = "".join(strip_wrapping(text).split())
        return compact if compact and all(c in ")]}>" for c in compact) else None
    return None


def verify(instance: Instance, answer: str) -> bool:
    """Exact match after the kind's normalisation; False on anything unreadable, never raises."""
    try:
        check = instance.check
        kind = check["kind"]
        got = normalize(kind, answer, int(check.get("num_options", len(LETTERS))))
    except (KeyError, TypeError, ValueError):
        return False
    return got is not None and got == check["target"]


def display(kind: str, target: Any) -> str:
    """The target as BBH writes it: ``(B)``, ``Yes``, ``valid``, ``24``, ``a b c``, ``] ) }``."""
    if kind == "option":
        return f"({target})"
    if kind in ("words", "dyck"):  # a word list, or a string of closing brackets
        return " ".join(target)
    return str(target)


def perturb(instance: Instance, correct: str, rng: random.Random) -> list[str]:
    """At least two wrong answers near the right one, in the kind's own form."""
    kind, target = instance.check["kind"], instance.check["target"]
    if kind == "option":
        num_options = int(instance.check.get("num_options", 2))
        letters = [c for c in LETTERS[:num_options] if c != target]
        wrong = [f"({c})" for c in rng.sample(letters, min(2, len(letters)))]
        # A letter past the last option is wrong too (and catches verifiers that ignore the option count).
        return wrong + ([f"({LETTERS[num_options]})"] if num_options < len(LETTERS) else ["(Z)"])
    flips = {"yesno": ("Yes", "No"), "validity": ("valid", "invalid"), "truth": ("True", "False")}
    if kind in flips:
        other = flips[kind][1 - flips[kind].index(target)]
        return [other, other.upper(), f"{target} or {other}"]
    if kind == "number":
        return [str(target + 1), str(target - 1), str(-target if target else 10)]
    if kind == "words":
        wrong = [" ".join(target[:-1]) or "zzz", " ".join(target + [target[-1]])]
        distinct = [i for i in range(len(target) - 1) if target[i] != target[i + 1]]
        if distinct:
            i = rng.choice(distinct)
            swapped = target[:i] + [target[i + 1], target[i]] + target[i + 2:]
            wrong.append(" ".join(swapped))
        return wrong
    if kind == "dyck":
        other = {")": "]", "]": "}", "}": ">", ">": ")"}
        shorter = " ".join(target[:-1]) if len(target) > 1 else " ".join(target * 2)
        wrong = [shorter, " ".join(target) + " )", " ".join(other[c] for c in target)]
        return wrong
    raise ValueError(f"unknown answer kind {kind!r}")


# ---------------------------------------------------------------------------------------------- loader

_OPTION_LINE = re.compile(r"^\(([A-R])\) ", re.M)


def target_of(kind: str, raw: str) -> Any:
    """An official BBH target string in normal form, or None when it does not fit ``kind``."""
    if kind == "option":
        match = re.fullmatch(r"\(([A-R])\)", raw.strip())
        return match.group(1) if match else None
    if kind == "yesno":  # sports_understanding writes "yes"/"no", the rest "Yes"/"No"
        return {"yes": "Yes", "no": "No"}.get(raw.strip().lower())
    return normalize(kind, raw)


def load_official(data_dir: Path, subtask: str, kind: str) -> list[Instance]:
    """Read ``<data_dir>/<subtask>.json`` in BBH's format (``{"examples": [{"input", "target"}]}``).

    Raises R1ciError with one line naming the file and, for a bad example, its index and field.
    """
    path = Path(data_dir) / f"{subtask}.json"
    if not path.is_file():
        raise MissingData(f"{path}: not found; the BBH task {subtask} needs it (run 'make data-bbh' "
                        f"or point --data-dir at the official BBH JSON files)")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise R1ciError(f"{path}: not valid JSON: {str(err).splitlines()[0]}") from None
    if not isinstance(data, dict) or not isinstance(data.get("examples"), list):
        raise R1ciError(f"{path}: field 'examples': expected a list of {{\"input\", \"target\"}} objects")
    out = []
    for index, example in enumerate(data["examples"]):
        where = f"{path}: examples[{index}]"
        if not isinstance(example, dict):
            raise R1ciError(f"{where}: expected an object with 'input' and 'target'")
        for key in ("input", "target"):
            if not isinstance(example.get(key), str) or not example[key].strip():
                raise R1ciError(f"{where}: field '{key}': expected a non-empty string")
        target = target_of(kind, example["target"])
        if target is None:
            raise R1ciError(f"{where}: field 'target': {example['target']!r} is not a {kind} answer")
        check: dict[str, Any] = {"kind": kind, "target": target, "stored": True, "index": index}
        if kind == "option":
            letters = _OPTION_LINE.findall(example["input"])
            if target not in letters:
                raise R1ciError(f"{where}: field 'target': option {target} is not among the input's options")
            check["num_options"] = LETTERS.index(max(letters)) + 1
        out.append(Instance(ask(example["input"], kind), check, example["target"].strip()))
    return out


# ---------------------------------------------------------------------------------------------- knobs


def int_knob(knobs: Mapping[str, Any], name: str, low: int, high: int) -> int:
    """An integer difficulty knob within [low, high]; a bad ``--difficulty`` value is a one-line user error."""
    value = knobs.get(name)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise R1ciError(f"difficulty knob {name}={value!r}: expected an integer from {low} to {high}")
    return value


def range_knob(knobs: Mapping[str, Any], low_name: str, high_name: str, low: int, high: int) -> tuple[int, int]:
    """A ``min_*``/``max_*`` knob pair within [low, high], min not above max."""
    first, last = int_knob(knobs, low_name, low, high), int_knob(knobs, high_name, low, high)
    if first > last:
        raise R1ciError(f"difficulty knobs {low_name}={first} and {high_name}={last}: the minimum exceeds the maximum")
    return first, last


def float_knob(knobs: Mapping[str, Any], name: str, low: float, high: float) -> float:
    value = knobs.get(name)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
        raise R1ciError(f"difficulty knob {name}={value!r}: expected a number from {low} to {high}")
    return float(value)


# ---------------------------------------------------------------------------------------------- families

def reference_dispatch(computed: Callable[[Instance], str]) -> Callable[[Instance], str]:
    """A generated family's reference: computed for its own items, the stored target for loaded ones."""

    def reference(instance: Instance) -> str:
        if instance.check.get("stored"):
            return print_stored(instance.answer)
        return computed(instance)

    reference.__doc__ = computed.__doc__
    return reference


def generated_family(name: str, kind: str, generate: Callable[[random.Random, Mapping[str, Any]], Instance],
                     reference: Callable[[Instance], str], knobs: Mapping[str, Any], description: str) -> TaskFamily:
    """A procedural BBH family: seeded generator, shared verifier, computed reference program, and a loader
    for the official ``<name>.json`` so the same family can be evaluated on BBH's own items."""
    return TaskFamily(
        name=name, source="bbh", verify=verify, reference_program=reference_dispatch(reference),
        generate=generate, knobs=dict(knobs), reference_kind="computed",
        load=lambda data_dir: load_official(data_dir, name, kind), perturb=perturb, description=description)


def instance(text: str, kind: str, target: Any, answer: str | None = None, **data: Any) -> Instance:
    """A generated instance: BBH's text plus the instruction, the check with the data the reference needs."""
    check: dict[str, Any] = {"kind": kind, "target": target, **data}
    return Instance(ask(text, kind), check, answer if answer is not None else display(kind, target))


def option_instance(text: str, options: list[str], correct: int, **data: Any) -> Instance:
    """A lettered multiple-choice instance: ``text`` then the options block; ``correct`` is the index."""
    body = f"{text}\n{options_block(options)}"
    return instance(body, "option", LETTERS[correct], num_options=len(options), options=options, **data)
