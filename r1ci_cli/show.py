"""``r1ci show``: records for people. Trajectories (the question, every model turn with its code highlighted,
every execution result with its status, the answer, the verdict, the reward, token counts), Task records,
ExecRequests and ExecResults, read from a stream and printed with ``rich``.

Contract:

* ``record_kind(data)`` tells the kind of each record by its fields (``turns``: Trajectory; ``status`` and
  ``stdout``: ExecResult; ``code``: ExecRequest; ``question``: Task); a stream may mix kinds. Every record is
  validated as that kind (``records.py``): a bad one stops with ``file:line: field …``.
* ``ShowFilter`` selects: ``tasks`` globs match a record's task family or instance id (an Exec record's id);
  ``correct`` and ``finish`` keep only trajectories with that verdict or finish reason (other kinds have
  neither and never pass those filters); ``ids`` globs match the id (and a trajectory's ``task_id``);
  ``limit`` stops after that many shown records (the rest of the stream is not read).
* ``render(record, highlight)`` gives rich renderables. With ``highlight`` (a terminal) code is syntax
  highlighted; without it (a pipe or a file) output is plain text with no escape codes, and code and
  outputs are printed exactly, never wrapped or cut, so ``r1ci show … | grep`` and copying code work.

Output is for people, on stdout (``show`` is a viewer: it writes no records).
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from r1ci_cli.errors import BadRecord
from r1ci_cli.interaction import OBSERVATION_HEADER, parse_observation
from r1ci_cli.records import ExecRequest, ExecResult, Record, Task, Trajectory, task_family

# A python fence in a model turn: its code, up to a closing fence or the end of the turn (a cut-off turn).
_FENCE = re.compile(r"(?ms)^[ \t]*```+[ \t]*python[^\n]*\n(.*?)(?:^[ \t]*```+[^\n]*\n?|\Z)")
_ANSWER = re.compile(r"<<<.*?>>>+", re.S)


@dataclass(frozen=True)
class ShowFilter:
    tasks: tuple[str, ...] = ()  # globs over the task family and the instance id
    correct: bool | None = None  # True: correct trajectories only; False: wrong ones only
    finish: tuple[str, ...] = ()  # finish reasons
    ids: tuple[str, ...] = ()  # globs over the id (and a trajectory's task_id)
    limit: int | None = None

    def accepts(self, record: Record) -> bool:
        if self.tasks and not _matches(self.tasks, _task_keys(record)):
            return False
        if self.ids and not _matches(self.ids, _id_keys(record)):
            return False
        if self.correct is not None and not (isinstance(record, Trajectory) and record.correct == self.correct):
            return False
        if self.finish and not (isinstance(record, Trajectory) and record.finish in self.finish):
            return False
        return True


def _matches(globs: Sequence[str], keys: Sequence[str]) -> bool:
    return any(fnmatch.fnmatchcase(key, glob) for glob in globs for key in keys)


def _task_keys(record: Record) -> list[str]:
    if isinstance(record, Trajectory):
        return [task_family(record), record.task_id]
    if isinstance(record, Task):
        return [record.task, record.id]
    return [record.id]


def _id_keys(record: Record) -> list[str]:
    return [record.id, record.task_id] if isinstance(record, Trajectory) else [record.id]


def record_kind(data: dict[str, Any]) -> type[Record] | None:
    if "turns" in data:
        return Trajectory
    if "status" in data and "stdout" in data:
        return ExecResult
    if "code" in data:
        return ExecRequest
    if "question" in data:
        return Task
    return None


def select(rows: Iterable[tuple[int, dict[str, Any]]], name: str, flt: ShowFilter) -> Iterator[Record]:
    """Typed records of ``rows`` ((line, dict) pairs of file ``name``) that pass ``flt``, up to its limit."""
    shown = 0
    for line, data in rows:
        if flt.limit is not None and shown >= flt.limit:
            return
        kind = record_kind(data)
        if kind is None:
            raise BadRecord(name, line, None, "not a Trajectory, Task, ExecRequest or ExecResult (no 'turns', "
                                              "'question', 'code' or 'status'/'stdout' field)")
        record = kind.from_dict(data, name, line)
        if flt.accepts(record):
            shown += 1
            yield record


# ------------------------------------------------------------------------------------------------ rendering

def _indent(text: str) -> str:
    """Every non-empty line indented by four spaces (plain text keeps code and outputs exactly, shifted)."""
    return "".join("    " + line if line.strip() else line for line in text.splitlines(keepends=True))


def _code(code: str, highlight: bool) -> Any:
    from rich.padding import Padding
    from rich.syntax import Syntax
    from rich.text import Text

    if highlight:
        return Padding(Syntax(code.rstrip("\n"), "python", theme="ansi_dark", background_color="default",
                              word_wrap=True), (0, 0, 0, 4))
    return Text(_indent(code.rstrip("\n")))


def _prose(text: str, highlight: bool) -> Any:
    from rich.text import Text

    body = Text(text.strip("\n"))
    if highlight:
        body.highlight_regex(_ANSWER, "bold green")
    return body


def _heading(text: str, style: str) -> Any:
    from rich.text import Text

    return Text(text, style=style)


def model_turn(text: str, highlight: bool) -> list[Any]:
    """A model turn as prose and code blocks, in order."""
    parts: list[Any] = []
    position = 0
    for match in _FENCE.finditer(text):
        before = text[position:match.start()]
        if before.strip():
            parts.append(_prose(before, highlight))
        parts.append(_heading("    ```python", "dim"))
        parts.append(_code(match.group(1), highlight))
        parts.append(_heading("    ```" if _closed(match) else "    (the block was not closed)", "dim"))
        position = match.end()
    rest = text[position:]
    if rest.strip():
        parts.append(_prose(rest, highlight))
    if not parts:
        parts.append(_heading("(empty)", "dim"))
    return parts


def _closed(match: re.Match) -> bool:
    """Whether a fence match ends with its closing fence (not with the end of a cut-off turn)."""
    return match.group(0)[match.end(1) - match.start(0):].lstrip(" \t").startswith("```")


def _kv(pairs: Sequence[tuple[str, Any]]) -> str:
    return " · ".join(f"{key} {value}" for key, value in pairs if value is not None and value != "")


def render_trajectory(traj: Trajectory, highlight: bool) -> list[Any]:
    from rich.rule import Rule
    from rich.text import Text

    extra = traj.extra
    out: list[Any] = [Rule(Text(traj.id, style="bold"), align="left")]
    out.append(Text(_kv([("task", task_family(traj)), ("source", extra.get("source")), ("split", extra.get("split")),
                         ("model", traj.model), ("style", traj.style), ("temperature", f"{traj.temperature:g}")]),
                    style="dim"))
    out.append(_heading("Question", "bold cyan"))
    out.append(Text(str(extra.get("question", "(not stored)")).strip("\n")))
    model_turns = 0
    for turn in traj.turns:
        if turn.role == "model":
            model_turns += 1
            tokens = f" ({len(turn.ids)} tokens)" if turn.ids is not None else ""
            out.append(_heading(f"Model, turn {model_turns}{tokens}", "bold magenta"))
            out.extend(model_turn(turn.text, highlight))
        else:
            status = turn.status or "?"
            style = "bold green" if status == "ok" else "bold red"
            out.append(_heading(f"Execution result: {status}", style))
            body = parse_observation(turn.text) if OBSERVATION_HEADER in turn.text else turn.text.strip("\n")
            out.append(Text(_indent(body) or "    (no output)"))
    verdict = "correct" if traj.correct else "wrong"
    out.append(Text.assemble(("Answer ", "bold"), (repr(traj.answer) if traj.answer is not None else "none", ""),
                             ("  reference ", "bold"), (repr(extra.get("reference_answer")), ""),
                             ("  verdict ", "bold"), (verdict, "bold green" if traj.correct else "bold red"),
                             ("  reward ", "bold"), (f"{traj.reward:g}", ""),
                             ("  finish ", "bold"), (traj.finish, "")))
    usage = extra.get("usage") if isinstance(extra.get("usage"), dict) else {}
    out.append(Text(_kv([("tokens: prompt", usage.get("prompt_tokens")),
                         ("completion", usage.get("completion_tokens")),
                         ("observation", usage.get("observation_tokens")), ("requests", usage.get("requests")),
                         ("code calls", traj.num_code_calls), ("well formed", extra.get("well_formed"))]),
                    style="dim"))
    if extra.get("error"):
        out.append(Text(f"error: {extra['error']}", style="bold red"))
    return out


def render_task(task: Task, highlight: bool) -> list[Any]:
    from rich.rule import Rule
    from rich.text import Text

    extra = task.extra
    scored = [(k, extra.get(k)) for k in ("group", "potential", "p", "num_correct", "num_samples") if k in extra]
    return [Rule(Text(task.id, style="bold"), align="left"),
            Text(_kv([("task", task.task), ("source", task.source), ("split", task.split), ("seed", task.seed),
                      ("pool", extra.get("pool"))]), style="dim"),
            _heading("Question", "bold cyan"), Text(task.question.strip("\n")),
            Text.assemble(("Answer ", "bold"), (repr(task.answer), "")),
            *([Text(_kv([(k, f"{v:g}" if isinstance(v, float) else v) for k, v in scored]), style="dim")]
              if scored else [])]


def render_exec_request(request: ExecRequest, highlight: bool) -> list[Any]:
    from rich.rule import Rule
    from rich.text import Text

    head = f"timeout {request.timeout_s:g} s" if request.timeout_s is not None else ""
    return [Rule(Text(request.id, style="bold"), align="left"), *([Text(head, style="dim")] if head else []),
            _code(request.code, highlight)]


def render_exec_result(result: ExecResult, highlight: bool) -> list[Any]:
    from rich.rule import Rule
    from rich.text import Text

    out: list[Any] = [Rule(Text(result.id, style="bold"), align="left"),
                      Text.assemble(("status ", "bold"), (result.status, "bold green" if result.status == "ok"
                                                          else "bold red"),
                                    ("  exit code ", "bold"), (str(result.exit_code), ""),
                                    ("  wall ", "bold"), (f"{result.wall_ms:.0f} ms", ""),
                                    ("  truncated", "bold yellow") if result.truncated else ("", ""))]
    for name, text in (("stdout", result.stdout), ("stderr", result.stderr)):
        if text:
            out.append(_heading(name, "bold cyan"))
            out.append(Text(_indent(text.rstrip("\n"))))
    return out


RENDERERS = {Trajectory: render_trajectory, Task: render_task, ExecRequest: render_exec_request,
             ExecResult: render_exec_result}


def render(record: Record, highlight: bool) -> list[Any]:
    return RENDERERS[type(record)](record, highlight)


def show(records: Iterable[Record], console: Any, highlight: bool) -> int:
    """Print every record (a blank line between records); returns how many were shown."""
    count = 0
    for record in records:
        if count:
            console.print()
        for part in render(record, highlight):
            console.print(part, soft_wrap=not highlight, highlight=False)
        count += 1
    return count
