"""The last step inside the sandbox: limits, privilege drop, then the untrusted code, like ``python -c``.

This module imports only the standard library and must stay self-contained: the ``bwrap`` and ``firejail``
modes pass its source to ``python -I -S -c`` inside a sandbox where the r1ci package is not visible, and
the zygote mode calls ``run_code`` in the forked child. Untrusted code runs as ``__main__`` in a fresh module
with ``sys.argv == ['-c']``; an uncaught exception goes to ``sys.excepthook`` (the interpreter's own printing,
without this runner's frame) and exits 1, ``SystemExit`` exits with its code, exactly as ``python -c`` would.
"""

import json
import os
import sys

ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": "/tmp", "TMPDIR": "/tmp", "LANG": "C.UTF-8",
       "LC_ALL": "C.UTF-8", "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
       "PYTHONDONTWRITEBYTECODE": "1", "MPLBACKEND": "Agg"}


def set_limits(limits):
    """``limits`` maps ``RLIMIT_*`` names to a soft=hard value; each only ever lowers the current limit."""
    import resource
    for name, value in limits.items():
        number = getattr(resource, name)
        _soft, hard = resource.getrlimit(number)
        if hard != resource.RLIM_INFINITY:
            value = min(value, hard)
        resource.setrlimit(number, (value, value))


def drop_privileges(uid, gid):
    """Become ``uid``/``gid`` with no supplementary groups; a root-to-non-root change clears all capabilities."""
    if os.getuid() != 0:
        return
    os.setgroups([])
    os.setresgid(gid, gid, gid)
    os.setresuid(uid, uid, uid)
    if os.getuid() == 0 or os.geteuid() == 0:
        raise OSError("privilege drop failed")


def _exit_status(exc):
    code = exc.code
    if code is None:
        return 0
    if isinstance(code, int):
        return code & 0xFF
    try:
        sys.stderr.write(str(code) + "\n")
    except Exception:
        pass
    return 1


def _print_uncaught(exc):
    """What ``python -c`` does with an uncaught exception: ``sys.excepthook``, the C printer by default."""
    exc.__traceback__ = exc.__traceback__.tb_next if exc.__traceback__ is not None else None
    hook = getattr(sys, "excepthook", None)
    try:
        if hook is None:
            raise RuntimeError("lost sys.excepthook")
        hook(type(exc), exc, exc.__traceback__)
    except BaseException as hook_error:  # noqa: BLE001 - as the interpreter does
        try:
            sys.stderr.write("Error in sys.excepthook:\n")
            sys.__excepthook__(type(hook_error), hook_error, hook_error.__traceback__)
            sys.stderr.write("\nOriginal exception was:\n")
            sys.__excepthook__(type(exc), exc, exc.__traceback__)
        except BaseException:
            pass


def run_code(code):
    """Run ``code`` as ``__main__``, flush, and leave the process with ``os._exit`` (never returns)."""
    import atexit
    import types

    main = types.ModuleType("__main__")
    main.__dict__["__builtins__"] = __builtins__
    sys.modules["__main__"] = main
    sys.argv = ["-c"]
    status = 0
    try:
        exec(compile(code, "<string>", "exec"), main.__dict__)
    except SystemExit as exc:
        status = _exit_status(exc)
    except BaseException as exc:  # noqa: BLE001 - this is the interpreter's own top level
        _print_uncaught(exc)
        status = 1
    try:
        threading = sys.modules.get("threading")
        if threading is not None:
            threading._shutdown()
        atexit._run_exitfuncs()
    except SystemExit as exc:
        status = _exit_status(exc)
    except BaseException:
        pass
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except BaseException:
            pass
    os._exit(status)


def boot_main():
    """Entry point of the exec modes: ``python -I -S -c <this source> JSON`` with the code on stdin."""
    config = json.loads(sys.argv[1])
    chunks = []
    while True:
        chunk = os.read(0, 1 << 16)
        if not chunk:
            break
        chunks.append(chunk)
    code = b"".join(chunks).decode("utf-8")
    null = os.open("/dev/null", os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    sys.path[:] = config["sys_path"]
    set_limits(config["limits"])
    drop_privileges(config["uid"], config["gid"])
    os.chdir(config["cwd"])
    os.environ.clear()
    os.environ.update(ENV)
    os.environ["HOME"] = os.environ["TMPDIR"] = config["cwd"]
    ready = config.get("ready_fd")
    if ready is not None:
        # Tells the worker that the sandbox came up; closed so the untrusted code cannot use it.
        os.write(ready, b"R")
        os.close(ready)
    run_code(code)


if __name__ == "__main__":
    boot_main()
