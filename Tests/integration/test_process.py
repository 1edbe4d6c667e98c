"""The popgate process: listens only where configured, stops on SIGTERM, fails to start
loudly, and `check-config` (config-format.md). PopGate-only."""
from __future__ import annotations

import re
import socket
import subprocess
from pathlib import Path

import pytest

from harness.gateway import GatewayOptions, popgate_binary, render_config
from harness.net import LOOPBACK, free_ports, port_accepts
from harness.procinfo import listening_ports


def test_listens_only_on_configured_loopback_ports(gateway):
    gw = gateway(plain_listener=True)
    listening = listening_ports(gw.pid)
    assert {p for _, p in listening} == set(gw.ports.values()), listening
    assert {a for a, _ in listening} == {"0100007F"}, listening


def test_sigterm_stops_promptly_and_closes_ports(gateway):
    gw = gateway()
    ports = list(gw.ports.values())
    code = gw.stop(timeout=10)
    assert code is not None and code != -9, f"needed SIGKILL (exit {code})"
    assert not any(port_accepts(p) for p in ports)


def test_startup_failure_exits_nonzero(gateway, workdir, pki, dovecot):
    gateway()  # (skips when POP3_TARGET=dovecot)
    busy = socket.socket()
    busy.bind((LOOPBACK, 0))
    busy.listen(1)
    try:
        port = busy.getsockname()[1]
        d = workdir / "startup-failure"
        d.mkdir(exist_ok=True)
        cfg = d / "popgate.yaml"
        cfg.write_text(render_config(GatewayOptions(backend_port=dovecot.ports.imap), pki,
                                     {"starttls": free_ports(1)[0], "implicit": port}))
        r = subprocess.run([str(popgate_binary()), "serve", "--config", str(cfg)],
                           capture_output=True, timeout=30, stdin=subprocess.DEVNULL)
        assert r.returncode != 0, "a listener that cannot bind must stop the start-up"
        assert r.stderr, "the reason must be logged"
    finally:
        busy.close()


@pytest.fixture
def config_file(gateway, workdir, pki, dovecot):
    gateway()  # (skips when POP3_TARGET=dovecot)

    def write(name: str, text: str | None = None):
        d = workdir / "check-config"
        d.mkdir(exist_ok=True)
        path = d / name
        path.write_text(text if text is not None else render_config(
            GatewayOptions(backend_port=dovecot.ports.imap), pki, {"starttls": 1110, "implicit": 1995}))
        return path
    return write


def check_config(path):
    return subprocess.run([str(popgate_binary()), "check-config", "--config", str(path)],
                          capture_output=True, timeout=30, stdin=subprocess.DEVNULL)


def test_check_config_ok(config_file):
    path = config_file("good.yaml")
    r = check_config(path)
    assert r.returncode == 0, (r.stdout, r.stderr)
    assert f"{path}: OK".encode() in r.stdout + r.stderr


def test_check_config_reports_every_problem_with_its_key_path(config_file):
    good = config_file("good.yaml").read_text()
    bad = good.replace("    tls: implicit\n", '    tls: "ssl"\n', 1) + "bogus_key: 1\n"
    path = config_file("bad.yaml", bad)
    r = check_config(path)
    assert r.returncode == 1, (r.returncode, r.stdout, r.stderr)
    out = r.stdout.decode() + r.stderr.decode()
    assert f"{path}: listeners[1].tls:" in out and '"ssl"' in out, out
    assert f"{path}: bogus_key: unknown key" in out, out


def _open_files_limits(pid: int) -> tuple[int, int]:
    with open(f"/proc/{pid}/limits") as f:
        for line in f:
            if line.startswith("Max open files"):
                soft, hard = line.split()[3:5]
                return int(soft), int(hard)
    raise AssertionError("no 'Max open files' line")


def test_raises_its_open_files_soft_limit_to_the_hard_limit(gateway):
    """Two descriptors per session: started with the usual soft limit (here 256) under a higher hard
    limit, popgate raises the soft limit itself; with the hard limit too low for limits.connections it
    says so at start."""
    gw = gateway(connections=10_000,
                 launcher=lambda gw, argv: ["prlimit", "--nofile=256:8192", "--", *argv])
    assert _open_files_limits(gw.pid) == (8192, 8192)
    gw.wait_for_log(r"open files limit 8192 is below the 20064 that limits\.connections \(10000\) needs")


def test_shipped_multi_tenant_example_is_accepted(config_file, pki):
    """conf/multi-tenant.yaml and its conf/routes.yaml, with the test PKI's files in place of
    /etc/popgate/tls/*, pass `popgate check-config`; a mistake in the routes file is reported with
    the routes file's path and line."""
    conf = Path(__file__).resolve().parents[2] / "conf"
    text = (conf / "multi-tenant.yaml").read_text()
    text = text.replace("/etc/popgate/tls/fullchain.pem", str(pki.fullchain)).replace("/etc/popgate/tls/privkey.pem", str(pki.key))
    text = text.replace("/etc/ssl/certs/ca-certificates.crt", str(pki.ca_cert))
    path = config_file("multi-tenant.yaml", text)
    routes = path.parent / "routes.yaml"
    routes.write_text((conf / "routes.yaml").read_text())
    r = check_config(path)
    assert r.returncode == 0, (r.stdout, r.stderr)
    assert f"{path}: OK".encode() in r.stdout + r.stderr

    routes.write_text((conf / "routes.yaml").read_text().replace("policy: multi-device", "policy: gold"))
    r = check_config(path)
    assert r.returncode != 0
    out = (r.stdout + r.stderr).decode()
    assert f"routes_file ({routes}): routes[0].policy: no policy named \"gold\" in policies (line 10 of the routes file)" in out, out


def test_version_names_popgate_and_the_openssl_it_runs_with():
    r = subprocess.run([str(popgate_binary()), "--version"], capture_output=True, timeout=30,
                       stdin=subprocess.DEVNULL, text=True)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    version_file = (Path(__file__).resolve().parents[2] / "Sources/popgate/Version.swift").read_text()
    expected = re.search(r'popGateVersion = "([^"]+)"', version_file).group(1)
    assert lines[0] == f"popgate {expected}"
    # The library loaded at run time, as `openssl version` reports it ("... (Library: <this>)").
    openssl = subprocess.run(["openssl", "version"], capture_output=True, text=True, timeout=30)
    library = re.search(r"\(Library: (.+)\)", openssl.stdout)
    assert lines[1] == (library.group(1) if library else openssl.stdout.strip())
    assert len(lines) == 2
