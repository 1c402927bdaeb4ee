"""MATH Counting & Probability (SymBench's data-backed combinatorics problems).

Loaded from the user's copy of the MATH dataset, ``DATA_DIR/MATH/train/counting_and_probability/<n>.json``
(see ``math_geometry``, which holds the shared MATH-layout loader, question and verifier).
"""

from __future__ import annotations

from r1ci_cli.tasks.symbench.math_geometry import make_family

FAMILY = make_family("math_counting_probability", "counting_and_probability",
                     "MATH counting & probability problems (user-provided data); LaTeX answer compared by value.")
