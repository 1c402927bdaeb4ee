"""Which host paths a sandboxed interpreter may see, computed from the running interpreter.

The sandbox is an allowlist: system directories (``/usr``, ``/etc`` and the ``/bin``-style links of a
merged-/usr system), the base interpreter (``sys.base_prefix``), the site-packages directories and the roots
of the preloaded modules — each read-only. Everything else (``/root``, ``/home``, ``/tmp``, the project
checkout, other mounts) is absent. The paths are derived from ``sys`` and module ``__file__`` values, so the
same code works for a pyenv interpreter under ``/root`` (mode 700), a venv inside a checkout, or a system
Python; directories on the way to a bound path are recreated with mode 0755 so an unprivileged uid can reach them.
"""

from __future__ import annotations

import os
import site
import sys
from dataclasses import dataclass

SYSTEM_DIRS = ("/usr", "/etc")
# On merged-/usr systems these are symlinks into /usr and are recreated as symlinks; otherwise bound.
SYSTEM_LINKS = ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
DEVICES = ("/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom")


@dataclass(frozen=True)
class Layout:
    """Read-only binds (outermost first), symlinks to recreate, and the ``sys.path`` the sandbox should use."""

    ro_dirs: tuple[str, ...]
    symlinks: tuple[tuple[str, str], ...]
    python_dirs: tuple[str, ...]
    sys_path: tuple[str, ...]
    executable: str


def _module_root(name: str) -> str | None:
    module = sys.modules.get(name.split(".")[0])
    path = getattr(module, "__file__", None)
    if not path:
        return None
    path = os.path.realpath(path)
    # A package's __init__ lives one level below the directory that must be on sys.path.
    depth = 2 if os.path.basename(path).startswith("__init__.") else 1
    for _ in range(depth):
        path = os.path.dirname(path)
    return path


def _outermost(paths: list[str]) -> list[str]:
    """Drop paths contained in another path of the list; keep the order stable and parents first."""
    real = sorted({os.path.realpath(p) for p in paths if p and os.path.isdir(p)}, key=lambda p: (p.count("/"), p))
    kept: list[str] = []
    for path in real:
        if not any(path == k or path.startswith(k.rstrip("/") + "/") for k in kept):
            kept.append(path)
    return kept


def compute_layout(preload: tuple[str, ...], extra_ro_paths: tuple[str, ...] = ()) -> Layout:
    """The layout for the current interpreter; call it after the preload modules are imported."""
    site_dirs = [d for d in site.getsitepackages() if os.path.isdir(d)]
    roots = [r for r in (_module_root(name) for name in preload) if r]
    python_dirs = _outermost([sys.base_prefix, *site_dirs, *roots, *extra_ro_paths])
    system = [d for d in SYSTEM_DIRS if os.path.isdir(d) and not os.path.islink(d)]
    symlinks: list[tuple[str, str]] = []
    for link in SYSTEM_LINKS:
        if os.path.islink(link):
            symlinks.append((link, os.readlink(link)))
        elif os.path.isdir(link):
            system.append(link)
    visible = python_dirs + system
    sys_path = tuple(p for p in (os.path.realpath(e) for e in sys.path if e)
                     if any(p == v or p.startswith(v.rstrip("/") + "/") for v in visible))
    for root in [*site_dirs, *roots]:
        real = os.path.realpath(root)
        if real not in sys_path:
            sys_path += (real,)
    executable = os.path.realpath(os.path.join(sys.base_prefix, "bin", os.path.basename(sys.executable)))
    if not os.path.exists(executable):
        executable = os.path.realpath(sys.executable)
    return Layout(tuple(_outermost(system + python_dirs)), tuple(symlinks), tuple(python_dirs), sys_path,
                  executable)
