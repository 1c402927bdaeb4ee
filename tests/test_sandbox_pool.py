"""The pool's contract: python -c semantics, typed outcomes, order, concurrency, options."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading

import pytest
from sandbox_helpers import LogRecords, make_options, open_pool_or_skip

from r1ci_cli.errors import R1ciError
from r1ci_cli.records import ExecRequest, ExecResult
from r1ci_cli.sandbox import SandboxOptions, SandboxPool, open_sandbox


@pytest.fixture(scope="module")
def pool():
    sandbox = open_pool_or_skip("auto")
    yield sandbox
    sandbox.close()


def test_print_gives_ok_and_stdout(pool):
    res = pool.run("print(6*7)", request_id="a")
    assert isinstance(res, ExecResult)
    assert (res.id, res.status, res.exit_code, res.stdout, res.stderr, res.truncated) == ("a", "ok", 0, "42\n", "",
                                                                                         False)
    assert res.wall_ms > 0


def test_auto_picks_an_isolating_mode(pool):
    assert pool.isolation in ("zygote", "bwrap", "firejail")


def test_exception_gives_python_c_traceback(pool):
    res = pool.run("x = 1\nraise ValueError('bad')")
    assert res.status == "error" and res.exit_code == 1
    assert res.stderr.startswith("Traceback (most recent call last):\n  File \"<string>\", line 2, in <module>")
    assert res.stderr.rstrip().endswith("ValueError: bad")
    assert "r1ci" not in res.stderr


@pytest.mark.parametrize("code, exit_code, stderr", [
    ("raise SystemExit(3)", 3, ""), ("import sys; sys.exit('why')", 1, "why\n"), ("import sys; sys.exit()", 0, ""),
    ("import os; os._exit(7)", 7, ""),
])
def test_exit_codes(pool, code, exit_code, stderr):
    res = pool.run(code)
    assert (res.exit_code, res.stderr) == (exit_code, stderr)
    assert res.status == ("ok" if exit_code == 0 else "error")


def test_syntax_error_is_an_error_status(pool):
    res = pool.run("def f(:\n")
    assert res.status == "error" and "SyntaxError" in res.stderr


def test_stdin_is_closed(pool):
    res = pool.run("try:\n    input()\nexcept EOFError:\n    print('eof')")
    assert res.stdout == "eof\n"


def test_unicode_and_stderr(pool):
    res = pool.run("import sys\nprint('π ≈ 3.14')\nprint('warn', file=sys.stderr)")
    assert res.stdout == "π ≈ 3.14\n" and res.stderr == "warn\n"


def test_preloaded_modules_work(pool):
    res = pool.run("import numpy as np, sympy as sp\nx = sp.Symbol('x')\n"
                   "print(np.arange(4).sum(), sorted(sp.solve(x**2 - 4, x)))")
    assert res.status == "ok", res
    assert res.stdout == "6 [-2, 2]\n"


def test_main_module_and_argv(pool):
    res = pool.run("import sys\nprint(__name__, sys.argv)\ndef f(): return 1\nimport pickle\n"
                   "print(pickle.loads(pickle.dumps(f))())")
    assert res.stdout == "__main__ ['-c']\n1\n", res


def test_atexit_and_threads_finish(pool):
    res = pool.run("import atexit, threading, time\natexit.register(lambda: print('bye'))\n"
                   "threading.Thread(target=lambda: (time.sleep(0.1), print('thread'))).start()")
    assert res.stdout == "thread\nbye\n", res


def test_request_timeout_overrides_default(pool):
    res = pool.run("import time\ntime.sleep(5)", timeout_s=0.5)
    assert res.status == "timeout" and res.wall_ms < 1500


def test_map_keeps_input_order_and_extra_fields(pool):
    requests = [ExecRequest(id=str(i), code=f"import time\ntime.sleep({0.05 * (5 - i)})\nprint({i})",
                            extra={"k": i}) for i in range(6)]
    results = list(pool.map(requests))
    assert [r.id for r in results] == [str(i) for i in range(6)]
    assert [r.stdout for r in results] == [f"{i}\n" for i in range(6)]
    assert [r.extra["k"] for r in results] == list(range(6))


def test_map_is_lazy_with_bounded_in_flight(pool):
    pulled = []

    def requests():
        for i in range(20):
            pulled.append(i)
            yield ExecRequest(id=str(i), code="print(1)")

    results = pool.map(requests())
    next(results)
    assert len(pulled) <= pool.opts.in_flight + 1
    assert len(list(results)) == 19


def test_submit_from_many_threads(pool):
    results: dict[int, ExecResult] = {}

    def client(k: int) -> None:
        for j in range(5):
            results[k * 10 + j] = pool.submit(f"print({k * 10 + j})", request_id=str(k * 10 + j)).result()

    threads = [threading.Thread(target=client, args=(k,)) for k in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 30
    assert all(r.stdout == f"{n}\n" and r.id == str(n) for n, r in results.items())


def test_open_sandbox_without_address_is_a_local_pool():
    with open_sandbox(None, make_options("auto", workers=1, preload=())) as sandbox:
        assert isinstance(sandbox, SandboxPool)
        assert sandbox.run("print(3)").stdout == "3\n"


def test_without_preload_site_packages_stay_importable_read_only():
    sandbox = open_pool_or_skip("auto", workers=1, preload=())
    with sandbox:
        res = sandbox.run("import numpy, os\nprint(os.access(os.path.dirname(numpy.__file__), os.W_OK))")
    assert res.status == "ok", res
    assert res.stdout == "False\n"


def test_none_mode_warns_loudly():
    records = LogRecords()
    logger = logging.getLogger("r1ci.sandbox")
    logger.addHandler(records)
    try:
        with SandboxPool(make_options("none", workers=1, preload=())) as sandbox:
            assert sandbox.isolation == "none"
            assert sandbox.run("print(5)").stdout == "5\n"
    finally:
        logger.removeHandler(records)
    assert any("NONE" in message for message in records.messages)


@pytest.mark.parametrize("bad", [dict(isolation="chroot"), dict(workers=0), dict(timeout_s=0.0),
                                 dict(max_output_bytes=0)])
def test_bad_options_are_user_errors(bad):
    with pytest.raises(R1ciError):
        SandboxOptions(**bad)


def test_preload_accepts_a_comma_string():
    assert SandboxOptions(preload="numpy,sympy").preload == ("numpy", "sympy")


def test_a_missing_preload_module_fails_the_start():
    with pytest.raises(R1ciError, match="preload"):
        SandboxPool(make_options("auto", workers=1, preload=("no_such_module_r1ci",)))


def test_submit_after_close_raises():
    sandbox = SandboxPool(make_options("none", workers=1, preload=()))
    sandbox.close()
    with pytest.raises(RuntimeError):
        sandbox.submit("print(1)")


@pytest.mark.parametrize("mode", ["zygote", "bwrap"])
def test_allowlisted_directories_under_tmp_survive_the_scratch_tmpfs(mode):
    """A venv or checkout under /tmp (CI clones live there) stays readable, not writable, beside the scratch."""
    import shutil
    import tempfile

    outside = tempfile.mkdtemp(prefix="r1ci-ro-", dir="/tmp")
    try:
        with open(os.path.join(outside, "data.txt"), "w") as handle:
            handle.write("visible")
        os.chmod(outside, 0o755)
        os.chmod(os.path.join(outside, "data.txt"), 0o644)
        sandbox = open_pool_or_skip(mode, workers=1, preload=(), extra_ro_paths=(outside,))
        with sandbox:
            code = (f"import os\nprint(open({os.path.join(outside, 'data.txt')!r}).read())\n"
                    f"print(os.access({outside!r}, os.W_OK))\n"
                    "open('/tmp/scratch.txt', 'w').write('ok'); print(open('/tmp/scratch.txt').read())")
            res = sandbox.run(code)
        assert res.status == "ok", res
        assert res.stdout.split() == ["visible", "False", "ok"]
    finally:
        shutil.rmtree(outside, ignore_errors=True)


# --- tracebacks are the interpreter's own -------------------------------------------------------------------------
def _python_c(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-I", "-c", code], capture_output=True, text=True, timeout=120, cwd="/tmp")


@pytest.mark.parametrize("code", [
    "import sys\nsys.setrecursionlimit(100_000)\ndef f(n):\n    return f(n + 1)\nf(0)",
    "import sys\nsys.excepthook = lambda *exc: print('hook', exc[0].__name__)\nraise ValueError('x')",
    "def f():\n    raise KeyError('k')\ntry:\n    f()\nexcept KeyError as err:\n"
    "    raise RuntimeError('wrapped') from err",
], ids=["deep-recursion", "excepthook", "chained"])
def test_uncaught_exceptions_print_as_python_c_prints_them(pool, code):
    """The interpreter's own printing (sys.excepthook): a 10^5-deep traceback is cut to its last 1000 entries, as
    outside the sandbox, instead of being formatted frame by frame in pure Python."""
    plain = _python_c(code)
    res = pool.run(code, timeout_s=60)
    assert (res.status, res.exit_code) == ("error" if plain.returncode else "ok", plain.returncode), res
    assert (res.stdout, res.stderr) == (plain.stdout, plain.stderr)


# --- firejail never runs without its sandbox --------------------------------------------------------------------
def test_firejail_inside_a_pid_namespace_is_refused_in_one_line():
    import shutil

    if os.geteuid() != 0 or not shutil.which("firejail") or not shutil.which("unshare"):
        pytest.skip("needs root, firejail and unshare")
    script = ("from r1ci_cli.errors import R1ciError\nfrom r1ci_cli.sandbox import SandboxOptions, SandboxPool\n"
              "try:\n    SandboxPool(SandboxOptions(workers=1, preload=(), isolation='firejail')).close()\n"
              "    print('started')\nexcept R1ciError as err:\n    print('refused:', err)")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    proc = subprocess.run(["unshare", "--pid", "--fork", "--mount-proc", sys.executable, "-c", script],
                          capture_output=True, text=True, timeout=120, env={**os.environ, "PYTHONPATH": root})
    assert proc.stdout.startswith("refused:"), proc.stdout + proc.stderr
    assert len(proc.stdout.strip().splitlines()) == 1
    assert "PID namespace" in proc.stdout, proc.stdout
