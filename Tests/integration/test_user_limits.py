"""Per-user limits of one PopGate instance, with Python's poplib against the real daemon and Dovecot:
`limits.sessions_per_user` (-ERR [IN-USE]) and `limits.login_interval` (CAPA LOGIN-DELAY,
-ERR [LOGIN-DELAY]), both answered before the backend is asked."""
from __future__ import annotations

import poplib
import re
import socket
import time

import pytest


def pop(gw, pki) -> poplib.POP3_SSL:
    return poplib.POP3_SSL(gw.host, gw.implicit_port, context=pki.client_context(), timeout=15)


def login(gw, pki, user: str, password: str) -> poplib.POP3_SSL:
    p = pop(gw, pki)
    p.user(user)
    p.pass_(password)
    return p


def refused(gw, pki, user: str, password: str) -> bytes:
    p = pop(gw, pki)
    p.user(user)
    with pytest.raises(poplib.error_proto) as e:
        p.pass_(password)
    p.quit()
    return e.value.args[0]


def backend_logins(dovecot, user: str) -> int:
    """Logins of `user` that reached Dovecot's IMAP (its log names each, failed or not)."""
    return len(re.findall(rf"imap-login: (?:Info: )?(?:Login|Aborted login|Disconnected)[^\n]*user=<{re.escape(user)}>",
                          dovecot.log_text()))


def test_sessions_per_user_is_in_use_without_asking_the_backend(gateway, mailbox, dovecot, pki):
    mailbox.append([b"Subject: x\r\n\r\nx\r\n"])
    gw = gateway(sessions_per_user=2, on_delete="keep")
    held = [login(gw, pki, mailbox.user, mailbox.password) for _ in range(2)]
    before = backend_logins(dovecot, mailbox.user)
    assert before >= 2, "Dovecot's log names the logins that reached it"
    answer = refused(gw, pki, mailbox.user, mailbox.password)
    assert answer.startswith(b"-ERR [IN-USE]"), answer
    # Case folded for ASCII (Dovecot's default auth_username_format %Lu does the same), and a wrong
    # password is refused the same way: the backend is not asked at all.
    assert refused(gw, pki, mailbox.user.upper(), "wrong").startswith(b"-ERR [IN-USE]")
    time.sleep(0.3)
    assert backend_logins(dovecot, mailbox.user) == before, "IN-USE is decided before the backend"
    # one QUIT frees a place
    held.pop().quit()
    again = login(gw, pki, mailbox.user, mailbox.password)
    assert again.stat()[0] == 1
    # a session that is dropped (no QUIT) frees its place too
    for dropped in (again, held.pop()):
        dropped.sock.shutdown(socket.SHUT_RDWR)
        dropped.file.close()
        dropped.sock.close()
    time.sleep(0.5)
    last = [login(gw, pki, mailbox.user, mailbox.password) for _ in range(2)]
    for p in last:
        p.quit()
    assert "limits.sessions_per_user (2) reached" in gw.stderr()


def test_other_users_and_failed_logins_hold_no_place(gateway, new_mailbox, pki):
    alice, bob = new_mailbox(), new_mailbox()
    gw = gateway(sessions_per_user=1, on_delete="keep")
    a = login(gw, pki, alice.user, alice.password)
    b = login(gw, pki, bob.user, bob.password)
    # failed logins of bob claim nothing: bob's one place is still his after them
    b.quit()
    for _ in range(3):
        answer = refused(gw, pki, bob.user, "wrong")
        assert answer.startswith(b"-ERR [AUTH]"), answer
    login(gw, pki, bob.user, bob.password).quit()
    a.quit()


def test_login_interval_is_advertised_and_enforced(gateway, mailbox, dovecot, pki):
    gw = gateway(login_interval="3s", on_delete="keep")
    p = pop(gw, pki)
    assert p.capa()["LOGIN-DELAY"] == ["3"], p.capa()
    p.quit()
    # a failed login does not start the interval
    assert refused(gw, pki, mailbox.user, "wrong").startswith(b"-ERR [AUTH]")
    t0 = time.monotonic()
    login(gw, pki, mailbox.user, mailbox.password).quit()
    before = backend_logins(dovecot, mailbox.user)
    assert before >= 2
    answer = refused(gw, pki, mailbox.user, mailbox.password)
    assert answer.startswith(b"-ERR [LOGIN-DELAY]"), answer
    assert backend_logins(dovecot, mailbox.user) == before, "LOGIN-DELAY is decided before the backend"
    time.sleep(max(0.0, 3.2 - (time.monotonic() - t0)))
    login(gw, pki, mailbox.user, mailbox.password).quit()


def test_no_limits_configured(gateway, mailbox, pki):
    gw = gateway(sessions_per_user=0, on_delete="keep")
    held = [login(gw, pki, mailbox.user, mailbox.password) for _ in range(12)]
    assert "LOGIN-DELAY" not in pop(gw, pki).capa()
    for p in held:
        p.quit()
