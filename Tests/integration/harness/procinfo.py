"""Resource readings of a process from /proc: fds, memory high-water mark, TCP peers."""
from __future__ import annotations

import os
import time


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process so far (/proc/PID/stat fields 14 and 15)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def fd_count(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def status_kb(pid: int, field: str) -> int:
    """A `VmXXX:` value of /proc/PID/status in kB (e.g. VmHWM, VmRSS)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise KeyError(field)


def _socket_inodes(pid: int) -> set[int]:
    out = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            out.add(int(target[8:-1]))
    return out


def _own_tcp_rows(pid: int):
    """The rows of /proc/PID/net/tcp{,6} that are sockets of `pid`, split into fields."""
    inodes = _socket_inodes(pid)
    for table in (f"/proc/{pid}/net/tcp", f"/proc/{pid}/net/tcp6"):
        try:
            with open(table) as f:
                next(f)
                rows = [line.split() for line in f]
        except FileNotFoundError:
            continue
        for parts in rows:
            if int(parts[9]) in inodes:
                yield parts


def established_to(pid: int, remote_port: int) -> int:
    """Number of ESTABLISHED TCP connections of `pid` whose remote port is `remote_port`."""
    return sum(1 for parts in _own_tcp_rows(pid)
               if parts[3] == "01" and int(parts[2].rsplit(":", 1)[1], 16) == remote_port)


def wait_until(predicate, timeout: float = 10.0, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


def listening_ports(pid: int) -> list[tuple[str, int]]:
    """(local address hex, port) of the LISTEN sockets of `pid` (for the loopback-only check)."""
    out = []
    for parts in _own_tcp_rows(pid):
        if parts[3] == "0A":
            addr, port = parts[1].rsplit(":", 1)
            out.append((addr, int(port, 16)))
    return out


def tcp_peers(pid: int) -> list[tuple[int, str]]:
    """(remote port, TCP state hex) of every TCP socket of `pid` that has a peer (not LISTEN).
    A socket the peer reset has left the kernel's tables and is not listed (the fd may remain)."""
    out = []
    for parts in _own_tcp_rows(pid):
        if parts[3] != "0A":
            out.append((int(parts[2].rsplit(":", 1)[1], 16), parts[3]))
    return out


def tcp_queues(pid: int, remote_port: int) -> tuple[int, int] | None:
    """(tx_queue, rx_queue) in bytes of `pid`'s TCP socket whose peer port is `remote_port`, None if
    it has none: tx is what its kernel still holds to send, rx what the process has not read yet."""
    for parts in _own_tcp_rows(pid):
        if parts[3] != "0A" and int(parts[2].rsplit(":", 1)[1], 16) == remote_port:
            tx, rx = parts[4].split(":")
            return int(tx, 16), int(rx, 16)
    return None
