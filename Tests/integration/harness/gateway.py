"""Runs the PopGate binary (`popgate serve --config FILE`) for a test.

Writes the YAML config (listeners on free 127.0.0.1 ports: one `starttls`, one
`implicit`, optionally one `none` with allow_plaintext_auth), starts the process,
waits until its ports accept, keeps its stderr in a file for assertions, and stops
it with SIGTERM (then SIGKILL).

For systemd-style runs (test_systemd.py) a `launcher` wraps the command line
(systemd-socket-activate, `sh -c 'export WATCHDOG_PID=$$; exec …'`, `unshare -m …`),
`env` adds environment variables (NOTIFY_SOCKET, WATCHDOG_USEC, JOURNAL_STREAM) and
`wait_for="none"` leaves the readiness check to the test (a probe connection would
trigger socket activation or count as a session). Every launcher must `exec` popgate
in the process it starts, so `Gateway.pid` stays popgate's pid.
"""
from __future__ import annotations

import atexit
import dataclasses
import json
import os
import re
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from .certs import TestPKI
from .endpoint import EndpointMixin
from .net import LOOPBACK, free_ports, wait_for_ports

REPO_ROOT = Path(__file__).resolve().parents[3]
DEFAULT_BINARY = REPO_ROOT / ".build" / "debug" / "popgate"


def popgate_binary() -> Path:
    return Path(os.environ.get("POPGATE_BIN", str(DEFAULT_BINARY)))


@dataclasses.dataclass
class GatewayOptions:
    backend_port: int
    backend_tls: str = "starttls"          # none | starttls | implicit
    backend_host: str = LOOPBACK
    server_name: str | None = "localhost"
    verify_certificate: bool = True
    plain_listener: bool = False           # add a `tls: none` listener with allow_plaintext_auth
    starttls_plaintext_auth: bool = False  # allow_plaintext_auth on the starttls listener
    mailbox: str = "INBOX"
    uidl_format: str | None = None
    uidl_source: str | None = None         # imap | header
    on_retrieve: str | None = None         # seen | none
    on_delete: str | None = None           # expunge | move | flag | keep
    move_to: str | None = None
    flag_keyword: str | None = None
    idle: str | None = None                # e.g. "2s"
    backend_timeout: str | None = None     # e.g. "2s"
    drain: str = "2s"                      # SIGTERM drain; short so test teardown stays fast
    failure_delay: str = "0s"
    # -- issue 6 (front door); None: key left out, so older configs stay byte-identical --
    login_timeout: str | None = None       # timeouts.login, e.g. "3s"
    flush_timeout: str | None = None       # timeouts.flush
    failure_delay_max: str | None = None   # auth.failure_delay_max
    penalty_expiry: str | None = None      # auth.penalty_expiry
    forward_client: bool | None = None     # backend.forward_client
    connections: int | None = None         # limits.connections (all listeners together)
    connections_per_ip: int | None = None  # limits.connections_per_ip
    tracked_ips: int | None = None         # limits.tracked_ips
    max_auth_failures: int | None = None   # limits.max_auth_failures
    max_messages: int | None = None        # limits.max_messages
    output_buffer: int | None = None       # limits.output_buffer (bytes)
    # -- PROXY protocol (issue 8): two more listeners, `pop3-proxy` (starttls) and `pop3s-proxy`
    # (implicit), with proxy_protocol: true; ports "proxy_starttls" / "proxy_implicit" --
    proxy_listeners: bool = False
    proxy_trusted_networks: list[str] | None = None   # proxy_trusted_networks (None: key left out)
    sessions_per_user: int | None = None   # limits.sessions_per_user
    login_interval: str | None = None      # limits.login_interval, e.g. "3s"
    # debug, not trace: at trace every POP3 command line and IMAP line is logged (the protocol trace),
    # which slows a flood test's gateway enough to change what it measures (under ASan, a CAPA flood
    # queued nothing before the login timeout). The tests that check "no password in any log" at
    # trace set it themselves (test_auth, test_trace, test_systemd).
    log_level: str = "debug"
    log_target: str | None = None          # auto | stderr | journal (None: key left out, i.e. auto)
    certificate: str | None = None         # server certificate chain file (None: the test PKI's fullchain)
    key: str | None = None                 # its private key (None: the test PKI's key)
    extra_yaml: str | None = None          # appended verbatim: policies, routes, routes_file, ...
    metrics: bool = False                  # a `metrics:` listener on a free port (`Gateway.metrics_port`)
    # -- the process, not the config file --
    env: dict[str, str] | None = None      # extra environment variables for the process
    launcher: Callable[["Gateway", list[str]], list[str]] | None = None   # (gw, popgate argv) -> argv to run
    wait_for: str = "ports"                # ports: until every listener accepts | none: the test waits


def _q(value) -> str:
    """A YAML scalar: JSON strings are valid YAML double-quoted scalars."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return json.dumps(str(value))


def render_config(opts: GatewayOptions, pki: TestPKI, ports: dict[str, int]) -> str:
    addr = {name: f"{LOOPBACK}:{port}" for name, port in ports.items()}
    backend_addr = f"{opts.backend_host}:{opts.backend_port}"
    lines = ["listeners:"]
    lines += ["  - name: pop3",
              f"    address: {_q(addr['starttls'])}",
              "    tls: starttls",
              f"    allow_plaintext_auth: {_q(opts.starttls_plaintext_auth)}",
              "  - name: pop3s",
              f"    address: {_q(addr['implicit'])}",
              "    tls: implicit"]
    if "plain" in ports:
        lines += ["  - name: pop3-plain",
                  f"    address: {_q(addr['plain'])}",
                  "    tls: none",
                  "    allow_plaintext_auth: true"]
    if "proxy_starttls" in ports:
        lines += ["  - name: pop3-proxy",
                  f"    address: {_q(addr['proxy_starttls'])}",
                  "    tls: starttls",
                  "    proxy_protocol: true",
                  "  - name: pop3s-proxy",
                  f"    address: {_q(addr['proxy_implicit'])}",
                  "    tls: implicit",
                  "    proxy_protocol: true"]
    if opts.proxy_trusted_networks is not None:
        lines.append(f"proxy_trusted_networks: [{', '.join(_q(n) for n in opts.proxy_trusted_networks)}]")
    lines += ["tls:",
              f"  certificate: {_q(opts.certificate or pki.fullchain)}",
              f"  key: {_q(opts.key or pki.key)}",
              "backend:",
              f"  address: {_q(backend_addr)}",
              f"  tls: {opts.backend_tls}",
              f"  ca_file: {_q(pki.ca_cert)}"]
    if opts.server_name is not None:
        lines.append(f"  server_name: {_q(opts.server_name)}")
    lines.append(f"  verify_certificate: {_q(opts.verify_certificate)}")
    if opts.forward_client is not None:
        lines.append(f"  forward_client: {_q(opts.forward_client)}")
    lines.append(f"mailbox: {_q(opts.mailbox)}")
    if opts.uidl_format is not None:
        lines.append(f"uidl_format: {_q(opts.uidl_format)}")
    if opts.uidl_source is not None:
        lines.append(f"uidl_source: {_q(opts.uidl_source)}")
    retention = {k: v for k, v in (("on_retrieve", opts.on_retrieve), ("on_delete", opts.on_delete),
                                   ("move_to", opts.move_to), ("flag_keyword", opts.flag_keyword))
                 if v is not None}
    if retention:
        lines.append("retention:")
        lines += [f"  {k}: {_q(v)}" for k, v in retention.items()]
    timeouts = {k: v for k, v in (("idle", opts.idle), ("backend", opts.backend_timeout), ("drain", opts.drain),
                                  ("login", opts.login_timeout), ("flush", opts.flush_timeout))
                if v is not None}
    if timeouts:
        lines.append("timeouts:")
        lines += [f"  {k}: {v}" for k, v in timeouts.items()]
    lines += ["auth:", f"  failure_delay: {opts.failure_delay}"]
    lines += [f"  {k}: {v}" for k, v in (("failure_delay_max", opts.failure_delay_max),
                                         ("penalty_expiry", opts.penalty_expiry)) if v is not None]
    limits = {k: v for k, v in (("connections", opts.connections), ("connections_per_ip", opts.connections_per_ip),
                                ("tracked_ips", opts.tracked_ips), ("max_auth_failures", opts.max_auth_failures),
                                ("max_messages", opts.max_messages), ("output_buffer", opts.output_buffer),
                                ("sessions_per_user", opts.sessions_per_user))
              if v is not None}
    if limits or opts.login_interval is not None:
        lines.append("limits:")
        lines += [f"  {k}: {int(v)}" for k, v in limits.items()]
        if opts.login_interval is not None:
            lines.append(f"  login_interval: {opts.login_interval}")
    lines += ["log:", f"  level: {opts.log_level}"]
    if opts.log_target is not None:
        lines.append(f"  target: {opts.log_target}")
    if "metrics" in ports:
        lines += ["metrics:", f"  address: {_q(addr['metrics'])}"]
    text = "\n".join(lines) + "\n"
    if opts.extra_yaml:
        text += opts.extra_yaml.rstrip("\n") + "\n"
    return text


class Gateway(EndpointMixin):
    """One running `popgate serve` process."""

    kind = "popgate"

    def __init__(self, workdir: Path, pki: TestPKI, opts: GatewayOptions, binary: Path | None = None):
        self.workdir = workdir
        self.pki = pki
        self.opts = opts
        self.binary = binary or popgate_binary()
        self.host = LOOPBACK
        names = (["starttls", "implicit"] + (["plain"] if opts.plain_listener else [])
                 + (["proxy_starttls", "proxy_implicit"] if opts.proxy_listeners else [])
                 + (["metrics"] if opts.metrics else []))
        self.ports = dict(zip(names, free_ports(len(names))))
        self.config_path = workdir / "popgate.yaml"
        self.stderr_path = workdir / "popgate.stderr"
        self.proc: subprocess.Popen | None = None

    @property
    def starttls_port(self) -> int:
        return self.ports["starttls"]

    @property
    def implicit_port(self) -> int:
        return self.ports["implicit"]

    @property
    def plain_port(self) -> int | None:
        return self.ports.get("plain")

    @property
    def metrics_port(self) -> int | None:
        return self.ports.get("metrics")

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self, timeout: float = 20.0) -> None:
        if not self.binary.exists():
            raise FileNotFoundError(
                f"PopGate binary {self.binary} not found: run `swift build` or set POPGATE_BIN")
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.write_config()
        argv = [str(self.binary), "serve", "--config", str(self.config_path)]
        if self.opts.launcher is not None:
            argv = self.opts.launcher(self, argv)
        env = None
        if self.opts.env:
            env = dict(os.environ)
            env.update(self.opts.env)
        err = open(self.stderr_path, "wb")
        self.proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=err, stderr=subprocess.STDOUT,
            start_new_session=True, cwd=self.workdir, env=env)
        err.close()
        atexit.register(self.stop)   # safety net if the test run dies without teardown
        if self.opts.wait_for == "none":
            return
        try:
            wait_for_ports(list(self.ports.values()), timeout=timeout,
                           alive=lambda: self.proc is not None and self.proc.poll() is None)
        except Exception as exc:
            code = self.proc.poll()
            self.stop()
            raise RuntimeError(f"popgate did not start (exit code {code}): {exc}\n"
                               f"--- config ---\n{self.config_path.read_text()}"
                               f"--- stderr ---\n{self.stderr()[-4000:]}") from exc
        # Accepting is not yet ready: popgate logs `ready` once its signal handlers are live (a SIGHUP
        # before that would be lost). Only visible when it logs to stderr.
        logs_to_stderr = self.opts.log_target in (None, "auto", "stderr") and not (self.opts.env or {}).get("JOURNAL_STREAM")
        if logs_to_stderr and self.opts.launcher is None:
            try:
                self.wait_for_log(r"msg=ready\b", timeout=timeout)
            except TimeoutError:
                pass   # a test that checks readiness itself says so

    def write_config(self, **changes) -> None:
        """(Re)writes the config file, with `changes` applied to the options (e.g. before a SIGHUP)."""
        if changes:
            self.opts = dataclasses.replace(self.opts, **changes)
        self.config_path.write_text(render_config(self.opts, self.pki, self.ports))

    def signal(self, signum: int) -> None:
        assert self.proc is not None and self.proc.poll() is None, "popgate is not running"
        self.proc.send_signal(signum)

    def wait_exit(self, timeout: float) -> int | None:
        """The exit code, or None if it still runs after `timeout` seconds."""
        assert self.proc is not None
        return wait_exit(self.proc, timeout)

    def wait_for_log(self, pattern: str | bytes, timeout: float = 10.0, start: int = 0) -> re.Match:
        """Waits until the stderr (from byte offset `start`) matches the regex `pattern`."""
        rx = re.compile(pattern.encode() if isinstance(pattern, str) else pattern, re.MULTILINE)
        deadline = time.monotonic() + timeout
        while True:
            m = rx.search(self.stderr_bytes(), start)
            if m:
                return m
            if time.monotonic() > deadline:
                raise TimeoutError(f"no {pattern!r} in popgate's stderr within {timeout}s:\n"
                                   f"{self.stderr()[-3000:]}")
            time.sleep(0.03)

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGTERM, then SIGKILL after `timeout`; returns the exit code."""
        proc, self.proc = self.proc, None
        if proc is None:
            return None
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        self._stopped_proc = proc
        try:   # anything it left in its process group
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        return proc.returncode

    def is_running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stderr(self) -> str:
        try:
            return self.stderr_path.read_bytes().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def stderr_bytes(self) -> bytes:
        try:
            return self.stderr_path.read_bytes()
        except FileNotFoundError:
            return b""


def wait_exit(proc: subprocess.Popen, timeout: float) -> int | None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return proc.returncode
        time.sleep(0.05)
    return None
