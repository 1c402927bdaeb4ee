"""String Deletion & Modification (SymBench): rewrite a string with prioritised rules until none applies.

Six rules are drawn from a pool of twenty. Each step applies the **first** rule (in the listed order) whose
condition holds, then starts again from rule 1; the process ends when no rule applies. This reading
reproduces the intermediate and final strings stored in the reference data (100/100). Instances whose
rewriting does not end within ``MAX_STEPS`` are not generated. The answer is unique: exact string match.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Any

from r1ci_cli.tasks.registry import Instance, TaskFamily, program
from r1ci_cli.tasks.symbench.parsers import parse_plain_string
from r1ci_cli.tasks.symbench.sampling import attempts, knob

MAX_STEPS = 200

# Rule id -> its wording in the question (the original pool). Semantics live in apply_rule().
RULE_TEXT = {
    "suffix_ac": "If the string suffix is 'ac', replace it with 'cb'.",
    "starts_cc": "If the string starts with 'cc', remove the first two characters.",
    "contains_abc": "If the string contains 'abc', replace the first occurrence with 'cab'.",
    "prefix_bc": "If the string prefix is 'bc', delete the first two characters and append 'aa' to the end.",
    "contains_ca": "If the string contains 'ca' (not at the start), remove the first occurrence found after "
                   "the first character.",
    "suffix_bb": "If the string suffix is 'bb', delete the last two characters.",
    "ends_aa": "If the string ends with 'aa', replace it with 'cc'.",
    "long": "If the string length is greater than 15, remove the middle character.",
    "contains_bca": "If the string contains 'bca', delete the first occurrence entirely.",
    "prefix_aa": "If the string prefix is 'aa', remove the first character.",
    "starts_ac": "If the string starts with 'ac', replace the first two characters with 'zz'.",
    "even_b": "If the string contains an even number of 'b's (and at least one 'b'), append 'ab' at the end.",
    "prefix_cb": "If the string prefix is 'cb', replace it with 'aa' and delete the last character.",
    "suffix_cc": "If the string suffix is 'cc', replace it with 'b' and prepend 'a' to the start.",
    "ends_ca": "If the string ends with 'ca', remove the last character.",
    "contains_acb": "If the string contains 'acb', replace the first occurrence with its reverse ('bca').",
    "prefix_ca": "If the string prefix is 'ca', replace it with 'bb' and append 'c' to the end.",
    "starts_bb": "If the string starts with 'bb', remove the second character.",
    "ends_ba": "If the string ends with 'ba', replace it with 'ab'.",
    "prefix_ab": "If the string prefix is 'ab', replace it with 'ca'.",
}
TEXT_RULE = {text: rid for rid, text in RULE_TEXT.items()}


def apply_rule(rid, s):
    """The string after rule ``rid``, or None when its condition does not hold."""
    if rid == "suffix_ac":
        return s[:-2] + "cb" if s.endswith("ac") else None
    if rid == "starts_cc":
        return s[2:] if s.startswith("cc") else None
    if rid == "contains_abc":
        return s.replace("abc", "cab", 1) if "abc" in s else None
    if rid == "prefix_bc":
        return s[2:] + "aa" if s.startswith("bc") else None
    if rid == "contains_ca":
        i = s.find("ca", 1)
        return s[:i] + s[i + 2:] if i >= 1 else None
    if rid == "suffix_bb":
        return s[:-2] if s.endswith("bb") else None
    if rid == "ends_aa":
        return s[:-2] + "cc" if s.endswith("aa") else None
    if rid == "long":
        return s[:len(s) // 2] + s[len(s) // 2 + 1:] if len(s) > 15 else None
    if rid == "contains_bca":
        return s.replace("bca", "", 1) if "bca" in s else None
    if rid == "prefix_aa":
        return s[1:] if s.startswith("aa") else None
    if rid == "starts_ac":
        return "zz" + s[2:] if s.startswith("ac") else None
    if rid == "even_b":
        n = s.count("b")
        return s + "ab" if n > 0 and n % 2 == 0 else None
    if rid == "prefix_cb":
        return ("aa" + s[2:])[:-1] if s.startswith("cb") else None
    if rid == "suffix_cc":
        return "a" + s[:-2] + "b" if s.endswith("cc") else None
    if rid == "ends_ca":
        return s[:-1] if s.endswith("ca") else None
    if rid == "contains_acb":
        return s.replace("acb", "bca", 1) if "acb" in s else None
    if rid == "prefix_ca":
        return "bb" + s[2:] + "c" if s.startswith("ca") else None
    if rid == "starts_bb":
        return s[0] + s[2:] if s.startswith("bb") else None
    if rid == "ends_ba":
        return s[:-2] + "ab" if s.endswith("ba") else None
    if rid == "prefix_ab":
        return "ca" + s[2:] if s.startswith("ab") else None
    raise ValueError(f"unknown rule {rid}")


def rewrite(s, rules, max_steps=200):
    """Apply the first applicable rule until none applies; None when that takes more than ``max_steps``."""
    for _ in range(max_steps + 1):
        for rid in rules:
            nxt = apply_rule(rid, s)
            if nxt is not None:
                s = nxt
                break
        else:
            return s
    return None


def make_question(string: str, rules: list[str]) -> str:
    lines = "\n".join(f"{i}. {RULE_TEXT[r]}" for i, r in enumerate(rules, 1))
    return ("Cycle through the following operations one at a time until no further operations can be performed:\n\n"
            f"{lines}\n\nFor the string \"{string}\", what is the final string after performing all operations?\n\n"
            "Provide your answer as a string in the following format:\n\n<<< \"some_final_string\" >>>\n")


def generate(rng: random.Random, knobs: Mapping[str, Any]) -> Instance:
    num_rules = knob(rng, knobs, "num_rules")
    for _ in attempts("string_deletion_and_modification", knobs):
        length = knob(rng, knobs, "length")
        rules = rng.sample(sorted(RULE_TEXT), num_rules)
        string = "".join(rng.choice("abc") for _ in range(length))
        final = rewrite(string, rules, MAX_STEPS)
        if final is not None and final != string:
            check = {"string": string, "rules": rules}
            return Instance(make_question(string, rules), check, final)


def _expected(instance: Instance) -> str | None:
    return rewrite(instance.check["string"], instance.check["rules"], MAX_STEPS)


def verify(instance: Instance, answer: str) -> bool:
    want = _expected(instance)
    return want is not None and parse_plain_string(answer) == want


def reference_program(instance: Instance) -> str:
    return program([apply_rule, rewrite], "print(rewrite(string, rules))", string=instance.check["string"],
                   rules=instance.check["rules"])


def perturb(instance: Instance, correct: str, rng: random.Random) -> list[str]:
    out = [instance.check["string"], correct + rng.choice("abc"), correct[1:], "x" + correct]
    return [w for w in dict.fromkeys(out) if w != correct]


def from_symbench(record: dict) -> tuple[Instance, str | None]:
    sol = record["solution"]
    rules = [TEXT_RULE[t] for t in sol["selected_rules"]]
    check = {"string": sol["initial_string"], "rules": rules}
    return Instance(record["question"], check, rewrite(sol["initial_string"], rules, MAX_STEPS)), sol["final_string"]


FAMILY = TaskFamily(
    name="string_deletion_and_modification", source="symbench", generate=generate, verify=verify,
    reference_program=reference_program, perturb=perturb,
    knobs={"length": [10, 20], "num_rules": 6},
    description="Rewrite an a/b/c string with six prioritised rules until none applies; exact string match.",
)
