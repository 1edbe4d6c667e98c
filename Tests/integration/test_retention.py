"""DELE/RSET and what QUIT applies on the IMAP side (retention policy), and that a dropped
or timed-out session applies nothing."""
from __future__ import annotations

import socket
import time

import pytest

from harness.pop3 import parse_list, parse_uidl

A = b"Subject: A\r\n\r\nfirst message\r\n"
B = b"Subject: B\r\n\r\nsecond message\r\n"
C = b"Subject: C\r\n\r\nthird message\r\n"
W = b"Subject: W\r\n\r\nwebmail set \\Deleted on me\r\n"


def numbers_by_uid(conn) -> dict[int, int]:
    """POP3 message number for each IMAP UID, read from UIDL (%08Xu%08Xv)."""
    first, body = conn.multi("UIDL")
    assert first.startswith(b"+OK"), first
    return {int(u[:8], 16): n for n, u in parse_uidl(body)}


def test_dele_hides_and_rset_restores(pop3_server, mailbox):
    mailbox.append([A, B, C])
    srv = pop3_server()
    with srv.login(mailbox.user, mailbox.password) as c:
        assert c.command("DELE 2").startswith(b"+OK")
        for cmd in ("RETR 2", "LIST 2", "TOP 2 0", "UIDL 2", "DELE 2"):
            assert c.command(cmd).startswith(b"-ERR"), cmd
        assert c.command("STAT") == b"+OK 2 %d" % (len(A) + len(C))
        assert [n for n, _ in parse_list(c.multi("LIST")[1])] == [1, 3]
        assert [n for n, _ in parse_uidl(c.multi("UIDL")[1])] == [1, 3]
        assert c.command("RSET").startswith(b"+OK")
        assert c.command("STAT") == b"+OK 3 %d" % (len(A) + len(B) + len(C))
        assert c.multi("RETR 2")[1] == B
    # closed without QUIT: nothing changes
    time.sleep(0.3)
    assert [m.body for m in mailbox.messages()] == [A, B, C]


def test_quit_expunge_removes_exactly_the_deleted(pop3_server, mailbox):
    uids = mailbox.append([A, B, C, W], flags=[(), (), (), ("\\Deleted",)])
    srv = pop3_server(on_delete="expunge")
    with srv.login(mailbox.user, mailbox.password) as c:
        num = numbers_by_uid(c)
        assert c.command(f"DELE {num[uids[0]]}").startswith(b"+OK")
        assert c.command(f"DELE {num[uids[2]]}").startswith(b"+OK")
        assert c.quit().startswith(b"+OK")
    left = mailbox.messages()
    assert [m.uid for m in left] == [uids[1], uids[3]], "only the DELE'd messages may be expunged"
    assert "\\Deleted" in left[1].flags, "the webmail's \\Deleted message must stay"
    with srv.login(mailbox.user, mailbox.password) as c:
        assert uids[1] in numbers_by_uid(c)


@pytest.mark.parametrize("move_to", [None, "Deleted Messages"])
def test_quit_move_to_trash(pop3_server, mailbox, move_to):
    uids = mailbox.append([A, B, C])
    srv = pop3_server(on_delete="move", move_to=move_to)
    folder = move_to or "Trash"
    assert folder not in mailbox.folders()
    with srv.login(mailbox.user, mailbox.password) as c:
        assert c.command("DELE 1").startswith(b"+OK")
        assert c.command("DELE 3").startswith(b"+OK")
        assert c.quit().startswith(b"+OK")
    assert folder in mailbox.folders(), f"{folder} must be created when missing"
    assert [m.uid for m in mailbox.messages()] == [uids[1]]
    assert sorted(m.body for m in mailbox.messages(folder)) == sorted([A, C])
    # a second session moves into the now existing folder
    with srv.login(mailbox.user, mailbox.password) as c:
        assert c.command("DELE 1").startswith(b"+OK")
        assert c.quit().startswith(b"+OK")
    assert mailbox.messages() == []
    assert len(mailbox.messages(folder)) == 3


def test_quit_flag_keeps_message_hidden(pop3_server, mailbox):
    uids = mailbox.append([A, B, C])
    srv = pop3_server(on_delete="flag")
    with srv.login(mailbox.user, mailbox.password) as c:
        assert c.command("DELE 2").startswith(b"+OK")
        assert c.quit().startswith(b"+OK")
    flags = mailbox.flags()
    assert list(flags) == uids, "flag mode removes nothing"
    assert flags[uids[1]] == {"$POP3Deleted", "\\Seen"}
    assert flags[uids[0]] == set() and flags[uids[2]] == set()
    with srv.login(mailbox.user, mailbox.password) as c:
        assert c.command("STAT") == b"+OK 2 %d" % (len(A) + len(C))
        assert sorted(numbers_by_uid(c)) == [uids[0], uids[2]]


def test_quit_flag_with_custom_keyword(pop3_server, mailbox):
    uids = mailbox.append([A, B])
    srv = pop3_server(on_delete="flag", flag_keyword="$PopGone")
    with srv.login(mailbox.user, mailbox.password) as c:
        assert c.command("DELE 1").startswith(b"+OK")
        assert c.quit().startswith(b"+OK")
    assert mailbox.flags()[uids[0]] == {"$PopGone", "\\Seen"}
    with srv.login(mailbox.user, mailbox.password) as c:
        assert c.command("STAT").startswith(b"+OK 1 ")


def test_quit_keep(pop3_server, mailbox):
    uids = mailbox.append([A, B])
    srv = pop3_server(on_delete="keep")
    with srv.login(mailbox.user, mailbox.password) as c:
        assert c.command("DELE 1").startswith(b"+OK")
        assert c.quit().startswith(b"+OK")
    flags = mailbox.flags()
    assert list(flags) == uids
    assert flags[uids[0]] == {"\\Seen"}
    assert flags[uids[1]] == set()
    with srv.login(mailbox.user, mailbox.password) as c:
        assert c.command("STAT") == b"+OK 2 %d" % (len(A) + len(B)), "keep: listed again"


def test_on_retrieve_seen_only_for_retr(pop3_server, mailbox):
    uids = mailbox.append([A, B, C])
    srv = pop3_server(on_retrieve="seen")
    with srv.login(mailbox.user, mailbox.password) as c:
        assert c.multi("RETR 1")[1] == A
        assert c.multi("TOP 2 0")[0].startswith(b"+OK")
        time.sleep(0.2)
        assert mailbox.flags()[uids[0]] == set(), "\\Seen must wait for QUIT"
        assert c.quit().startswith(b"+OK")
    flags = mailbox.flags()
    assert flags == {uids[0]: {"\\Seen"}, uids[1]: set(), uids[2]: set()}


def test_on_retrieve_none(pop3_server, mailbox):
    uids = mailbox.append([A, B])
    srv = pop3_server(on_retrieve="none")
    with srv.login(mailbox.user, mailbox.password) as c:
        assert c.multi("RETR 1")[1] == A
        assert c.multi("RETR 2")[1] == B
        assert c.quit().startswith(b"+OK")
    assert mailbox.flags() == {uids[0]: set(), uids[1]: set()}


def test_dropped_connection_applies_nothing(pop3_server, mailbox, dovecot_differs):
    dovecot_differs("Dovecot sets \\Seen on RETR'd messages when the client disconnects without QUIT")
    uids = mailbox.append([A, B, C])
    srv = pop3_server(on_delete="expunge", on_retrieve="seen")
    c = srv.login(mailbox.user, mailbox.password)
    assert c.command("DELE 1").startswith(b"+OK")
    assert c.multi("RETR 2")[1] == B
    c.abort()
    time.sleep(1.0)
    assert mailbox.flags() == {u: set() for u in uids}
    with srv.login(mailbox.user, mailbox.password) as c:
        assert c.command("STAT").startswith(b"+OK 3 ")


def test_idle_timeout_closes_and_applies_nothing(gateway, mailbox):
    uids = mailbox.append([A, B, C])
    gw = gateway(idle="2s", on_delete="expunge")
    c = gw.login(mailbox.user, mailbox.password)
    assert c.command("DELE 1").startswith(b"+OK")
    assert c.multi("RETR 2")[1] == B
    t0 = time.monotonic()
    assert c.wait_closed(15), "idle connection must be closed"
    elapsed = time.monotonic() - t0
    assert 1.5 <= elapsed <= 10, f"closed after {elapsed:.2f}s with idle 2s"
    time.sleep(0.3)
    assert mailbox.flags() == {u: set() for u in uids}


def test_idle_timeout_before_login(gateway):
    gw = gateway(idle="2s")
    for mode in ("implicit", "starttls-noupgrade"):
        c = gw.connect(mode)
        t0 = time.monotonic()
        assert c.wait_closed(15)
        assert time.monotonic() - t0 >= 1.5


def test_idle_timeout_of_a_client_that_never_starts_tls(gateway):
    """A client that connects to the implicit-TLS port and never sends a ClientHello is closed too."""
    gw = gateway(idle="2s")
    with socket.create_connection(("127.0.0.1", gw.implicit_port), timeout=15) as s:
        t0 = time.monotonic()
        assert s.recv(100) == b"", "closed without a byte"
        assert 1.5 <= time.monotonic() - t0 <= 10


def test_quit_closes_the_connection(pop3_server, mailbox):
    srv = pop3_server()
    c = srv.login(mailbox.user, mailbox.password)
    assert c.command("QUIT").startswith(b"+OK")
    assert c.wait_closed(5)


def half_closed_exchange(gw, script: str) -> bytes:
    """Sends `script` on the plain listener, shuts down the sending side, reads until EOF."""
    with socket.create_connection(("127.0.0.1", gw.plain_port), timeout=15) as s:
        s.sendall(script.encode())
        s.shutdown(socket.SHUT_WR)
        received = b""
        while chunk := s.recv(65536):
            received += chunk
    return received


def test_half_closed_client_gets_its_pipelined_commands_carried_out(gateway, mailbox):
    """`printf 'USER…PASS…RETR 1\\r\\nDELE 1\\r\\nQUIT\\r\\n' | nc -N host 110`: the client shuts down
    its sending side after the last command and reads the answers; its QUIT must still count."""
    uids = mailbox.append([b"Subject: one\r\n\r\nbody one\r\n", b"Subject: two\r\n\r\nbody two\r\n"])
    gw = gateway(plain_listener=True, on_delete="flag")
    received = half_closed_exchange(gw, f"USER {mailbox.user}\r\nPASS {mailbox.password}\r\nRETR 1\r\nDELE 1\r\nQUIT\r\n")
    lines = received.split(b"\r\n")
    assert lines[0].startswith(b"+OK") and received.endswith(b"+OK Logging out.\r\n"), received
    assert b"body one" in received
    assert mailbox.flags() == {uids[0]: {"$POP3Deleted", "\\Seen"}, uids[1]: set()}


def test_half_closed_client_without_quit_applies_nothing(gateway, mailbox):
    uids = mailbox.append([b"Subject: one\r\n\r\nbody one\r\n"])
    gw = gateway(plain_listener=True, on_delete="expunge")
    received = half_closed_exchange(gw, f"USER {mailbox.user}\r\nPASS {mailbox.password}\r\nRETR 1\r\nDELE 1\r\n")
    assert received.endswith(b"+OK Marked to be deleted.\r\n"), received
    time.sleep(0.3)
    assert mailbox.flags() == {uids[0]: set()}
