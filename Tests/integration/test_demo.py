"""`make demo` (Tests/integration/demo.py) stops what it started on SIGTERM (kill) and SIGHUP (the
terminal closed), not only on Ctrl-C: no PopGate or Dovecot process survives, every port it
listened on is free again and its temp dir is gone. PopGate-only."""
from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.gateway import popgate_binary
from harness.net import port_accepts
from harness.procinfo import listening_ports, wait_until

DEMO = Path(__file__).resolve().parent / "demo.py"


def _stat(pid: int) -> list[str] | None:
    """Fields after the command name of /proc/PID/stat (state, ppid, pgrp, session, ...)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None


def _all_pids() -> list[int]:
    return [int(d) for d in os.listdir("/proc") if d.isdigit()]


def family(root: int) -> set[int]:
    """The demo's processes: its descendants, and every process in a session one of them leads
    (PopGate and Dovecot run in sessions of their own; Dovecot's children are in Dovecot's)."""
    found = {root}
    while True:
        more = {pid for pid in _all_pids() if (st := _stat(pid)) and st[0] != "Z"
                and (int(st[1]) in found or int(st[3]) in found)}
        if more <= found:
            return found
        found |= more


def alive(pid: int) -> bool:
    st = _stat(pid)
    return st is not None and st[0] != "Z"


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP], ids=["SIGTERM", "SIGHUP"])
def test_demo_stops_everything_on(signum, target, workdir):
    if target != "popgate":
        pytest.skip("PopGate-only test (POP3_TARGET=dovecot)")
    demo = subprocess.Popen([sys.executable, str(DEMO), "--popgate", str(popgate_binary())],
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)
    procs: set[int] = set()
    temp = None
    try:
        banner = ""
        deadline = time.monotonic() + 60
        while not (removes := re.search(r" and removes (\S+)", banner)):
            line = demo.stdout.readline()
            assert line and time.monotonic() < deadline, f"demo did not start:\n{banner}"
            banner += line
        temp = Path(removes.group(1))
        assert temp.is_dir(), banner
        procs = family(demo.pid) - {demo.pid}
        names = {pid: Path(f"/proc/{pid}/exe").resolve().name for pid in procs if alive(pid)}
        assert "popgate" in names.values() and any(n.startswith("dovecot") for n in names.values()), names
        ports = {port for pid in procs if alive(pid) for _, port in listening_ports(pid)}
        assert len(ports) >= 4, ports     # PopGate's two listeners and Dovecot's IMAP/POP3 ports

        os.kill(demo.pid, signum)
        # (not demo.stdout.read(): survivors hold the pipe open)
        assert demo.wait(timeout=30) == 0, f"demo exited with {demo.returncode}"
        assert wait_until(lambda: not any(alive(pid) for pid in procs), timeout=10), \
            {pid: names.get(pid) for pid in procs if alive(pid)}
        assert not [port for port in ports if port_accepts(port)], "ports still accepting"
        assert not temp.exists(), temp
    finally:
        for pid in [demo.pid, *procs]:      # a failed run leaves nothing behind either
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
        demo.wait()
        if temp is not None:
            shutil.rmtree(temp, ignore_errors=True)
