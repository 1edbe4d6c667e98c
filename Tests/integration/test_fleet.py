"""The hosting fleet (issue 8): a real HAProxy in TCP mode with `send-proxy-v2` (and health checks)
in front of two PopGate instances, which route two domains to two separate Dovecot backends
through a shared routes file.

One test walks through what a provider relies on, in order, and prints a transcript summary:
  1. clients from two loopback addresses (127.0.0.2, 127.0.0.3) fetch byte-exact mail of both
     domains through HAProxy, on both instances; each Dovecot logs the real client (`rip=`);
  2. a route change in the routes file + SIGHUP moves new sessions of a domain to the other backend,
     while a session opened before finishes on the old one (its DELE lands there);
  3. killing one PopGate instance mid-session loses nothing (its DELE without QUIT is not applied),
     and new sessions are served by the other instance. PopGate-only.
"""
from __future__ import annotations

import os
import re
import signal
import time

import pytest

from harness.dovecot import Dovecot
from harness.gateway import Gateway, GatewayOptions
from harness.haproxy import HAProxy, Route, haproxy_binary
from harness.imap import ImapAccount
from harness.pop3 import Pop3Conn, expected_pop3_bytes, unstuff

pytestmark = pytest.mark.skipif(haproxy_binary() is None, reason="haproxy not installed (make deps)")

A2, A3 = "127.0.0.2", "127.0.0.3"


def message(subject: str) -> bytes:
    return (f"From: shop@example.org\r\nTo: customer@example.org\r\nSubject: {subject}\r\n\r\n"
            f"line one\r\n.leading dot\r\n\r\n..two dots\r\nend of {subject}\r\n").encode()


def routes_yaml(pki, b_port: int) -> str:
    entry = ("  - domain: {domain}\n    backend:\n      address: \"127.0.0.1:{port}\"\n      tls: starttls\n"
             "      ca_file: \"{ca}\"\n      server_name: localhost\n    login: strip_domain\n")
    return "routes:\n" + entry.format(domain="b.test", port=b_port, ca=pki.ca_cert)


@pytest.fixture(scope="module")
def fleet(workdir, pki, target):
    if target != "popgate":
        pytest.skip("PopGate-only test (POP3_TARGET=dovecot)")
    dovecots = {}
    for name in ("a", "b"):
        d = Dovecot(workdir / f"fleet-dovecot-{name}", pki, login_trusted_networks="127.0.0.1/32")
        d.start()
        dovecots[name] = d
    routes = workdir / "fleet-routes.yaml"
    routes.write_text(routes_yaml(pki, dovecots["b"].ports.imap))
    gateways = []
    for index in (1, 2):
        # The default route (a.test and anything else) is Dovecot A; b.test comes from the routes file.
        extra = f"routes:\n  - domain: a.test\n    backend:\n      address: \"127.0.0.1:{dovecots['a'].ports.imap}\"\n" \
                f"      tls: starttls\n      ca_file: \"{pki.ca_cert}\"\n      server_name: localhost\n" \
                f"    login: strip_domain\nroutes_file: \"{routes}\"\n"
        gw = Gateway(workdir / "fleet" / f"popgate{index}", pki,
                     GatewayOptions(backend_port=dovecots["a"].ports.imap, proxy_listeners=True,
                                    proxy_trusted_networks=["127.0.0.1/32"], extra_yaml=extra, log_level="info"))
        gw.start()
        gateways.append(gw)
    hp = HAProxy(workdir / "fleet" / "haproxy",
                 [Route("pop3s", [("127.0.0.1", gw.ports["proxy_implicit"]) for gw in gateways], send_proxy="v2", check=True)])
    hp.start()
    yield dovecots, gateways, hp, routes
    hp.stop()
    for gw in gateways:
        gw.stop()
    for d in dovecots.values():
        d.stop()


def user_on(dovecot: Dovecot, name: str, password: str, subjects: list[str]) -> list[bytes]:
    dovecot.add_user(name, password)
    messages = [message(s) for s in subjects]
    ImapAccount(dovecot.host, dovecot.ports.imap, name, password).append(messages)
    return messages


def session(hp: HAProxy, gw: Gateway, source: str, user: str, password: str) -> Pop3Conn:
    c = Pop3Conn("127.0.0.1", hp.port("pop3s"), implicit_tls=True, context=gw.context(), source=source)
    r = c.user_pass(user, password)
    assert r.startswith(b"+OK"), r
    return c


def retr_all(c: Pop3Conn) -> list[bytes]:
    count = int(c.command("STAT").split()[1])
    out = []
    for i in range(1, count + 1):
        first, body = c.multi(f"RETR {i}")
        assert first.startswith(b"+OK"), first
        out.append(unstuff(body))
    return out


def serving(gateways, user: str) -> list[int]:
    """Which instances logged this user in (their summary lines)."""
    return [i for i, gw in enumerate(gateways) if f"session ended: user={user} " in gw.stderr()]


def test_fleet_behind_haproxy(fleet, pki):
    dovecots, gateways, hp, routes = fleet
    tag = os.urandom(3).hex()
    alice, bob = f"alice{tag}", f"bob{tag}"
    pw_a, pw_b = f"pw-a-{tag}", f"pw-b-{tag}"
    alice_mail = user_on(dovecots["a"], alice, pw_a, ["for alice 1", "for alice 2"])
    bob_mail_b = user_on(dovecots["b"], bob, pw_b, ["bob on B 1", "bob on B 2"])
    bob_mail_a = user_on(dovecots["a"], bob, pw_b, ["bob moved to A"])
    transcript = []

    # 1. Both domains, both client addresses, both instances (round robin), byte-exact.
    for round_ in range(2):
        for source, user, password, expected in ((A2, f"{alice}@a.test", pw_a, alice_mail),
                                                 (A3, f"{bob}@b.test", pw_b, bob_mail_b)):
            c = session(hp, gateways[0], source, user, password)
            assert retr_all(c) == [expected_pop3_bytes(m) for m in expected]
            assert c.quit().startswith(b"+OK")
    instances = sorted(set(serving(gateways, f"{alice}@a.test") + serving(gateways, f"{bob}@b.test")))
    assert instances == [0, 1], "round robin spreads the sessions over both instances"
    # PopGate logs in over STARTTLS ("TLS"); the harness appends over plain IMAP from 127.0.0.1.
    rip_a = [ln for ln in dovecots["a"].log_text().splitlines() if f"user=<{alice}>" in ln and "Login:" in ln and ", TLS" in ln]
    rip_b = [ln for ln in dovecots["b"].log_text().splitlines() if f"user=<{bob}>" in ln and "Login:" in ln and ", TLS" in ln]
    assert rip_a and all("rip=127.0.0.2," in ln for ln in rip_a), rip_a
    assert rip_b and all("rip=127.0.0.3," in ln for ln in rip_b), rip_b
    summaries = [ln for gw in gateways for ln in gw.stderr().splitlines() if "session ended: user=" in ln and tag in ln]
    assert all(re.search(r"client=127\.0\.0\.[23]:", ln) and "proxy=127.0.0.1:" in ln for ln in summaries), summaries
    transcript.append(f"1. 4 sessions through HAProxy, served by instances {instances}: byte-exact")
    transcript.append(f"   Dovecot A: {rip_a[0].split('imap-login: ')[-1]}")
    transcript.append(f"   Dovecot B: {rip_b[0].split('imap-login: ')[-1]}")

    # 2. Route change: b.test moves to A. A session opened before finishes on B.
    before = session(hp, gateways[0], A3, f"{bob}@b.test", pw_b)
    assert int(before.command("STAT").split()[1]) == 2
    routes.write_text(routes_yaml(pki, dovecots["a"].ports.imap))
    for gw in gateways:
        start = len(gw.stderr_bytes())
        gw.signal(signal.SIGHUP)
        gw.wait_for_log(r"reloaded configuration", start=start)
    after = session(hp, gateways[0], A3, f"{bob}@b.test", pw_b)
    assert retr_all(after) == [expected_pop3_bytes(bob_mail_a[0])]
    assert after.quit().startswith(b"+OK")
    assert before.command("DELE 1").startswith(b"+OK")
    assert before.quit().startswith(b"+OK")
    on_b = ImapAccount(dovecots["b"].host, dovecots["b"].ports.imap, bob, pw_b).flags("INBOX")
    assert sum("$POP3Deleted" in f for f in on_b.values()) == 1, on_b
    transcript.append("2. routes file: b.test B→A + SIGHUP on both: new session saw A's mail; the open one's DELE landed on B")

    # 3. Kill one instance mid-session: nothing lost, new sessions go to the other. Round robin puts
    # these two sessions on different instances; both DELE message 1, neither has said QUIT.
    first = session(hp, gateways[0], A2, f"{alice}@a.test", pw_a)
    second = session(hp, gateways[0], A2, f"{alice}@a.test", pw_a)
    for c in (first, second):
        assert c.command("DELE 1").startswith(b"+OK")
    os.kill(gateways[0].pid, signal.SIGKILL)
    gateways[0].wait_exit(10)
    survivors = []
    for c in (first, second):
        try:
            if c.command("NOOP").startswith(b"+OK"):
                survivors.append(c)
        except Exception:
            pass
    assert len(survivors) == 1, "exactly one of the two sessions was on the killed instance"
    alive = survivors[0]
    assert alive.command("RSET").startswith(b"+OK")
    assert alive.quit().startswith(b"+OK")
    deadline = time.monotonic() + 10
    while "is DOWN" not in hp.log() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert "is DOWN" in hp.log(), hp.log()[-2000:]
    for _ in range(3):
        c = session(hp, gateways[1], A2, f"{alice}@a.test", pw_a)
        assert retr_all(c) == [expected_pop3_bytes(m) for m in alice_mail], "nothing lost"
        c.quit()
    flags = ImapAccount(dovecots["a"].host, dovecots["a"].ports.imap, alice, pw_a).flags("INBOX")
    assert not any("$POP3Deleted" in f for f in flags.values()), flags
    transcript.append("3. SIGKILL of one instance mid-session: its DELE (no QUIT) not applied; HAProxy marked it DOWN; "
                      "3 new sessions served by the other, byte-exact")
    print("\nfleet transcript:\n" + "\n".join(transcript))
