"""A sandbox pool over a long RL run: nothing leaks per request, broken workers are replaced, bad requests stay
one request's problem. The ``slow`` tests are the 10,000-call and mixed runs of the issue's done criterion."""

from __future__ import annotations

import math

import pytest
from sandbox_helpers import open_pool_or_skip


# --- bad request fields -----------------------------------------------------------------------------------------
BAD_TIMEOUTS = [math.nan, math.inf, -math.inf, 1e308, -1.0, 0.0, "10", True]


@pytest.fixture(scope="module")
def one_worker():
    with open_pool_or_skip("auto", workers=1, preload=()) as pool:
        yield pool


@pytest.mark.parametrize("bad", BAD_TIMEOUTS, ids=repr)
def test_a_bad_timeout_is_one_typed_error(one_worker, bad):
    before = list(one_worker.worker_pids)
    res = one_worker.submit("print(1)", timeout_s=bad, request_id="bad").result(timeout=60)
    assert (res.id, res.status) == ("bad", "sandbox_error"), res
    assert "timeout_s" in res.stderr, res
    nxt = one_worker.run("print(2)")
    assert (nxt.status, nxt.stdout) == ("ok", "2\n"), nxt
    assert one_worker.worker_pids == before, "the worker crashed"


@pytest.mark.parametrize("code", [None, b"print(1)", 3])
def test_bad_code_is_one_typed_error(one_worker, code):
    res = one_worker.submit(code, request_id="bad").result(timeout=60)
    assert (res.id, res.status) == ("bad", "sandbox_error") and "code" in res.stderr, res
    assert one_worker.run("print(2)").status == "ok"
