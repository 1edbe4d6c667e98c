"""The maildrop as POP3 sees it: STAT/LIST sizes, LIST/UIDL equal to Dovecot's own POP3,
RETR bytes equal to IMAP BODY[], TOP byte-exact against Dovecot's TOP, hidden \\Deleted
messages, and the 2,000-message mailbox."""
from __future__ import annotations

import poplib

import pytest

from harness.pop3 import expected_pop3_bytes, parse_list, parse_uidl, unstuff

poplib._MAXLINE = 1 << 20


def stuff(message: bytes) -> bytes:
    """RFC 1939 §3 byte-stuffing of the bytes a RETR must deliver (CRLF lines)."""
    data = expected_pop3_bytes(message)
    lines = data.split(b"\r\n")
    return b"\r\n".join(b"." + l if l.startswith(b".") else l for l in lines)


def uid_of(uidl: str) -> int:
    return int(uidl[:8], 16)


@pytest.fixture(scope="module")
def corpus_imap(corpus_mailbox):
    """IMAP view of the read-only corpus mailbox (UID order = POP3 message number order)."""
    return corpus_mailbox.messages()


# -- STAT / LIST / UIDL ------------------------------------------------------------------------

def test_stat_and_list_sizes_are_rfc822_size(pop3_server, corpus_mailbox, corpus_imap):
    srv = pop3_server()
    sizes = [m.size for m in corpus_imap]
    with srv.login(corpus_mailbox.user, corpus_mailbox.password) as c:
        assert c.command("STAT") == b"+OK %d %d" % (len(sizes), sum(sizes))
        first, body = c.multi("LIST")
        assert first.startswith(b"+OK")
        assert parse_list(body) == list(enumerate(sizes, start=1))
        for n, size in enumerate(sizes, start=1):
            assert c.command(f"LIST {n}") == b"+OK %d %d" % (n, size)
        assert c.command(f"LIST {len(sizes) + 1}").startswith(b"-ERR")


def test_uidl_is_uid_and_uidvalidity(pop3_server, corpus_mailbox, corpus_imap):
    # Dovecot's pop3_uidl_format %08Xu%08Xv: the X modifier of Dovecot's var_expand prints
    # LOWER-case hex ("000000016b0a654a"); PopGate's default must give the same UIDLs.
    srv = pop3_server()
    validity = corpus_mailbox.imap.uidvalidity()
    with srv.login(corpus_mailbox.user, corpus_mailbox.password) as c:
        first, body = c.multi("UIDL")
        assert first.startswith(b"+OK")
        expected = [(n, "%08x%08x" % (m.uid, validity)) for n, m in enumerate(corpus_imap, start=1)]
        assert parse_uidl(body) == expected
        assert c.command("UIDL 2") == b"+OK 2 " + expected[1][1].encode()


@pytest.mark.parametrize("which", ["corpus_mailbox", "bulk_mailbox"])
def test_list_and_uidl_equal_dovecot_pop3(request, pop3_server, dovecot_pop3, which):
    mb = request.getfixturevalue(which)
    srv = pop3_server()
    out = {}
    for name, server in (("target", srv), ("dovecot", dovecot_pop3)):
        with server.login(mb.user, mb.password) as c:
            lst = c.multi("LIST")
            uidl = c.multi("UIDL")
            singles = [c.command(f"{cmd} {n}") for n in (1, 2, 7) for cmd in ("LIST", "UIDL")]
            assert lst[0].startswith(b"+OK") and uidl[0].startswith(b"+OK")
            out[name] = (lst[1], uidl[1], singles)
    assert out["target"][0] == out["dovecot"][0], "LIST differs from Dovecot's POP3"
    assert out["target"][1] == out["dovecot"][1], "UIDL differs from Dovecot's POP3"
    assert out["target"][2] == out["dovecot"][2]


# -- RETR -------------------------------------------------------------------------------------------

def test_retr_bytes_equal_imap_body(pop3_server, corpus_mailbox, corpus_imap):
    srv = pop3_server()
    with srv.login(corpus_mailbox.user, corpus_mailbox.password) as c:
        for n, m in enumerate(corpus_imap, start=1):
            first, raw = c.multi(f"RETR {n}")
            assert first.startswith(b"+OK"), first
            assert unstuff(raw) == expected_pop3_bytes(m.body), f"message {n}"
            assert raw == stuff(m.body), f"message {n}: byte-stuffing differs"


def test_retr_with_poplib_over_stls_and_implicit_tls(pop3_server, corpus_mailbox, corpus_imap, pki):
    srv = pop3_server()
    small = corpus_imap[:-1]          # the 25 MB message is covered by the raw test above
    ctx = pki.client_context()
    p = poplib.POP3(srv.host, srv.starttls_port, timeout=30)
    p.stls(ctx)
    clients = [p, poplib.POP3_SSL(srv.host, srv.implicit_port, context=ctx, timeout=30)]
    for p in clients:
        p.user(corpus_mailbox.user)
        p.pass_(corpus_mailbox.password)
        count, _ = p.stat()
        assert count == len(corpus_imap)
        for n, m in enumerate(small, start=1):
            resp, lines, octets = p.retr(n)
            assert resp.startswith(b"+OK")
            assert b"".join(l + b"\r\n" for l in lines) == expected_pop3_bytes(m.body), f"message {n}"
        p.quit()


# -- TOP ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("lines", [0, 1, 3, 1000])
def test_top_equals_dovecot_pop3(pop3_server, dovecot_pop3, corpus_mailbox, corpus_imap, lines):
    srv = pop3_server()
    with srv.login(corpus_mailbox.user, corpus_mailbox.password) as c, \
            dovecot_pop3.login(corpus_mailbox.user, corpus_mailbox.password) as ref:
        for n in range(1, len(corpus_imap) + 1):
            got = c.multi(f"TOP {n} {lines}")
            want = ref.multi(f"TOP {n} {lines}")
            assert got[0].startswith(b"+OK") and want[0].startswith(b"+OK"), (got[0], want[0])
            assert got[1] == want[1], f"TOP {n} {lines} differs from Dovecot's POP3"


def test_top_does_not_exceed_the_message(pop3_server, corpus_mailbox, corpus_imap):
    srv = pop3_server()
    with srv.login(corpus_mailbox.user, corpus_mailbox.password) as c:
        for n, m in enumerate(corpus_imap[:-1], start=1):
            first, raw = c.multi(f"TOP {n} 100000")
            assert first.startswith(b"+OK")
            assert unstuff(raw) == expected_pop3_bytes(m.body), f"TOP {n} with a huge count = RETR"


# -- what is listed ------------------------------------------------------------------------------------

def test_messages_deleted_by_another_client_are_not_listed(pop3_server, mailbox, dovecot_differs):
    dovecot_differs("Dovecot's POP3 lists messages that have \\Deleted")
    uids = mailbox.append([b"Subject: a\r\n\r\na\r\n", b"Subject: gone\r\n\r\nwebmail deleted me\r\n",
                           b"Subject: c\r\n\r\nc\r\n"], flags=[(), ("\\Deleted",), ()])
    validity = mailbox.imap.uidvalidity()
    srv = pop3_server()
    with srv.login(mailbox.user, mailbox.password) as c:
        assert c.command("STAT") == b"+OK 2 %d" % (2 * len(b"Subject: a\r\n\r\na\r\n"))
        _, body = c.multi("UIDL")
        assert [u for _, u in parse_uidl(body)] == ["%08x%08x" % (u, validity) for u in (uids[0], uids[2])]
        _, raw = c.multi("RETR 2")
        assert raw == b"Subject: c\r\n\r\nc\r\n"


def test_empty_mailbox(pop3_server, mailbox):
    srv = pop3_server()
    with srv.login(mailbox.user, mailbox.password) as c:
        assert c.command("STAT") == b"+OK 0 0"
        assert c.multi("LIST")[1] == b""
        assert c.multi("UIDL")[1] == b""
        assert c.command("RETR 1").startswith(b"-ERR")
        assert c.command("TOP 1 0").startswith(b"-ERR")
        assert c.quit().startswith(b"+OK")


# -- the 2,000-message mailbox -----------------------------------------------------------------------------

def test_bulk_full_download(pop3_server, bulk_mailbox):
    srv = pop3_server()
    imap = bulk_mailbox.messages()
    assert len(imap) == 2000
    with srv.login(bulk_mailbox.user, bulk_mailbox.password) as c:
        assert c.command("STAT") == b"+OK 2000 %d" % sum(m.size for m in imap)
        for start in range(1, 2001, 100):          # pipelined, 100 RETRs per send
            batch = range(start, min(start + 100, 2001))
            c.send("".join(f"RETR {n}\r\n" for n in batch))
            for n in batch:
                first = c.line()
                assert first.startswith(b"+OK"), (n, first)
                assert c.multiline_raw() == stuff(imap[n - 1].body), f"message {n}"
