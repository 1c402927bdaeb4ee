"""The sandbox as a TCP service (``exec-sandbox --serve``) and its client, for sandboxes on separate CPU nodes.

Meant for a trusted cluster network: the shared token keeps out other users' stray clients, but the traffic is
neither encrypted nor integrity-protected, so do not expose the port beyond the cluster. A connection's first
frame must be ``{"token": …}`` (compared in constant time), at most ``MAX_HELLO_BYTES`` long and complete within
``HANDSHAKE_TIMEOUT_S``; anything else is answered with an error frame and closed, and at most
``MAX_CONNECTIONS`` connections (authenticated or not) are open at once. After that, each
``{"seq", "id", "code", "timeout_s"}`` frame gets one ``{"seq", "result"}`` frame (results can arrive out of
order; the client puts them back in order); a frame with a bad field gets a ``sandbox_error`` result of its
own. A client whose connection breaks resolves its pending requests as ``sandbox_error`` and reconnects on the
next submit. The token file must be readable by its owner only.
"""

from __future__ import annotations

import hmac
import itertools
import logging
import os
import signal
import socket
import threading
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import Future
from typing import Any

from r1ci_cli.errors import R1ciError
from r1ci_cli.records import ExecRequest, ExecResult
from r1ci_cli.sandbox import protocol
from r1ci_cli.sandbox.options import SandboxOptions
from r1ci_cli.sandbox.pool import map_requests, sandbox_error

log = logging.getLogger("r1ci.sandbox")
HANDSHAKE_TIMEOUT_S = 10.0
MAX_HELLO_BYTES = 4096
MAX_CONNECTIONS = 64


def parse_address(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) < 65536:
        raise R1ciError(f"bad sandbox address {text!r}: expected HOST:PORT, e.g. 127.0.0.1:7070")
    return host.strip("[]"), int(port)


def read_token(path: str, private: bool = False) -> str:
    """The token in ``path``; with ``private`` (the server's file) it must be readable by its owner only."""
    try:
        with open(path, encoding="utf-8") as handle:
            mode = os.fstat(handle.fileno()).st_mode & 0o777
            token = handle.read().strip()
    except OSError as err:
        raise R1ciError(f"cannot read the token file: {err}") from None
    if private and mode & 0o077:
        raise R1ciError(f"the token file {path} can be read by others (mode {mode:03o}): chmod 600 {path}")
    if not token:
        raise R1ciError(f"the token file {path} is empty: put a long random secret in it")
    return token


class SandboxServer:
    """Accepts authenticated connections and runs their requests on ``pool``."""

    def __init__(self, pool: Any, address: tuple[str, int], token: str):
        if not token:
            raise R1ciError("the sandbox service needs a non-empty token")
        self.pool, self._token = pool, token.encode()
        family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self._sock = socket.socket(family, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self._sock.bind(address)
        except OSError as err:
            self._sock.close()
            raise R1ciError(f"cannot listen on {address[0]}:{address[1]}: {err}") from None
        self._sock.listen(64)
        self.address = self._sock.getsockname()[:2]
        self._stopped = threading.Event()
        self._conns: set[socket.socket] = set()
        self._conns_lock = threading.Lock()
        self.max_connections, self.max_hello_bytes = MAX_CONNECTIONS, MAX_HELLO_BYTES
        self.handshake_timeout_s = HANDSHAKE_TIMEOUT_S

    def serve_forever(self) -> None:
        log.info("sandbox service on %s:%d (isolation %s)", self.address[0], self.address[1], self.pool.isolation)
        while not self._stopped.is_set():
            try:
                conn, peer = self._sock.accept()
            except OSError:
                break
            with self._conns_lock:
                full = len(self._conns) >= self.max_connections
                if not full:
                    self._conns.add(conn)
            if full:
                log.warning("sandbox service: refused a connection from %s (%d open)", peer, self.max_connections)
                self._refuse(conn, "too many connections")
                continue
            threading.Thread(target=self._handle, args=(conn, peer), daemon=True).start()

    @staticmethod
    def _refuse(conn: socket.socket, why: str) -> None:
        try:
            conn.settimeout(1.0)
            protocol.write_socket(conn, {"error": why})
        except OSError:
            pass
        conn.close()

    def close(self) -> None:
        """Stop accepting and cut every open connection (their clients see ``sandbox_error``)."""
        self._stopped.set()
        with self._conns_lock:
            conns = list(self._conns)
        for sock in [self._sock, *conns]:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._sock.close()

    def _handle(self, conn: socket.socket, peer: Any) -> None:
        try:
            self._converse(conn, peer)
        finally:
            with self._conns_lock:
                self._conns.discard(conn)

    def _converse(self, conn: socket.socket, peer: Any) -> None:
        send_lock = threading.Lock()
        with conn:
            try:
                hello = protocol.read_socket(conn, self.max_hello_bytes, time.monotonic() + self.handshake_timeout_s)
            except (OSError, protocol.ProtocolError) as err:
                log.warning("sandbox service: refused a connection from %s (%s)", peer, err)
                if isinstance(err, protocol.ProtocolError):
                    self._refuse(conn, "bad handshake")
                return
            given = hello.get("token") if hello else None
            if not isinstance(given, str) or not hmac.compare_digest(given.encode(), self._token):
                log.warning("sandbox service: refused a connection from %s (bad or missing token)", peer)
                try:
                    protocol.write_socket(conn, {"error": "unauthorized"})
                except OSError:
                    pass
                return
            conn.settimeout(None)
            protocol.write_socket(conn, {"ok": True, "isolation": self.pool.isolation})
            while True:
                try:
                    message = protocol.read_socket(conn)
                except (OSError, protocol.ProtocolError):
                    return
                if message is None:
                    return
                self._submit(conn, send_lock, message)

    def _submit(self, conn: socket.socket, send_lock: threading.Lock, message: dict[str, Any]) -> None:
        seq = message.get("seq")
        request_id = message.get("id", "")
        problem = protocol.request_problem(message.get("code"), message.get("timeout_s", self.pool.opts.timeout_s))
        if not isinstance(request_id, str):
            problem = problem or "the request id must be a string"
        future: Future[ExecResult]
        try:
            if problem:
                raise ValueError(f"bad request: {problem}")
            future = self.pool.submit(message["code"], message.get("timeout_s"), request_id)
        except (RuntimeError, ValueError) as err:
            future = Future()
            future.set_result(sandbox_error(str(request_id), f"r1ci sandbox service: {err}"))

        def reply(done: Future[ExecResult]) -> None:
            with send_lock:
                try:
                    protocol.write_socket(conn, {"seq": seq, "result": done.result().to_dict()})
                except OSError:
                    pass

        future.add_done_callback(reply)


def serve(pool: Any, address: tuple[str, int], token: str) -> None:
    """Run the service until SIGINT/SIGTERM."""
    server = SandboxServer(pool, address, token)
    previous = signal.signal(signal.SIGTERM, lambda *_: server.close())
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        server.close()


class SandboxClient:
    """The same ``submit``/``run``/``map``/``close`` as ``SandboxPool``, served by a remote ``--serve``."""

    def __init__(self, address: str, token: str | None, opts: SandboxOptions | None = None):
        if not token:
            raise R1ciError("a sandbox service client needs the shared token")
        self.address = parse_address(address)
        self.opts = opts or SandboxOptions()
        self._token = token
        self._lock = threading.Lock()
        self._seq = itertools.count()
        self._pending: dict[int, Future[ExecResult]] = {}
        self._ids: dict[int, str] = {}
        self._sock: socket.socket | None = None
        self._closed = False
        self.isolation = ""
        self._connect()

    def _connect(self) -> None:
        sock = socket.create_connection(self.address, timeout=HANDSHAKE_TIMEOUT_S)
        try:
            protocol.write_socket(sock, {"token": self._token})
            reply = protocol.read_socket(sock)
        except (OSError, protocol.ProtocolError) as err:
            sock.close()
            raise R1ciError(f"sandbox service at {self.address[0]}:{self.address[1]}: {err}") from None
        if not reply or not reply.get("ok"):
            sock.close()
            raise R1ciError(f"sandbox service at {self.address[0]}:{self.address[1]} refused the connection: "
                            f"{(reply or {}).get('error', 'closed')}")
        sock.settimeout(None)
        self.isolation = reply.get("isolation", "")
        self._sock = sock
        threading.Thread(target=self._read_loop, args=(sock,), daemon=True, name="r1ci-sandbox-client").start()

    def _read_loop(self, sock: socket.socket) -> None:
        try:
            while True:
                message = protocol.read_socket(sock)
                if message is None:
                    break
                with self._lock:
                    future = self._pending.pop(message.get("seq"), None)
                    self._ids.pop(message.get("seq"), None)
                if future is not None:
                    future.set_result(ExecResult.from_dict(message["result"], "<sandbox service>"))
        except (OSError, protocol.ProtocolError, R1ciError) as err:
            log.warning("sandbox service connection lost: %s", err)
        self._fail_pending(sock, "the connection to the sandbox service was lost")

    def _fail_pending(self, sock: socket.socket, why: str) -> None:
        with self._lock:
            if self._sock is sock:
                self._sock = None
            pending, ids = self._pending, self._ids
            self._pending, self._ids = {}, {}
        sock.close()
        for seq, future in pending.items():
            future.set_result(sandbox_error(ids.get(seq, ""), f"r1ci sandbox: {why}"))

    def submit(self, code: str, timeout_s: float | None = None, request_id: str = "") -> Future[ExecResult]:
        future: Future[ExecResult] = Future()
        with self._lock:
            if self._closed:
                raise RuntimeError("the sandbox client is closed")
            if self._sock is None:
                try:
                    self._connect()
                except (OSError, R1ciError) as err:
                    future.set_result(sandbox_error(request_id, f"r1ci sandbox: {err}"))
                    return future
            timeout = self.opts.timeout_s if timeout_s is None else timeout_s
            problem = protocol.request_problem(code, timeout)
            if problem or not isinstance(request_id, str):
                future.set_result(sandbox_error(str(request_id), "r1ci sandbox: bad request: "
                                                + (problem or "the request id must be a string")))
                return future
            seq = next(self._seq)
            self._pending[seq] = future
            self._ids[seq] = request_id
            sock = self._sock
            try:
                protocol.write_socket(sock, {"seq": seq, "id": request_id, "code": code, "timeout_s": timeout})
            except OSError:
                pass  # the reader thread sees the broken connection and fails what is pending
        return future

    def run(self, code: str, timeout_s: float | None = None, request_id: str = "") -> ExecResult:
        return self.submit(code, timeout_s, request_id).result()

    def map(self, requests: Iterable[ExecRequest]) -> Iterator[ExecResult]:
        return map_requests(self.submit, requests, self.opts.in_flight)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            sock, self._sock = self._sock, None
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def __enter__(self) -> "SandboxClient":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
