"""The default text a fresh tokenizer is trained on (``r1ci init-model`` without ``--corpus``).

Three parts, all deterministic for a seed:

* task text: a few generated instances per registered SymBench/BBH family (question, reference program,
  answer in ``<<<…>>>``), drawn with ``derive_rng(seed, "corpus", family, i)``. Reasoning-Gym is left out
  because importing it takes seconds; a family whose generator fails is skipped with a warning (the corpus
  is only tokenizer training text, so a broken family must not block model creation).
* the built-in text below: Python idioms the model will write (search, sympy, itertools), the reasoning
  phrases and the interaction format (fences, ``Code Execution Results:``, ``<<<answer>>>``).
* synthetic arithmetic and list lines, so numbers, brackets and operators are well covered.

Cost: ``PER_FAMILY`` instances per family, families marked ``slow`` skipped (~1 s for 60 families). There is
deliberately no time cut-off: a corpus that depended on the machine's speed would break determinism.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator

from r1ci_cli.seeds import derive_rng

log = logging.getLogger("r1ci.models")

PER_FAMILY = 4
CORPUS_SOURCES = ("symbench", "bbh")

SYSTEM_TEXT = """You are a helpful assistant that reasons step by step. You may write Python code to search, \
optimise or compute. Each code block must be one self-contained script that prints what it needs. After a \
code block, stop and wait for the execution results. The results will be given to you after the text \
"Code Execution Results:". Finish with your final answer in the form <<<answer>>>.
Answer the question directly in text, without code, and end with <<<answer>>>.
Write one Python program whose printed output is the final answer.
Think about whether code or text reasoning suits the next step better. Use code now. Use text now."""

BUILTIN_TEXT = r'''
Let me think step by step. First, I will write a Python script to check all the possibilities.
```python
from itertools import permutations, product, combinations

numbers = [4, 7, 8, 8]
target = 24
ops = ['+', '-', '*', '/']
found = None
for perm in permutations(numbers):
    for a, b, c in product(ops, repeat=3):
        expr = f"(({perm[0]}{a}{perm[1]}){b}{perm[2]}){c}{perm[3]}"
        try:
            if abs(eval(expr) - target) < 1e-9:
                found = expr
                break
        except ZeroDivisionError:
            continue
    if found:
        break
print(found)
```
Code Execution Results:
((4+8)-8)*7 ... wait, let me verify this result with another script.
```python
import sympy as sp

x, y = sp.symbols('x y')
solution = sp.solve([sp.Eq(2*x + 3*y, 12), sp.Eq(x - y, 1)], [x, y])
print(solution)
```
Code Execution Results:
{x: 3, y: 2}
The solution is x = 3 and y = 2. Therefore the answer is <<<[3, 2]>>>.

```python
import numpy as np

matrix = np.array([[1, 2, 3], [4, 5, 6], [7, 8, 9]])
print(matrix.T.tolist())
print(int(np.trace(matrix)), float(np.linalg.det(matrix)))
```
Code Execution Results:
[[1, 4, 7], [2, 5, 8], [3, 6, 9]]
15 0.0

```python
def is_valid(board, row, col):
    for r in range(row):
        if board[r] == col or abs(board[r] - col) == row - r:
            return False
    return True


def solve(n, row=0, board=None):
    board = board if board is not None else []
    if row == n:
        return list(board)
    for col in range(n):
        if is_valid(board, row, col):
            board.append(col)
            result = solve(n, row + 1, board)
            if result:
                return result
            board.pop()
    return None


print(solve(8))
```
Code Execution Results:
[0, 4, 7, 5, 2, 6, 1, 3]

```python
from collections import deque

def bfs(start, goal, neighbours):
    queue = deque([(start, [start])])
    seen = {start}
    while queue:
        state, path = queue.popleft()
        if state == goal:
            return path
        for nxt in neighbours(state):
            if nxt not in seen:
                seen.add(nxt)
                queue.append((nxt, path + [nxt]))
    return None

grid = ["..#", ".#.", "..."]
def neighbours(pos):
    r, c = pos
    for dr, dc in ((1, 0), (-1, 0), (0, 1), (0, -1)):
        nr, nc = r + dr, c + dc
        if 0 <= nr < len(grid) and 0 <= nc < len(grid[0]) and grid[nr][nc] == '.':
            yield (nr, nc)

print(bfs((0, 0), (2, 2), neighbours))
```
Code Execution Results:
[(0, 0), (1, 0), (2, 0), (2, 1), (2, 2)]

```python
words = "the quick brown fox jumps over the lazy dog".split()
counts = {}
for word in words:
    counts[word] = counts.get(word, 0) + 1
print(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))
print(" ".join(sorted(words)))
print(sum(len(w) for w in words), max(words, key=len))
```
Code Execution Results:
[('the', 2), ('brown', 1), ('dog', 1), ('fox', 1), ('jumps', 1), ('lazy', 1), ('over', 1), ('quick', 1)]

```python
import math
from fractions import Fraction

total = Fraction(0)
for k in range(1, 11):
    total += Fraction(1, k * (k + 1))
print(total, float(total), math.gcd(84, 36), math.factorial(6), math.comb(10, 3))
```
Code Execution Results:
10/11 0.9090909090909091 12 720 120

```python
Traceback (most recent call last):
  File "<string>", line 3, in <module>
NameError: name 'answer' is not defined
```
The code raised an error. Let me fix the variable name and run it again.
TimeoutError: the script did not finish within 60 seconds.
Options:
(A) True
(B) False
(C) Yes
(D) No
The question asks which option is correct. Option (B) is correct, so the answer is <<<(B)>>>.
Is the following sentence plausible? Today is Monday, so tomorrow is Tuesday and yesterday was Sunday.
The statement is valid. The argument is invalid. The final answer is <<<Yes>>>. The answer is <<<No>>>.
Sort the following words alphabetically: apple banana cherry date elderberry fig grape.
Evaluate the boolean expression: not ( True and False ) or False.
We count the objects: two apples, three bananas, one orange; in total six fruits.
if __name__ == "__main__":
    main()
while left <= right:
    mid = (left + right) // 2
    if values[mid] < target:
        left = mid + 1
    else:
        right = mid - 1
result = [x ** 2 for x in range(10) if x % 2 == 0]
assert len(result) == 5, "unexpected length"
with open("input.txt") as handle:
    lines = [line.strip() for line in handle]
'''


def _task_text(seed: int) -> Iterator[str]:
    from r1ci_cli.tasks.registry import families

    try:
        pool = families(CORPUS_SOURCES)
    except ImportError as err:
        log.warning("tokenizer corpus: task families unavailable (%s); using the built-in text only", err)
        return
    for family in pool:
        if family.generate is None or family.slow:
            continue
        for i in range(PER_FAMILY):
            try:
                instance = family.generate(derive_rng(seed, "corpus", family.name, i), dict(family.knobs))
                program = family.reference_program(instance)
            except Exception as err:  # tokenizer text only: one broken generator must not block init-model
                log.warning("tokenizer corpus: %s failed (%s: %s); skipped", family.name, type(err).__name__, err)
                break
            yield instance.question
            yield f"```python\n{program}```\nCode Execution Results:\n{instance.answer}\n<<<{instance.answer}>>>"


def _synthetic_text(seed: int, count: int = 400) -> Iterator[str]:
    rng = derive_rng(seed, "corpus", "synthetic")
    ops = ["+", "-", "*", "/", "%", "**", "//", "==", "<=", ">=", "!="]
    for _ in range(count):
        a, b, c = (rng.randint(0, 999) for _ in range(3))
        values = [rng.randint(-50, 200) for _ in range(rng.randint(2, 8))]
        yield (f"result = ({a} {rng.choice(ops)} {b}) {rng.choice(ops)} {c}\n"
               f"values = {values}\nprint(sorted(values), sum(values), max(values) - min(values))\n"
               f"Code Execution Results:\n{sorted(values)} {sum(values)} {max(values) - min(values)}\n"
               f"<<<{sum(values)}>>>")


def default_corpus(seed: int) -> list[str]:
    """Tokenizer training text (see the module docstring); deterministic for a seed and a code version."""
    started = time.monotonic()
    texts = [SYSTEM_TEXT, BUILTIN_TEXT]
    texts += list(_task_text(seed))
    log.debug("tokenizer corpus: task text in %.1f s", time.monotonic() - started)
    texts += list(_synthetic_text(seed))
    # The built-in text is repeated so its idioms reach the merge counts of the (larger) task text.
    return texts + [SYSTEM_TEXT, BUILTIN_TEXT] * 8
