"""Prometheus metrics (`metrics:`): a known session against the real Dovecot, scraped with a real HTTP
client (urllib) and linted with Prometheus' own `promtool check metrics`; the endpoint's bounds (request
cap, deadline, connection cap) against hostile scrapers; reloads, refusals and TLS failures counted.

PopGate-only (the `gateway` fixture skips with POP3_TARGET=dovecot).
"""
from __future__ import annotations

import poplib
import re
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request

import pytest

from harness.net import LOOPBACK, read_until_eof
from harness.procinfo import established_to, wait_until

A = b"Subject: A\r\n\r\nfirst message, the one retrieved\r\n"
B = b"Subject: B\r\n\r\nthe second message\r\n"

# -- the exposition text ---------------------------------------------------------------------

_SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$')
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse(text: str) -> dict[tuple[str, frozenset], float]:
    """`name{labels} value` lines → {(name, frozenset(labels)): value}; comments skipped."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = _SAMPLE.match(line)
        assert m, f"not a sample line: {line!r}"
        labels = frozenset(_LABEL.findall(m.group(2) or ""))
        out[(m.group(1), labels)] = float(m.group(3))
    return out


def value(samples, name: str, **labels) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def scrape(gw, path: str = "/metrics", method: str = "GET") -> tuple[int, dict, str]:
    req = urllib.request.Request(f"http://{LOOPBACK}:{gw.metrics_port}{path}", method=method)
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, dict(resp.headers), resp.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read().decode()


def samples_of(gw):
    status, headers, text = scrape(gw)
    assert status == 200, (status, text)
    assert headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    return parse(text), text


def promtool_check(text: str) -> subprocess.CompletedProcess:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.fail("promtool missing: install the Debian package prometheus (make deps does)")
    return subprocess.run([promtool, "check", "metrics"], input=text.encode(), capture_output=True, timeout=30)


def sessions_settled(gw):
    """Waits until no session is open (the readiness probes of the harness made some)."""
    def settled():
        samples, _ = samples_of(gw)
        return all(v == 0 for (name, _), v in samples.items() if name == "popgate_sessions_open")
    assert wait_until(settled, timeout=10)


# -- the known session -----------------------------------------------------------------------

def test_known_session_is_counted_and_the_text_passes_promtool(gateway, mailbox, pki):
    mailbox.append([A, B])
    gw = gateway(metrics=True, failure_delay="1s", failure_delay_max="2s")
    sessions_settled(gw)
    before, _ = samples_of(gw)

    p = poplib.POP3(LOOPBACK, gw.starttls_port, timeout=15)
    p.stls(context=pki.client_context())
    p.user(mailbox.user)
    with pytest.raises(poplib.error_proto, match=r"\[AUTH\]"):
        p.pass_("wrong-" + mailbox.password)
    p.user(mailbox.user)
    assert p.pass_(mailbox.password).startswith(b"+OK")   # waits out the address's penalty first
    resp, lines, _ = p.retr(1)
    assert b"\r\n".join(lines) + b"\r\n" == A
    assert p.dele(1).startswith(b"+OK")
    assert p.quit().startswith(b"+OK")

    def ended():
        samples, _ = samples_of(gw)
        return value(samples, "popgate_sessions_total", listener="pop3", ending="quit") == \
            value(before, "popgate_sessions_total", listener="pop3", ending="quit") + 1
    assert wait_until(ended, timeout=10)
    after, text = samples_of(gw)
    (gw.workdir / "known-session.metrics").write_text(text)

    def delta(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("popgate_logins_total") == 1
    assert delta("popgate_login_failures_total", reason="credentials") == 1
    for reason in ("temporary", "refused", "in-use", "backend"):
        assert value(after, "popgate_login_failures_total", reason=reason) == 0, reason
    assert delta("popgate_auth_penalties_total") == 1
    assert delta("popgate_retrieved_messages_total") == 1
    assert delta("popgate_retrieved_bytes_total") == len(A)
    assert delta("popgate_deleted_messages_total", action="flagged") == 1
    for action in ("expunged", "moved", "kept", "failed"):
        assert value(after, "popgate_deleted_messages_total", action=action) == 0, action
    assert delta("popgate_sessions_total", listener="pop3", ending="quit") == 1
    assert value(after, "popgate_sessions_open", listener="pop3") == 0
    assert value(after, "popgate_sessions_open", listener="pop3s") == 0
    assert delta("popgate_session_duration_seconds_count", listener="pop3") == 1
    # the session waited out a 1 s failure delay and a 1 s penalty
    assert delta("popgate_session_duration_seconds_sum", listener="pop3") >= 2.0
    assert delta("popgate_session_duration_seconds_bucket", listener="pop3", le="1.0") == 0
    assert delta("popgate_session_duration_seconds_bucket", listener="pop3", le="5.0") == 1
    assert delta("popgate_backend_login_duration_seconds_count") == 1, "successful logins only"
    assert 0 < delta("popgate_backend_login_duration_seconds_sum") < 5
    assert delta("popgate_backend_login_duration_seconds_bucket", le="+Inf") == 1
    for kind in ("connect", "tls", "closed", "timeout", "protocol"):
        assert value(after, "popgate_backend_errors_total", kind=kind) == 0, kind
    assert value(after, "popgate_client_tls_handshake_failures_total", listener="pop3") == 0
    assert value(after, "popgate_config_reloads_total", result="ok") == 0
    builds = [labels for (name, labels), v in after.items() if name == "popgate_build_info" and v == 1]
    assert len(builds) == 1 and dict(builds[0])["version"]

    # Low cardinality: no user name, no client address anywhere in the text.
    assert mailbox.user not in text
    assert "127.0.0.1" not in text
    assert all(name.startswith("popgate_") for name, _ in after)
    # One HELP and one TYPE line per metric family.
    families = {name for name in re.findall(r"^# TYPE (\S+) ", text, re.M)}
    assert families == set(re.findall(r"^# HELP (\S+) ", text, re.M))
    assert len(families) == 15, sorted(families)

    lint = promtool_check(text)
    (gw.workdir / "known-session.promtool").write_text(
        f"exit {lint.returncode}\nstdout:\n{lint.stdout.decode()}\nstderr:\n{lint.stderr.decode()}")
    assert lint.returncode == 0, (lint.stdout.decode(), lint.stderr.decode())
    assert lint.stdout.decode().strip() == "" and lint.stderr.decode().strip() == ""


def test_promtool_rejects_a_broken_text():
    """The lint can fail: a counter without _total and without HELP is reported."""
    lint = promtool_check("# TYPE popgate_things counter\npopgate_things 1\n")
    assert lint.returncode != 0
    assert b"popgate_things" in lint.stdout + lint.stderr


def test_head_and_other_requests(gateway):
    gw = gateway(metrics=True)
    status, headers, body = scrape(gw, method="HEAD")
    assert status == 200 and body == ""
    assert int(headers["Content-Length"]) > 1000
    assert scrape(gw, "/")[0] == 404
    assert scrape(gw, "/metrics/x")[0] == 404
    status, headers, _ = scrape(gw, method="POST")
    assert status == 405 and headers["Allow"] == "GET, HEAD"
    assert scrape(gw, "/metrics?foo=bar")[0] == 200
    # HTTP/1.0, byte-exact head
    with socket.create_connection((LOOPBACK, gw.metrics_port), timeout=5) as s:
        s.sendall(b"GET /nothing HTTP/1.0\r\n\r\n")
        data, closed = read_until_eof(s, 5)
    assert closed
    assert data == (b"HTTP/1.1 404 Not Found\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 14\r\n"
                    b"Cache-Control: no-store\r\nConnection: close\r\n\r\n404 Not Found\n")
    with socket.create_connection((LOOPBACK, gw.metrics_port), timeout=5) as s:
        s.sendall(b"GET /metrics HTTP/2.0\r\n\r\n")
        data, closed = read_until_eof(s, 5)
    assert closed and data.startswith(b"HTTP/1.1 505 HTTP Version Not Supported\r\n")


# -- hostile scrapers ------------------------------------------------------------------------

DEADLINE = 10.0      # MetricsEndpoint.Limits.deadline
MAX_CONNECTIONS = 8  # MetricsEndpoint.Limits.maxConnections


def test_endpoint_bounds_request_size_time_and_connections(gateway):
    gw = gateway(metrics=True)
    port = gw.metrics_port

    # An endless header is cut at 8 KiB: 431 and close at once, not at the deadline (what the client
    # sends after that waits in the kernel's socket buffers until the close resets the connection).
    started = time.monotonic()
    with socket.create_connection((LOOPBACK, port), timeout=5) as s:
        s.sendall(b"GET /metrics HTTP/1.1\r\n")
        sent = 0
        try:
            while sent < 4_000_000:
                s.sendall(b"X-Filler: " + b"y" * 90 + b"\r\n")
                sent += 102
        except (BrokenPipeError, ConnectionResetError, socket.timeout):
            pass
        data, closed = read_until_eof(s, 5)
    assert closed and data.startswith(b"HTTP/1.1 431 Request Header Fields Too Large\r\n"), data[:200]
    assert time.monotonic() - started < DEADLINE / 2
    # An endless request line: 414.
    with socket.create_connection((LOOPBACK, port), timeout=5) as s:
        try:
            s.sendall(b"GET /" + b"a" * 20_000)
        except (BrokenPipeError, ConnectionResetError):
            pass
        data, closed = read_until_eof(s, 5)
    assert closed and data.startswith(b"HTTP/1.1 414 URI Too Long\r\n"), data[:200]

    # A scraper that never reads (tiny receive window) holds no slot: its answer goes to the kernel,
    # and the server's side of the connection is gone at once (the unsent rest, if any, at the deadline).
    deaf = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    deaf.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1024)
    deaf.connect((LOOPBACK, port))
    deaf.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
    deaf_port = deaf.getsockname()[1]
    assert wait_until(lambda: established_to(gw.pid, deaf_port) == 0, timeout=DEADLINE + 3)

    # Eight connections hold every slot: one that sends a byte a second and never finishes, seven
    # that never send.
    t0 = time.monotonic()
    trickle = socket.create_connection((LOOPBACK, port), timeout=5)
    holders = [trickle]
    for _ in range(MAX_CONNECTIONS - 1):
        holders.append(socket.create_connection((LOOPBACK, port), timeout=5))

    # The ninth is refused at once with a 503.
    with socket.create_connection((LOOPBACK, port), timeout=5) as s:
        data, closed = read_until_eof(s, 3)
    assert closed and data.startswith(b"HTTP/1.1 503 Service Unavailable\r\n"), data[:200]

    # The trickler keeps sending; the deadline closes it all the same.
    trickled = 0
    trickle.sendall(b"G")
    while time.monotonic() - t0 < DEADLINE + 3:
        try:
            trickle.sendall(b"E")
            trickled += 1
        except OSError:
            break
        time.sleep(1)
    assert trickled >= 5

    # Everyone is closed by the server after the deadline (the deaf one got its answer queued).
    local_ports = [h.getsockname()[1] for h in holders]
    assert wait_until(lambda: all(established_to(gw.pid, p) == 0 for p in local_ports), timeout=5), \
        f"still open after {time.monotonic() - t0:.1f}s"
    elapsed = time.monotonic() - t0
    assert DEADLINE - 1 <= elapsed <= DEADLINE + 5, elapsed
    for h in holders:
        data, closed = read_until_eof(h, 2)
        assert closed and data == b"", (data, h.getsockname())
        h.close()
    data, closed = read_until_eof(deaf, 5)
    deaf.close()
    assert data.startswith(b"HTTP/1.1 200 OK\r\n")

    # The slots are free again.
    status, _, text = scrape(gw)
    assert status == 200 and "popgate_build_info" in text
    assert gw.is_running()


# -- other counters --------------------------------------------------------------------------

def test_refusals_and_failed_client_handshakes_are_counted(gateway, pki):
    gw = gateway(metrics=True, connections_per_ip=1)
    sessions_settled(gw)
    # (the harness's readiness probes may have been refused already)
    before, _ = samples_of(gw)
    first = poplib.POP3(LOOPBACK, gw.starttls_port, timeout=10)
    try:
        with socket.create_connection((LOOPBACK, gw.starttls_port), timeout=5) as s:
            data, _ = read_until_eof(s, 5)
        assert data.startswith(b"-ERR [SYS/TEMP] Too many connections")
    finally:
        first.quit()
    samples, _ = samples_of(gw)
    assert value(samples, "popgate_connections_refused_total", limit="per-ip") == \
        value(before, "popgate_connections_refused_total", limit="per-ip") + 1
    assert value(samples, "popgate_connections_refused_total", limit="total") == 0

    assert wait_until(lambda: value(samples_of(gw)[0], "popgate_sessions_open", listener="pop3") == 0, timeout=5)
    with socket.create_connection((LOOPBACK, gw.implicit_port), timeout=5) as s:
        s.sendall(b"this is no TLS ClientHello\r\n" * 4)
        read_until_eof(s, 5)
    assert wait_until(lambda: value(samples_of(gw)[0], "popgate_client_tls_handshake_failures_total", listener="pop3s") == 1,
                      timeout=5)


def test_reloads_are_counted(gateway):
    gw = gateway(metrics=True)
    mark = len(gw.stderr_bytes())
    gw.signal(signal.SIGHUP)
    gw.wait_for_log(r"reloaded configuration", start=mark)
    gw.config_path.write_text(gw.config_path.read_text() + "unknown_key: 1\n")
    mark = len(gw.stderr_bytes())
    gw.signal(signal.SIGHUP)
    gw.wait_for_log(r"reload rejected", start=mark)
    samples, _ = samples_of(gw)
    assert value(samples, "popgate_config_reloads_total", result="ok") == 1
    assert value(samples, "popgate_config_reloads_total", result="failed") == 1


def test_no_metrics_section_no_listener(gateway):
    gw = gateway()
    assert gw.metrics_port is None
    assert "listener=metrics" not in gw.stderr()
