"""What sandboxed code must never find: the parent's secrets, another request's code or output, keys left in the
kernel keyring. Each runs in every isolated mode and through the service."""

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


# Request N keeps a random marker in its code and prints another; request N+1 (same worker) looks for both.
_MARKING = "import os\ncode_marker = {marker!r}\nprint('out-' + os.urandom(24).hex())"


def _marking_request(run) -> dict[str, str]:
    marker = "code-" + secrets.token_hex(24)
    first = run(_MARKING.format(marker=marker))
    assert first.status == "ok", first
    return {"code": marker, "output": first.stdout.strip()}


@pytest.mark.parametrize("mode", ISOLATED_MODES)
def test_a_request_never_sees_the_previous_requests_code_or_output(mode):
    with open_pool_or_skip(mode, workers=1) as pool:
        for _ in range(2):
            markers = _marking_request(pool.run)
            check_scan(pool.run(scan_code(markers), timeout_s=120), tuple(markers))


def test_a_service_client_never_sees_another_clients_request(tmp_path):
    with ServedSandbox(tmp_path) as served, served.connect() as other:
        markers = _marking_request(served.client.run)
        check_scan(other.run(scan_code(markers), timeout_s=120), tuple(markers))


# --- the kernel keyring --------------------------------------------------------------------------------------
_KEYRING = r'''
import ctypes, platform
libc = ctypes.CDLL(None, use_errno=True)
ADD_KEY, KEYCTL = {"x86_64": (248, 250), "aarch64": (217, 219)}[platform.machine()]
TAG, PAYLOAD = __TAG__, __PAYLOAD__
RINGS = (-3, -4, -5)  # session, user, user-session
if PAYLOAD:
    print([libc.syscall(ADD_KEY, b"user", TAG, PAYLOAD, len(PAYLOAD), ring) >= 0 for ring in RINGS])
else:
    buf = ctypes.create_string_buffer(4096)
    for ring in RINGS:
        key = libc.syscall(KEYCTL, 10, ring, b"user", TAG, 0)  # KEYCTL_SEARCH
        if key >= 0:
            size = libc.syscall(KEYCTL, 11, key, buf, 4096)  # KEYCTL_READ
            print("found", ring, buf.raw[:max(size, 0)].decode(errors="replace"))
    try:
        print("".join(line for line in open("/proc/keys") if TAG.decode() in line))
    except OSError as err:
        print("no /proc/keys", err)
'''


def _keyring_code(tag: str, payload: str = "") -> str:
    return _KEYRING.replace("__TAG__", repr(tag.encode())).replace("__PAYLOAD__", repr(payload.encode()))


@pytest.mark.parametrize("mode", ISOLATED_MODES)
def test_every_request_has_a_fresh_keyring(mode):
    tag, payload = "r1ci-key-" + secrets.token_hex(6), "payload-" + secrets.token_hex(16)
    with open_pool_or_skip(mode, workers=1) as pool:
        assert pool.run(_keyring_code(tag, payload)).status == "ok"
        later = pool.run(_keyring_code(tag))
    assert later.status == "ok", later
    assert payload not in later.stdout and "found" not in later.stdout, later
    assert tag not in later.stdout, later


def test_nothing_in_the_keyring_outlives_the_pool():
    tag, payload = "r1ci-key-" + secrets.token_hex(6), "payload-" + secrets.token_hex(16)
    with open_pool_or_skip("auto", workers=1, preload=()) as pool:
        assert pool.run(_keyring_code(tag, payload)).status == "ok"
    with open_pool_or_skip("auto", workers=1, preload=()) as pool:
        later = pool.run(_keyring_code(tag))
    assert later.status == "ok", later
    assert payload not in later.stdout and tag not in later.stdout, later
