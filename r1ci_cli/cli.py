"""The ``r1ci`` click group. Commands load lazily so ``r1ci --help`` never imports torch or the sandbox."""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
import tomllib
from typing import Any

import click

from r1ci_cli import __version__

# name -> module in r1ci_cli.commands (attribute ``<name>_cmd`` with dashes as underscores).
COMMANDS = (
    "gen-tasks", "exec-sandbox", "rollout", "score-potential", "sft", "rl-stage", "eval", "init-model", "show",
)


def _module_name(name: str) -> str:
    return "r1ci_cli.commands." + name.replace("-", "_")


def available_commands() -> list[str]:
    return [n for n in COMMANDS if importlib.util.find_spec(_module_name(n)) is not None]


def load_command(name: str) -> click.Command:
    module = importlib.import_module(_module_name(name))
    return getattr(module, name.replace("-", "_") + "_cmd")


def _load_config(ctx: click.Context, _param: click.Parameter, value: str | None) -> None:
    """``--config run.toml``: one table per command, e.g. ``[rollout]\\ntemperature = 0.6`` (``[eval.run]`` for
    eval's subcommand). A table or key that names nothing is an error naming the closest valid one."""
    if value is None:
        return
    try:
        with open(value, "rb") as handle:
            data = tomllib.load(handle)
    except (OSError, tomllib.TOMLDecodeError) as err:
        raise click.BadParameter(f"{value}: {err}", param_hint="--config") from None
    default_map: dict[str, Any] = {}
    for command, table in data.items():
        if not isinstance(table, dict):
            raise click.BadParameter(f"{value}: '{command}' must be inside a command's table ([rollout], "
                                     "[gen-tasks], …)", param_hint="--config")
        if command not in available_commands():
            hint = _closest(command, available_commands(), "[{}]")
            raise click.BadParameter(f"{value}: unknown table [{command}]{hint}", param_hint="--config")
        default_map[command] = _config_table(value, command, load_command(command), table)
    ctx.default_map = default_map


def _closest(name: str, choices: list[str], form: str = "'{}'") -> str:
    import difflib

    match = difflib.get_close_matches(name, choices, n=1, cutoff=0.6)
    return f"; did you mean {form.format(match[0])}?" if match else ""


def _config_table(path: str, label: str, command: click.Command, table: dict[str, Any]) -> dict[str, Any]:
    """One command's table with keys as click's parameter names, every key checked against the command."""
    out: dict[str, Any] = {}
    if isinstance(command, click.Group):
        for key, val in table.items():
            if key in command.commands and isinstance(val, dict):
                out[key] = _config_table(path, f"{label}.{key}", command.commands[key], val)
                continue
            owners = [name for name, sub in command.commands.items()
                      if key.replace("-", "_") in {p.name for p in sub.params}]
            hint = (f"; did you mean [{label}.{owners[0]}]?" if owners
                    else _closest(key, list(command.commands), f"[{label}.{{}}]"))
            raise click.BadParameter(f"{path}: [{label}]: unknown key '{key}'{hint}", param_hint="--config")
        return out
    names = {p.name: p.name.replace("_", "-") for p in command.params if p.name}
    for key, val in table.items():
        name = key.replace("-", "_")
        if name not in names:
            hint = _closest(key.replace("_", "-"), sorted(names.values()))
            raise click.BadParameter(f"{path}: [{label}]: unknown key '{key}'{hint}", param_hint="--config")
        out[name] = val
    return out


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return available_commands()

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in available_commands():
            return None
        return load_command(name)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="r1ci")
@click.option("--config", type=click.Path(dir_okay=False), callback=_load_config, expose_value=False,
              is_eager=True, help="TOML file with one table of defaults per command (flags still win).")
def cli() -> None:
    """r1ci: teach language models to reason with a code interpreter.

    Unix-style commands over zstd JSONL streams ('-' is stdin/stdout).

    Example:  r1ci gen-tasks --tasks game24 --num-per-task 5 | r1ci rollout --backend reference
    """


def main(argv: list[str] | None = None) -> None:
    cli.main(args=argv, prog_name="r1ci", auto_envvar_prefix="R1CI")


def standalone(name: str):
    """Entry point of the ``r1ci-<name>`` console script (environment prefix ``R1CI_<NAME>_``)."""

    def run() -> None:
        prefix = "R1CI_" + name.upper().replace("-", "_")
        load_command(name).main(prog_name=f"r1ci-{name}", auto_envvar_prefix=prefix)

    return run


for _name in COMMANDS:
    globals()[_name.replace("-", "_") + "_main"] = standalone(_name)

if __name__ == "__main__":  # pragma: no cover
    main(sys.argv[1:])
    os._exit(0)
