"""BBH formal_fallacies: is a short argument in monadic predicate logic deductively valid?

Arguments follow classic shapes (modus ponens, chained universals, disjunctive syllogism, contraposition, proof
by cases, existential chaining) with each literal's polarity flipped at random, which produces both valid forms
and the usual fallacies (affirming the consequent, denying the antecedent, illicit conversion). Statements are
universals ``Every P is (not) a Q / a Q or a R / a Q and a R``, existentials ``Somebody is a P and a Q`` and
singular statements about one named person, phrased as BBH does, over three predicates of one theme.

The label is computed, never assumed: premises ∧ ¬conclusion is satisfiable iff some type of individual (a truth
assignment to the predicates) is allowed by every universal, the named person has an allowed type meeting the
singular statements, and every existential has an allowed witness type. The reference program decides the same
question differently, by brute force over every model (which types are inhabited, and the named person's type).
Labels are balanced by rejection sampling.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Mapping
from typing import Any

from r1ci_cli.tasks.bbh._common import float_knob, generated_family, instance, int_knob
from r1ci_cli.tasks.registry import Instance, program

_THEMES = [
    ("It is not always easy to see who is related to whom -- and in which ways. The following argument pertains to "
     "this question: ", ["cousin of Linda", "classmate of Ann", "workmate of Tom", "stepsister of Amy",
                         "ancestor of Kevin", "grandson of Ron", "close friend of Sue", "half-brother of Jeff",
                         "nephew of Mark", "schoolmate of Lily", "uncle of Owen", "aunt of Tonya"]),
    ("Some football fans admire various clubs, others love only a single team. But who is a fan of whom precisely? "
     "The following argument pertains to this question: ", ["fan of FC Porto", "ex-fan of Celtic FC",
                                                             "supporter of Real Madrid", "expert of AS Roma",
                                                             "follower of Chelsea FC", "devotee of FC Bayern",
                                                             "backer of Sporting", "critic of Everton",
                                                             "member of Ajax", "opponent to Galatasaray"]),
    ("Consumer research aims at understanding whether users of some products also tend to consume other ones, or "
     "not. The following argument seeks to clarify some such relations: ",
     ["regular user of Dove soap", "loyal buyer of Pantene shampoo", "occasional purchaser of Lush soap",
      "frequent consumer of Aveda shampoo", "owner of a Kiss My Face soap", "rare consumer of Nexxus shampoo",
      "infrequent user of Dial soap", "regular consumer of Bumble and bumble shampoo"]),
    ("Here comes a perfectly valid argument: ", None),
]
_NAMES = ["Kim", "Mario", "Tamara", "Jonathan", "Carmen", "Maria", "Bradford", "Dolores", "Lesley", "Adam", "Jeffrey",
          "Regina", "Kylie", "Orlando", "Cecilia"]

# Shapes: premises and conclusion over predicates 0, 1, 2 with positive literals; polarities are flipped later.
_SHAPES = [
    ([["all", [0, 1], ["lit", [1, 1]]], ["is", ["lit", [0, 1]]]], ["is", ["lit", [1, 1]]]),
    ([["all", [0, 1], ["lit", [1, 1]]], ["all", [1, 1], ["lit", [2, 1]]]], ["all", [0, 1], ["lit", [2, 1]]]),
    ([["all", [0, 1], ["or", [1, 1], [2, 1]]], ["is", ["lit", [0, 1]]], ["is", ["lit", [1, 0]]]],
     ["is", ["lit", [2, 1]]]),
    ([["some", [0, 1], [1, 1]], ["all", [1, 1], ["lit", [2, 1]]]], ["some", [0, 1], [2, 1]]),
    ([["all", [0, 1], ["lit", [1, 1]]]], ["all", [1, 0], ["lit", [0, 0]]]),
    ([["is", ["or", [0, 1], [1, 1]]], ["all", [0, 1], ["lit", [2, 1]]], ["all", [1, 1], ["lit", [2, 1]]]],
     ["is", ["lit", [2, 1]]]),
    ([["all", [0, 1], ["and", [1, 1], [2, 1]]], ["is", ["lit", [2, 0]]]], ["is", ["lit", [0, 0]]]),
]


def _flip(node: Any, rng: random.Random, rate: float) -> Any:
    """Copy a statement, flipping each literal's polarity with probability ``rate``."""
    if isinstance(node, list) and len(node) == 2 and all(isinstance(v, int) for v in node):
        return [node[0], 1 - node[1] if rng.random() < rate else node[1]]
    if isinstance(node, list):
        return [_flip(v, rng, rate) for v in node]
    return node


def _lit(lit: list[int], t: tuple[bool, ...]) -> bool:
    return t[lit[0]] == bool(lit[1])


def _cons(cons: list, t: tuple[bool, ...]) -> bool:
    if cons[0] == "lit":
        return _lit(cons[1], t)
    if cons[0] == "or":
        return _lit(cons[1], t) or _lit(cons[2], t)
    return _lit(cons[1], t) and _lit(cons[2], t)


def _valid(premises: list, conclusion: list, num_predicates: int) -> bool:
    """Decide validity by types (see the module docstring)."""
    types = list(itertools.product((False, True), repeat=num_predicates))
    universal, existential, singular = [], [], []
    for statement, positive in [(p, True) for p in premises] + [(conclusion, False)]:
        kind = statement[0]
        if kind == "all":
            pair = (statement[1], statement[2])
            (universal if positive else existential).append(
                (lambda t, a=pair[0], b=pair[1]: not _lit(a, t) or _cons(b, t)) if positive
                else (lambda t, a=pair[0], b=pair[1]: _lit(a, t) and not _cons(b, t)))
        elif kind == "some":
            a, b = statement[1], statement[2]
            (existential if positive else universal).append(
                (lambda t, a=a, b=b: _lit(a, t) and _lit(b, t)) if positive
                else (lambda t, a=a, b=b: not (_lit(a, t) and _lit(b, t))))
        else:
            cons = statement[1]
            singular.append((lambda t, c=cons: _cons(c, t)) if positive else (lambda t, c=cons: not _cons(c, t)))
    allowed = [t for t in types if all(u(t) for u in universal)]
    person_ok = any(all(s(t) for s in singular) for t in allowed)
    witnesses_ok = all(any(e(t) for t in allowed) for e in existential)
    return not (person_ok and witnesses_ok)


def _np(phrase: str) -> str:
    return ("an " if phrase[0] in "aeiou" else "a ") + phrase


def _lit_text(lit: list[int], preds: list[str]) -> str:
    return ("" if lit[1] else "not ") + _np(preds[lit[0]])


def _cons_text(cons: list, preds: list[str]) -> str:
    if cons[0] == "lit":
        return _lit_text(cons[1], preds)
    if cons[0] == "or":
        return f"either {_lit_text(cons[1], preds)} or {_lit_text(cons[2], preds)}, or both"
    return f"both {_lit_text(cons[1], preds)} and {_lit_text(cons[2], preds)}"


def _text(statement: list, preds: list[str], person: str, rng: random.Random) -> str:
    kind = statement[0]
    if kind == "is":
        return f"{person} is {_cons_text(statement[1], preds)}"
    if kind == "some":
        return f"somebody is {_lit_text(statement[1], preds)} and {_lit_text(statement[2], preds)}"
    a, cons = statement[1], statement[2]
    if a[1] and cons[0] == "lit" and cons[1][1]:
        q, p = preds[cons[1][0]], preds[a[0]]
        return rng.choice([f"every {p} is {_np(q)}", f"being {_np(q)} is necessary for being {_np(p)}",
                           f"being {_np(p)} is sufficient for being {_np(q)}"])
    if a[1] and cons[0] == "lit":
        return rng.choice([f"no {preds[a[0]]} is {_np(preds[cons[1][0]])}",
                           f"whoever is {_np(preds[a[0]])} is not {_np(preds[cons[1][0]])}"])
    if a[1]:
        return f"every {preds[a[0]]} is {_cons_text(cons, preds)}"
    return f"whoever is {_lit_text(a, preds)} is {_cons_text(cons, preds)}"


def _sentence(text: str) -> str:
    return text[0].upper() + text[1:] + "."


def generate_fallacy(rng: random.Random, knobs: Mapping[str, Any]) -> Instance:
    want_valid = rng.random() < 0.5
    for _ in range(int_knob(knobs, "max_tries", 1, 1000)):
        premises, conclusion = rng.choice(_SHAPES)
        premises = [_flip(p, rng, float_knob(knobs, "flip_rate", 0.0, 1.0)) for p in premises]
        conclusion = _flip(conclusion, rng, float_knob(knobs, "flip_rate", 0.0, 1.0))
        valid = _valid(premises, conclusion, 3)
        if valid == want_valid:
            break
    rng.shuffle(premises)
    intro, pool = rng.choice(_THEMES)
    preds = rng.sample(pool or rng.choice([t[1] for t in _THEMES if t[1]]), 3)
    person = rng.choice(_NAMES)
    markers = rng.choice([["First premise: ", " Second premise: ", " Third premise: "],
                          ["To begin with, ", " Moreover, ", " Finally, "]])
    body = ""
    for marker, premise in zip(markers, premises):
        sentence = _text(premise, preds, person, rng)
        body += marker + (_sentence(sentence) if marker.endswith(": ") else sentence + ".")
    closing = rng.choice(["Hence, ", "So, necessarily, ", "Therefore, ", "It follows that "])
    body += f" {closing}{_text(conclusion, preds, person, rng)}."
    text = (f'"{intro}{body}"\nIs the argument, given the explicitly stated premises, deductively valid or invalid?'
            "\nOptions:\n- valid \n- invalid")
    return instance(text, "validity", "valid" if valid else "invalid", premises=premises, conclusion=conclusion)


def valid_by_models(premises, conclusion):
    """'valid' when every model of the premises satisfies the conclusion, over 3 monadic predicates and one
    named individual. A model: the set of inhabited types (truth assignments) and the individual's type."""
    import itertools

    types = list(itertools.product((False, True), repeat=3))

    def lit(l, t):
        return t[l[0]] == bool(l[1])

    def cons(c, t):
        if c[0] == "lit":
            return lit(c[1], t)
        if c[0] == "or":
            return lit(c[1], t) or lit(c[2], t)
        return lit(c[1], t) and lit(c[2], t)

    def holds(statement, inhabited, person):
        if statement[0] == "all":
            return all(cons(statement[2], t) for t in inhabited if lit(statement[1], t))
        if statement[0] == "some":
            return any(lit(statement[1], t) and lit(statement[2], t) for t in inhabited)
        return cons(statement[1], person)

    for mask in range(1, 2 ** len(types)):
        inhabited = [t for i, t in enumerate(types) if mask >> i & 1]
        for person in inhabited:
            if all(holds(p, inhabited, person) for p in premises) and not holds(conclusion, inhabited, person):
                return "invalid"
    return "valid"


def reference_fallacy(inst: Instance) -> str:
    """Search every model for a counterexample."""
    c = inst.check
    return program([valid_by_models], "print(valid_by_models(premises, conclusion))", premises=c["premises"],
                   conclusion=c["conclusion"])


FAMILIES = [
    generated_family("formal_fallacies", "validity", generate_fallacy, reference_fallacy,
                     {"flip_rate": 0.3, "max_tries": 40},
                     "Decide whether a syllogism-like argument is deductively valid."),
]
