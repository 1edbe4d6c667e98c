"""The harness itself: Dovecot, the PKI, the IMAP helpers, the corpus and the fake backend.
These run for both targets and need no PopGate."""
from __future__ import annotations

import base64
import hashlib
import imaplib
import socket
import ssl

import pytest

from harness import corpus
from harness.fakeimap import FakeImapBackend
from harness.imap import _parse_fetch
from harness.procinfo import listening_ports

LOOPBACK_HEX = {"0100007F"}   # 127.0.0.1 in /proc/net/tcp byte order


def crlf(data: bytes) -> bytes:
    """What Dovecot serves for stored bytes: every line ending as CRLF."""
    return data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def test_dovecot_listens_on_loopback_only(dovecot):
    listening = listening_ports(dovecot.proc.pid)
    ports = {p for _, p in listening}
    assert {dovecot.ports.imap, dovecot.ports.imaps, dovecot.ports.pop3, dovecot.ports.pop3s} <= ports
    assert {a for a, _ in listening} <= LOOPBACK_HEX, listening


def test_tls_certificate_verifies_for_localhost_and_ip(dovecot, pki):
    for name in ("localhost", "127.0.0.1"):
        ctx = pki.client_context()
        with socket.create_connection((dovecot.host, dovecot.ports.imaps), timeout=10) as raw:
            with ctx.wrap_socket(raw, server_hostname=name) as s:
                assert s.recv(100).startswith(b"* OK")
    ctx = pki.client_context()
    with socket.create_connection((dovecot.host, dovecot.ports.imaps), timeout=10) as raw:
        with pytest.raises(ssl.SSLCertVerificationError):
            ctx.wrap_socket(raw, server_hostname="wrong.example")


def test_imap_starttls_on_plain_port(dovecot, pki):
    m = imaplib.IMAP4(dovecot.host, dovecot.ports.imap)
    try:
        assert "STARTTLS" in m.capabilities
        m.starttls(pki.client_context())
    finally:
        m.shutdown()


def test_append_and_read_back(mailbox):
    msgs = list(corpus.small().values())
    uids = mailbox.append(msgs)
    assert uids == sorted(uids) and len(uids) == len(msgs)
    got = mailbox.messages()
    assert [m.uid for m in got] == uids
    for m, original in zip(got, msgs):
        assert m.body == crlf(original)           # Dovecot converts bare LF to CRLF on output
        assert m.size == len(crlf(original))      # RFC822.SIZE counts CRLF
    assert mailbox.folders() == ["INBOX"]


def test_append_with_flags_and_store(mailbox):
    uids = mailbox.append([b"Subject: a\r\n\r\na\r\n", b"Subject: b\r\n\r\nb\r\n"],
                          flags=[(), ("\\Deleted", "$Webmail")])
    assert mailbox.flags() == {uids[0]: frozenset(), uids[1]: frozenset({"\\Deleted", "$Webmail"})}
    mailbox.imap.store([uids[0]], ["\\Seen"])
    assert mailbox.flags()[uids[0]] == {"\\Seen"}
    mailbox.imap.create("Trash")
    assert mailbox.folders() == ["INBOX", "Trash"]


def test_users_file_is_live(dovecot, new_mailbox):
    mb = new_mailbox(password='sp ace "q" back\\slash ünï ✓')
    mb.append([b"Subject: x\r\n\r\nx\r\n"])              # logs in with the special password
    dovecot.add_user(mb.user, "changed")
    mb.imap.password = "changed"
    assert len(mb.messages()) == 1


def test_corpus_has_the_edge_cases():
    c = corpus.small()
    assert any(b"\r\n.\r\n" in m for m in c.values())                       # a line that is "."
    assert any(b"\r\n..two dots" in m for m in c.values())
    assert not c["no_final_newline"].endswith(b"\n")
    assert b"\r" not in c["bare_lf"]
    assert any(max(len(l) for l in m.split(b"\n")) > 998 for m in c.values())
    assert c["empty_body"].endswith(b"\r\n\r\n") and c["empty_body"].count(b"\r\n\r\n") == 1
    assert b"\r\n\r\n" not in c["header_only"]
    c["utf8_8bit"].decode("utf-8")
    assert any(b >= 0x80 for b in c["utf8_8bit"])


def test_big_message_is_deterministic_and_25mb():
    a = corpus.big()
    assert 25_000_000 <= len(a) <= 27_000_000
    assert hashlib.sha256(a).digest() == hashlib.sha256(corpus.big()).digest()
    b64 = a.split(b"\r\n\r\n")[-1].split(b"--XXpopgateXX--")[0]
    assert len(base64.b64decode(b64)) == corpus.BIG_RAW_SIZE


# -- the fake backend (validated with imaplib, so PopGate failures point at PopGate) --------

def test_fake_backend_happy_path():
    with FakeImapBackend(messages=[b"Subject: x\r\n\r\nhello\r\n", b"Subject: y\r\n\r\nbye\r\n"],
                         flags=[set(), {"\\Seen"}]) as f:
        m = imaplib.IMAP4("127.0.0.1", f.port)
        for cap in ("AUTH=PLAIN", "SASL-IR", "UIDPLUS", "MOVE"):
            assert cap in m.capabilities
        m.authenticate("PLAIN", lambda _: b"\0fakeuser\0fake pass")
        typ, data = m.select("INBOX")
        assert (typ, data) == ("OK", [b"2"])
        assert m.response("UIDVALIDITY")[1] == [b"3735928559"]
        typ, data = m.uid("FETCH", "1:*", "(UID RFC822.SIZE FLAGS)")
        assert data == [b"1 (UID 1 RFC822.SIZE 21 FLAGS ())", b"2 (UID 2 RFC822.SIZE 19 FLAGS (\\Seen))"]
        typ, data = m.uid("FETCH", "1", "(BODY.PEEK[])")
        assert _parse_fetch(data)[0].body == b"Subject: x\r\n\r\nhello\r\n"
        typ, data = m.uid("FETCH", "2", "(BODY.PEEK[]<3.4>)")
        assert data[0] == (b"2 (UID 2 BODY[]<3> {4}", b"ject")
        assert m.uid("STORE", "1", "+FLAGS.SILENT", "(\\Deleted)")[0] == "OK"
        assert m.uid("EXPUNGE", "1")[0] == "OK"
        assert [x.uid for x in f.inbox()] == [2]
        assert m.uid("MOVE", "2", "Trash")[0] == "NO"            # TRYCREATE
        assert m.create("Trash")[0] == "OK"
        assert m.uid("MOVE", "2", "Trash")[0] == "OK"
        assert f.inbox() == [] and [x.body for x in f.folders["Trash"]] == [b"Subject: y\r\n\r\nbye\r\n"]
        m.logout()
        assert f.command_names()[-3:] == ["CREATE", "UID MOVE", "LOGOUT"]
        m = imaplib.IMAP4("127.0.0.1", f.port)
        assert m.login("fakeuser", "fake pass")[0] == "OK"
        m.logout()
        m = imaplib.IMAP4("127.0.0.1", f.port)
        with pytest.raises(imaplib.IMAP4.error, match="AUTHENTICATIONFAILED"):
            m.login("fakeuser", "wrong")


@pytest.mark.parametrize("behaviour,expect", [
    ("unavailable_login", "UNAVAILABLE"),
    ("inuse_select", "INUSE"),
    ("drop_mid_literal", "EOF"),
    ("drop_at_quit", "EOF"),
    ("garbage_response", "unexpected response"),
])
def test_fake_backend_faults(behaviour, expect):
    with FakeImapBackend(behaviour=behaviour, messages=[b"Subject: x\r\n\r\n" + b"y" * 100 + b"\r\n"]) as f:
        with pytest.raises(Exception, match=expect):
            m = imaplib.IMAP4("127.0.0.1", f.port)
            m.login("fakeuser", "fake pass")
            typ, data = m.select("INBOX")
            if typ != "OK":
                raise imaplib.IMAP4.error(data[0].decode())
            m.uid("FETCH", "1", "(BODY.PEEK[])")
            m.uid("STORE", "1", "+FLAGS.SILENT", "(\\Seen)")


@pytest.mark.parametrize("behaviour", ["hang_banner", "close_banner", "garbage_banner"])
def test_fake_backend_banner_faults(behaviour):
    with FakeImapBackend(behaviour=behaviour) as f:
        with socket.create_connection(("127.0.0.1", f.port), timeout=1) as s:
            try:
                data = s.recv(100)
            except socket.timeout:
                data = None
        if behaviour == "hang_banner":
            assert data is None
        elif behaviour == "close_banner":
            assert data == b""
        else:
            assert data and not data.startswith(b"* OK")
