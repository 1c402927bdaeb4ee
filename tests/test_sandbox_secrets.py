"""What sandboxed code must never find: the parent's secrets. Each runs in every isolated mode and through the
service."""

from __future__ import annotations

import secrets

import pytest
from sandbox_helpers import ISOLATED_MODES, ServedSandbox, check_scan, open_pool_or_skip, scan_code


@pytest.fixture
def secret_env(monkeypatch):
    """A secret in this process's environment, where an API key would be."""
    value = "sk-r1ci-" + secrets.token_hex(24)
    monkeypatch.setenv("OPENAI_API_KEY", value)
    return value


@pytest.mark.parametrize("mode", ISOLATED_MODES)
def test_the_parents_environment_is_found_by_no_means(mode, secret_env):
    with open_pool_or_skip(mode, workers=1) as pool:
        pool.run("print(1)")
        check_scan(pool.run(scan_code({"secret": secret_env}), timeout_s=120), ("secret",))


def test_the_services_environment_is_found_by_no_means(tmp_path, secret_env):
    with ServedSandbox(tmp_path) as served:
        check_scan(served.client.run(scan_code({"secret": secret_env}), timeout_s=120), ("secret",))
