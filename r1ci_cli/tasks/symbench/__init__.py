"""SymBench: our own seeded generators, rule-based verifiers and reference solvers (one module per task)."""

from r1ci_cli.tasks.registry import collect

FAMILIES = collect(__name__)
