"""Options are dataclasses filled by flag bundles declared once (commands/options.py), and settings.py tells
the fields that shape results from the runtime ones."""

from __future__ import annotations

import dataclasses
import re

import click
import pytest
from click.testing import CliRunner

from r1ci_cli.backends.base import BackendOptions
from r1ci_cli.cli import cli
from r1ci_cli.commands import options as o
from r1ci_cli.rollout.loop import RolloutOptions
from r1ci_cli.settings import fingerprint, settings
from r1ci_cli.train.checkpoint import CheckpointOptions
from r1ci_cli.train.options import RlOptions

BUNDLES = [o.REWARD, o.GENERATION, o.BACKEND, o.SANDBOX, o.SANDBOX_POOL, o.ENGINE, o.CHECKPOINT, o.SFT, o.RL]


def _capture(*groups: o.Bundle, args: list[str] = (), env: dict[str, str] | None = None, **kwargs):
    """The objects a command decorated with ``bundles(*groups, **kwargs)`` receives."""
    seen: dict[str, object] = {}

    @click.command()
    @o.bundles(*groups, **kwargs)
    def command(**objects: object) -> None:
        seen.update(objects)

    result = CliRunner().invoke(command, list(args), env=env, auto_envvar_prefix="R1CI_TEST")
    assert result.exit_code == 0, result.output
    return seen


@pytest.mark.parametrize("bundle", BUNDLES, ids=[b.arg + ":" + b._cls for b in BUNDLES])
def test_every_flag_fills_a_field_of_its_dataclass(bundle: o.Bundle) -> None:
    names = {f.name for f in dataclasses.fields(bundle.cls)}
    assert {flag.field for flag in bundle.flags if flag.field is not None} <= names
    assert set(bundle.nested) <= names


def test_defaults_come_from_the_dataclasses_and_nested_defaults_from_the_parent() -> None:
    seen = _capture(o.RL, args=["--stage", "1", "--model", "m", "-o", "out"],
                    exclude=("style", "samples", "top_p", "cohorts", "max_in_flight"), save_every=10)
    opts = seen["options"]
    assert isinstance(opts, RlOptions)
    default = RlOptions(stage=1, model="m", checkpoint=CheckpointOptions("out", save_every=10))
    assert opts == default  # every default, nested ones included, is the dataclass's own
    assert (opts.rollout.max_new_tokens, opts.engine.lr, opts.engine.micro_batch_size) == (512, 1e-6, 8)


def test_a_flag_shared_by_nested_groups_is_declared_once_and_reaches_each() -> None:
    seen = _capture(o.RL, o.SANDBOX, args=["--stage", "2", "--model", "m", "-o", "out", "--seed", "7",
                                            "--max-new-tokens", "9", "--lr", "0.5", "--sandbox-workers", "3"])
    opts, sandbox = seen["options"], seen["sandbox"]
    assert (opts.seed, opts.rollout.seed, opts.rollout.max_new_tokens, opts.engine.lr) == (7, 7, 9, 0.5)
    assert sandbox.workers == 3 and sandbox.address is None


def test_a_command_override_is_its_visible_default_and_flags_still_win() -> None:
    assert _capture(o.GENERATION, temperature=0.6)["generation"].temperature == 0.6
    assert _capture(o.GENERATION, args=["--temperature", "0.2"], temperature=0.6)["generation"].temperature == 0.2
    text = CliRunner().invoke(cli, ["eval", "run", "--help"]).stdout
    assert re.search(r"--temperature\b[^\[]*\[default:\s+0\.6", text), text
    text = CliRunner().invoke(cli, ["rl-stage", "--help"]).stdout
    assert re.search(r"--max-new-tokens\b[^\[]*\[default:\s+512", text) and "--top-p" not in text
    with pytest.raises(TypeError, match="no such flag"):
        o.bundles(o.GENERATION, temprature=0.6)


def test_environment_and_config_file_reach_bundled_flags(tmp_path) -> None:
    assert _capture(o.BACKEND, env={"R1CI_TEST_BACKEND": "reference"})["backend"].kind == "reference"
    config = tmp_path / "run.toml"
    config.write_text("[rollout]\nmax-code-calls = 3\n")
    result = CliRunner().invoke(cli, ["--config", str(config), "rollout", "--help"])
    assert result.exit_code == 0 and re.search(r"--max-code-calls\b[^\[]*\[default:\s+3", result.stdout)


def test_fingerprints_ignore_runtime_fields_and_see_the_rest() -> None:
    base = fingerprint(RolloutOptions(), BackendOptions(kind="hf", model="m"))
    runtime = fingerprint(RolloutOptions(cohorts=5, max_in_flight=3),
                          BackendOptions(kind="hf", model="m", device="cuda:1", batch_size=64, concurrency=2))
    assert runtime == base
    for changed in (RolloutOptions(temperature=0.6), RolloutOptions(max_code_calls=2), RolloutOptions(prompts="short")):
        assert fingerprint(changed, BackendOptions(kind="hf", model="m")) != base
    assert fingerprint(RolloutOptions(), BackendOptions(kind="hf", model="other")) != base
    assert "cohorts" not in settings(RolloutOptions()) and "cohorts" in settings(RolloutOptions(), runtime=True)
    assert settings(RolloutOptions())["reward"]["format_reward"] == 0.1
