"""Small socket helpers: free loopback ports, waiting for a listener."""
from __future__ import annotations

import socket
import time

LOOPBACK = "127.0.0.1"


def free_ports(n: int) -> list[int]:
    """n distinct free TCP ports on 127.0.0.1 (held open together so they differ)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind((LOOPBACK, 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def port_accepts(port: int, host: str = LOOPBACK, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def wait_for_ports(ports, timeout: float = 20.0, alive=lambda: True, host: str = LOOPBACK) -> None:
    """Waits until every port accepts a TCP connection; raises TimeoutError otherwise.
    `alive()` returning False (the process died) aborts early with RuntimeError."""
    deadline = time.monotonic() + timeout
    pending = list(ports)
    while pending:
        if not alive():
            raise RuntimeError("process exited before its ports accepted connections")
        pending = [p for p in pending if not port_accepts(p, host)]
        if not pending:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"ports {pending} did not accept within {timeout}s")
        time.sleep(0.05)


def connect_from(source: str, port: int, host: str = LOOPBACK, timeout: float = 10.0,
                 rcvbuf: int | None = None) -> socket.socket:
    """A TCP connection to host:port from the loopback address `source` (e.g. 127.0.0.2:
    Linux routes all of 127/8 to lo, so each address is a distinct client IP)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        if rcvbuf is not None:   # before connect, so the advertised window stays small
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        s.bind((source, 0))
        s.settimeout(timeout)
        s.connect((host, port))
    except BaseException:
        s.close()
        raise
    return s


def read_until_eof(sock: socket.socket, timeout: float) -> tuple[bytes, bool]:
    """Everything the peer sends until it closes: (bytes, closed). `closed` is False when the
    connection is still open after `timeout` seconds; a reset counts as closed."""
    data = b""
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return data, False
        sock.settimeout(left)
        try:
            chunk = sock.recv(65536)
        except (socket.timeout, TimeoutError):
            return data, False
        except (ConnectionResetError, BrokenPipeError):
            return data, True
        if not chunk:
            return data, True
        data += chunk


def abort(sock: socket.socket) -> None:
    """Closes with a TCP RST (SO_LINGER 0)."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    except OSError:
        pass
    sock.close()
