"""`log.level: trace`: the protocol trace of the real daemon against the real Dovecot. Every POP3 command
line and every IMAP line both ways is logged, tagged with the session id, while no password, no AUTH
payload (base64 or not) and no byte of a message ever reaches the log; at `debug` there is no trace.

PopGate-only (the `gateway` fixture skips with POP3_TARGET=dovecot).
"""
from __future__ import annotations

import base64
import poplib
import re

import pytest

from harness.net import LOOPBACK
from harness.procinfo import wait_until

SUBJECT = "Trace-Subject-5d1e"
BODY_MARK = b"BODY-MARKER-a41c9e"
MESSAGE = (f"Subject: {SUBJECT}\r\nFrom: t@example.net\r\n\r\n".encode()
           + BODY_MARK + b" line one\r\n" + BODY_MARK + b" line two\r\n")
_PAIR = re.compile(r'([A-Za-z0-9_.\-]+)=("(?:[^"\\]|\\.)*"|[^ ]*)')


def events(text: str) -> list[dict[str, str]]:
    out = []
    for line in text.splitlines():
        fields = {}
        for key, value in _PAIR.findall(line):
            fields[key] = value[1:-1].replace('\\"', '"') if value.startswith('"') else value
        out.append(fields)
    return out


def secrets_of(user: str, password: str, wrong: str) -> list[bytes]:
    plain = f"\0{user}\0{password}".encode()
    return [password.encode(), wrong.encode(), base64.b64encode(plain),
            base64.b64encode(plain)[:-4],             # the base64 without its last group
            BODY_MARK, SUBJECT.encode(), b"line one"]


def test_trace_logs_commands_and_never_secrets(gateway, new_mailbox, pki):
    mailbox = new_mailbox(password="Tr4ce-secret-Pw9")
    mailbox.append([MESSAGE, b"Subject: other\r\n\r\nsecond\r\n"])
    gw = gateway(log_level="trace")
    wrong = "Wr0ng-guess-Pw7"

    # USER/PASS over STLS: a failed login, a login, RETR, DELE, QUIT.
    p = poplib.POP3(LOOPBACK, gw.starttls_port, timeout=15)
    p.stls(context=pki.client_context())
    p.user(mailbox.user)
    with pytest.raises(poplib.error_proto):
        p.pass_(wrong)
    p.user(mailbox.user)
    p.pass_(mailbox.password)
    _, lines, _ = p.retr(1)
    assert BODY_MARK in b"\r\n".join(lines)
    p.dele(1)
    p.quit()
    # AUTH PLAIN with an initial response, and without one (the payload on its own line).
    for initial in (True, False):
        with gw.connect("implicit") as conn:
            assert conn.auth_plain(mailbox.user, mailbox.password, initial=initial).startswith(b"+OK")
            conn.quit()
    ended = re.compile(rb"session ended: user=" + re.escape(mailbox.user.encode()) + rb" ")
    assert wait_until(lambda: len(ended.findall(gw.stderr_bytes())) == 3, timeout=10), gw.stderr()[-3000:]

    log = gw.stderr_bytes()
    for secret in secrets_of(mailbox.user, mailbox.password, wrong):
        assert secret not in log, f"{secret!r} reached the log"

    traced = [e for e in events(log.decode()) if e.get("level") == "trace"]
    assert traced and all(e.get("session") for e in traced), "every trace line carries the session id"
    stls_session = next(e["session"] for e in traced if e["msg"] == "pop3 C: STLS")
    first = [e for e in traced if e["session"] == stls_session]
    pop3 = [e["msg"] for e in first if e["msg"].startswith("pop3 C: ")]
    assert pop3 == ["pop3 C: CAPA", "pop3 C: STLS", f"pop3 C: USER {mailbox.user}", "pop3 C: PASS [redacted]",
                    f"pop3 C: USER {mailbox.user}", "pop3 C: PASS [redacted]", "pop3 C: RETR 1", "pop3 C: DELE 1",
                    "pop3 C: QUIT"], pop3
    imap = [e["msg"] for e in first if e["msg"].startswith("imap ")]
    sent = [m for m in imap if m.startswith("imap C: ")]
    assert sum(bool(re.fullmatch(r"imap C: P\d+ AUTHENTICATE PLAIN \[redacted\]", m)) for m in sent) == 2, sent
    assert any(re.fullmatch(r'imap C: P\d+ SELECT "INBOX"', m) for m in sent), sent
    assert any(re.fullmatch(r"imap C: P\d+ UID FETCH \d+ \(BODY\.PEEK\[\]\)", m) for m in sent), sent
    assert any(re.fullmatch(r"imap C: P\d+ UID STORE \d+ \+FLAGS.*", m) for m in sent), sent
    received = [m for m in imap if m.startswith("imap S: ")]
    assert any(m.startswith("imap S: * OK") for m in received), received
    assert any(re.fullmatch(r"imap S: P\d+ NO \[AUTHENTICATIONFAILED\].*", m) for m in received), received
    body = [m for m in received if "BODY[]" in m]
    assert len(body) == 1 and body[0].endswith(f"{{{len(MESSAGE)}}}[{len(MESSAGE)} bytes])"), body
    # The AUTH sessions: the payload line of the one without an initial response is redacted too.
    others = [e["msg"] for e in traced if e["session"] != stls_session and e["msg"].startswith("pop3 C: ")]
    assert others == ["pop3 C: AUTH PLAIN [redacted]", "pop3 C: QUIT", "pop3 C: AUTH PLAIN", "pop3 C: [redacted]", "pop3 C: QUIT"], others


def test_no_trace_below_trace_level(gateway, mailbox):
    mailbox.append([MESSAGE])
    gw = gateway(log_level="debug")
    with gw.login(mailbox.user, mailbox.password) as conn:
        conn.multi("RETR 1")
        conn.quit()
    gw.wait_for_log(r"session ended: ")
    text = gw.stderr()
    assert "level=trace" not in text
    assert "pop3 C:" not in text and "imap C:" not in text
