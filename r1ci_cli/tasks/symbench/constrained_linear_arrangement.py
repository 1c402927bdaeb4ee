"""Constrained Linear Arrangement (SymBench): deduce the opponent's cards from your cards and each result.

Three card games from the original set, each card usable once per player:

* ``elements`` — Wood A, Fire B, Earth C, Metal D, Water E. A generates the next (A→B→C→D→E→A) and
  overcomes the one two ahead (A→C, C→E, E→B, B→D, D→A). Card 1 is always *your* card: you lose when
  yours generates theirs, win when yours overcomes theirs, and draw otherwise (the reference results follow
  this one-sided reading: under a symmetric one, 56/200 stored answers would contradict their rounds).
* ``stick_game`` — Stick A beats Tiger B beats Chicken C beats Worm D beats Stick A; identical cards or
  cards two apart in the cycle draw.
* ``animal`` — Elephant A > Lion B > … > Mouse H; the larger piece wins, equal pieces draw, and the Mouse
  beats the Elephant.

The answer is the opponent's card per round. Several sequences can fit (draws are often ambiguous), so the
verifier replays the rounds: the cards must be distinct cards of the game and give every announced result.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Any

from r1ci_cli.tasks.registry import Instance, TaskFamily, program
from r1ci_cli.tasks.symbench.parsers import parse_str_list
from r1ci_cli.tasks.symbench.sampling import knob

CARDS = {"elements": "ABCDE", "stick_game": "ABCD", "animal": "ABCDEFGH"}


def outcome(game, mine, theirs):
    """'win', 'loss' or 'draw' for the player holding ``mine`` against ``theirs``."""
    if mine == theirs:
        return "draw"
    if game == "elements":
        a, b = "ABCDE".index(mine), "ABCDE".index(theirs)
        if (a + 1) % 5 == b:  # my card generates theirs
            return "loss"
        if (a + 2) % 5 == b:  # my card overcomes theirs
            return "win"
        return "draw"  # the rules are read from the player's card only, as the original results are
    if game == "stick_game":
        a, b = "ABCD".index(mine), "ABCD".index(theirs)
        if (a + 1) % 4 == b:
            return "win"
        if (b + 1) % 4 == a:
            return "loss"
        return "draw"
    a, b = "ABCDEFGH".index(mine), "ABCDEFGH".index(theirs)  # 0 = Elephant (largest), 7 = Mouse
    if (a, b) == (7, 0):
        return "win"
    if (a, b) == (0, 7):
        return "loss"
    return "win" if a < b else "loss"


def deduce(game, cards, moves, results):
    """One opponent sequence (distinct cards) consistent with every round, by search; None if none."""
    import itertools
    for combo in itertools.permutations(cards, len(moves)):
        if all(outcome(game, m, t) == r for m, t, r in zip(moves, combo, results)):
            return list(combo)
    return None


def mismatch(game, moves, results, theirs):
    """Why ``theirs`` does not fit the rounds (a short reason), or None."""
    cards = CARDS[game]
    if len(theirs) != len(moves):
        return f"{len(theirs)} cards for {len(moves)} rounds"
    if any(t not in cards for t in theirs):
        return "a card that is not in the game"
    if len(set(theirs)) != len(theirs):
        return "a card used twice"
    for k, (m, t, r) in enumerate(zip(moves, theirs, results), 1):
        if outcome(game, m, t) != r:
            return f"round {k}: {m} vs {t} is a {outcome(game, m, t)}, not a {r}"
    return None


INTRO = {
    "elements": (
        "Both parties, A and B, each have a set of five-element flags, with each person holding five cards "
        "representing Metal, Wood, Water, Fire, and Earth. Each card can only be used once. Both players play "
        "their cards simultaneously without seeing the opponent's card, and the referee announces the result of "
        "each round.\nRules:\n1. When card 1 generates card 2, the holder of card 1 loses;\n2. When card 1 "
        "overcomes card 2, the holder of card 1 wins;\n3. When both cards are the same or no card generates or "
        "overcomes each other, it is a draw.\nHere card 1 is always your own card: a round is a draw unless your "
        "card generates or overcomes the opponent's card.\nKnown:\n1. Generation: Wood A generates Fire B, Fire B generates "
        "Earth C, Earth C generates Metal D, Metal D generates Water E, Water E generates Wood A.\n2. "
        "Overcoming: Wood A overcomes Earth C, Earth C overcomes Water E, Water E overcomes Fire B, Fire B "
        "overcomes Metal D, Metal D overcomes Wood A.\n"),
    "stick_game": (
        "Both parties, A and B, are playing a game called \"Stick, Tiger, Chicken.\" Each person has four "
        "cards: Stick (A), Tiger (B), Chicken (C), and Worm (D). Each card can only be used once. Both players "
        "play their cards simultaneously without seeing the other's card, and a referee announces the result "
        "of each round.\n\nRules:\n1. Stick beats Tiger, Tiger eats Chicken, Chicken eats Worm, Worm beats "
        "Stick, and so on in a cycle.\n2. If both players play the same card or cards that are two steps apart "
        "in the cycle (Stick and Chicken, Tiger and Worm), it is considered a draw.\n"),
    "animal": (
        "Both parties, A and B, play a game similar to Jungle Chess. Each player has 8 animal pieces, ranked "
        "from largest to smallest: Elephant (A), Lion (B), Tiger (C), Leopard (D), Wolf (E), Dog (F), Cat (G), "
        "and Mouse (H). Both players reveal their pieces simultaneously, but cannot see the opponent's piece. "
        "The referee announces the result of the match.\n\nRules:\n1. When a smaller piece encounters a larger "
        "piece, the smaller piece is captured, and the player with the larger piece wins.\n2. Mutual capture: "
        "When pieces of the same type encounter each other, they mutually capture and the result is a draw.\n"
        "3. Mouse captures Elephant: Apart from the size hierarchy, the Mouse can capture the Elephant, but the "
        "Elephant cannot capture the Mouse.\n4. Each piece can only be used once.\n"),
}


def _question(game: str, moves: list[str], results: list[str]) -> str:
    rounds = "\n".join(f"Round {k}: {m}, {r}." for k, (m, r) in enumerate(zip(moves, results), 1))
    return (INTRO[game] + "\nAssuming you are one of the players, deduce what cards your opponent played each "
            "round based on the cards you played and the results of each round (results are from your side).\n\n"
            f"Rounds:\n{rounds}\n\nUse a list of letters to show your answer, one card per round in order. "
            "For example, <<<A,B,C>>>.")


def generate(rng: random.Random, knobs: Mapping[str, Any]) -> Instance:
    game = knob(rng, knobs, "game")
    cards = CARDS[game]
    n_rounds = min(knob(rng, knobs, "rounds"), len(cards))
    moves = rng.sample(cards, n_rounds)
    theirs = rng.sample(cards, n_rounds)
    results = [outcome(game, m, t) for m, t in zip(moves, theirs)]
    check = {"game": game, "moves": moves, "results": results}
    return Instance(_question(game, moves, results), check, None)


def verify(instance: Instance, answer: str) -> bool:
    got = parse_str_list(answer)
    c = instance.check
    return got is not None and mismatch(c["game"], c["moves"], c["results"], [g.upper() for g in got]) is None


def reference_program(instance: Instance) -> str:
    c = instance.check
    return program([outcome, deduce], "print(','.join(deduce(game, cards, moves, results)))",
                   game=c["game"], cards=CARDS[c["game"]], moves=list(c["moves"]), results=list(c["results"]))


def perturb(instance: Instance, correct: str, rng: random.Random) -> list[str]:
    theirs = parse_str_list(correct) or []
    c = instance.check
    out = [theirs[:-1], theirs + [theirs[0]]]
    for k in range(len(theirs)):  # change one round's card so that round's result changes
        for card in CARDS[c["game"]]:
            changed = theirs[:k] + [card] + theirs[k + 1:]
            if outcome(c["game"], c["moves"][k], card) != c["results"][k]:
                out.append(changed)
                break
    return [",".join(w) for w in out if not verify(instance, ",".join(w))][:6]


def from_symbench(record: dict) -> tuple[Instance, str | None]:
    sol = record["solution"]
    check = {"game": sol["game_type"], "moves": sol["player_moves"], "results": sol["results"]}
    return Instance(record["question"], check, None), ",".join(sol["solution"])


FAMILY = TaskFamily(
    name="constrained_linear_arrangement", source="symbench", generate=generate, verify=verify,
    reference_program=reference_program, perturb=perturb,
    knobs={"game": ["elements", "stick_game", "animal"], "rounds": [3, 5]},
    description="Deduce the opponent's cards from each round's result in three card games; replayed.",
)
