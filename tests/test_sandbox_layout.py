"""Where the zygote builds its new root: never over a directory that holds a path it must bind."""

from __future__ import annotations

from r1ci_cli.sandbox.zygote import pick_new_root


def test_new_root_avoids_bound_paths():
    binds = ("/usr", "/etc", "/root/.pyenv/versions/3.11.7", "/tmp/ci/.venv/lib/python3.11/site-packages")
    root = pick_new_root(binds)
    assert not any(b == root or b.startswith(root + "/") for b in binds)
    assert pick_new_root(binds + (root + "/x",)) != root
