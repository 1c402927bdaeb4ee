"""Reversi (SymBench): play the listed moves on an n×n board and write down the resulting position.

Black is 0, white 1, empty ``*``. A piece placed on an empty cell flips, in each of the eight directions,
a contiguous run of opponent pieces that ends in one of the mover's own pieces. The answer is the board
flattened row by row, cells separated by commas; exact match on the cells.

The reference data's questions show the board *after* the moves as the "previous round" (README "Known
oddities"); its moves start from the standard opening, so ``from_symbench`` rebuilds that opening board
into the question, which makes the stored answers right again.
"""

from __future__ import annotations

import random
import re
from collections.abc import Mapping
from typing import Any

from r1ci_cli.tasks.registry import Instance, TaskFamily, program
from r1ci_cli.tasks.symbench.sampling import attempts, knob


def opening(n):
    """The standard start: white (1) on the main-diagonal centre cells, black (0) on the others."""
    board = [["*"] * n for _ in range(n)]
    h = n // 2
    board[h - 1][h - 1] = board[h][h] = "1"
    board[h - 1][h] = board[h][h - 1] = "0"
    return board


def place(board, row, col, piece):
    """The board after ``piece`` is put on (row, col) (0-based) with all flips; the input is not changed."""
    board = [list(r) for r in board]
    n = len(board)
    other = "1" if piece == "0" else "0"
    board[row][col] = piece
    for dr in (-1, 0, 1):
        for dc in (-1, 0, 1):
            if dr == 0 and dc == 0:
                continue
            run = []
            r, c = row + dr, col + dc
            while 0 <= r < n and 0 <= c < n and board[r][c] == other:
                run.append((r, c))
                r, c = r + dr, c + dc
            if run and 0 <= r < n and 0 <= c < n and board[r][c] == piece:
                for fr, fc in run:
                    board[fr][fc] = piece
    return board


def play(board, moves, first):
    """Play 1-based ``moves`` alternately, starting with colour ``first``; the flattened answer string."""
    piece = first
    for row, col in moves:
        board = place(board, row - 1, col - 1, piece)
        piece = "1" if piece == "0" else "0"
    return ",".join(cell for r in board for cell in r)


def _flips(board: list[list[str]], row: int, col: int, piece: str) -> int:
    after = place(board, row, col, piece)
    return sum(a != b for ra, rb in zip(after, board) for a, b in zip(ra, rb)) - 1


def _pick_move(rng: random.Random, board: list[list[str]], piece: str) -> tuple[int, int] | None:
    """A random legal move (one that flips something), else a random empty cell, else None."""
    empty = [(r, c) for r in range(len(board)) for c in range(len(board)) if board[r][c] == "*"]
    if not empty:
        return None
    legal = [rc for rc in empty if _flips(board, rc[0], rc[1], piece) > 0]
    return rng.choice(legal or empty)


def make_question(n: int, board: list[list[str]], moves: list[list[int]], you: str) -> str:
    rounds = []
    for i, (r, c) in enumerate(moves, 1):
        who = "Your's" if i % 2 == 1 else "The opponent's"
        rounds.append(f"Round {i}: {who} landing position is ({r},{c})")
    empty = ",".join(["*"] * (n * n))
    colour = "black" if you == "0" else "white"
    return ("There is a game similar to Reversi. On an n*n grid (where n is even), four pieces are placed in the "
            "center, two black and two white, arranged diagonally. Black pieces are represented by 0, white pieces "
            "by 1, and empty spaces by *.\nRules:\n1. Two players take turns placing pieces, one playing black and "
            "the other playing white.\n2. Each player places one piece on an empty space during their turn.\n"
            "3. After placing a piece, if there are any of the opponent's pieces between two of the player's pieces "
            "(in the same row, column, or diagonal), those pieces will be flipped to the player's color. That is, "
            "0 becomes 1, or 1 becomes 0.\nAll coordinates start from the first row and first column, and the "
            "coordinate (a, b) represents the cell in the a-th row and b-th column.\n\n"
            f"Given: n={n}, you play {colour} chess.\n\nThe previous round of the game was: \n"
            + "\n".join("".join(r) for r in board) + "\n\n" + "\n".join(rounds)
            + "\n\nPlease write down the game situation after this round based on the situation of the previous "
              "round.\nFor example, <<<" + empty + ">>> represents the empty grid (cells row by row, separated by "
              "commas).")


def generate(rng: random.Random, knobs: Mapping[str, Any]) -> Instance:
    n = knob(rng, knobs, "size")
    num_moves = knob(rng, knobs, "num_moves")
    prior = knob(rng, knobs, "prior_moves")
    for _ in attempts("reversi", knobs):
        # Earlier play (black first, alternating) gives a mid-game start; the listed moves follow it.
        board, piece = opening(n), "0"
        for _ in range(prior):
            move = _pick_move(rng, board, piece)
            if move is None:
                break
            board = place(board, move[0], move[1], piece)
            piece = "1" if piece == "0" else "0"
        start, you, moves = [list(r) for r in board], piece, []
        for _ in range(num_moves):
            move = _pick_move(rng, board, piece)
            if move is None:
                break
            moves.append([move[0] + 1, move[1] + 1])
            board = place(board, move[0], move[1], piece)
            piece = "1" if piece == "0" else "0"
        if len(moves) == num_moves:
            break
    check = {"board": start, "moves": moves, "first": you}
    return Instance(make_question(n, start, moves, you), check, play(start, moves, you))


def _cells(answer: str) -> list[str] | None:
    text = re.sub(r"\s+", "", answer).strip("[]")
    if not text:
        return None
    cells = [c.strip("\"'") for c in text.split(",")]
    return cells if all(c in ("*", "0", "1") for c in cells) else None


def verify(instance: Instance, answer: str) -> bool:
    c = instance.check
    return _cells(answer) == play(c["board"], c["moves"], c["first"]).split(",")


def reference_program(instance: Instance) -> str:
    c = instance.check
    return program([place, play], "print(play(board, moves, first))", board=c["board"], moves=c["moves"],
                   first=c["first"])


def perturb(instance: Instance, correct: str, rng: random.Random) -> list[str]:
    c = instance.check
    cells = correct.split(",")
    out = [",".join(cell for r in c["board"] for cell in r)]
    filled = [i for i, v in enumerate(cells) if v != "*"]
    flip = list(cells)
    i = rng.choice(filled)
    flip[i] = "1" if flip[i] == "0" else "0"
    out.append(",".join(flip))
    out.append(",".join(cells[:-1]))
    # Placing the last move without flipping anything: the commonest slip.
    last_r, last_c = c["moves"][-1]
    before = play(c["board"], c["moves"][:-1], c["first"]).split(",")
    before[(last_r - 1) * len(c["board"]) + last_c - 1] = cells[(last_r - 1) * len(c["board"]) + last_c - 1]
    out.append(",".join(before))
    return [w for w in dict.fromkeys(out) if _cells(w) != cells]


def from_symbench(record: dict) -> tuple[Instance, str | None]:
    sol = record["solution"]
    n = sol["board_size"]
    start = opening(n)
    # Replace the (post-move) board printed in the question with the opening it was played from.
    question = re.sub(r"(The previous round of the game was: \n)(?:[*01]+\n)+",
                      lambda m: m.group(1) + "\n".join("".join(r) for r in start) + "\n", record["question"], count=1)
    check = {"board": start, "moves": [list(m) for m in sol["moves"]], "first": "0"}
    return Instance(question, check, play(start, check["moves"], "0")), sol["solution"]


FAMILY = TaskFamily(
    name="reversi", source="symbench", generate=generate, verify=verify,
    reference_program=reference_program, perturb=perturb,
    knobs={"size": [4, 6], "num_moves": [1, 3], "prior_moves": 0},
    description="Play listed Reversi moves with flips; the flattened board, exact match.",
)
