"""The sandbox service: token handshake, the client's pool-like API, and ``exec-sandbox --serve`` end to end."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest
from sandbox_helpers import open_pool_or_skip

from r1ci_cli.errors import R1ciError
from r1ci_cli.records import ExecRequest
from r1ci_cli.sandbox import open_sandbox, protocol
from r1ci_cli.sandbox.service import SandboxClient, SandboxServer, parse_address, read_token

TOKEN = "s3cret-token-for-tests"


@pytest.fixture(scope="module")
def server():
    pool = open_pool_or_skip("auto", workers=2, preload=())
    srv = SandboxServer(pool, ("127.0.0.1", 0), TOKEN)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.close()
    thread.join(5)
    pool.close()


def _address(srv) -> str:
    return f"{srv.address[0]}:{srv.address[1]}"


def test_client_runs_code_remotely(server):
    with open_sandbox(_address(server), token=TOKEN) as client:
        assert isinstance(client, SandboxClient)
        assert client.isolation == server.pool.isolation
        res = client.run("print(6*7)", request_id="r")
    assert (res.id, res.status, res.stdout) == ("r", "ok", "42\n")


def test_client_map_keeps_order_and_statuses(server):
    requests = [ExecRequest(id=str(i), code=f"import time\ntime.sleep({0.05 * (4 - i)})\nprint({i})")
                for i in range(5)] + [ExecRequest(id="t", code="while True: pass", timeout_s=0.5)]
    with SandboxClient(_address(server), token=TOKEN) as client:
        results = list(client.map(requests))
    assert [r.id for r in results] == ["0", "1", "2", "3", "4", "t"]
    assert [r.status for r in results] == ["ok"] * 5 + ["timeout"]


def test_concurrent_submits_from_threads(server):
    with SandboxClient(_address(server), token=TOKEN) as client:
        futures = []
        lock = threading.Lock()

        def submit(k: int) -> None:
            for j in range(4):
                future = client.submit(f"print({k}*{j})", request_id=f"{k}-{j}")
                with lock:
                    futures.append((k * j, future))

        threads = [threading.Thread(target=submit, args=(k,)) for k in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert all(f.result(timeout=30).stdout == f"{n}\n" for n, f in futures)


def test_wrong_token_is_refused(server):
    with pytest.raises(R1ciError, match="refused"):
        SandboxClient(_address(server), token="wrong")


def test_requests_without_the_token_are_refused(server):
    with socket.create_connection(tuple(server.address), timeout=5) as sock:
        protocol.write_socket(sock, {"seq": 0, "id": "x", "code": "print('ran')", "timeout_s": 5})
        reply = protocol.read_socket(sock)
        assert reply == {"error": "unauthorized"}
        assert protocol.read_socket(sock) is None


def test_lost_connection_becomes_sandbox_error(server):
    pool = open_pool_or_skip("auto", workers=1, preload=())
    srv = SandboxServer(pool, ("127.0.0.1", 0), TOKEN)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    client = SandboxClient(_address(srv), token=TOKEN)
    future = client.submit("import time\ntime.sleep(30)", timeout_s=3.0, request_id="cut")
    time.sleep(0.5)
    srv.close()
    res = future.result(timeout=30)
    assert (res.id, res.status) == ("cut", "sandbox_error")
    assert client.run("print(1)").status == "sandbox_error"
    client.close()
    pool.close()


@pytest.mark.parametrize("text", ["nohost", "host:", ":80", "h:99999", "h:x"])
def test_bad_addresses(text):
    with pytest.raises(R1ciError):
        parse_address(text)


def test_token_file_must_not_be_empty(tmp_path):
    path = tmp_path / "token"
    path.write_text("\n")
    with pytest.raises(R1ciError, match="empty"):
        read_token(str(path))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_exec_sandbox_serve_end_to_end(tmp_path):
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    token_file.chmod(0o600)
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "r1ci_cli", "exec-sandbox", "--workers", "1", "--preload", "",
                             "--serve", f"127.0.0.1:{port}", "--token-file", str(token_file)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ})
    try:
        deadline = time.monotonic() + 60
        client = None
        while client is None:
            try:
                client = SandboxClient(f"127.0.0.1:{port}", token=TOKEN)
            except (R1ciError, OSError):
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        with client:
            assert client.run("print(6*7)").stdout == "42\n"
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _err = proc.communicate(timeout=30)
    assert proc.returncode == 0
    assert out == b""


# --- bounds before authentication -------------------------------------------------------------------------------
def _closed_by_server(sock: socket.socket, within_s: float) -> bool:
    """True when the server ends the connection (EOF, reset or an error frame then EOF) within ``within_s``."""
    sock.settimeout(within_s)
    try:
        while True:
            data = sock.recv(65536)
            if not data:
                return True
    except socket.timeout:
        return False
    except OSError:
        return True


def test_a_huge_hello_is_cut_before_it_is_buffered(server):
    with socket.create_connection(tuple(server.address), timeout=5) as sock:
        sock.sendall((100 << 20).to_bytes(4, "big"))  # announces a 100 MB first frame
        sent = 0
        try:
            while sent < 32 << 20:
                sock.sendall(b"x" * (1 << 20))
                sent += 1 << 20
        except OSError:
            pass
        assert sent < 32 << 20, "the server kept reading an unauthenticated 100 MB frame"
        assert _closed_by_server(sock, 5.0)


def test_a_slow_drip_handshake_is_cut_at_its_deadline(server, monkeypatch):
    from r1ci_cli.sandbox import service

    monkeypatch.setattr(service, "HANDSHAKE_TIMEOUT_S", 1.0)
    pool = server.pool
    srv = SandboxServer(pool, ("127.0.0.1", 0), TOKEN)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        with socket.create_connection(tuple(srv.address), timeout=5) as sock:
            start = time.monotonic()
            frame = protocol.encode({"token": TOKEN})
            closed = False
            for byte in frame[:-1]:  # one byte every 0.25 s: each recv succeeds, the whole never arrives in time
                try:
                    sock.sendall(bytes([byte]))
                except OSError:
                    closed = True
                    break
                time.sleep(0.25)
                if time.monotonic() - start > 4.0:
                    break
            assert closed or _closed_by_server(sock, 0.5)
            assert time.monotonic() - start < 4.0
    finally:
        srv.close()


def test_connections_are_bounded(server, monkeypatch):
    from r1ci_cli.sandbox import service

    monkeypatch.setattr(service, "MAX_CONNECTIONS", 2, raising=False)
    srv = SandboxServer(server.pool, ("127.0.0.1", 0), TOKEN)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    address = f"{srv.address[0]}:{srv.address[1]}"
    try:
        idle = socket.create_connection(tuple(srv.address), timeout=5)  # unauthenticated connections count too
        with SandboxClient(address, token=TOKEN) as first:
            with socket.create_connection(tuple(srv.address), timeout=5) as extra:
                assert protocol.read_socket(extra) == {"error": "too many connections"}
            assert first.run("print(1)").stdout == "1\n"
            idle.close()
            deadline = time.monotonic() + 5
            while True:  # the slot frees as soon as the server sees the close
                try:
                    with SandboxClient(address, token=TOKEN) as second:
                        assert second.run("print(2)").stdout == "2\n"
                    break
                except R1ciError:
                    assert time.monotonic() < deadline
                    time.sleep(0.1)
    finally:
        srv.close()


@pytest.mark.parametrize("message", [
    {"seq": 1, "id": "x", "code": 3, "timeout_s": 5},
    {"seq": 1, "id": "x", "code": "print(1)", "timeout_s": "5"},
    {"seq": 1, "id": "x", "code": "print(1)", "timeout_s": 1e308},
    {"seq": 1, "id": "x"},
    {"seq": 1, "id": ["x"], "code": "print(1)"},
])
def test_a_bad_request_frame_is_one_typed_error(server, message):
    with socket.create_connection(tuple(server.address), timeout=30) as sock:
        protocol.write_socket(sock, {"token": TOKEN})
        assert protocol.read_socket(sock)["ok"]
        protocol.write_socket(sock, message)
        reply = protocol.read_socket(sock)
        assert reply["seq"] == 1 and reply["result"]["status"] == "sandbox_error", reply
        protocol.write_socket(sock, {"seq": 2, "id": "y", "code": "print(2)", "timeout_s": 10})
        reply = protocol.read_socket(sock)
        assert (reply["seq"], reply["result"]["status"], reply["result"]["stdout"]) == (2, "ok", "2\n")


def test_a_token_file_others_can_read_is_refused(tmp_path):
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    token_file.chmod(0o644)
    proc = subprocess.run([sys.executable, "-m", "r1ci_cli", "exec-sandbox", "--workers", "1", "--preload", "",
                           "--serve", f"127.0.0.1:{_free_port()}", "--token-file", str(token_file)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    assert proc.stdout == ""
    lines = [line for line in proc.stderr.splitlines() if "token" in line]
    assert len(lines) == 1 and "600" in lines[0], proc.stderr
