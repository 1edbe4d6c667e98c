"""Authentication with awkward passwords (USER/PASS and AUTH PLAIN in every form), SASL
cancel, and that neither the password nor the AUTH payload ever reaches the logs."""
from __future__ import annotations

import base64

import pytest

PASSWORDS = {
    "spaces": "correct horse  battery staple",
    "quotes": "it's \"quoted\" 'twice'",
    "backslashes": "back\\slash\\\\double\\",
    "utf8": "pässwörd ✓ 日本 🔑",
    "everything": "a \"b\" \\c\\ ü {5} * % ( ) ] NIL",
}


@pytest.mark.parametrize("kind", list(PASSWORDS))
def test_awkward_passwords_every_login_form(pop3_server, new_mailbox, kind):
    mb = new_mailbox(password=PASSWORDS[kind])
    mb.append([b"Subject: s\r\n\r\nsecret\r\n"])
    srv = pop3_server()
    forms = {
        "USER/PASS": lambda c: c.user_pass(mb.user, mb.password),
        "AUTH PLAIN initial response": lambda c: c.auth_plain(mb.user, mb.password),
        "AUTH PLAIN continuation": lambda c: c.auth_plain(mb.user, mb.password, initial=False),
        "AUTH PLAIN authzid=user": lambda c: c.auth_plain(mb.user, mb.password, authzid=mb.user),
        "AUTH PLAIN authzid=user continuation":
            lambda c: c.auth_plain(mb.user, mb.password, authzid=mb.user, initial=False),
    }
    for mode in ("implicit", "starttls"):
        for name, login in forms.items():
            with srv.connect(mode) as c:
                r = login(c)
                assert r.startswith(b"+OK"), f"{name} over {mode}: {r!r}"
                assert c.command("STAT").startswith(b"+OK 1 "), name
                assert c.quit().startswith(b"+OK")


def test_auth_plain_continuation_shape(pop3_server, mailbox):
    srv = pop3_server()
    with srv.connect("implicit") as c:
        r = c.command("AUTH PLAIN")
        assert r in (b"+ ", b"+"), f"RFC 5034: empty challenge is '+ ', got {r!r}"
        payload = base64.b64encode(f"\0{mailbox.user}\0{mailbox.password}".encode())
        assert c.command(payload).startswith(b"+OK")


def test_auth_plain_cancel_and_malformed(pop3_server, mailbox):
    srv = pop3_server()
    with srv.connect("implicit") as c:
        assert c.command("AUTH PLAIN").startswith(b"+")
        assert c.command("*").startswith(b"-ERR"), "'*' cancels the exchange (RFC 5034)"
        assert c.command("AUTH PLAIN !!!notbase64!!!").startswith(b"-ERR")
        assert c.user_pass(mailbox.user, mailbox.password).startswith(b"+OK")


def test_auth_plain_other_authzid_is_refused(pop3_server, mailbox, new_mailbox):
    other = new_mailbox()
    srv = pop3_server()
    with srv.connect("implicit") as c:
        r = c.auth_plain(mailbox.user, mailbox.password, authzid=other.user)
        assert r.startswith(b"-ERR"), r


def test_unsupported_mechanism(pop3_server):
    srv = pop3_server()
    with srv.connect("implicit") as c:
        assert c.command("AUTH CRAM-MD5").startswith(b"-ERR")
        assert c.capa()


def test_logs_never_contain_password_or_auth_payload(gateway, new_mailbox):
    password = "Zebra-Quartz 9 \"ü\" \\ ✓ unique-7f3a"
    mb = new_mailbox(password=password)
    mb.append([b"Subject: s\r\n\r\nsecret\r\n"])
    gw = gateway(log_level="trace")
    forbidden = {
        "password": password.encode(),
        "password (latin-1 escaped)": password.encode("unicode_escape"),
        "password start": b"Zebra-Quartz",
    }
    payloads = []
    for authzid in ("", mb.user):
        for pw in (password, password + "x"):
            payloads.append(base64.b64encode(f"{authzid}\0{mb.user}\0{pw}".encode()))
    for i, p in enumerate(payloads):
        forbidden[f"AUTH PLAIN payload {i}"] = p
        forbidden[f"AUTH PLAIN payload {i} prefix"] = p[:24]
    for mode in ("implicit", "starttls"):
        with gw.connect(mode) as c:
            assert c.user_pass(mb.user, password + "x").startswith(b"-ERR [AUTH]")
            assert c.user_pass(mb.user, password).startswith(b"+OK")
            c.quit()
        for authzid in ("", mb.user):
            for initial in (True, False):
                with gw.connect(mode) as c:
                    assert c.auth_plain(mb.user, password + "x", authzid=authzid,
                                        initial=initial).startswith(b"-ERR")
                    assert c.auth_plain(mb.user, password, authzid=authzid,
                                        initial=initial).startswith(b"+OK")
                    c.quit()
    gw.stop()          # flush everything the process logged
    log = gw.stderr_bytes()
    assert log, "the gateway logged nothing at level trace"
    for what, needle in forbidden.items():
        assert needle not in log, f"the log contains the {what}"
