"""Length-prefixed JSON frames: the pool talks to its workers with them, and clients to the service.

A frame is a 4-byte big-endian length and that many bytes of UTF-8 JSON. ``MAX_FRAME`` bounds what a reader
accepts, so a broken or hostile peer cannot make it allocate without limit.
"""

from __future__ import annotations

import json
import math
import os
import socket
import struct
import time
from typing import Any

MAX_FRAME = 256 * 1024 * 1024
_HEADER = struct.Struct(">I")


class ProtocolError(Exception):
    """The peer sent something that is not a frame, or went away in the middle of one."""


def encode(message: dict[str, Any]) -> bytes:
    body = json.dumps(message, ensure_ascii=False, separators=(",", ":")).encode("utf-8", "surrogatepass")
    if len(body) > MAX_FRAME:
        raise ProtocolError(f"frame of {len(body)} bytes is over the limit")
    return _HEADER.pack(len(body)) + body


def decode(body: bytes) -> dict[str, Any]:
    try:
        message = json.loads(body.decode("utf-8", "surrogatepass"))
    except ValueError as err:
        raise ProtocolError(f"bad frame: {err}") from None
    if not isinstance(message, dict):
        raise ProtocolError("frame is not a JSON object")
    return message


def _read_exact_fd(fd: int, size: int) -> bytes | None:
    chunks = []
    remaining = size
    while remaining:
        chunk = os.read(fd, min(remaining, 1 << 20))
        if not chunk:
            if remaining == size:
                return None
            raise ProtocolError("peer closed the stream inside a frame")
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def read_fd(fd: int) -> dict[str, Any] | None:
    """The next frame from a pipe, or ``None`` at a clean end of stream."""
    header = _read_exact_fd(fd, _HEADER.size)
    if header is None:
        return None
    (size,) = _HEADER.unpack(header)
    if size > MAX_FRAME:
        raise ProtocolError(f"frame of {size} bytes is over the limit")
    body = _read_exact_fd(fd, size) if size else b""
    if body is None:
        raise ProtocolError("peer closed the stream inside a frame")
    return decode(body)


def write_fd(fd: int, message: dict[str, Any]) -> None:
    data = memoryview(encode(message))
    while data:
        written = os.write(fd, data)
        data = data[written:]


def read_socket(sock: socket.socket, max_size: int = MAX_FRAME, deadline: float | None = None) -> dict[str, Any] | None:
    """The next frame from a socket, or ``None`` when the peer closed it between frames.

    ``max_size`` is checked against the frame's header before its body is read; past ``deadline`` (a
    ``time.monotonic()`` value) the read fails with ``TimeoutError`` however the bytes trickle in.
    """
    header = _recv_exact(sock, _HEADER.size, deadline)
    if header is None:
        return None
    (size,) = _HEADER.unpack(header)
    if size > max_size:
        raise ProtocolError(f"frame of {size} bytes is over the limit of {max_size}")
    body = _recv_exact(sock, size, deadline) if size else b""
    if body is None:
        raise ProtocolError("peer closed the connection inside a frame")
    return decode(body)


def _recv_exact(sock: socket.socket, size: int, deadline: float | None = None) -> bytes | None:
    buf = bytearray()
    while len(buf) < size:
        if deadline is not None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("the peer took too long to send a frame")
            sock.settimeout(remaining)
        chunk = sock.recv(min(size - len(buf), 1 << 20))
        if not chunk:
            if not buf:
                return None
            raise ProtocolError("peer closed the connection inside a frame")
        buf += chunk
    return bytes(buf)


def write_socket(sock: socket.socket, message: dict[str, Any]) -> None:
    sock.sendall(encode(message))


def request_problem(code: Any, timeout_s: Any) -> str:
    """What is wrong with a request's fields ("" if nothing): checked wherever a request enters (pool, service,
    worker), so a bad one becomes one typed error instead of a crash."""
    from r1ci_cli.records import MAX_TIMEOUT_S

    if not isinstance(code, str):
        return f"code must be a string, got {type(code).__name__}"
    if isinstance(timeout_s, bool) or not isinstance(timeout_s, (int, float)):
        return f"timeout_s must be a number of seconds, got {type(timeout_s).__name__}"
    if not (math.isfinite(timeout_s) and 0 < timeout_s <= MAX_TIMEOUT_S):
        return f"timeout_s must be more than 0 and at most {MAX_TIMEOUT_S:g} seconds, got {timeout_s!r}"
    return ""
