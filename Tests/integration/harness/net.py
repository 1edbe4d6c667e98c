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
