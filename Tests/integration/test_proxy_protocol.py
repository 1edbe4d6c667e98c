"""PROXY protocol (issue 8, hosting fleet): a real HAProxy in TCP mode in front of PopGate.

Clients at 127.0.0.2 and 127.0.0.3 (sockets bound before connect) go through HAProxy
(`send-proxy` v1 and `send-proxy-v2`, implicit-TLS and STLS listeners) to PopGate's
`proxy_protocol: true` listeners, which trust HAProxy's address (127.0.0.1), and on to a
Dovecot that trusts PopGate to forward the client address (login_trusted_networks). The mail
comes back byte-exact; Dovecot logs `rip=` of the real client; PopGate's summary lines,
per-IP limits and auth penalties are the real client's. Also: an untrusted peer is refused,
garbage and a header that never completes are closed, a header in 1-byte writes with a
pipelined command or TLS ClientHello loses nothing, and HAProxy's health checks (LOCAL) cause
no warnings. PopGate-only.
"""
from __future__ import annotations

import re
import socket
import ssl
import struct
import time

import pytest

from harness.dovecot import Dovecot
from harness.gateway import Gateway, GatewayOptions
from harness.haproxy import HAProxy, Route, haproxy_binary
from harness.imap import ImapAccount
from harness.net import connect_from
from harness.pop3 import Pop3Conn, unstuff

A1, A2, A3 = "127.0.0.1", "127.0.0.2", "127.0.0.3"
V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"
MESSAGE = (b"From: a@example.org\r\nTo: b@example.org\r\nSubject: through the proxy\r\n\r\n"
           b"line one\r\n.leading dot\r\n\r\n..two dots\r\nlast line without end")

pytestmark = pytest.mark.skipif(haproxy_binary() is None, reason="haproxy not installed (make deps)")


@pytest.fixture(scope="module")
def trusted_dovecot(workdir, pki, target):
    """A Dovecot that trusts PopGate (127.0.0.1) to forward the client's address with IMAP ID."""
    if target != "popgate":
        pytest.skip("PopGate-only test (POP3_TARGET=dovecot)")
    d = Dovecot(workdir / "dovecot-proxy", pki, login_trusted_networks="127.0.0.1/32")
    d.start()
    yield d
    d.stop()


def new_user(dovecot: Dovecot, prefix: str, messages=(MESSAGE,)) -> tuple[str, str]:
    user = dovecot.new_user_name(prefix)
    password = f"pw-{prefix}-Zq"
    dovecot.add_user(user, password)
    if messages:
        ImapAccount(dovecot.host, dovecot.ports.imap, user, password).append(list(messages))
    return user, password


def start_gateway(workdir, pki, dovecot, name: str, **kw) -> Gateway:
    kw.setdefault("proxy_trusted_networks", ["127.0.0.1/32"])
    gw = Gateway(workdir / "gw-proxy" / name, pki,
                 GatewayOptions(backend_port=dovecot.ports.imap, proxy_listeners=True, **kw))
    gw.start()
    return gw


def start_haproxy(workdir, name: str, gw: Gateway, check: bool = False) -> HAProxy:
    routes = [Route(f"{tls}_{version}", [(A1, gw.ports[f"proxy_{tls}"])], send_proxy=version, check=check)
              for tls in ("implicit", "starttls") for version in ("v1", "v2")]
    hp = HAProxy(workdir / "haproxy" / name, routes)
    hp.start()
    return hp


def connect(gw: Gateway, hp: HAProxy, tls: str, version: str, source: str) -> Pop3Conn:
    """A POP3 session through HAProxy, from `source`, with TLS up (implicit, or STLS done)."""
    port = hp.port(f"{tls}_{version}")
    if tls == "implicit":
        return Pop3Conn("127.0.0.1", port, implicit_tls=True, context=gw.context(), source=source)
    c = Pop3Conn("127.0.0.1", port, source=source)
    assert c.stls(gw.context()).startswith(b"+OK")
    return c


def summary_lines(gw: Gateway, user: str) -> list[str]:
    return [ln for ln in gw.stderr().splitlines() if "session ended: user=" + user + " " in ln]


def wait_for(predicate, timeout: float = 10.0, interval: float = 0.1):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)


def warnings_and_errors(gw: Gateway) -> list[str]:
    """Warnings and errors since the daemon was ready (start-up ones, e.g. about the test machine's
    open-files limit, are not about connections)."""
    text = gw.stderr()
    ready = re.search(r"msg=ready\b.*\n", text)
    text = text[ready.end():] if ready else text
    return [ln for ln in text.splitlines() if re.search(r"\blevel=(warning|error|critical)\b", ln)]


# -- 1. the real client, end to end ----------------------------------------------------------------

@pytest.fixture(scope="module")
def proxied(workdir, pki, trusted_dovecot):
    gw = start_gateway(workdir, pki, trusted_dovecot, "main")
    hp = start_haproxy(workdir, "main", gw, check=True)
    yield gw, hp
    hp.stop()
    gw.stop()


@pytest.mark.parametrize("version", ["v1", "v2"])
@pytest.mark.parametrize("tls", ["implicit", "starttls"])
def test_real_client_address_end_to_end(proxied, trusted_dovecot, tls, version):
    gw, hp = proxied
    user, password = new_user(trusted_dovecot, f"px{tls[:2]}{version}")
    seen = len(trusted_dovecot.log_text())   # after the harness's own IMAP login (APPEND)
    for source in (A2, A3):
        with connect(gw, hp, tls, version, source) as c:
            assert c.user_pass(user, password).startswith(b"+OK")
            first, raw = c.multi("RETR 1")
            assert first.startswith(b"+OK"), first
            assert unstuff(raw) == MESSAGE + b"\r\n", raw
            assert c.quit().startswith(b"+OK")

    # Dovecot: both logins name the real client (rip=), not PopGate or HAProxy.
    def logins():
        return [ln for ln in trusted_dovecot.log_text()[seen:].splitlines()
                if "imap-login:" in ln and "Login:" in ln and f"user=<{user}>" in ln]
    lines = wait_for(lambda: len(logins()) >= 2 and logins())
    assert lines and sorted(re.search(r"rip=([\d.]+)", ln).group(1) for ln in lines) == [A2, A3], lines

    # PopGate: the summary line names the client and, as a field, the proxy.
    summaries = wait_for(lambda: len(summary_lines(gw, user)) >= 2 and summary_lines(gw, user))
    assert summaries, gw.stderr()[-3000:]
    clients = sorted(re.search(r"client=([\d.]+):\d+ ", ln).group(1) for ln in summaries)
    assert clients == [A2, A3], summaries
    assert all(re.search(r'\bproxy="?127\.0\.0\.1:\d+', ln) for ln in summaries), summaries
    listener = "pop3s-proxy" if tls == "implicit" else "pop3-proxy"
    assert all(f"listener={listener} " in ln for ln in summaries), summaries
    print(f"\ndovecot: {lines[0]}\npopgate: {summaries[0]}")


def test_health_checks_cause_no_warnings(proxied):
    """HAProxy has checked every 300 ms since the module started (LOCAL with send-proxy-v2, a
    v1 header with send-proxy): every server stayed up, and PopGate logged nothing above info."""
    gw, hp = proxied
    time.sleep(1.5)
    assert "is DOWN" not in hp.log(), hp.log()
    assert warnings_and_errors(gw) == [], warnings_and_errors(gw)
    # The checks were sessions from HAProxy's own address (LOCAL: the connection's endpoints).
    checks = [ln for ln in gw.stderr().splitlines() if "session ended: user=- client=127.0.0.1:" in ln]
    assert checks, gw.stderr()[-2000:]


# -- 2. limits and penalties per real client ------------------------------------------------------------

def test_per_ip_limit_and_penalty_per_real_client(workdir, pki, trusted_dovecot):
    gw = start_gateway(workdir, pki, trusted_dovecot, "limits", connections_per_ip=2,
                       failure_delay="1s", failure_delay_max="4s")
    hp = start_haproxy(workdir, "limits", gw)
    try:
        user, password = new_user(trusted_dovecot, "pxlim")
        held = [connect(gw, hp, "starttls", "v2", A2) for _ in range(2)]
        try:
            # A2's third connection is over its limit; the refusal reaches it through HAProxy.
            over = Pop3Conn("127.0.0.1", hp.port("starttls_v2"), source=A2, read_greeting=False)
            with over:
                assert over.line_raw() == b"-ERR [SYS/TEMP] Too many connections\r\n"
            # A3 is another client, although HAProxy's address is the same for all of them.
            with connect(gw, hp, "starttls", "v1", A3) as c:
                assert c.user_pass(user, password).startswith(b"+OK")
                assert c.quit().startswith(b"+OK")
        finally:
            for c in held:
                c.close()
        refused = [ln for ln in gw.stderr().splitlines() if "connection refused: too many connections" in ln]
        assert len(refused) == 1 and "client=127.0.0.2" in refused[0] and "limit=per-ip" in refused[0], refused

        # Two failed logins from A2: A2's next login waits out a penalty, A3's does not.
        for _ in range(2):
            with connect(gw, hp, "implicit", "v2", A2) as c:
                assert c.user_pass(user, "wrong").startswith(b"-ERR [AUTH]")
        with connect(gw, hp, "implicit", "v1", A3) as c:
            started = time.monotonic()
            assert c.user_pass(user, password).startswith(b"+OK")
            assert time.monotonic() - started < 0.9, "A3 was charged for A2's failures"
        with connect(gw, hp, "implicit", "v2", A2) as c:
            started = time.monotonic()
            assert c.user_pass(user, password).startswith(b"+OK")
            took = time.monotonic() - started
            assert took >= 1.9, f"A2's penalty not applied: {took:.2f}s"
    finally:
        hp.stop()
        gw.stop()


# -- 3. the front door of a proxy listener ----------------------------------------------------------------

@pytest.fixture(scope="module")
def bare(workdir, pki, trusted_dovecot):
    """A PopGate with proxy listeners and no HAProxy: the tests write PROXY headers themselves.
    timeouts.login 3s: the header deadline is min(5s, timeouts.login)."""
    gw = start_gateway(workdir, pki, trusted_dovecot, "bare", login_timeout="3s", plain_listener=True)
    yield gw
    gw.stop()


def closed_within(sock: socket.socket, seconds: float) -> float | None:
    """Seconds until the peer closed (EOF or reset), or None if it did not within `seconds`."""
    sock.settimeout(seconds)
    started = time.monotonic()
    try:
        while sock.recv(4096):
            pass
    except socket.timeout:
        return None
    except OSError:
        pass
    return time.monotonic() - started


def v1_header(source=A2, sport=50812, dest=A1, dport=995) -> bytes:
    return f"PROXY TCP4 {source} {dest} {sport} {dport}\r\n".encode()


def v2_header(source=A2, sport=50812, dest=A1, dport=995, tlvs=b"") -> bytes:
    body = socket.inet_aton(source) + socket.inet_aton(dest) + struct.pack("!HH", sport, dport) + tlvs
    return V2_SIGNATURE + b"\x21\x11" + struct.pack("!H", len(body)) + body


def test_untrusted_peer_is_refused(bare):
    start = len(bare.stderr_bytes())
    for _ in range(3):
        s = connect_from(A2, bare.ports["proxy_starttls"])
        with s:
            s.sendall(v1_header(source="203.0.113.9"))
            assert closed_within(s, 3.0) is not None, "an untrusted peer's connection stayed open"
    lines = [ln for ln in bare.stderr_bytes()[start:].decode().splitlines() if "not a trusted proxy" in ln]
    assert len(lines) == 1, f"one line per peer per minute: {lines}"
    assert "client=127.0.0.2:" in lines[0] and "listener=pop3-proxy" in lines[0], lines
    assert "203.0.113.9" not in bare.stderr(), "the untrusted header was read"


def test_header_that_never_completes_is_closed_after_the_deadline(bare):
    s = connect_from(A1, bare.ports["proxy_implicit"])
    with s:
        s.sendall(b"PROXY TCP4 192.0.2.1")
        took = closed_within(s, 8.0)
    assert took is not None and 2.5 <= took <= 4.5, f"closed after {took}s; the deadline is 3s"
    assert bare.wait_for_log(r"connection closed: no valid PROXY header.*no complete PROXY header within 3s", timeout=2)


@pytest.mark.parametrize("garbage", [b"USER alice\r\n", b"\x16\x03\x01\x02\x00\x01", b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n",
                                     V2_SIGNATURE + b"\x21\x11\x02\x09", V2_SIGNATURE + b"\x21\x41\x00\x0c"],
                         ids=["pop3", "tls", "bare-lf", "v2-too-long", "v2-family"])
def test_garbage_is_closed_at_once(bare, garbage):
    s = connect_from(A1, bare.ports["proxy_starttls"])
    with s:
        s.sendall(garbage)
        took = closed_within(s, 2.0)
    assert took is not None and took < 1.0, took


@pytest.mark.parametrize("header", ["v1", "v2"])
def test_header_in_one_byte_writes_then_pipelined_command(bare, header):
    """Every byte of the header in its own TCP segment, the last one carrying a POP3 command: the
    command is answered after the greeting, nothing is lost."""
    hdr = v1_header() if header == "v1" else v2_header(tlvs=b"\x04\x00\x03abc")   # a NOOP TLV, skipped
    s = connect_from(A1, bare.ports["proxy_starttls"])
    with s:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for byte in hdr[:-1]:
            s.sendall(bytes([byte]))
            time.sleep(0.002)
        s.sendall(hdr[-1:] + b"CAPA\r\n")
        s.settimeout(5)
        data = b""
        while not data.endswith(b"\r\n.\r\n"):
            chunk = s.recv(4096)
            assert chunk, data
            data += chunk
    assert data.startswith(b"+OK") and b"\r\n+OK" in data and b"STLS\r\n" in data, data


def test_client_hello_in_the_same_segment_as_the_header(bare, pki, trusted_dovecot):
    """Implicit TLS: the header and the ClientHello in one write (what HAProxy does when the client
    was quick); the handshake completes and the session is the header's client's."""
    user, password = new_user(trusted_dovecot, "pxhello")
    ctx = pki.client_context()
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = ctx.wrap_bio(incoming, outgoing, server_hostname="localhost")
    s = connect_from(A1, bare.ports["proxy_implicit"])
    with s:
        try:
            tls.do_handshake()
        except ssl.SSLWantReadError:
            pass
        s.sendall(v2_header(source="198.51.100.7", sport=40000) + outgoing.read())

        def exchange(data: bytes = b"") -> bytes:
            if data:
                tls.write(data)
            s.sendall(outgoing.read())
            received = b""
            while not received.endswith(b"\r\n"):
                try:
                    received += tls.read(65536)
                    continue
                except ssl.SSLWantReadError:
                    pass
                chunk = s.recv(65536)
                assert chunk, received
                incoming.write(chunk)
                try:
                    tls.do_handshake()
                except ssl.SSLWantReadError:
                    pass
                s.sendall(outgoing.read())
            return received

        s.settimeout(10)
        assert exchange().startswith(b"+OK")
        assert exchange(f"USER {user}\r\n".encode()).startswith(b"+OK")
        assert exchange(f"PASS {password}\r\n".encode()).startswith(b"+OK")
        assert exchange(b"QUIT\r\n").startswith(b"+OK")
    lines = wait_for(lambda: summary_lines(bare, user))
    assert lines and "client=198.51.100.7:40000 " in lines[0], lines


def test_direct_listeners_are_unchanged(bare, trusted_dovecot):
    """A listener without proxy_protocol next to proxy ones: a PROXY header there is just a bad
    command, and the client is the TCP peer."""
    with Pop3Conn("127.0.0.1", bare.plain_port, source=A3) as c:
        assert c.command(v1_header().rstrip(b"\r\n")).startswith(b"-ERR")
