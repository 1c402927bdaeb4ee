"""The last step inside the sandbox: limits, keyring, privilege drop, syscall filter, then the code, like ``python -c``.

This module imports only the standard library and must stay self-contained: the ``bwrap`` and ``firejail``
modes pass its source to ``python -I -S -c`` inside a sandbox where the r1ci package is not visible, and
the zygote mode calls these functions in the forked child. Untrusted code runs as ``__main__`` in a fresh module
with ``sys.argv == ['-c']``; an uncaught exception goes to ``sys.excepthook`` (the interpreter's own printing,
without this runner's frame) and exits 1, ``SystemExit`` exits with its code, exactly as ``python -c`` would.

The syscall filter (``install_seccomp``) answers ``EPERM`` to the kernel keyring (``add_key``, ``keyctl``,
``request_key``: the keyrings of a uid are shared by all its processes and outlive them), to namespaces and
mounts (``unshare``, ``setns``, ``clone`` with a namespace flag, the mount family; ``clone3`` gets ``ENOSYS`` so
that the C library falls back to ``clone``), to ``ptrace`` and cross-process memory access, to ``bpf``,
``perf_event_open``, ``userfaultfd``, ``io_uring`` and module/kexec loading, and to every call of a foreign
ABI (32-bit and x32 on x86_64). Everything else is allowed.
"""

import json
import os
import resource
import struct
import sys

ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": "/tmp", "TMPDIR": "/tmp", "LANG": "C.UTF-8",
       "LC_ALL": "C.UTF-8", "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
       "PYTHONDONTWRITEBYTECODE": "1", "MPLBACKEND": "Agg"}
# What a request's pipe carries: the timeout as a big-endian double, then the code in UTF-8.
REQUEST_HEADER = struct.Struct(">d")
# What the child writes on its status pipe: READY once set up, then EXITED and its exit status as it leaves.
READY, EXITED = b"R", b"X"
EXIT_STATUS = struct.Struct(">i")

# Syscall numbers per machine (x86_64: asm/unistd_64.h; aarch64: asm-generic/unistd.h); the first group is
# refused, clone is checked for namespace flags, clone3 gets ENOSYS.
_MACHINES = ("x86_64", "aarch64")
_AUDIT_ARCH = {"x86_64": 0xC000003E, "aarch64": 0xC00000B7}
_NUMBERS = {
    "add_key": (248, 217), "request_key": (249, 218), "keyctl": (250, 219), "unshare": (272, 97),
    "setns": (308, 268), "mount": (165, 40), "umount2": (166, 39), "pivot_root": (155, 41), "chroot": (161, 51),
    "open_tree": (428, 428), "move_mount": (429, 429), "fsopen": (430, 430), "fsconfig": (431, 431),
    "fsmount": (432, 432), "fspick": (433, 433), "mount_setattr": (442, 442), "ptrace": (101, 117),
    "process_vm_readv": (310, 270), "process_vm_writev": (311, 271), "bpf": (321, 280),
    "perf_event_open": (298, 241), "userfaultfd": (323, 282), "io_uring_setup": (425, 425),
    "io_uring_enter": (426, 426), "io_uring_register": (427, 427), "kexec_load": (246, 104),
    "kexec_file_load": (320, 294), "init_module": (175, 105), "finit_module": (313, 273),
    "delete_module": (176, 106), "open_by_handle_at": (304, 265), "name_to_handle_at": (303, 264),
}
_CLONE = {"clone": (56, 220), "clone3": (435, 435)}
_SYSCALLS = {machine: (_AUDIT_ARCH[machine], {name: numbers[i] for name, numbers in {**_NUMBERS, **_CLONE}.items()})
             for i, machine in enumerate(_MACHINES)}
_BLOCKED = tuple(_NUMBERS)
_CLONE_NEW_ANY = 0x7E020080  # CLONE_NEWNS|NEWCGROUP|NEWUTS|NEWIPC|NEWUSER|NEWPID|NEWNET and CLONE_NEWTIME's bit


_CACHE = {}


def _libc():
    """``(ctypes, libc)``; the C library through the process's own symbols (``find_library`` would run
    ``ldconfig``, tens of milliseconds)."""
    if "libc" not in _CACHE:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.syscall.restype = ctypes.c_long
        _CACHE["libc"] = (ctypes, libc)
    return _CACHE["libc"]


def set_limits(limits):
    """``limits`` maps ``RLIMIT_*`` names to a soft=hard value; each only ever lowers the current limit."""
    for name, value in limits.items():
        number = getattr(resource, name)
        _soft, hard = resource.getrlimit(number)
        if hard != resource.RLIM_INFINITY:
            value = min(value, hard)
        resource.setrlimit(number, (value, value))


def cpu_limit(timeout_s):
    """The CPU-time rlimit of a request: one second past its wall-clock timeout, as a backstop."""
    return {"RLIMIT_CPU": int(-(-timeout_s // 1)) + 1}


def drop_privileges(uid, gid):
    """Become ``uid``/``gid`` with no supplementary groups; a root-to-non-root change clears all capabilities."""
    if os.getuid() != 0:
        return
    os.setgroups([])
    os.setresgid(gid, gid, gid)
    os.setresuid(uid, uid, uid)
    if os.getuid() == 0 or os.geteuid() == 0:
        raise OSError("privilege drop failed")


def no_new_privileges():
    ctypes, libc = _libc()
    if libc.prctl(38, 1, 0, 0, 0) != 0:  # PR_SET_NO_NEW_PRIVS
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS)")


def fresh_session_keyring():
    """Join a new, empty session keyring (KEYCTL_JOIN_SESSION_KEYRING with no name).

    ``EPERM`` means a syscall filter already forbids the keyring (firejail's), which is as good.
    """
    arch = _SYSCALLS.get(os.uname().machine)
    if arch is None:
        raise OSError(f"no keyring call number known for {os.uname().machine}")
    ctypes, libc = _libc()
    if libc.syscall(ctypes.c_long(arch[1]["keyctl"]), ctypes.c_long(1), None) < 0 and ctypes.get_errno() != 1:
        raise OSError(ctypes.get_errno(), "keyctl(KEYCTL_JOIN_SESSION_KEYRING)")


def seccomp_program(machine):
    """The classic-BPF filter as ``(code, jt, jf, k)`` tuples, or ``None`` for a machine without a table."""
    if machine not in _SYSCALLS:
        return None
    arch, numbers = _SYSCALLS[machine]
    allow, eperm, enosys = 0x7FFF0000, 0x00050000 | 1, 0x00050000 | 38
    ld, jeq, jge, jset, ret = 0x20, 0x15, 0x35, 0x45, 0x06
    prog = [(ld, 0, 0, 4), (jeq, 1, 0, arch), (ret, 0, 0, eperm), (ld, 0, 0, 0)]
    if machine == "x86_64":
        prog += [(jge, 0, 1, 0x40000000), (ret, 0, 0, eperm)]  # the x32 ABI
    for name in _BLOCKED:
        prog += [(jeq, 0, 1, numbers[name]), (ret, 0, 0, eperm)]
    prog += [(jeq, 0, 1, numbers["clone3"]), (ret, 0, 0, enosys)]
    prog += [(jeq, 0, 3, numbers["clone"]), (ld, 0, 0, 16), (jset, 0, 1, _CLONE_NEW_ANY), (ret, 0, 0, eperm)]
    return prog + [(ret, 0, 0, allow)]


def _seccomp_fprog():
    """The filter as a ``struct sock_fprog`` (built once; a zygote builds it before it forks its children)."""
    if "fprog" not in _CACHE:
        program = seccomp_program(os.uname().machine)
        if program is None:
            raise OSError(f"no syscall filter for {os.uname().machine}")
        ctypes, _libc_ = _libc()
        filters = ctypes.create_string_buffer(b"".join(struct.pack("=HBBI", *insn) for insn in program))
        fprog = ctypes.create_string_buffer(struct.pack("@HP", len(program), ctypes.addressof(filters)))
        _CACHE["fprog"] = (fprog, filters)
    return _CACHE["fprog"][0]


def prepare():
    """Do once what every child would do the same way (a zygote calls it before it forks them)."""
    _libc()
    _seccomp_fprog()


def install_seccomp():
    """Install ``seccomp_program`` for this process and all it starts (needs no-new-privs or CAP_SYS_ADMIN)."""
    ctypes, libc = _libc()
    fprog = _seccomp_fprog()
    if libc.prctl(22, 2, ctypes.c_void_p(ctypes.addressof(fprog)), 0, 0) != 0:  # PR_SET_SECCOMP, FILTER
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_SECCOMP)")


def read_request(fd):
    """Read ``(timeout_s, code)`` from ``fd`` until end of file; ``None`` if it ended without a request."""
    chunks = []
    while True:
        chunk = os.read(fd, 1 << 16)
        if not chunk:
            break
        chunks.append(chunk)
    data = b"".join(chunks)
    if len(data) < REQUEST_HEADER.size:
        return None
    (timeout_s,) = REQUEST_HEADER.unpack_from(data)
    return timeout_s, data[REQUEST_HEADER.size:].decode("utf-8", "surrogatepass")


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


def run_code(code, status_fd=None):
    """Run ``code`` as ``__main__``, flush, and leave with ``os._exit`` (never returns).

    With ``status_fd``, stdout and stderr are closed and the exit status is written there first, so the worker
    has the result without waiting for the kernel to tear this process down.
    """
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
    if status_fd is not None:
        try:
            os.close(1)
            os.close(2)
            os.write(status_fd, EXITED + EXIT_STATUS.pack(status))
        except OSError:
            pass
    os._exit(status)


def _check_isolated(outside):
    """Refuse to run in the worker's own PID or network namespace: the wrapper did not isolate this process."""
    for kind, seen in outside.items():
        if os.readlink(f"/proc/self/ns/{kind}") == seen:
            raise OSError(f"the code would run in the host's {kind} namespace: the sandbox wrapper did not isolate "
                          "it (firejail runs programs without a sandbox inside a PID namespace)")


def boot_main():
    """Entry point of the exec modes: ``python -I -S -c <this source> JSON`` with the code on stdin."""
    config = json.loads(sys.argv[1])
    ready = config.get("ready_fd")
    try:
        _check_isolated(config.get("outside_ns", {}))
        chunks = []
        while True:
            chunk = os.read(0, 1 << 16)
            if not chunk:
                break
            chunks.append(chunk)
        code = b"".join(chunks).decode("utf-8", "surrogatepass")
        null = os.open("/dev/null", os.O_RDONLY)
        os.dup2(null, 0)
        os.close(null)
        sys.path[:] = config["sys_path"]
        set_limits(config["limits"])
        fresh_session_keyring()
        no_new_privileges()
        drop_privileges(config["uid"], config["gid"])
        install_seccomp()
        os.chdir(config["cwd"])
        os.environ.clear()
        os.environ.update(ENV)
        os.environ["HOME"] = os.environ["TMPDIR"] = config["cwd"]
    except Exception as err:
        sys.stderr.write(f"r1ci sandbox setup failed: {err}\n")
        sys.stderr.flush()
        os._exit(121)
    if ready is not None:
        # Tells the worker that the sandbox came up; closed so the untrusted code cannot use it.
        os.write(ready, READY)
        os.close(ready)
    _site_builtins()
    run_code(code)


def _site_builtins() -> None:
    """``exit()`` and ``quit()`` as ``python -c`` has them (``site`` adds them; ``-S`` leaves site out, and the
    zygote mode's children inherit them from the worker, so code behaves the same in every mode)."""
    import builtins
    import _sitebuiltins

    builtins.exit = _sitebuiltins.Quitter("exit", "Ctrl-D (i.e. EOF)")
    builtins.quit = _sitebuiltins.Quitter("quit", "Ctrl-D (i.e. EOF)")


if __name__ == "__main__":
    boot_main()
