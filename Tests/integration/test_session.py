"""Session behaviour: greeting, CAPA, STLS, refused plaintext auth, wrong passwords and their
delay, the backend login in one round trip, STLS command injection, PIPELINING, over-long lines
and bad input."""
from __future__ import annotations

import time

import pytest

from harness import corpus
from harness.pop3 import expected_pop3_bytes, unstuff
from harness.relay import RecordingRelay, command_names, sent_before_first_tagged_answer, tagged_statuses

REQUIRED_CAPA = {b"TOP", b"UIDL", b"USER", b"RESP-CODES", b"AUTH-RESP-CODE", b"PIPELINING"}


def names(capa_lines: list[bytes]) -> set[bytes]:
    return {l.split()[0].upper() for l in capa_lines}


def sasl_mechanisms(capa_lines: list[bytes]) -> set[bytes]:
    for l in capa_lines:
        parts = l.split()
        if parts[0].upper() == b"SASL":
            return {p.upper() for p in parts[1:]}
    return set()


@pytest.fixture
def small_mailbox(mailbox):
    mailbox.append(corpus.small())
    return mailbox


# -- greeting and CAPA ---------------------------------------------------------------------

@pytest.mark.parametrize("mode", ["implicit", "starttls-noupgrade", "plain"])
def test_greeting(pop3_server, mode):
    srv = pop3_server(plain_listener=True)
    with srv.connect(mode) as c:
        assert c.greeting.startswith(b"+OK")
        assert c.greeting.endswith(b"") and b"\r" not in c.greeting


def test_capa_before_tls_lists_stls(pop3_server):
    srv = pop3_server()
    with srv.connect("starttls-noupgrade") as c:
        caps = c.capa()
    assert REQUIRED_CAPA - {b"USER"} <= names(caps), caps
    assert b"STLS" in names(caps)
    if srv.kind == "popgate":
        # CAPA lists exactly what works now: login before TLS is refused on this listener,
        # so neither USER nor SASL is offered until STLS (RFC 2449 §5: capabilities may
        # differ by state).
        assert b"USER" not in names(caps) and b"SASL" not in names(caps), caps
        assert any(l.startswith(b"IMPLEMENTATION PopGate") for l in caps), caps
    else:
        assert b"PLAIN" in sasl_mechanisms(caps)


def test_capa_before_tls_with_plaintext_auth_allowed_lists_user(pop3_server):
    srv = pop3_server(starttls_plaintext_auth=True)
    with srv.connect("starttls-noupgrade") as c:
        caps = c.capa()
    assert REQUIRED_CAPA <= names(caps), caps
    assert b"STLS" in names(caps)
    assert b"PLAIN" in sasl_mechanisms(caps)


@pytest.mark.parametrize("mode", ["implicit", "starttls"])
def test_capa_over_tls_has_no_stls(pop3_server, mode):
    srv = pop3_server()
    with srv.connect(mode) as c:
        caps = c.capa()
    assert REQUIRED_CAPA <= names(caps), caps
    assert b"STLS" not in names(caps)
    assert b"PLAIN" in sasl_mechanisms(caps)
    if srv.kind == "popgate":
        assert any(l.startswith(b"IMPLEMENTATION PopGate") for l in caps), caps


def test_capa_after_login_has_no_stls(pop3_server, mailbox):
    srv = pop3_server(plain_listener=True)
    for mode in ("implicit", "plain"):
        with srv.login(mailbox.user, mailbox.password, mode) as c:
            caps = c.capa()
            assert {b"TOP", b"UIDL", b"RESP-CODES", b"PIPELINING"} <= names(caps), caps
            assert b"STLS" not in names(caps)
            assert c.command("STLS").startswith(b"-ERR")
            assert c.command("STAT").startswith(b"+OK")     # the session survives


def test_stls_refused_when_tls_is_active(pop3_server):
    srv = pop3_server()
    with srv.connect("implicit") as c:
        assert c.command("STLS").startswith(b"-ERR")
        assert c.capa()
    with srv.connect("starttls") as c:
        assert c.command("STLS").startswith(b"-ERR")
        assert c.capa()


def test_auth_without_mechanism_lists_plain(pop3_server):
    srv = pop3_server()
    with srv.connect("implicit") as c:
        first, body = c.multi("AUTH")
        assert first.startswith(b"+OK"), first
        assert b"PLAIN" in body.upper().split(b"\r\n")


# -- plaintext refusal ----------------------------------------------------------------------

def test_plaintext_auth_refused_before_stls(gateway, mailbox, dovecot):
    gw = gateway()
    c = gw.connect("starttls-noupgrade")
    r = c.command(f"USER {mailbox.user}")
    assert r.startswith(b"-ERR") and b"STLS" in r.upper(), r
    r = c.command(b"PASS " + mailbox.password.encode())
    assert r.startswith(b"-ERR"), r
    r = c.auth_plain(mailbox.user, mailbox.password)
    assert r.startswith(b"-ERR") and b"STLS" in r.upper(), r
    r = c.command("AUTH PLAIN")
    assert r.startswith(b"-ERR"), r
    time.sleep(0.2)
    assert f"user=<{mailbox.user}>" not in dovecot.log_text(), "credentials reached the backend"
    # the same connection upgrades and logs in
    assert c.stls(gw.context()).startswith(b"+OK")
    assert c.user_pass(mailbox.user, mailbox.password).startswith(b"+OK")
    assert c.command("STAT") == b"+OK 0 0"
    c.quit()


def test_plain_listener_with_allow_plaintext_auth(pop3_server, mailbox):
    srv = pop3_server(plain_listener=True)
    mailbox.append([b"Subject: p\r\n\r\nplain\r\n"])
    with srv.login(mailbox.user, mailbox.password, "plain") as c:
        assert c.command("STAT") == b"+OK 1 %d" % len(b"Subject: p\r\n\r\nplain\r\n")
    with srv.connect("plain") as c:
        assert c.auth_plain(mailbox.user, mailbox.password).startswith(b"+OK")


def test_starttls_listener_with_allow_plaintext_auth(gateway, mailbox):
    gw = gateway(starttls_plaintext_auth=True)
    with gw.connect("starttls-noupgrade") as c:
        assert c.user_pass(mailbox.user, mailbox.password).startswith(b"+OK")
        assert c.command("STAT").startswith(b"+OK")


# -- wrong passwords ------------------------------------------------------------------------

@pytest.mark.parametrize("method", ["userpass", "auth"])
def test_wrong_password_is_auth_error_and_session_continues(pop3_server, mailbox, method):
    srv = pop3_server()
    with srv.connect("implicit") as c:
        if method == "userpass":
            r = c.user_pass(mailbox.user, mailbox.password + "x")
        else:
            r = c.auth_plain(mailbox.user, mailbox.password + "x")
        assert r.startswith(b"-ERR [AUTH]"), r
        assert c.user_pass(mailbox.user, mailbox.password).startswith(b"+OK")
        assert c.command("STAT").startswith(b"+OK")


def test_unknown_user_is_auth_error(pop3_server):
    srv = pop3_server()
    with srv.connect("implicit") as c:
        r = c.user_pass("nosuchuser", "whatever")
        assert r.startswith(b"-ERR [AUTH]"), r


def test_failure_delay(gateway, mailbox):
    gw = gateway(failure_delay="1s")
    # An address without failures is never delayed.
    with gw.connect("implicit") as c:
        t0 = time.monotonic()
        assert c.user_pass(mailbox.user, mailbox.password).startswith(b"+OK")
        assert time.monotonic() - t0 < 0.9, "a successful login must not be delayed"
    with gw.connect("implicit") as c:
        assert c.command(f"USER {mailbox.user}").startswith(b"+OK")
        t0 = time.monotonic()
        r = c.command("PASS wrong-password")
        elapsed = time.monotonic() - t0
        assert r.startswith(b"-ERR [AUTH]"), r
        assert elapsed >= 0.9, f"failed login answered after {elapsed:.3f}s, configured 1s"
        t0 = time.monotonic()
        r = c.auth_plain(mailbox.user, "wrong again")
        elapsed = time.monotonic() - t0
        assert r.startswith(b"-ERR [AUTH]"), r
        # The failure delay, plus this address's penalty (1 s after one failure) before the backend.
        assert elapsed >= 1.9, f"failed AUTH answered after {elapsed:.3f}s"
    # Two failures from this address: even a right password now waits 2 s before the backend is asked.
    with gw.connect("implicit") as c:
        t0 = time.monotonic()
        assert c.user_pass(mailbox.user, mailbox.password).startswith(b"+OK")
        assert time.monotonic() - t0 >= 1.9, "the address's auth penalty applies before the backend"


# -- the backend login in one round trip ----------------------------------------------------

def test_backend_login_is_one_flight_that_dovecot_carries_out(gateway, dovecot, new_mailbox):
    """Dovecot's greeting lists SASL-IR and AUTH=PLAIN, so PopGate writes ID, AUTHENTICATE, SELECT
    and UID FETCH before Dovecot's first tagged answer (a relay between them records the order),
    and asks nothing more until LOGOUT. Dovecot runs the SELECT and FETCH that reached imap-login
    with the credentials (the maildrop is right); after a wrong password it refuses them and the
    login fails as [AUTH]. The relay's records hold credentials: only command names are shown."""
    mb = new_mailbox()
    mb.append([b"Subject: one\r\n\r\n1\r\n", b"Subject: two\r\n\r\n22\r\n", b"Subject: three\r\n\r\n333\r\n"])
    with RecordingRelay(dovecot.ports.imap) as relay:
        gw = gateway(backend_tls="none", backend_port=relay.port)
        with gw.connect("implicit") as c:
            wrong = c.user_pass(mb.user, mb.password + "x")
            right = c.user_pass(mb.user, mb.password)
            stat = c.command("STAT")
            assert c.quit().startswith(b"+OK")
        relay.wait_closed(connections=2)
    assert wrong.startswith(b"-ERR [AUTH]"), wrong
    assert right.startswith(b"+OK"), right
    assert stat.startswith(b"+OK 3 "), stat
    flight = ["ID", "AUTHENTICATE", "SELECT", "UID FETCH"]
    for index, events in enumerate(relay.connections):
        before = [n.split(" ", 1)[1] for n in command_names(sent_before_first_tagged_answer(events))]
        assert before == flight, f"connection {index}: before the first tagged answer PopGate sent {before}"
    failed, succeeded = relay.connections
    sent = [n.split(" ", 1)[1] for n in command_names(b"".join(c for d, c in succeeded if d == "c2s"))]
    assert sent == flight + ["LOGOUT"], f"no other round trip: {sent}"
    statuses = [t.split(" ")[1] for t in tagged_statuses(succeeded)]
    assert statuses[:4] == ["OK"] * 4, f"Dovecot's answers to {flight}: {statuses}"
    fetched = b"".join(c for d, c in succeeded if d == "s2c").count(b" FETCH (")
    assert fetched == 3, f"the pipelined FETCH answered {fetched} messages"
    statuses = [t.split(" ")[1] for t in tagged_statuses(failed)]
    assert statuses[1] == "NO" and "OK" not in statuses[2:4], \
        f"after a wrong password Dovecot refuses SELECT and FETCH: {statuses}"


# -- STLS command injection (CVE-2011-0411 class) ---------------------------------------------

def test_stls_command_injection_is_discarded(pop3_server, dovecot_differs):
    dovecot_differs("Dovecot feeds bytes pipelined after STLS into SSL_accept, so the handshake "
                    "fails (safe, but the session is lost)")
    srv = pop3_server()
    c = srv.connect("starttls-noupgrade")
    c.send(b"STLS\r\nCAPA\r\n")
    r = c.line()
    assert r.startswith(b"+OK"), r
    assert not c.buf, f"plaintext after the STLS answer: {bytes(c.buf)!r}"
    c.sock = srv.context().wrap_socket(c.sock, server_hostname="localhost")
    # the first response over TLS must answer a NEW command, not the injected CAPA
    r = c.command("XYZZY")
    assert r.startswith(b"-ERR"), f"injected command was executed after the handshake: {r!r}"
    caps = c.capa()
    assert b"STLS" not in names(caps)
    assert c.pending(0.3) == b""
    c.close()


# -- PIPELINING ----------------------------------------------------------------------------------

PIPELINE = ["STAT", "LIST 1", "UIDL 2", "LIST", "UIDL", "TOP 1 0", "RETR 2", "NOOP", "LIST 999",
            "TOP 3 2", "DELE 3", "LIST 3", "STAT", "RSET", "LIST 3", "RETR 8"]


def test_pipelining_50_commands_answered_in_order(pop3_server, small_mailbox):
    srv = pop3_server()
    commands = [PIPELINE[i % len(PIPELINE)] for i in range(50)]
    with srv.login(small_mailbox.user, small_mailbox.password) as c:
        expected = [c.response(cmd) for cmd in commands]
    with srv.login(small_mailbox.user, small_mailbox.password) as c:
        c.send("".join(cmd + "\r\n" for cmd in commands))
        got = [c.read_response(cmd) for cmd in commands]
        assert c.pending(0.3) == b""
    assert len(got) == 50
    for i, (cmd, e, g) in enumerate(zip(commands, expected, got)):
        assert g == e, f"answer {i + 1} to {cmd!r} differs"
    # the reference itself must contain the failures: LIST 999, and LIST 3 between DELE 3 and RSET
    assert sum(1 for e in expected if e.startswith(b"-ERR")) == 6


# -- limits and bad input -------------------------------------------------------------------------

def test_overlong_lines(pop3_server, mailbox, dovecot_differs):
    dovecot_differs("Dovecot accepts command lines up to its input buffer size (~4 KB)")
    srv = pop3_server()
    with srv.login(mailbox.user, mailbox.password) as c:
        for i in range(2):
            r = c.command(b"NOOP " + b"x" * 600)
            assert r.startswith(b"-ERR"), r
            assert c.command("NOOP").startswith(b"+OK"), "session must continue after an over-long line"
        c.send(b"STAT " + b"y" * 700 + b"\r\n")
        assert c.wait_closed(10), "third over-long line must close the connection"


@pytest.mark.parametrize("line", [
    b"XYZZY", b"STAT", b"LIST", b"RETR 1", b"DELE 1", b"PASS nobody-said-USER",
    b"\x01\x02\x7f garbage", b"\xff\xfe\xfd", b"",
], ids=lambda l: repr(l)[2:-1][:20] or "empty")
def test_bad_input_before_login(pop3_server, line):
    srv = pop3_server()
    with srv.connect("implicit") as c:
        r = c.command(line)
        assert r.startswith(b"-ERR"), r
        assert c.capa(), "session must survive"


def test_user_without_name(pop3_server, dovecot_differs):
    dovecot_differs("Dovecot answers a bare USER with +OK (empty user name)")
    srv = pop3_server()
    with srv.connect("implicit") as c:
        r = c.command("USER")
        assert r.startswith(b"-ERR"), r
        assert c.capa()


def test_nul_byte_before_login(pop3_server, mailbox, dovecot_differs):
    dovecot_differs("Dovecot cuts a command line at a NUL byte (USER name\\0junk answers +OK)")
    srv = pop3_server()
    with srv.connect("implicit") as c:
        r = c.command(b"USER " + mailbox.user.encode() + b"\x00junk")
        assert r.startswith(b"-ERR"), r
        assert c.capa()


POST_LOGIN_BAD = [
    b"RETR 0", b"RETR -1", b"RETR 99999999999999999999", b"RETR 1a", b"RETR", b"TOP 1",
    b"TOP 1 x", b"TOP 1 -1", b"TOP 0 1", b"LIST 0", b"LIST 999", b"DELE 999", b"UIDL 0",
    b"USER someone", b"PASS secret", b"XYZZY", b"\xff\xfe\x80", b"\x01\x02\x03",
]


def test_bad_input_after_login(pop3_server, mailbox):
    mailbox.append([b"Subject: one\r\n\r\nbody\r\n"])
    srv = pop3_server()
    with srv.login(mailbox.user, mailbox.password) as c:
        for line in POST_LOGIN_BAD:
            r = c.command(line)
            assert r.startswith(b"-ERR"), (line, r)
            r = c.command("STAT")
            assert r == b"+OK 1 %d" % len(b"Subject: one\r\n\r\nbody\r\n"), (line, r)


def test_nul_byte_after_login(pop3_server, mailbox, dovecot_differs):
    dovecot_differs("Dovecot cuts a command line at a NUL byte (STAT\\0x answers +OK)")
    srv = pop3_server()
    with srv.login(mailbox.user, mailbox.password) as c:
        r = c.command(b"STAT\x00x")
        assert r.startswith(b"-ERR"), r
        assert c.command("STAT").startswith(b"+OK")


def test_quit_before_login(pop3_server):
    srv = pop3_server()
    c = srv.connect("implicit")
    assert c.command("QUIT").startswith(b"+OK")
    assert c.wait_closed(5)


@pytest.mark.parametrize("backend_tls", ["implicit", "none"])
def test_session_idle_long_enough_to_give_back_its_buffers_goes_on_byte_exact(gateway, mailbox, backend_tls):
    """A session that waited 2 s for a command gives back the buffers a message grew (its TLS memory
    buffers are swapped for fresh ones, on the client side and on an IMAPS backend link); the next
    commands on both links must go on byte for byte."""
    body = corpus.big(raw_size=300_000)
    small = [b"Subject: two\r\n\r\nline\r\n.starts with a dot\r\n", b"Subject: three\r\n\r\n" + b"x" * 5000 + b"\r\n"]
    mailbox.append([body] + small)
    gw = gateway(backend_tls=backend_tls)
    c = gw.login(mailbox.user, mailbox.password)
    try:
        first, retrieved = c.multi("RETR 1")
        assert first.startswith(b"+OK") and unstuff(retrieved) == expected_pop3_bytes(body)
        time.sleep(3)   # > GatewaySession.idleMemoryDelay
        for number, expected in enumerate(small, start=2):
            first, retrieved = c.multi(f"RETR {number}")
            assert first.startswith(b"+OK") and unstuff(retrieved) == expected_pop3_bytes(expected), number
        time.sleep(3)
        first, retrieved = c.multi("RETR 1")
        assert unstuff(retrieved) == expected_pop3_bytes(body), "the big message again, after a second idle release"
        assert c.quit() == b"+OK Logging out."
    finally:
        c.close()
    assert gw.is_running()
