"""Hostile programs against every isolation mode this host offers (modes that are missing skip with a reason),
and through the sandbox service (``service``: the default mode behind a ``SandboxServer``, reached by a client).

Network tests only ever point at a listener this test opens on 127.0.0.1.
"""

from __future__ import annotations

import os
import pwd
import secrets
import signal
import socket
import subprocess
import textwrap
import time
from pathlib import Path

import pytest
from sandbox_helpers import (ISOLATED_MODES, OUTPUT_CAP, ServicePool, descendants, open_pool_or_skip, process_state,
                             processes_named, rss_kb, soak)

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SUITE_MODES = (*ISOLATED_MODES, "service")
LIMIT_MODES = (*SUITE_MODES, "none")


@pytest.fixture(scope="module")
def pools():
    """One pool per mode for the whole module (starting one preloads numpy and sympy in each worker)."""
    cache: dict[str, object] = {}
    yield cache
    for sandbox in cache.values():
        sandbox.close()


def _pool(pools, mode: str):
    if mode not in pools:
        pools[mode] = ServicePool() if mode == "service" else open_pool_or_skip(mode)
    assert pools[mode].isolation == mode
    return pools[mode]


@pytest.fixture(params=SUITE_MODES)
def pool(request, pools):
    return _pool(pools, request.param)


@pytest.fixture(params=LIMIT_MODES)
def any_pool(request, pools):
    return _pool(pools, request.param)


def run(pool, code: str, timeout_s: float | None = None):
    return pool.run(textwrap.dedent(code), timeout_s=timeout_s)


# --- network ------------------------------------------------------------------------------------------------
def test_tcp_connect_to_host_loopback_fails(pool):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    try:
        _assert_unreachable(pool, listener, f"socket.create_connection(('127.0.0.1', {listener.getsockname()[1]}), "
                                            "timeout=2).close()")
    finally:
        listener.close()


def _assert_unreachable(pool, listener: socket.socket, connect: str) -> None:
    """Sandboxed code that runs ``connect`` fails, and ``listener`` (bound here) sees no connection."""
    listener.listen(1)
    listener.settimeout(0.2)
    res = run(pool, f"""
        import socket
        try:
            {connect}
            print("connected")
        except OSError as err:
            print("blocked", type(err).__name__)
    """)
    assert res.status == "ok", res
    assert res.stdout.startswith("blocked"), res
    with pytest.raises(socket.timeout):
        listener.accept()


def test_only_an_isolated_loopback_is_visible(pool):
    res = run(pool, "import socket; print(sorted(name for _, name in socket.if_nameindex()))")
    assert res.status == "ok", res
    assert res.stdout.strip() == "['lo']"


# A request that leaves a listening TCP socket, a bound abstract unix socket, a SysV shared-memory segment and a
# sleeping setsid() process holding them. Every later request (whichever worker runs it) must be able to claim
# the same names again, so nothing it made outlived it even where a worker reuses namespaces across requests.
_LEAKER = """
    import ctypes, os, socket, time
    libc = ctypes.CDLL(None, use_errno=True)
    report = []
    tcp = socket.socket()
    try:
        tcp.bind(("0.0.0.0", {port}))
        tcp.listen(1)
        report.append("tcp-ok")
    except OSError as err:
        report.append("tcp-" + type(err).__name__)
    unix = socket.socket(socket.AF_UNIX)
    try:
        unix.bind("\\0{tag}")
        unix.listen(1)
        report.append("unix-ok")
    except OSError as err:
        report.append("unix-" + type(err).__name__)
    shm = libc.shmget({key}, 4096, 0o1600 | 0o2000)  # IPC_CREAT | IPC_EXCL
    report.append("shm-ok" if shm >= 0 else "shm-errno-%d" % ctypes.get_errno())
    report.append("hostname-" + ("changed" if libc.sethostname(b"mine", 4) == 0 else "denied"))
    if os.fork() == 0:
        os.setsid()
        time.sleep(60)
        os._exit(0)
    print(" ".join(report))
"""


def test_sockets_ipc_and_hostname_do_not_survive_a_request(pool):
    tag = "r1ci-leak-" + secrets.token_hex(4)
    key = int(secrets.token_hex(3), 16) + 1
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]  # a free port number here; inside, the sandbox's own network is separate
    probe.close()
    # Three sequential requests over two workers: at least two of them run on the same worker.
    outs = [run(pool, _LEAKER.format(port=port, tag=tag, key=key)) for _ in range(3)]
    for res in outs:
        assert res.status == "ok", res
        assert res.stdout.split() == ["tcp-ok", "unix-ok", "shm-ok", "hostname-denied"], res
    host = run(pool, "import socket; print(socket.gethostname())")
    assert host.status == "ok" and host.stdout.strip() != "mine", host


# --- files --------------------------------------------------------------------------------------------------
HOME = pwd.getpwuid(os.getuid()).pw_dir


def _home_files() -> list[str]:
    """Up to three real files of the invoking user's home (the sandbox must not see any of them)."""
    found = []
    for root, _dirs, files in os.walk(HOME):
        found += [os.path.join(root, f) for f in files if os.path.isfile(os.path.join(root, f))]
        if len(found) >= 3 or root.count("/") > HOME.count("/") + 1:
            break
    return found[:3]


def _secret_paths() -> list[str]:
    return ["/etc/shadow", str(PROJECT_ROOT / "pyproject.toml"), str(PROJECT_ROOT / "r1ci_cli" / "cli.py"),
            *_home_files()]


@pytest.mark.parametrize("directory", [HOME, str(PROJECT_ROOT)], ids=["home", "checkout"])
def test_private_dirs_show_nothing_but_the_way_to_the_interpreter(pool, directory):
    import sys

    res = run(pool, f"import os\ntry:\n    print(sorted(os.listdir({directory!r})))\nexcept OSError:\n    print([])")
    assert res.status == "ok", res
    interpreter_dirs = [os.path.realpath(p) for p in (sys.base_prefix, *sys.path) if p]
    for name in eval(res.stdout):
        entry = os.path.join(directory, name)
        assert any(d == entry or d.startswith(entry + "/") for d in interpreter_dirs), entry


@pytest.mark.parametrize("path", _secret_paths())
def test_cannot_read_secrets(pool, path):
    res = run(pool, f"""
        import os
        path = {path!r}
        try:
            if os.path.isdir(path):
                names = os.listdir(path)
                print("listed" if names else "denied (empty)", names)
            else:
                with open(path, "rb") as handle:
                    print("read", len(handle.read()))
        except OSError as err:
            print("denied", type(err).__name__)
    """)
    assert res.status == "ok", res
    assert res.stdout.startswith("denied"), res


def test_runs_as_an_unprivileged_uid(pool):
    """The runner drops to SandboxOptions' sandbox uid/gid with no supplementary groups. That drop needs root;
    unprivileged, bwrap runs the code as the caller's own uid inside a user namespace instead."""
    if os.getuid() != 0:
        pytest.skip("the uid drop needs root; unprivileged, code keeps the caller's uid in a user namespace")
    from r1ci_cli.sandbox import SandboxOptions

    res = run(pool, "import os; print(os.getuid(), os.geteuid(), os.getgid(), os.getegid(), os.getgroups())")
    assert res.status == "ok", res
    want = SandboxOptions()
    assert res.stdout.split() == [str(want.sandbox_uid)] * 2 + [str(want.sandbox_gid)] * 2 + ["[]"], res.stdout


def test_no_new_privileges_capabilities_or_unfiltered_syscalls(pool):
    res = run(pool, "print(open('/proc/self/status').read())")
    assert res.status == "ok", res
    status = dict(line.split(":", 1) for line in res.stdout.splitlines() if ":" in line)
    assert status["NoNewPrivs"].strip() == "1", status
    assert status["Seccomp"].strip() == "2", status
    assert int(status["CapEff"], 16) == 0 and int(status["CapPrm"], 16) == 0, status


def test_the_syscall_filter_refuses_what_a_sandbox_has_no_use_for(pool):
    """A user namespace, the keyring and ptrace answer EPERM; threads and subprocesses still work (clone3 is
    refused with ENOSYS, so the C library falls back to clone)."""
    res = run(pool, """
        import ctypes, platform, subprocess, threading
        libc = ctypes.CDLL(None, use_errno=True)
        keyctl, ptrace = {"x86_64": (250, 101), "aarch64": (219, 117)}[platform.machine()]
        def errno(result):
            return ctypes.get_errno() if result == -1 else result
        print(errno(libc.unshare(0x10000000)), errno(libc.syscall(keyctl, 0, -3, 0)),
              errno(libc.syscall(ptrace, 0, 0, 0, 0)))
        box = []
        thread = threading.Thread(target=box.append, args=(1,))
        thread.start()
        thread.join()
        print(box, subprocess.run(["echo", "child"], capture_output=True, text=True).stdout.strip())
    """)
    assert res.status == "ok", res
    assert res.stdout.split("\n")[:2] == ["1 1 1", "[1] child"], res


@pytest.mark.skipif(not os.path.exists("/usr/bin/su"), reason="no /usr/bin/su")
def test_a_setuid_binary_does_not_raise_privileges(pool):
    res = run(pool, """
        import subprocess, time
        su = subprocess.Popen(["/usr/bin/su", "root", "-c", "id -u"], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and open(f"/proc/{su.pid}/comm").read().strip() != "su":
            time.sleep(0.01)
        time.sleep(0.2)  # su is waiting for a password on its stdin now
        print(open(f"/proc/{su.pid}/comm").read().strip())
        print([line.split()[1:] for line in open(f"/proc/{su.pid}/status") if line.startswith("Uid:")][0])
        su.kill()
        su.wait()
    """)
    assert res.status == "ok", res
    comm, uids = res.stdout.splitlines()[:2]
    assert comm == "su", res
    assert "'0'" not in uids, res  # real, effective, saved and filesystem uid all stay unprivileged


def test_host_unix_sockets_under_run_are_unreachable(pool):
    if not os.access("/run", os.W_OK):
        pytest.skip("/run is not writable here")
    path = f"/run/r1ci-test-{os.getpid()}-{secrets.token_hex(3)}.sock"
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(path)
    os.chmod(path, 0o777)
    try:
        _assert_unreachable(pool, listener, f"socket.socket(socket.AF_UNIX).connect({path!r})")
    finally:
        listener.close()
        os.unlink(path)


# What the sandbox may show at its top level: the system directories, its own /dev, /proc and /tmp, and the way to
# the interpreter (checked by test_private_dirs_show_nothing_but_the_way_to_the_interpreter).
_VISIBLE_TOP = {"usr", "etc", "bin", "sbin", "lib", "lib32", "lib64", "libx32", "dev", "proc", "tmp"}


def _interpreter_tops() -> set[str]:
    import sys

    return {os.path.realpath(p).strip("/").split("/")[0] for p in (sys.base_prefix, *sys.path) if p}


def test_sys_and_other_host_paths_are_hidden(pool):
    """Every other top-level host path, /run and /sys included, is absent or shows nothing: no readable file,
    no socket, at any depth (firejail, a denylist, leaves blacklisted names visible but empty)."""
    from r1ci_cli.sandbox.isolation import FIREJAIL_MOUNT_BASE

    hidden = sorted(set(os.listdir("/")) - _VISIBLE_TOP - _interpreter_tops()) + ["run"]
    assert "sys" in hidden
    res = run(pool, f"""
        import os, stat
        def shown(path, depth=0):
            if path in ({FIREJAIL_MOUNT_BASE!r}, "/run/firejail"):
                return []  # firejail's own: the interpreter mounts, and this sandbox's runtime files
            try:
                mode = os.lstat(path).st_mode
                if stat.S_ISDIR(mode):
                    names = os.listdir(path)
                    return [] if depth > 3 else [x for n in names for x in shown(os.path.join(path, n), depth + 1)]
                if stat.S_ISREG(mode):
                    with open(path, "rb") as handle:
                        return [path] if handle.read(1) else []
                return [path] if stat.S_ISSOCK(mode) else []  # a symlink's target is checked on its own
            except OSError:
                return []
        print([x for name in {hidden!r} for x in shown("/" + name)])
    """)
    assert res.status == "ok", res
    assert res.stdout.strip() == "[]", res


@pytest.mark.parametrize("target", ["/x", "/usr/x", "/etc/x", "/var/tmp/x", "SITE/x", "PROJECT/x", "HOME/x"])
def test_cannot_write_outside_scratch(pool, target):
    import numpy
    site = os.path.dirname(os.path.dirname(numpy.__file__))
    target = (target.replace("SITE", site).replace("PROJECT", str(PROJECT_ROOT))
              .replace("HOME", pwd.getpwuid(os.getuid()).pw_dir))
    res = run(pool, f"""
        try:
            with open({target!r}, "w") as handle:
                handle.write("x")
            print("wrote")
        except OSError as err:
            print("denied", type(err).__name__)
    """)
    assert res.status == "ok", res
    assert res.stdout.startswith("denied"), res
    assert not os.path.exists(target)


def test_scratch_is_writable_and_empty_every_request(pool):
    code = """
        import os
        print(sorted(os.listdir(".")), sorted(os.listdir("/tmp")))
        with open("marker", "w") as handle:
            handle.write("left behind")
        os.mkdir("/tmp/dir")
    """
    import ast
    import sys

    # Allowlisted directories that live under /tmp (a venv or checkout there) stay visible, read-only, beside the
    # scratch: their top components are the only names the scratch /tmp may show.
    allowlisted = [Path(p).resolve() for p in (sys.prefix, sys.base_prefix, *sys.path, Path(__file__).parents[1]) if p]
    visible = sorted({p.relative_to("/tmp").parts[0] for p in allowlisted if p.is_relative_to("/tmp")})
    for _ in range(4):  # enough to hit both workers more than once
        res = run(pool, code)
        assert res.status == "ok", res
        here, tmp = res.stdout.strip().split("] [")
        for listing in (here + "]", "[" + tmp):  # nothing a request left behind; at most the allowlisted names
            assert set(ast.literal_eval(listing)) <= set(visible), res.stdout


# --- processes ----------------------------------------------------------------------------------------------
def test_setsid_grandchild_does_not_outlive_its_request(pool):
    tag = "orph" + secrets.token_hex(4)
    res = run(pool, f"""
        import ctypes, os, time
        if os.fork() == 0:
            os.setsid()
            if os.fork() == 0:
                ctypes.CDLL(None).prctl(15, b"{tag}", 0, 0, 0)
                time.sleep(60)
            os._exit(0)
        time.sleep(0.3)
        print("parent done")
    """)
    assert res.status == "ok", res
    deadline = time.monotonic() + 2.0
    while processes_named(tag) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert processes_named(tag) == []


def test_killing_the_parent_or_the_pool_fails(pool):
    before = list(pool.worker_pids)
    targets = [os.getpid(), *before]
    res = run(pool, f"""
        import os, signal
        for sig in (signal.SIGKILL, signal.SIGSTOP, signal.SIGTERM):
            try:
                os.kill(os.getppid(), sig)
            except OSError:
                pass
            for pid in {targets!r}:
                try:
                    os.kill(pid, sig)
                except OSError:
                    pass
        try:
            os.kill(-1, signal.SIGKILL)
        except OSError:
            pass
        print("still here")
    """)
    assert res.status in ("ok", "error"), res
    assert pool.worker_pids == before
    assert all(process_state(pid) not in ("T", "Z", "gone") for pid in before)
    assert run(pool, "print(1)").stdout == "1\n"


# --- limits, every mode including none ----------------------------------------------------------------------
def test_fork_bomb_is_contained(any_pool):
    res = run(any_pool, """
        import os
        children = 0
        while True:
            try:
                if os.fork() == 0:
                    while True:
                        pass
                children += 1
            except OSError:
                pass
    """, timeout_s=2.0)
    assert res.status == "timeout", res
    assert subprocess.run(["true"], timeout=10).returncode == 0
    assert run(any_pool, "print('alive')").stdout == "alive\n"


@pytest.mark.parametrize("code", [
    "x = bytearray(1024 * 1024 * 1024)\nx[::4096] = b'1' * len(x[::4096])",
    "chunks = []\nwhile True:\n    chunks.append(bytearray(16 * 1024 * 1024))\n    chunks[-1][::4096] = b'1' * 4096",
], ids=["one-block", "gradual"])
def test_memory_bomb_ends_as_oom(any_pool, code):
    res = run(any_pool, code, timeout_s=20.0)
    assert res.status == "oom", res


@pytest.mark.parametrize("code", ["while True:\n    pass", "import time\ntime.sleep(60)"], ids=["busy", "sleep"])
def test_timeout_within_one_second(any_pool, code):
    start = time.monotonic()
    res = run(any_pool, code, timeout_s=1.5)
    elapsed = time.monotonic() - start
    assert res.status == "timeout", res
    assert res.exit_code is None
    assert elapsed < 1.5 + 1.0
    assert res.wall_ms < (1.5 + 1.0) * 1000


def test_100mb_of_output_is_cut_with_bounded_memory(any_pool):
    before = {pid: rss_kb(pid) for pid in [os.getpid(), *any_pool.worker_pids]}
    res = run(any_pool, """
        import sys
        chunk = "x" * (1 << 20)
        for _ in range(100):
            sys.stdout.write(chunk)
    """, timeout_s=30.0)
    assert res.status == "output_limit", res
    assert res.truncated
    assert len(res.stdout) <= OUTPUT_CAP
    for pid, rss in before.items():
        assert rss_kb(pid) - rss < 32 * 1024, f"process {pid} grew by {rss_kb(pid) - rss} kB"


def test_failures_are_statuses_and_the_map_goes_on(any_pool):
    from r1ci_cli.records import ExecRequest

    requests = [ExecRequest(id="t", code="while True: pass", timeout_s=1.0),
                ExecRequest(id="e", code="raise SystemExit(3)"),
                ExecRequest(id="o", code="print('fine')")]
    results = list(any_pool.map(requests))
    assert [(r.id, r.status, r.exit_code) for r in results] == [("t", "timeout", None), ("e", "error", 3),
                                                                ("o", "ok", 0)]


@pytest.mark.parametrize("code,status,exit_code", [("exit(3)", "error", 3), ("quit()", "ok", 0),
                                                    ("print('x'); exit()", "ok", 0)])
def test_exit_and_quit_work_as_under_python_c_in_every_mode(any_pool, code, status, exit_code):
    res = run(any_pool, code)
    assert (res.status, res.exit_code) == (status, exit_code), res.stderr
    assert "NameError" not in res.stderr


def test_a_dead_worker_is_replaced(any_pool):
    tag = "vict" + secrets.token_hex(4)
    slow = any_pool.submit(f"import ctypes, time\nctypes.CDLL(None).prctl(15, b'{tag}', 0, 0, 0)\ntime.sleep(30)",
                           timeout_s=40.0, request_id="victim")
    deadline = time.monotonic() + 10
    while not processes_named(tag) and time.monotonic() < deadline:
        time.sleep(0.05)
    victims = [pid for pid in any_pool.worker_pids if pid and set(processes_named(tag)) & set(descendants(pid))]
    assert victims, "the sleeping request should be running under one worker"
    os.kill(victims[0], signal.SIGKILL)
    res = slow.result(timeout=30)
    assert res.status == "sandbox_error"
    assert "worker" in res.stderr
    outs = [any_pool.run("print(2)") for _ in range(4)]
    assert all(o.status == "ok" for o in outs), outs
    assert victims[0] not in any_pool.worker_pids


def _leftovers(pool) -> list[str]:
    workers = [pid for pid in pool.worker_pids if pid]
    problems = [f"worker {pid} is not ours" for pid in workers if pid not in descendants(os.getpid())]
    problems += [f"zombie {pid}" for pid in descendants(os.getpid()) if process_state(pid) == "Z"]
    for pid in workers:
        below = descendants(pid)
        if len(below) > 2 or any(descendants(child) for child in below[1:]):
            problems.append(f"worker {pid} has {below} below it")
        if process_state(pid) in ("Z", "gone"):
            problems.append(f"worker {pid} is {process_state(pid)}")
    return problems


def _assert_no_leftovers(pool) -> None:
    """No zombies, and under each worker nothing but its zygote and the one child it keeps ready. A worker
    answers before it cleans up, so the last request's process may take a moment to go (seconds on a host at
    load 20: a leftover that is really left over stays). Clean means clean in every look over half a second: a
    child that has just exited is a zombie for a moment, until the worker orders the next one."""
    deadline = time.monotonic() + 30.0
    clean_since = None
    while time.monotonic() < deadline:
        problems = _leftovers(pool)
        if problems:
            clean_since = None
        elif clean_since is None:
            clean_since = time.monotonic()
        elif time.monotonic() - clean_since >= 0.5:
            return
        time.sleep(0.05)
    assert problems == []


def test_no_zombies_after_many_requests(any_pool):
    futures = [any_pool.submit("import os\nif os.fork() == 0:\n    os._exit(0)\nprint(1)") for _ in range(30)]
    assert all(f.result().status == "ok" for f in futures)
    _assert_no_leftovers(any_pool)


@pytest.mark.slow
def test_no_zombies_after_a_long_run(pool):
    """1,000 requests with R1CI_SANDBOX_SOAK=full, 40 by default."""
    codes = ["print(1)", "import os\nos.fork()\nprint(2)", "import os, time\nif os.fork() == 0:\n    os.setsid()\n"
             "    time.sleep(30)\nprint(3)", "raise ValueError"]
    calls = soak(1000, 40)
    futures = [pool.submit(codes[i % len(codes)], timeout_s=10.0) for i in range(calls)]
    statuses = [f.result().status for f in futures]
    assert statuses.count("ok") == calls * 3 // 4 and statuses.count("error") == calls // 4
    _assert_no_leftovers(pool)
