"""What sandboxed code must never find: the parent's secrets, another request's code or output, keys left in the
kernel keyring, and the service's token. Each runs in every isolated mode and through the service."""

from __future__ import annotations

import os
import re
import secrets
import shutil
from pathlib import Path

import pytest
from sandbox_helpers import ISOLATED_MODES, ServedSandbox, check_scan, open_pool_or_skip, scan_code

README = Path(__file__).resolve().parents[1] / "README.md"


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


# --- the service's token --------------------------------------------------------------------------------------
def readme_token_path() -> str:
    """The token file the README's example gives ``exec-sandbox --serve``."""
    match = re.search(r"exec-sandbox --serve \S+ --token-file (\S+)", README.read_text())
    assert match, "the README shows no --serve example with --token-file"
    return match.group(1)


@pytest.fixture(scope="module")
def readme_token():
    """A token at the README's path, mode 600 (a file already there is used as it is, never touched)."""
    path = Path(readme_token_path())
    if path.exists():
        yield path
        return
    if os.geteuid() != 0:
        pytest.skip(f"creating {path} needs root")
    made = [p for p in [*reversed(path.parents)] if not p.exists()]
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.write(fd, secrets.token_hex(16).encode())
    os.close(fd)
    try:
        yield path
    finally:
        path.unlink()
        if made:
            shutil.rmtree(made[0], ignore_errors=True)


@pytest.mark.parametrize("mode", ISOLATED_MODES)
def test_the_readme_token_path_is_unreadable_inside(mode, readme_token):
    assert readme_token.stat().st_mode & 0o077 == 0, "the README must tell users to make the token mode 600"
    code = (f"import os\npath = {str(readme_token)!r}\nprint(os.path.exists(os.path.dirname(path)))\n"
            "try:\n    open(path).read()\n    print('read')\nexcept OSError as err:\n    print('denied', err.errno)")
    with open_pool_or_skip(mode, workers=1, preload=()) as pool:
        res = pool.run(code)
    assert res.status == "ok", res
    visible, outcome = res.stdout.splitlines()
    assert outcome.startswith("denied"), res
    if mode != "firejail":  # firejail is a denylist: the directory is there, blacklisted
        assert visible == "False", res
