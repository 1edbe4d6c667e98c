"""Routing and policies (issue 8): logins routed by domain to two real Dovecot backends, the
routes file reloaded by SIGHUP, and the per-route policies `visible: not_popped | unseen` against
real Dovecot. Clients are Python's poplib (a POP3 client nobody here wrote)."""
from __future__ import annotations

import os
import poplib
import signal
import time

import pytest

from conftest import Mailbox, _new_mailbox
from harness.dovecot import Dovecot
from harness.imap import ImapAccount
from harness.pop3 import expected_pop3_bytes

poplib._MAXLINE = 1 << 20


def msg(subject: str, body: str = "hello") -> bytes:
    return (f"From: a@example.com\r\nTo: b@example.com\r\nSubject: {subject}\r\n\r\n{body}\r\n").encode()


@pytest.fixture(scope="module")
def dovecot_b(workdir, pki):
    """A second, independent Dovecot: the other backend of the fleet."""
    d = Dovecot(workdir / "dovecot-b", pki)
    d.start()
    yield d
    d.stop()


def mailbox_on(dovecot, user: str, password: str | None = None) -> Mailbox:
    password = password or f"pw-{os.urandom(6).hex()}-Zq"
    dovecot.add_user(user, password)
    return Mailbox(user, password, ImapAccount(dovecot.host, dovecot.ports.imap, user, password))


def fetch_all(gw, user: str, password: str) -> list[bytes]:
    """Every message via poplib over implicit TLS (RETR, dot-unstuffed by poplib), then QUIT."""
    p = poplib.POP3_SSL(gw.host, gw.implicit_port, context=gw.pki.client_context(), timeout=30)
    try:
        p.user(user)
        p.pass_(password)
        count, _ = p.stat()
        bodies = [b"\r\n".join(p.retr(i)[1]) + b"\r\n" for i in range(1, count + 1)]
        p.quit()
    finally:
        try:
            p.close()
        except OSError:
            pass
    return bodies


def routes_yaml(domain: str, port: int) -> str:
    return f"routes:\n  - domain: {domain}\n    backend:\n      address: \"127.0.0.1:{port}\"\n      tls: starttls\n" \
           f"      ca_file: \"{{ca}}\"\n      server_name: localhost\n    login: strip_domain\n"


def test_two_domains_go_to_their_own_backends_byte_exact(gateway, dovecot, dovecot_b, pki):
    tag = os.urandom(3).hex()
    alice = mailbox_on(dovecot, f"alice{tag}@a.test")          # backend A knows the full address
    bob = mailbox_on(dovecot_b, f"bob{tag}")                  # backend B knows bare names
    alice_msgs = [msg(f"for alice {i}", "x" * (i * 100)) for i in range(3)]
    bob_msgs = [msg(f"for bob {i}", ".dot-stuffed line\r\n..two dots") for i in range(2)]
    alice.append(alice_msgs)
    bob.append(bob_msgs)
    gw = gateway(extra_yaml=routes_yaml("b.test", dovecot_b.ports.imap).replace("{ca}", str(pki.ca_cert)))

    got_alice = fetch_all(gw, alice.user, alice.password)
    got_bob = fetch_all(gw, f"bob{tag}@B.Test", bob.password)  # the domain matches in any case
    assert got_alice == [expected_pop3_bytes(m) for m in alice_msgs]
    assert got_bob == [expected_pop3_bytes(m) for m in bob_msgs]
    # Each backend saw its own user, logged in as the route says.
    assert f"user=<alice{tag}@a.test>" in dovecot.log_text()
    assert f"user=<bob{tag}>" in dovecot_b.log_text()
    assert f"bob{tag}" not in dovecot.log_text()
    summary = gw.wait_for_log(rf"session ended: user=bob{tag}@B.Test .*").group(0).decode()
    assert "ending=quit" in summary
    gw.wait_for_log(rf'route=b\.test')


def test_routes_file_reload_moves_new_sessions_while_open_ones_finish(gateway, dovecot, dovecot_b, pki, workdir):
    tag = os.urandom(3).hex()
    user = f"carol{tag}"
    on_a = mailbox_on(dovecot, user)
    # The same password on both, so only the route decides which mailbox is seen.
    on_b = mailbox_on(dovecot_b, user, on_a.password)
    on_a.append([msg("on A")])
    on_b.append([msg("on B, first"), msg("on B, second")])

    routes = workdir / f"routes-{tag}.yaml"
    routes.write_text(routes_yaml("c.test", dovecot_b.ports.imap).replace("{ca}", str(pki.ca_cert)))
    gw = gateway(extra_yaml=f"routes_file: \"{routes}\"\n")

    # An open session on B...
    open_session = poplib.POP3_SSL(gw.host, gw.implicit_port, context=pki.client_context(), timeout=30)
    open_session.user(f"{user}@c.test")
    open_session.pass_(on_a.password)
    assert open_session.stat()[0] == 2

    # ...the route moves to A (same login, strip_domain there too) and the daemon reloads.
    start = len(gw.stderr_bytes())
    routes.write_text(routes_yaml("c.test", dovecot.ports.imap).replace("{ca}", str(pki.ca_cert)))
    gw.signal(signal.SIGHUP)
    gw.wait_for_log(r"reloaded configuration", start=start)
    assert [m.split(b"\r\n")[2] for m in fetch_all(gw, f"{user}@c.test", on_a.password)] == [b"Subject: on A"]

    # The open session still works on B and its deletion lands there.
    assert b"on B, second" in b"\r\n".join(open_session.retr(2)[1])
    open_session.dele(1)
    assert open_session.quit().startswith(b"+OK")
    flags = on_b.flags()
    assert any("$POP3Deleted" in f for f in flags.values()), flags

    # A broken routes file is refused: the old table (c.test → A) stays.
    start = len(gw.stderr_bytes())
    routes.write_text("routes:\n  - domain: c.test\n")
    gw.signal(signal.SIGHUP)
    gw.wait_for_log(r"reload rejected, keeping the running configuration: .*routes_file", start=start)
    assert len(fetch_all(gw, f"{user}@c.test", on_a.password)) == 1


def test_not_popped_hides_what_any_pop3_session_retrieved(gateway, mailbox):
    messages = [msg(f"n{i}") for i in range(3)]
    mailbox.append(messages)
    gw = gateway(extra_yaml="policy: gmail\npolicies:\n  gmail:\n    visible: not_popped\n    retention:\n      on_delete: keep\n")

    p = gw.login(mailbox.user, mailbox.password)
    first, _ = p.multi("RETR 1")
    assert first.startswith(b"+OK")
    p.multi("RETR 3")
    assert p.quit().startswith(b"+OK")

    # A second device sees only the message nobody popped; webmail still has all three.
    p = gw.login(mailbox.user, mailbox.password)
    first, body = p.multi("UIDL")
    assert len([l for l in body.split(b"\r\n") if l]) == 1
    first, body = p.multi("RETR 1")
    assert b"Subject: n1" in body
    p.abort()   # no QUIT: nothing is marked
    flags = mailbox.flags()
    assert len(flags) == 3
    marked = sorted(uid for uid, f in flags.items() if "$POP3Retrieved" in f)
    assert marked == [mailbox.uids[0], mailbox.uids[2]]
    assert all("\\Seen" in flags[u] for u in marked)
    assert "$POP3Retrieved" not in flags[mailbox.uids[1]], "the session without QUIT marked nothing"


def test_unseen_hides_mail_read_in_webmail(gateway, mailbox):
    mailbox.append([msg("read in webmail")], flags=["\\Seen"])
    mailbox.append([msg("new")])
    gw = gateway(extra_yaml="policy: fresh\npolicies:\n  fresh:\n    visible: unseen\n")
    p = gw.login(mailbox.user, mailbox.password)
    first, body = p.multi("RETR 1")
    assert b"Subject: new" in body
    assert p.command("STAT").startswith(b"+OK 1 ")
    p.quit()


def test_recent_mode_lists_the_last_30_days_popped_or_not(gateway, mailbox):
    """`recent:user` (Gmail's recent mode) against real Dovecot: INTERNALDATE decides, not
    $POP3Retrieved; a normal login of the same user still hides what was popped."""
    import imaplib
    old = msg("two months old")
    popped = msg("popped last week")
    fresh = msg("new")
    imap = imaplib.IMAP4("127.0.0.1", mailbox.imap.port)
    imap.login(mailbox.user, mailbox.password)
    now = time.time()
    imap.append("INBOX", None, imaplib.Time2Internaldate(now - 60 * 86400), old)
    imap.append("INBOX", "($POP3Retrieved \\Seen)", imaplib.Time2Internaldate(now - 7 * 86400), popped)
    imap.append("INBOX", None, imaplib.Time2Internaldate(now - 60), fresh)
    imap.logout()
    gw = gateway(extra_yaml="policy: gmail\npolicies:\n  gmail:\n    visible: not_popped\n")

    p = gw.login(f"recent:{mailbox.user}", mailbox.password)
    subjects = [p.multi(f"TOP {i} 0")[1].split(b"\r\n")[2] for i in (1, 2)]
    assert subjects == [b"Subject: popped last week", b"Subject: new"]
    assert p.command("STAT").startswith(b"+OK 2 ")
    p.quit()

    p = gw.login(mailbox.user, mailbox.password)
    assert p.command("STAT").startswith(b"+OK 2 "), "normal mode: the old one and the new one, not the popped one"
    p.quit()
