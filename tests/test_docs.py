"""The README is the user's manual: every command has a section, the two fresh-machine commands are there,
and CI calls the README's test command."""

from __future__ import annotations

import re
from pathlib import Path

from r1ci_cli.cli import available_commands

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_every_command_has_a_readme_section():
    for name in available_commands():
        assert re.search(rf"^#+ `r1ci {re.escape(name)}`", README, flags=re.M), f"README lacks a section for {name}"


def test_readme_gives_the_two_fresh_machine_commands_and_ci_runs_the_test_one():
    block = README.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    commands = re.findall(r"^(make [\w -]+)$", block, flags=re.M)
    assert commands[:2] == ["make all", "make test"], commands
    assert "make test" in (ROOT / ".ci" / "run").read_text()


def test_every_bin_shim_names_an_existing_command():
    for shim in (ROOT / "bin").iterdir():
        if shim.name != "r1ci":
            assert shim.name in available_commands(), f"bin/{shim.name} has no command behind it"


def _project_files() -> list[Path]:
    names = ["README.md", "Makefile", "pyproject.toml"]
    return [ROOT / n for n in names] + sorted((ROOT / "r1ci_cli").rglob("*.py")) + sorted((ROOT / "shell").iterdir())


def test_the_paper_facts_are_in_the_repository_and_every_citation_names_a_section():
    paper = (ROOT / "docs" / "paper.md").read_text(encoding="utf-8")
    sections = set(re.findall(r"^## (.+)$", paper, flags=re.M))
    cited = 0
    for path in _project_files():
        text = path.read_text(encoding="utf-8", errors="replace")
        assert "PAPER.md" not in text, f"{path.relative_to(ROOT)} cites PAPER.md, which is not in the repository"
        for section in re.findall(r"docs/paper\.md[\" ']+([A-Z][\w -]+)[\"']", text):
            assert section in sections, f"{path.relative_to(ROOT)} cites docs/paper.md {section!r}: no such section"
            cited += 1
    assert cited >= 10


def test_every_make_target_the_docs_name_exists():
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    targets = set(re.findall(r"^([\w.-]+):", makefile, flags=re.M))
    for path, said in ((ROOT / "README.md", r"`make ([a-z][\w-]*)"), (ROOT / "pyproject.toml", r"\bmake ([a-z][\w-]*)"),
                       (ROOT / "Makefile", r"\bmake ([a-z][\w-]*)")):
        for target in re.findall(said, path.read_text(encoding="utf-8")):
            assert target in targets, f"{path.name} names make {target}, which the Makefile does not have"


def test_the_readme_counts_the_test_tasks_with_generators_right():
    from r1ci_cli.tasks import generate
    from r1ci_cli.tasks.generate import GenOptions

    rows = generate.list_rows(GenOptions(sources=("bbh", "rgym"), split="test"))
    stated = re.search(r"--split test --num-per-task 200` \((\d+) tasks, of which\s+(\d+) have generators", README)
    assert stated, "the README no longer states the count"
    assert (int(stated[1]), int(stated[2])) == (len(rows), sum(r.generator for r in rows))
