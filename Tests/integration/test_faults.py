"""Backend faults (scripted fake IMAP backend, Dovecot stopped/absent) and backend TLS
variants against the real Dovecot. PopGate-only."""
from __future__ import annotations

import time

import pytest

from harness.net import free_ports
from harness.pop3 import ConnectionClosed

USER, PASSWORD = "fakeuser", "fake pass"
BIG = b"Subject: big\r\n\r\n" + b"".join(b"line %06d of a biggish message\r\n" % i for i in range(4000))


def login_reply(gw, user=USER, password=PASSWORD, mode="implicit") -> bytes:
    with gw.connect(mode) as c:
        return c.user_pass(user, password)


@pytest.fixture
def via_fake(gateway, fake_backend):
    """via_fake(behaviour=..., messages=..., **gateway options) → (gateway, fake)."""
    def start(behaviour="normal", messages=None, flags=None, **gw_opts):
        fake = fake_backend(behaviour=behaviour, messages=messages or [], flags=flags,
                            user=USER, password=PASSWORD)
        gw_opts.setdefault("backend_timeout", "3s")
        gw = gateway(backend_tls="none", backend_port=fake.port, **gw_opts)
        return gw, fake
    return start


def assert_gateway_alive(gw):
    assert gw.is_running(), "the gateway process died"
    with gw.connect("implicit") as c:
        assert c.greeting.startswith(b"+OK")


# -- reaching the backend ----------------------------------------------------------------------

@pytest.mark.parametrize("backend_tls", ["starttls", "implicit"])
def test_backend_down(gateway, mailbox, backend_tls):
    (dead,) = free_ports(1)
    gw = gateway(backend_tls=backend_tls, backend_port=dead)
    r = login_reply(gw, mailbox.user, mailbox.password)
    assert r.startswith(b"-ERR [SYS/TEMP]"), r
    assert_gateway_alive(gw)


def test_backend_hangs_at_banner(via_fake):
    gw, fake = via_fake("hang_banner", backend_timeout="2s")
    t0 = time.monotonic()
    r = login_reply(gw)
    elapsed = time.monotonic() - t0
    assert r.startswith(b"-ERR [SYS/TEMP]"), r
    assert 1.5 <= elapsed <= 15, f"answered after {elapsed:.2f}s with backend timeout 2s"
    assert_gateway_alive(gw)


def test_backend_closes_at_banner(via_fake):
    gw, fake = via_fake("close_banner")
    r = login_reply(gw)
    assert r.startswith(b"-ERR [SYS/TEMP]"), r
    assert_gateway_alive(gw)


@pytest.mark.parametrize("behaviour", ["garbage_banner", "garbage_response"])
def test_backend_sends_garbage(via_fake, behaviour):
    gw, fake = via_fake(behaviour, backend_timeout="2s")
    r = login_reply(gw)
    assert r.startswith(b"-ERR [SYS/"), r
    assert_gateway_alive(gw)


def test_backend_login_unavailable(via_fake):
    gw, fake = via_fake("unavailable_login")
    r = login_reply(gw)
    assert r.startswith(b"-ERR [SYS/TEMP]"), r


def test_backend_rejects_password(via_fake):
    gw, fake = via_fake("normal")
    r = login_reply(gw, USER, "not the password")
    assert r.startswith(b"-ERR [AUTH]"), r


def test_select_in_use(via_fake):
    gw, fake = via_fake("inuse_select", messages=[b"Subject: x\r\n\r\nx\r\n"])
    r = login_reply(gw)
    assert r.startswith(b"-ERR [IN-USE]"), r


def test_no_credentials_when_backend_starttls_is_missing(gateway, fake_backend):
    fake = fake_backend(user=USER, password=PASSWORD)          # advertises no STARTTLS
    gw = gateway(backend_tls="starttls", backend_port=fake.port, backend_timeout="3s")
    r = login_reply(gw)
    assert r.startswith(b"-ERR [SYS/"), r
    assert not fake.sent_any("LOGIN", "AUTHENTICATE"), f"credentials sent in clear: {fake.command_names()}"


# -- drops during a session ------------------------------------------------------------------------

def test_backend_drops_mid_retr(via_fake):
    gw, fake = via_fake("drop_mid_literal", messages=[BIG, b"Subject: two\r\n\r\n2\r\n"])
    c = gw.login(USER, PASSWORD)
    assert c.command("DELE 2").startswith(b"+OK")
    first = c.command("RETR 1")
    if first.startswith(b"+OK"):
        with pytest.raises(ConnectionClosed):
            c.multiline_raw()          # must never see the terminating "." of a cut message
    else:
        assert first.startswith(b"-ERR"), first
        c.close()
    time.sleep(0.5)
    assert not fake.sent_any("UID STORE", "STORE", "UID EXPUNGE", "EXPUNGE", "UID MOVE", "UID COPY"), \
        fake.command_names()
    assert [m.flags for m in fake.inbox()] == [set(), set()]
    assert_gateway_alive(gw)


def test_backend_drops_at_quit(via_fake):
    gw, fake = via_fake("drop_at_quit", messages=[b"Subject: one\r\n\r\n1\r\n", b"Subject: two\r\n\r\n2\r\n"],
                        on_delete="expunge")
    c = gw.login(USER, PASSWORD)
    assert c.multi("RETR 1")[0].startswith(b"+OK")
    assert c.command("DELE 2").startswith(b"+OK")
    try:
        r = c.command("QUIT")
    except ConnectionClosed:
        pytest.fail("QUIT must be answered with -ERR when the backend fails, not a silent close")
    assert r.startswith(b"-ERR"), f"QUIT answered {r!r} although nothing could be applied"
    c.close()
    assert_gateway_alive(gw)


# -- the translation, observed from the backend -------------------------------------------------------

FAKE_MSGS = [
    b"Subject: lf\n\nbare\nLF\n.dot first\n.\nend",                      # bare LF, no final newline
    b"Subject: crlf\r\n\r\n..two\r\n.\r\nlast\r\n",
    b"Subject: webmail deleted\r\n\r\nhidden\r\n",
    b"Subject: four\r\n\r\nl1\r\nl2\r\nl3\r\n",
]


def test_translation_against_fake(via_fake):
    gw, fake = via_fake("normal", messages=FAKE_MSGS, flags=[set(), set(), {"\\Deleted"}, set()],
                        on_delete="expunge", on_retrieve="seen")
    c = gw.login(USER, PASSWORD)
    assert c.command("STAT") == b"+OK 3 %d" % (len(FAKE_MSGS[0]) + len(FAKE_MSGS[1]) + len(FAKE_MSGS[3]))
    _, raw = c.multi("RETR 1")
    assert raw == b"Subject: lf\r\n\r\nbare\r\nLF\r\n..dot first\r\n..\r\nend\r\n"
    _, raw = c.multi("RETR 2")
    assert raw == b"Subject: crlf\r\n\r\n...two\r\n..\r\nlast\r\n"
    _, raw = c.multi("TOP 3 1")
    assert raw == b"Subject: four\r\n\r\nl1\r\n"
    assert c.command("DELE 3").startswith(b"+OK")
    assert c.quit().startswith(b"+OK")
    names = fake.command_names()
    assert "UID FETCH" in names
    body_fetches = [x for x in fake.commands if "BODY" in x.upper()]
    assert all("BODY.PEEK[" in x.upper() for x in body_fetches), f"fetches must not set \\Seen: {body_fetches}"
    expunges = [x for x in fake.commands if x.upper().startswith("UID EXPUNGE")]
    assert expunges == ["UID EXPUNGE 4"], f"exactly the DELE'd UID: {fake.commands}"
    assert not fake.sent_any("EXPUNGE"), "plain EXPUNGE would remove the webmail's \\Deleted message too"
    inbox = {m.uid: m.flags for m in fake.inbox()}
    assert set(inbox) == {1, 2, 3}
    assert "\\Seen" in inbox[1] and "\\Seen" in inbox[2]
    assert inbox[3] == {"\\Deleted"}


def test_drop_without_quit_sends_no_store(via_fake):
    gw, fake = via_fake("normal", messages=FAKE_MSGS[:2])
    c = gw.login(USER, PASSWORD)
    assert c.multi("RETR 1")[0].startswith(b"+OK")
    assert c.command("DELE 2").startswith(b"+OK")
    c.abort()
    time.sleep(1.0)
    assert not fake.sent_any("UID STORE", "STORE", "UID EXPUNGE", "EXPUNGE", "UID MOVE"), fake.command_names()


# -- backend TLS against the real Dovecot ----------------------------------------------------------------

@pytest.mark.parametrize("backend_tls", ["starttls", "implicit"])
def test_backend_tls_modes(gateway, mailbox, backend_tls):
    mailbox.append([b"Subject: t\r\n\r\ntls\r\n"])
    gw = gateway(backend_tls=backend_tls)
    with gw.login(mailbox.user, mailbox.password) as c:
        assert c.multi("RETR 1")[1] == b"Subject: t\r\n\r\ntls\r\n"


@pytest.mark.parametrize("backend_tls", ["starttls", "implicit"])
def test_backend_certificate_name_is_checked(gateway, mailbox, dovecot, backend_tls):
    gw = gateway(backend_tls=backend_tls, server_name="wrong.example")
    r = login_reply(gw, mailbox.user, mailbox.password)
    assert r.startswith(b"-ERR [SYS/"), r
    time.sleep(0.2)
    assert f"user=<{mailbox.user}>" not in dovecot.log_text(), "credentials sent to an unverified backend"


def test_backend_verify_certificate_false(gateway, mailbox):
    gw = gateway(backend_tls="implicit", server_name="wrong.example", verify_certificate=False)
    with gw.login(mailbox.user, mailbox.password) as c:
        assert c.command("STAT") == b"+OK 0 0"
