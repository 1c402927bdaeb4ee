"""Domain errors. Core modules raise these; the command layer turns them into one line on stderr and exit 1.

They deliberately do not subclass click's exceptions so that the core never imports click.
"""

from __future__ import annotations


class R1ciError(Exception):
    """A user-facing error: bad input, a missing file, a host without isolation. One line, exit 1."""

    exit_code = 1


class BadRecord(R1ciError):
    """A malformed input record: names the path, the 1-based line and the field."""

    def __init__(self, path: str, line: int, field: str | None, problem: str):
        self.path, self.line, self.field, self.problem = path, line, field, problem
        where = f"{path}:{line}: "
        super().__init__(where + (f"field '{field}': {problem}" if field else problem))


class MissingDependency(R1ciError):
    """An optional dependency (torch, vllm, deepspeed, …) is not installed."""

    def __init__(self, package: str, hint: str):
        super().__init__(f"{package} is not installed: {hint}")


class MissingData(R1ciError):
    """A data-backed task's files are absent: ``gen-tasks`` skips the task with one line instead of failing.

    A file that is present but malformed is a ``BadRecord``/``R1ciError`` and stops the run.
    """
