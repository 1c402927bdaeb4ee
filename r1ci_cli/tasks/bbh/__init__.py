"""BIG-Bench-Hard: seeded generators for the procedural subtasks, a loader for the knowledge-bound rest."""

from r1ci_cli.tasks.registry import collect

FAMILIES = collect(__name__)
