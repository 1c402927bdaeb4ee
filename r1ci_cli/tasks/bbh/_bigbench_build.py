"""Build BBH-style JSON files for the knowledge-bound subtasks from the BIG-bench source tasks.

Input: the ``bigbench`` 1.0.0 source distribution (``pip download --no-deps bigbench==1.0.0``, Apache-2.0) as the
``.tar.gz`` itself or an unpacked directory; each subtask's ``benchmark_tasks/<task>/task.json`` holds
``examples: [{"input", "target_scores": {option: score}}]``. Output: ``<out>/<subtask>.json`` in BBH's format,
``{"canary", "source", "examples": [{"input", "target"}]}``, with BBH's wording: the task prefix, ``Options:`` then
``(A) ...`` lines (or ``- Yes`` / ``- No``), and targets ``(B)``, ``Yes``, ``yes``.

Deterministic: examples keep their source order; when a task has more than ``max_per_task`` usable examples, a
subset is drawn with ``derive_rng(seed, "bbh-build", task)``; option orders the source fixes first-correct
(movie_recommendation, ruin_names) are shuffled with a per-example seed. Examples without exactly one best option,
or repeated inputs, are skipped and counted in the log. BBH itself sampled 250 items per task from the same source;
our subsets are not BBH's, so scores are comparable in kind, not item by item.

Run: ``python -m r1ci_cli.tasks.bbh._bigbench_build SOURCE -o data/bbh`` (what ``make data-bbh`` does).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import sys
import tarfile
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from r1ci_cli.errors import R1ciError
from r1ci_cli.seeds import derive_rng

log = logging.getLogger("r1ci.tasks.bbh.build")

LETTERS = "ABCDEFGHIJKLMNOPQR"
# BBH subtask -> BIG-bench task directory (BBH spells "judgement", BIG-bench "judgment").
SOURCES = {
    "causal_judgement": "causal_judgment",
    "disambiguation_qa": "disambiguation_qa",
    "movie_recommendation": "movie_recommendation",
    "ruin_names": "ruin_names",
    "salient_translation_error_detection": "salient_translation_error_detection",
    "snarks": "snarks",
    "sports_understanding": "sports_understanding",
}
_SALIENT_ORDER = ["Modifiers or Adjectives", "Numerical Values", "Negation or Antonyms", "Named Entities",
                  "Dropped Content", "Facts"]


def _lettered(options: list[str]) -> str:
    return "Options:\n" + "\n".join(f"({LETTERS[i]}) {o}" for i, o in enumerate(options))


def _choose(options: list[str], correct: str) -> str:
    return f"({LETTERS[options.index(correct)]})"


# Each converter: (task.json data, example, its correct option, rng for this example) -> (input, target) or None.
Converter = Callable[[dict, dict, str, Any], "tuple[str, str] | None"]


def _causal(task: dict, ex: dict, correct: str, rng: Any) -> tuple[str, str] | None:
    if correct not in ("Yes", "No"):
        return None
    prefix = task.get("task_prefix", "").strip()
    return f"{prefix}\n{ex['input'].strip()}\nOptions:\n- Yes\n- No", correct


def _disambiguation(task: dict, ex: dict, correct: str, rng: Any) -> tuple[str, str] | None:
    options = list(ex["target_scores"])
    prefix = task.get("task_prefix", "").strip()
    return f"{prefix}\nSentence: {ex['input'].strip()}\n{_lettered(options)}", _choose(options, correct)


def _movies(task: dict, ex: dict, correct: str, rng: Any) -> tuple[str, str] | None:
    options = list(ex["target_scores"])
    rng.shuffle(options)  # the source lists the right movie first
    return f"Find a movie similar to {ex['input'].strip()}\n{_lettered(options)}", _choose(options, correct)


def _ruin(task: dict, ex: dict, correct: str, rng: Any) -> tuple[str, str] | None:
    options = list(ex["target_scores"])
    rng.shuffle(options)  # the source lists the humorous edit first
    return f"{ex['input'].strip()}\n{_lettered(options)}", _choose(options, correct)


def _salient(task: dict, ex: dict, correct: str, rng: Any) -> tuple[str, str] | None:
    if sorted(ex["target_scores"]) != sorted(_SALIENT_ORDER):
        return None
    prefix = task.get("task_prefix", "").strip()
    return f"{prefix}\n{ex['input'].strip()}\n{_lettered(_SALIENT_ORDER)}", _choose(_SALIENT_ORDER, correct)


_SNARK_RE = re.compile(r"^(.*?)\s*\(a\)\s*(.+?)\s*\(b\)\s*(.+?)\s*$", re.S)


def _snarks(task: dict, ex: dict, correct: str, rng: Any) -> tuple[str, str] | None:
    match = _SNARK_RE.match(ex["input"])
    if not match or correct not in ("(a)", "(b)"):
        return None
    question, first, second = (g.strip() for g in match.groups())
    return f"{question}\n{_lettered([first, second])}", correct.upper()


def _sports(task: dict, ex: dict, correct: str, rng: Any) -> tuple[str, str] | None:
    if correct not in ("plausible", "implausible"):
        return None
    sentence = ex["input"].strip()
    if sentence[-1] not in ".!?":
        sentence += "."
    return f'Is the following sentence plausible? "{sentence}"', "yes" if correct == "plausible" else "no"


CONVERTERS: dict[str, Converter] = {
    "causal_judgement": _causal,
    "disambiguation_qa": _disambiguation,
    "movie_recommendation": _movies,
    "ruin_names": _ruin,
    "salient_translation_error_detection": _salient,
    "snarks": _snarks,
    "sports_understanding": _sports,
}


def _best_option(ex: dict, where: str) -> str | None:
    scores = ex.get("target_scores")
    if not isinstance(scores, dict) or not scores:
        raise R1ciError(f"{where}: field 'target_scores': expected a non-empty object")
    if not all(isinstance(v, (int, float)) for v in scores.values()):
        raise R1ciError(f"{where}: field 'target_scores': scores must be numbers")
    top = max(scores.values())
    best = [k for k, v in scores.items() if v == top]
    return best[0] if len(best) == 1 and top > 0 else None


def convert(subtask: str, task: dict, origin: str, max_per_task: int, seed: int) -> dict:
    """One BIG-bench task.json (parsed) -> the BBH-style file content for ``subtask``."""
    examples = task.get("examples")
    if not isinstance(examples, list):
        raise R1ciError(f"{origin}: field 'examples': expected a list")
    converter = CONVERTERS[subtask]
    rows, seen, skipped = [], set(), 0
    for index, ex in enumerate(examples):
        where = f"{origin}: examples[{index}]"
        if not isinstance(ex, dict) or not isinstance(ex.get("input"), str):
            raise R1ciError(f"{where}: field 'input': expected a string")
        correct = _best_option(ex, where)
        converted = None
        if correct is not None:
            converted = converter(task, ex, correct, derive_rng(seed, "bbh-build", subtask, index))
        if converted is None or converted[0] in seen:
            skipped += 1
            continue
        seen.add(converted[0])
        rows.append({"input": converted[0], "target": converted[1]})
    if skipped:
        log.info("%s: skipped %d of %d examples (no single best option, odd format or repeated)", subtask,
                 skipped, len(examples))
    if max_per_task and len(rows) > max_per_task:
        keep = sorted(derive_rng(seed, "bbh-build", subtask).sample(range(len(rows)), max_per_task))
        rows = [rows[i] for i in keep]
    return {"canary": task.get("canary", ""), "source": f"bigbench==1.0.0 {SOURCES[subtask]}/task.json",
            "examples": rows}


def _read_tasks(source: Path, wanted: Iterable[str]) -> dict[str, tuple[dict, str]]:
    """``{bigbench task name: (parsed task.json, where it came from)}`` from the sdist tarball or a directory."""
    wanted = set(wanted)
    found: dict[str, tuple[dict, str]] = {}
    pattern = re.compile(r"(?:^|/)benchmark_tasks/([^/]+)/task\.json$")

    def parse(raw: bytes, origin: str) -> dict:
        try:
            data = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as err:
            raise R1ciError(f"{origin}: not valid JSON: {str(err).splitlines()[0]}") from None
        if not isinstance(data, dict):
            raise R1ciError(f"{origin}: expected a JSON object")
        return data

    if source.is_dir():
        for path in sorted(source.rglob("task.json")):
            match = pattern.search(path.as_posix())
            if match and match.group(1) in wanted:
                found[match.group(1)] = (parse(path.read_bytes(), str(path)), str(path))
        return found
    try:
        with tarfile.open(source, "r:*") as archive:
            for member in archive:
                match = pattern.search(member.name)
                if member.isfile() and match and match.group(1) in wanted:
                    handle = archive.extractfile(member)
                    origin = f"{source}:{member.name}"
                    found[match.group(1)] = (parse(handle.read() if handle else b"", origin), origin)
    except (tarfile.TarError, OSError, EOFError) as err:
        raise R1ciError(f"{source}: cannot read the bigbench source archive: {err}") from None
    return found


def _write_atomic(path: Path, content: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(content)
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; data files are for everyone to read
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def build(source: Path, out_dir: Path, subtasks: Iterable[str] = tuple(SOURCES), max_per_task: int = 250,
          seed: int = 0) -> dict[str, int]:
    """Write ``<out_dir>/<subtask>.json`` for each subtask; return the number of examples written per subtask."""
    subtasks = list(subtasks)
    unknown = [s for s in subtasks if s not in SOURCES]
    if unknown:
        raise R1ciError(f"no BIG-bench source known for {', '.join(unknown)} (known: {', '.join(SOURCES)})")
    if not source.exists():
        raise R1ciError(f"{source}: not found; fetch it with 'pip download --no-deps bigbench==1.0.0'")
    tasks = _read_tasks(source, (SOURCES[s] for s in subtasks))
    missing = [SOURCES[s] for s in subtasks if SOURCES[s] not in tasks]
    if missing:
        raise R1ciError(f"{source}: no benchmark_tasks/<task>/task.json for {', '.join(missing)}")
    out_dir.mkdir(parents=True, exist_ok=True)
    counts = {}
    for subtask in subtasks:
        task, origin = tasks[SOURCES[subtask]]
        content = convert(subtask, task, origin, max_per_task, seed)
        _write_atomic(out_dir / f"{subtask}.json", json.dumps(content, ensure_ascii=False, indent=1) + "\n")
        counts[subtask] = len(content["examples"])
        log.info("%s: %d examples -> %s", subtask, counts[subtask], out_dir / f"{subtask}.json")
    return counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m r1ci_cli.tasks.bbh._bigbench_build",
                                     description="Build BBH-style JSON for the knowledge-bound BBH subtasks.")
    parser.add_argument("source", type=Path, help="bigbench-1.0.0.tar.gz or its unpacked directory")
    parser.add_argument("-o", "--output", type=Path, default=Path("data/bbh"), help="output directory")
    parser.add_argument("--max-per-task", type=int, default=250, help="examples kept per subtask; 0 keeps all")
    parser.add_argument("--seed", type=int, default=0, help="seed of the subset and option shuffles")
    parser.add_argument("--tasks", nargs="*", default=list(SOURCES), help="BBH subtasks to build")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    try:
        build(args.source, args.output, args.tasks, args.max_per_task, args.seed)
    except R1ciError as err:
        log.error("error: %s", err)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
