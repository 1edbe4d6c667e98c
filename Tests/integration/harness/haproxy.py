"""Runs a real HAProxy (Debian's `haproxy`) in TCP mode in front of PopGate, for the PROXY protocol tests.

The config comes from a template: one frontend per `Route`, each on its own free 127.0.0.1 port,
balancing over the route's servers (one PopGate listener, or several for a fleet) with
`send-proxy` (v1) or `send-proxy-v2`, optionally with health checks (`check`: HAProxy then sends
the PROXY header on its checks too; with v2 that is a LOCAL command). HAProxy runs in the
foreground (`-db`) in its own process group, logs to its stderr (kept in a file), and is stopped
with SIGTERM, then SIGKILL. It listens on loopback only.
"""
from __future__ import annotations

import atexit
import dataclasses
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

from .net import LOOPBACK, free_ports, wait_for_ports

TEMPLATE_GLOBAL = """\
global
    maxconn 500
    log stderr format raw daemon info
    # no chroot, no user switch: a throw-away instance in a temp dir

defaults
    mode tcp
    log global
    option tcplog
    timeout connect 5s
    timeout client 60s
    timeout server 60s
"""

TEMPLATE_ROUTE = """
frontend fe_{name}
    bind {host}:{port}
    default_backend be_{name}

backend be_{name}
    balance roundrobin
{servers}
"""


@dataclasses.dataclass
class Route:
    """One HAProxy frontend → backend: clients connect to `port` (chosen at start), HAProxy
    forwards to `servers` ((host, port) pairs, e.g. PopGate's proxy listeners)."""
    name: str
    servers: list[tuple[str, int]]
    send_proxy: str = "v2"                # v1: send-proxy, v2: send-proxy-v2
    check: bool = False                   # health checks (every `check_interval`), with the PROXY header
    check_interval: str = "300ms"
    port: int = 0

    def server_lines(self) -> str:
        option = {"v1": "send-proxy", "v2": "send-proxy-v2"}[self.send_proxy]
        check = f" check inter {self.check_interval}" if self.check else ""
        return "\n".join(f"    server s{i} {host}:{port} {option}{check}"
                         for i, (host, port) in enumerate(self.servers))


def haproxy_binary() -> str | None:
    return shutil.which("haproxy") or (str(Path("/usr/sbin/haproxy")) if Path("/usr/sbin/haproxy").exists() else None)


def render_config(routes: list[Route], host: str = LOOPBACK) -> str:
    text = TEMPLATE_GLOBAL
    for route in routes:
        text += TEMPLATE_ROUTE.format(name=route.name, host=host, port=route.port, servers=route.server_lines())
    return text


class HAProxy:
    def __init__(self, workdir: Path, routes: list[Route]):
        self.workdir = workdir
        self.routes = {route.name: route for route in routes}
        for route, port in zip(routes, free_ports(len(routes))):
            route.port = port
        self.config_path = workdir / "haproxy.cfg"
        self.log_path = workdir / "haproxy.log"
        self.proc: subprocess.Popen | None = None

    def port(self, name: str) -> int:
        return self.routes[name].port

    def start(self, timeout: float = 15.0) -> None:
        binary = haproxy_binary()
        if binary is None:
            raise FileNotFoundError("haproxy not installed (make deps installs it)")
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(render_config(list(self.routes.values())))
        check = subprocess.run([binary, "-c", "-f", str(self.config_path)], capture_output=True, text=True)
        if check.returncode != 0:
            raise RuntimeError(f"haproxy -c failed:\n{check.stdout}{check.stderr}\n{self.config_path.read_text()}")
        log = open(self.log_path, "wb")
        self.proc = subprocess.Popen([binary, "-db", "-f", str(self.config_path)], stdin=subprocess.DEVNULL,
                                     stdout=log, stderr=subprocess.STDOUT, start_new_session=True, cwd=self.workdir)
        log.close()
        atexit.register(self.stop)
        try:
            wait_for_ports([r.port for r in self.routes.values()], timeout=timeout,
                           alive=lambda: self.proc is not None and self.proc.poll() is None)
        except Exception as exc:
            self.stop()
            raise RuntimeError(f"haproxy did not start: {exc}\n{self.log()}") from exc

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def stop(self, timeout: float = 10.0) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()


