"""A POP3 server under test: PopGate (a running `Gateway`) or Dovecot's own POP3.

Both expose `kind`, `host`, `starttls_port`, `implicit_port`, `plain_port`, and
`connect()`/`login()` that hand back a raw `Pop3Conn`.
"""
from __future__ import annotations

import ssl

from .certs import TestPKI
from .pop3 import Pop3Conn

MODES = ("implicit", "starttls", "plain")


class EndpointMixin:
    kind: str
    host: str
    pki: TestPKI

    def context(self) -> ssl.SSLContext:
        return self.pki.client_context()

    def connect(self, mode: str = "implicit", **kw) -> Pop3Conn:
        """A connection with its greeting read; for `starttls`, STLS is done already."""
        if mode == "implicit":
            return Pop3Conn(self.host, self.implicit_port, implicit_tls=True, context=self.context(), **kw)
        if mode == "starttls":
            c = Pop3Conn(self.host, self.starttls_port, **kw)
            r = c.stls(self.context())
            assert r.startswith(b"+OK"), f"STLS refused: {r!r}"
            return c
        if mode == "plain":
            if self.plain_port is None:
                raise ValueError("this endpoint has no plaintext listener")
            return Pop3Conn(self.host, self.plain_port, **kw)
        if mode == "starttls-noupgrade":
            return Pop3Conn(self.host, self.starttls_port, **kw)
        raise ValueError(mode)

    def login(self, user: str, password: str, mode: str = "implicit", **kw) -> Pop3Conn:
        c = self.connect(mode, **kw)
        r = c.user_pass(user, password)
        if not r.startswith(b"+OK"):
            c.close()
            raise AssertionError(f"login as {user!r} failed: {r!r}")
        return c


class DovecotPop3(EndpointMixin):
    """Dovecot's own POP3 (the reference implementation) behind the same interface."""

    kind = "dovecot"

    def __init__(self, dovecot, pki: TestPKI):
        self.dovecot = dovecot
        self.pki = pki
        self.host = dovecot.host
        self.starttls_port = dovecot.ports.pop3
        self.implicit_port = dovecot.ports.pop3s
        # disable_plaintext_auth = no: Dovecot's POP3 port also serves as the plaintext listener
        self.plain_port = dovecot.ports.pop3
        self.pid = None

    def stderr(self) -> str:
        return ""
