"""A throw-away pymap (PyPI `pymap`, a second IMAP server written independently of Dovecot) on loopback.

Its maildir backend keeps everything in one temp dir: `pymap-etc-passwd` names each user's Maildir,
`pymap-etc-shadow` holds the password hashes (pysasl's built-in PBKDF2, so no passlib is needed), and
pymap re-reads both at every login, so a user added by the test can log in at once. Messages are put
with IMAP APPEND like on Dovecot.

What pymap 0.36 offers differs from Dovecot where PopGate decides: UIDPLUS and MOVE are advertised after
login, but PERMANENTFLAGS lists only the system flags (no `\\*`, so `on_delete: flag` must be refused),
there is no NAMESPACE (BAD) and no SPECIAL-USE, and the greeting has AUTH=PLAIN without SASL-IR.
"""
from __future__ import annotations

import atexit
import os
import subprocess
import sys
import threading
from pathlib import Path

from .dovecot import stop_process_group
from .net import LOOPBACK, free_ports, wait_for_ports

PYMAP_VERSION = "0.36.7"


def _password_hash(password: str) -> str:
    from pysasl.hashing import BuiltinHash
    # Few rounds: a test login should not spend a second in PBKDF2.
    return BuiltinHash(rounds=1000).hash(password)


class Pymap:
    def __init__(self, root: Path):
        self.root = root
        self.host = LOOPBACK
        (self.port,) = free_ports(1)
        self.proc: subprocess.Popen | None = None
        self._lock = threading.Lock()
        self._counter = 0

    def start(self) -> None:
        import importlib.metadata
        version = importlib.metadata.version("pymap")   # not installed: fails loudly, `make deps` installs it
        if version != PYMAP_VERSION:
            raise RuntimeError(f"pymap {version} is installed, the suite is written for {PYMAP_VERSION} (make deps)")
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / "pymap-etc-passwd").write_text("")
        (self.root / "pymap-etc-shadow").write_text("")
        log = open(self.root / "pymap.log", "wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-c", "from pymap.main import main; main()",
             "--no-tls", "--host", self.host, "--port", str(self.port), "maildir", str(self.root)],
            stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)
        log.close()
        atexit.register(self.stop)
        try:
            wait_for_ports([self.port], timeout=30, alive=lambda: self.proc.poll() is None)
        except Exception as exc:
            self.stop()
            raise RuntimeError(f"pymap did not start: {exc}\n{self.diagnostics()}") from exc

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None:
            stop_process_group(proc)

    def diagnostics(self) -> str:
        p = self.root / "pymap.log"
        return "--- pymap.log (tail) ---\n" + (p.read_text(errors="replace")[-4000:] if p.exists() else "")

    def new_user_name(self, prefix: str = "p") -> str:
        with self._lock:
            self._counter += 1
            return f"{prefix}{self._counter}x{os.urandom(3).hex()}"

    def add_user(self, name: str, password: str) -> None:
        if ":" in name or "\n" in name or ":" in password or "\n" in password:
            raise ValueError("pymap's passwd files cannot hold ':' or newlines")
        with self._lock:
            with open(self.root / "pymap-etc-passwd", "a") as f:
                f.write(f"{name}:x::::{name}:\n")
            with open(self.root / "pymap-etc-shadow", "a") as f:
                f.write(f"{name}:{_password_hash(password)}:::::::\n")
