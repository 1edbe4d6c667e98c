"""`auth_http`: every login asks an HTTP routing service speaking nginx's mail auth_http protocol.
The service is a real HTTP server (Python's http.server, ThreadingHTTPServer) started by the test on
loopback, answering like an nginx mail auth service; the backends are two real Dovecots; the client
is poplib."""
from __future__ import annotations

import http.server
import os
import poplib
import threading
import time
import urllib.parse

import pytest

from harness.dovecot import Dovecot
from harness.net import free_ports
from test_routing import dovecot_b, fetch_all, mailbox_on, msg  # noqa: F401  (dovecot_b is a fixture)

poplib._MAXLINE = 1 << 20


class AuthService:
    """An HTTP auth service: `decide(headers) -> dict of answer headers` (or raises to hang)."""

    def __init__(self, decide):
        self.decide = decide
        self.requests: list[dict[str, str]] = []
        self.delay = 0.0
        service = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"

            def do_GET(self):
                headers = {k: v for k, v in self.headers.items()}
                headers["_path"] = self.path
                service.requests.append(headers)
                if service.delay:
                    time.sleep(service.delay)
                answer = service.decide(headers)
                self.send_response(200)
                for k, v in answer.items():
                    self.send_header(k, v)
                self.end_headers()

            def log_message(self, *args):
                pass

        (port,) = free_ports(1)
        self.port = port
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/mail-auth"

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def auth_service():
    started = []

    def start(decide):
        s = AuthService(decide)
        started.append(s)
        return s

    yield start
    for s in started:
        s.stop()


def pop_login(gw, user, password):
    """(answer to PASS, open POP3 connection or None)."""
    c = gw.connect("implicit")
    r = c.user_pass(user, password)
    return r, c


def test_service_routes_rewrites_and_is_told_what_nginx_tells(gateway, dovecot, dovecot_b, auth_service, pki):
    tag = os.urandom(3).hex()
    alice = mailbox_on(dovecot, f"alice{tag}")
    bob = mailbox_on(dovecot_b, f"mbox-{tag}")        # the service maps bob@b.test to this account
    alice.append([msg("alice's")])
    bob.append([msg("bob's", "line\r\n.leading dot")])
    users = {f"alice{tag}@a.test": (dovecot.ports.imap, {}),
             f"bob{tag}@b.test": (dovecot_b.ports.imap, {"Auth-User": bob.user, "Auth-Pass": bob.password})}

    def decide(h):
        user = urllib.parse.unquote(h["Auth-User"])
        if user not in users:
            return {"Auth-Status": "Invalid login or password", "Auth-Wait": "1"}
        port, extra = users[user]
        answer = {"Auth-Status": "OK", "Auth-Server": "127.0.0.1", "Auth-Port": str(port)}
        answer.update(extra)
        return answer

    service = auth_service(decide)
    gw = gateway(extra_yaml=f"auth_http:\n  url: \"{service.url}\"\n  timeout: 3s\n")
    # alice logs in to A with her own password (the service passes it through unchanged: A checks it)
    users[f"alice{tag}@a.test"] = (dovecot.ports.imap, {"Auth-User": alice.user})
    assert [b.split(b"\r\n")[2] for b in fetch_all(gw, f"alice{tag}@a.test", alice.password)] == [b"Subject: alice's"]
    # bob's client password means nothing to B: the service supplies B's login and password
    got = fetch_all(gw, f"bob{tag}@b.test", "what-the-client-typed")
    assert b"\r\n..leading dot" not in got[0] and b"\r\n.leading dot" in got[0]

    first = service.requests[0]
    assert first["_path"] == "/mail-auth"
    assert first["Auth-Method"] == "plain"
    assert first["Auth-User"] == urllib.parse.quote(f"alice{tag}@a.test", safe="")
    assert urllib.parse.unquote(first["Auth-Pass"]) == alice.password
    assert first["Auth-Protocol"] == "pop3"
    assert first["Auth-Login-Attempt"] == "1"
    assert first["Client-IP"] == "127.0.0.1"
    assert f"user=<{bob.user}>" in dovecot_b.log_text()
    gw.wait_for_log(r"route=auth_http")
    assert b"what-the-client-typed" not in gw.stderr_bytes()


def test_refusal_waits_and_counts_attempts_and_no_wait_closes(gateway, auth_service):
    service = auth_service(lambda h: {"Auth-Status": "Invalid login or password", "Auth-Wait": "1"}
                           if h["Auth-Login-Attempt"] == "1" else {"Auth-Status": "Account locked"})
    gw = gateway(extra_yaml=f"auth_http:\n  url: \"{service.url}\"\n", failure_delay="0s")
    c = gw.connect("implicit")
    started = time.monotonic()
    assert c.user_pass("x@y.z", "pw") == b"-ERR [AUTH] Invalid login or password"
    assert time.monotonic() - started >= 0.9, "Auth-Wait is honoured"
    assert c.user_pass("x@y.z", "pw2") == b"-ERR [AUTH] Account locked"
    with pytest.raises(Exception):
        c.command("NOOP")   # no Auth-Wait: closed, as nginx does
    assert [r["Auth-Login-Attempt"] for r in service.requests] == ["1", "2"]


def test_outage_slow_service_and_garbage_are_temporary_never_auth(gateway, auth_service, mailbox):
    service = auth_service(lambda h: {"Auth-Status": "OK"})   # no Auth-Server: not an answer
    gw = gateway(extra_yaml=f"auth_http:\n  url: \"{service.url}\"\n  timeout: 1s\n")
    c = gw.connect("implicit")
    assert c.user_pass(mailbox.user, mailbox.password) == b"-ERR [SYS/TEMP] Backend server unavailable, try again later."
    gw.wait_for_log(r"auth_http: Auth-Status OK without a valid Auth-Server")

    service.delay = 3.0   # slower than the timeout
    started = time.monotonic()
    assert c.user_pass(mailbox.user, mailbox.password) == b"-ERR [SYS/TEMP] Backend server unavailable, try again later."
    assert time.monotonic() - started < 2.5
    gw.wait_for_log(r"auth_http: no answer within")

    service.stop()        # nothing listens any more
    assert c.user_pass(mailbox.user, mailbox.password) == b"-ERR [SYS/TEMP] Backend server unavailable, try again later."
    c.close()


def test_cache_ttl_reuses_an_ok_answer_for_the_same_password_only(gateway, dovecot, auth_service, mailbox):
    mailbox.append([msg("cached")])
    service = auth_service(lambda h: {"Auth-Status": "OK", "Auth-Server": "127.0.0.1", "Auth-Port": str(dovecot.ports.imap)})
    gw = gateway(extra_yaml=f"auth_http:\n  url: \"{service.url}\"\n  cache_ttl: 1m\n")
    for _ in range(3):
        assert len(fetch_all(gw, mailbox.user, mailbox.password)) == 1
    assert len(service.requests) == 1
    r, c = pop_login(gw, mailbox.user, "another password")
    assert r.startswith(b"-ERR [AUTH]")          # Dovecot refused it: the cache did not answer for it
    c.close()
    assert len(service.requests) == 2
