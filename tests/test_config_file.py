"""``r1ci --config run.toml``: one table of defaults per command; a table or key that means nothing is an error
naming the closest valid one, never silently ignored."""

from __future__ import annotations

import orjson
import pytest
from click.testing import CliRunner

from r1ci_cli.cli import cli


def gen(tmp_path, text: str, *args: str):
    config = tmp_path / "run.toml"
    config.write_text(text)
    return CliRunner().invoke(cli, ["--config", str(config), "gen-tasks", "-q", "--tasks", "game24",
                                    "--num-per-task", "1", *args])


def test_a_known_table_and_key_set_defaults(tmp_path):
    result = gen(tmp_path, '[gen-tasks]\nseed = 3\n')
    assert result.exit_code == 0, result.output
    assert orjson.loads(result.stdout)["id"].endswith("-s3-00000")
    dashed = gen(tmp_path, '[gen-tasks]\nnum-per-task = 2\n')  # dashes work as in flags
    assert dashed.exit_code == 0, dashed.output


@pytest.mark.parametrize("text, message", [
    ("[gen_tasks]\nseed = 3\n", "unknown table [gen_tasks]; did you mean [gen-tasks]?"),
    ("[gen-tasks]\nsede = 3\n", "[gen-tasks]: unknown key 'sede'; did you mean 'seed'?"),
    ("[rollout]\ntemprature = 0.6\n", "[rollout]: unknown key 'temprature'; did you mean 'temperature'?"),
    ("[eval]\ntemperature = 0.6\n", "[eval]: unknown key 'temperature'; did you mean [eval.run]?"),
    ("[eval.run]\nsamplez = 2\n", "[eval.run]: unknown key 'samplez'; did you mean 'samples'?"),
    ("[nonsense]\nx = 1\n", "unknown table [nonsense]"),
    ("seed = 3\n", "'seed' must be inside a command's table"),
])
def test_unknown_tables_and_keys_are_errors_naming_the_closest_valid_name(tmp_path, text, message):
    result = gen(tmp_path, text)
    assert result.exit_code == 2 and result.stdout == ""
    assert message in result.stderr, result.stderr


def test_eval_run_table_reaches_eval(tmp_path):
    config = tmp_path / "run.toml"
    config.write_text("[eval.run]\ntemperature = 0.2\n")
    result = CliRunner().invoke(cli, ["--config", str(config), "eval", "run", "--help"])
    assert result.exit_code == 0 and "0.2" in result.stdout
