#!/usr/bin/env python3
"""Front-door report (issue 6): every attack and fault of the hostile tests, run once against a real
popgate in front of a real Dovecot on loopback, with what it cost and what everyone else saw.
A report, not a test: nothing here passes or fails, it prints measured figures.

    python3 Tests/bench/front_door.py --popgate .build/debug/popgate [--baseline OLD/popgate]
                                      [--only 1,2,8] [--keep]

One fresh popgate per attack (so a crash or a leak stays with its attack), one Dovecot for all
(a second one with `login_trusted_networks` for attack 9). 127.0.0.2 is the attacker, 127.0.0.3
the other client: while an attack runs, 127.0.0.3 runs a normal session (implicit TLS: login,
STAT, LIST, UIDL, TOP 1 0, QUIT) about once a second. Per attack, one table row with
  - what the attacker (or the client) saw,
  - popgate's VmRSS before -> peak -> after (MiB; peak is the larger of 20 Hz sampling and VmHWM
    when VmHWM grew during the attack; after = once its fd count has settled),
  - popgate's CPU seconds (user + sys) from the attack's start to the `after` readings,
  - its open fds before -> peak -> after (the other client's session counts in the peak),
  - whether the other client was served meanwhile, its session latency, and one more session of
    it once the attack is over ("afterwards"),
  - the mailbox afterwards, read over IMAP (UIDs and flags compared with before the attack).

Attacks (all bounded in time and load):
  1 CAPA flood before login: 4 connections write CAPA for 15 s and never read
  2 UIDL flood after login on a 2,000-message mailbox: 4 connections, 15 s, never reading
  3 slowloris (1 byte/s, plaintext and inside TLS) and stalled TLS handshakes, timeouts.login 3s
  4 limits.connections_per_ip 5: 20 connection attempts from one address, all held open
  5 brute force: 6 wrong passwords from .2 (two sessions, limits.max_auth_failures closes each
    after 3), then the right one from .2 and .3 at once; auth.failure_delay 1s, failure_delay_max 4s
  6 a zero-window client: megabytes of CAPA answers queued, then QUIT; timeouts.flush 2s: how
    long popgate holds the fd after the session ended
  7 a hostile backend (the harness's fake IMAP server): RFC822.SIZE 2^64-1, and a snapshot FETCH
    that streams 100,000 responses after SELECT said 5 EXISTS (limits.max_messages 100)
  8 3,000 abrupt sessions (connect+close, half a command, STLS + broken handshake, half/whole/no
    ClientHello; half closed with RST, half with FIN), from .2 in waves of 15 every 10 ms; from
    popgate's log: how many became sessions and how they ended
  9 the forwarded client address: what a Dovecot with login_trusted_networks logs (rip=)

--baseline runs the same attacks against an older popgate, side by side. An older binary rejects
the config keys it does not know (limits:, timeouts.login, timeouts.flush, auth.failure_delay_max):
it runs the attacks that need none of them (1, 2, 6 without the flush/output_buffer keys, 7 without
max_messages, 8, and 9 with its default forwarding) and gets "n/a (no such limit)" for 3, 4 and 5.
Debug builds are fine here (nothing is a speed figure); the header says which build each binary is.
"""
from __future__ import annotations

import argparse
import datetime
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO_ROOT / "Tests" / "integration"))

from harness import corpus  # noqa: E402
from harness.certs import TestPKI, make_pki  # noqa: E402
from harness.dovecot import Dovecot  # noqa: E402
from harness.fakeimap import FakeImapBackend  # noqa: E402
from harness.gateway import Gateway, GatewayOptions  # noqa: E402
from harness.imap import ImapAccount  # noqa: E402
from harness.net import abort, connect_from, read_until_eof  # noqa: E402
from harness.pop3 import ConnectionClosed  # noqa: E402
from harness.procinfo import cpu_seconds, fd_count, status_kb, tcp_peers, tcp_queues, wait_until  # noqa: E402
# the hostile tests' attack tools (flood writer, slowloris, TLS ClientHello, ...), reused as they are
import test_hostile as hostile  # noqa: E402

A1, A2, A3 = "127.0.0.1", "127.0.0.2", "127.0.0.3"   # popgate's own probes | attacker | other client
MIB = 1024 * 1024
FLOOD_SECONDS = 15.0
RUNAWAY_MIB = 1024          # a flood stops writing once popgate's RSS grew by this much
VICTIM_MESSAGES = 20
BULK_MESSAGES = 2000
ABRUPT_SESSIONS = 3000
ABRUPT_WAVE = 15            # per wave, from one address (below the default connections_per_ip 50)
ABRUPT_PAUSE = 0.01         # between waves
ZERO_WINDOW_WATCH = 12.0    # how long attack 6 waits for the fd to go (beyond the flush timeout)
BACKEND_ATTACK_WAIT = 20.0  # how long attack 7's client waits for the answer to PASS
FAKE_USER, FAKE_PASSWORD = hostile.FAKE_USER, hostile.FAKE_PASSWORD
FAKE_MESSAGES = hostile.FAKE_MESSAGES
NEEDS_NEW_KEYS = {3, 4, 5}  # attacks that only exist with the new config keys

ATTACKS = {
    1: "CAPA flood before login (4 conns never reading, 15 s)",
    2: "UIDL flood after login, 2,000 msgs (4 conns never reading, 15 s)",
    3: "slowloris 1 byte/s + stalled TLS handshakes (timeouts.login 3s)",
    4: "per-IP limit (connections_per_ip 5): 20 attempts from .2",
    5: "brute force: 6 wrong PASS from .2, then right PASS from .2 and .3 (failure_delay 1s, max 4s)",
    6: "zero-window client, QUIT behind MiBs of unread answers (timeouts.flush 2s)",
    7: "backend: RFC822.SIZE 2^64-1",
    "7b": "backend: snapshot FETCH flood, 100,000 responses after 5 EXISTS",
    8: "3,000 abrupt sessions",
    9: "forwarded client address (Dovecot with login_trusted_networks)",
}
ORDER = [1, 2, 3, 4, 5, 6, 7, "7b", 8, 9]


def mib(kb: int | float) -> float:
    return kb / 1024


# -- measuring ------------------------------------------------------------------------------------

class Monitor:
    """popgate's VmRSS and fd count before, during (sampled at 20 Hz) and after an attack."""

    def __init__(self, gw: Gateway):
        self.gw = gw
        self.pid = gw.pid
        self.peak_rss = self.peak_fds = 0
        self.died = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.after_rss: int | None = None
        self.after_fds: int | None = None

    def start(self) -> "Monitor":
        self.fds0 = hostile.settled_fds(self.pid)
        self.rss0 = status_kb(self.pid, "VmRSS")
        self.hwm0 = status_kb(self.pid, "VmHWM")
        self.peak_rss, self.peak_fds = self.rss0, self.fds0
        self.cpu0 = cpu_seconds(self.pid)
        self.cpu: float | None = None
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            try:
                self.peak_rss = max(self.peak_rss, status_kb(self.pid, "VmRSS"))
                self.peak_fds = max(self.peak_fds, fd_count(self.pid))
            except (KeyError, OSError):
                self.died = True
                return

    def finish(self, settle: float = 5.0) -> None:
        """Stops sampling and takes the `after` readings once the fd count has settled."""
        if self.gw.is_running():
            try:
                self.after_fds = hostile.settled_fds(self.pid, settle)
                self.after_rss = status_kb(self.pid, "VmRSS")
                hwm = status_kb(self.pid, "VmHWM")
                self.cpu = cpu_seconds(self.pid) - self.cpu0
                if hwm > self.hwm0:
                    self.peak_rss = max(self.peak_rss, hwm)
            except (KeyError, OSError):
                self.died = True
        else:
            self.died = True
        self._stop.set()
        self._thread.join(2)

    def rss_cell(self) -> str:
        after = "died" if self.after_rss is None else f"{mib(self.after_rss):.1f}"
        return f"{mib(self.rss0):.1f} → {mib(self.peak_rss):.1f} → {after}"

    def cpu_cell(self) -> str:
        return "died" if self.cpu is None else f"{self.cpu:.1f}"

    def fds_cell(self) -> str:
        after = "died" if self.after_fds is None else str(self.after_fds)
        return f"{self.fds0} → {self.peak_fds} → {after}"


class OtherClient:
    """127.0.0.3 runs a normal session about once a second while the attack goes on."""

    def __init__(self, gw: Gateway, user: str, password: str, interval: float = 1.0):
        self.gw, self.user, self.password, self.interval = gw, user, password, interval
        self.latencies: list[float] = []
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def session(self, timeout: float = 15.0) -> float:
        t0 = time.monotonic()
        with self.gw.login(self.user, self.password, mode="implicit", source=A3, timeout=timeout) as c:
            assert c.command("STAT").startswith(b"+OK")
            for cmd in ("LIST", "UIDL", "TOP 1 0"):
                first, body = c.multi(cmd)
                assert first.startswith(b"+OK") and body is not None, (cmd, first)
            assert c.quit().startswith(b"+OK")
        return time.monotonic() - t0

    def _run(self) -> None:
        while not self._stop.is_set():
            t0 = time.monotonic()
            try:
                self.latencies.append(self.session())
            except Exception as exc:   # reported in the table
                self.errors.append(f"{type(exc).__name__}: {exc}"[:80])
            self._stop.wait(max(0.0, self.interval - (time.monotonic() - t0)))

    def start(self) -> "OtherClient":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.ident is not None:
            self._thread.join(30)

    def afterwards(self, running: bool) -> None:
        """One more session once the attack is over and popgate has settled."""
        if not running:
            self.after = "**popgate gone**"
            return
        try:
            self.after = f"{self.session(10.0):.2f} s"
        except Exception as exc:
            self.after = f"**not served** ({type(exc).__name__}: {str(exc)[:60]})"

    def cell(self) -> str:
        n, ok = len(self.latencies) + len(self.errors), len(self.latencies)
        after = f"; afterwards: {self.after}" if hasattr(self, "after") else ""
        if n == 0:
            return f"no session in the attack's time{after}"
        if ok == 0:
            return f"**no**: 0/{n} sessions ({self.errors[0]}){after}"
        lat = f"median {statistics.median(self.latencies):.2f} s, max {max(self.latencies):.2f} s"
        if ok == n:
            return f"yes: {ok}/{n} sessions, {lat}{after}"
        return f"**partly**: {ok}/{n} sessions, {lat}; failed: {self.errors[0]}{after}"


def mailbox_state(acct: ImapAccount) -> dict[int, frozenset[str]]:
    return {u: f - {"\\Recent"} for u, f in acct.flags().items()}


def mailbox_cell(before: dict, after: dict) -> str:
    if before == after:
        return f"unchanged: {len(after):,} messages, no flags changed"
    gone = set(before) - set(after)
    new = set(after) - set(before)
    changed = [u for u in set(before) & set(after) if before[u] != after[u]]
    return (f"**CHANGED**: {len(before):,} → {len(after):,} messages ({len(gone)} gone, {len(new)} new), "
            f"flags changed on {len(changed)}")


def fake_mailbox_cell(fake: FakeImapBackend, before) -> str:
    after = [(m.uid, frozenset(m.flags)) for m in fake.inbox()]
    writes = fake.sent_any("UID STORE", "STORE", "UID EXPUNGE", "EXPUNGE", "UID MOVE", "UID COPY")
    state = (f"unchanged: {len(after)} messages, no flags changed" if after == before
             else f"**CHANGED**: {len(before)} → {len(after)} messages")
    return f"(fake backend) {state}; {'**writes received**' if writes else 'no STORE/EXPUNGE/MOVE received'}"


def death(gw: Gateway) -> str:
    code = gw.proc.poll() if gw.proc is not None else None
    if code is None:
        return ""
    if code < 0:
        try:
            return f"**popgate DIED** ({signal.Signals(-code).name})"
        except ValueError:
            return f"**popgate DIED** (signal {-code})"
    return f"**popgate DIED** (exit code {code})"


# -- results ----------------------------------------------------------------------------------------

@dataclass
class Row:
    attack: int | str
    build: str
    saw: str
    rss: str = "—"
    cpu: str = "—"
    fds: str = "—"
    other: str = "—"
    mailbox: str = "—"


def md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def print_table(rows: list[Row]) -> None:
    print("| # | attack | popgate | what the attacker/client saw | RSS MiB before → peak → after "
          "| popgate CPU s | fds before → peak → after | other client (127.0.0.3) served meanwhile "
          "| mailbox afterwards (IMAP) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print("| " + " | ".join(md(str(x)) for x in (r.attack, ATTACKS[r.attack], r.build, r.saw, r.rss,
                                                     r.cpu, r.fds, r.other, r.mailbox)) + " |")


# -- the run ----------------------------------------------------------------------------------------

class Report:
    def __init__(self, args, root: Path):
        self.args = args
        self.root = root
        self.pki: TestPKI | None = None
        self.dovecot: Dovecot | None = None
        self.trusted: Dovecot | None = None
        self.gateways: list[Gateway] = []
        self.fakes: list[FakeImapBackend] = []
        self.rows: list[Row] = []
        self.t0 = time.monotonic()

    def progress(self, text: str) -> None:
        print(f"  [{time.monotonic() - self.t0:6.1f} s] {text}", flush=True)

    # servers and accounts

    def start(self) -> None:
        self.pki = make_pki(self.root / "pki")
        self.dovecot = Dovecot(self.root / "dovecot", self.pki)
        self.dovecot.start()
        self.victim = self.account(self.dovecot, "victim",
                                   [b"Subject: victim %d\r\n\r\nhello %d\r\n" % (i, i) for i in range(VICTIM_MESSAGES)])
        self.bulk = self.account(self.dovecot, "bulk", corpus.bulk(BULK_MESSAGES))
        t0 = time.monotonic()
        try:
            ImapAccount(self.dovecot.host, self.dovecot.ports.imap, self.victim.user, "wrong").connect()
        except Exception:
            pass
        self.dovecot_failure = time.monotonic() - t0
        self.progress(f"Dovecot up; mailboxes: {VICTIM_MESSAGES} messages (victim), {BULK_MESSAGES:,} (bulk); "
                      f"Dovecot answers a wrong password (IMAP, directly) after {self.dovecot_failure:.2f} s")

    def account(self, dovecot: Dovecot, prefix: str, messages: list[bytes]) -> ImapAccount:
        user = dovecot.new_user_name(prefix)
        password = f"pw-{os.urandom(6).hex()}"
        dovecot.add_user(user, password)
        acct = ImapAccount(dovecot.host, dovecot.ports.imap, user, password)
        acct.append(messages)
        return acct

    def trusted_dovecot(self) -> Dovecot:
        if self.trusted is None:
            self.trusted = Dovecot(self.root / "dovecot-trusted", self.pki, login_trusted_networks="127.0.0.1/32")
            self.trusted.start()
        return self.trusted

    def gateway(self, binary: Path, name: str, **kw) -> Gateway:
        kw.setdefault("backend_port", self.dovecot.ports.imap)
        kw.setdefault("log_level", "info")
        gw = Gateway(self.root / "gw" / name, self.pki, GatewayOptions(**kw), binary=binary)
        self.gateways.append(gw)
        gw.start()
        return gw

    def fake(self, **kw) -> FakeImapBackend:
        f = FakeImapBackend(messages=FAKE_MESSAGES, user=FAKE_USER, password=FAKE_PASSWORD, **kw).start()
        self.fakes.append(f)
        return f

    def stop(self) -> None:
        for gw in self.gateways:
            gw.stop()
        for f in self.fakes:
            f.stop()
        for d in (self.dovecot, self.trusted):
            if d is not None:
                d.stop()

    @staticmethod
    def warm_up(gw: Gateway, acct: ImapAccount) -> None:
        with gw.login(acct.user, acct.password) as c:
            assert c.command("STAT").startswith(b"+OK")
            assert c.quit().startswith(b"+OK")

    # one attack, measured

    def measured(self, gw: Gateway, acct: ImapAccount | None, attack, *, other_user=None,
                 other_when=None, mailbox=None, settle: float = 5.0):
        """Runs attack() -> text between Monitor and OtherClient; returns the row's cells."""
        before = mailbox_state(acct) if acct is not None else None
        mon = Monitor(gw).start()
        user, password = other_user or (acct.user, acct.password)
        other = OtherClient(gw, user, password)
        if other_when is None:     # else the attack starts it when it is under way
            other.start()
        try:
            saw = attack(mon, other)
        finally:
            other.stop()
        if mon.after_rss is None and not mon.died:
            mon.finish(settle)
        other.afterwards(gw.is_running())
        dead = death(gw)
        if dead:
            saw = f"{dead}; {saw}"
        if mailbox is not None:
            box = mailbox()
        elif acct is not None:
            box = mailbox_cell(before, mailbox_state(acct))
        else:
            box = "—"
        return saw, mon.rss_cell(), mon.cpu_cell(), mon.fds_cell(), other.cell(), box

    # 1 and 2: output floods

    def flood(self, gw: Gateway, mon: Monitor, socks, command: bytes, what: str) -> str:
        flood = hostile.Flood(socks, command, budget=1 << 40, duration=FLOOD_SECONDS, pid=gw.pid,
                              abort_kb=mon.rss0 + RUNAWAY_MIB * 1024)
        ports = [s.getsockname()[1] for s in socks]

        def consumed() -> list[int]:
            """Bytes popgate itself has read per connection: sent, minus what still sits in our
            send queue and in popgate's receive queue (the kernel buffers hold megabytes)."""
            out = []
            for s, port, sent in zip(socks, ports, list(flood.sent)):
                try:
                    q = tcp_queues(gw.pid, port)
                    out.append(sent - hostile.unsent(s) - (q[1] if q else 0))
                except OSError:
                    out.append(sent)
            return out

        timeline: list[tuple[float, int]] = []
        t0 = time.monotonic()
        with flood:
            while flood.thread.is_alive():
                if gw.is_running():
                    timeline.append((time.monotonic() - t0, sum(consumed())))
                time.sleep(0.1)
        alive = gw.is_running()
        read = consumed() if alive else None
        if alive:
            timeline.append((time.monotonic() - t0, sum(read)))
        last_growth = next((t for (t, n), (_, prev) in zip(reversed(timeline), reversed(timeline[:-1]))
                            if n > prev), 0.0)
        held = len([p for p, _ in tcp_peers(gw.pid) if p in ports]) if alive else 0
        for s in socks:
            abort(s)
        n = len(command)
        each = "/".join(f"{x / MIB:.1f}" for x in flood.sent)
        took = f"{(timeline[-1][0] if timeline else 0):.1f} s"
        if flood.aborted:
            stop = f"RSS passed +{RUNAWAY_MIB} MiB after {took}: flood stopped (runaway)"
        elif flood.died or not alive:
            stop = "popgate died during the flood"
        elif last_growth < FLOOD_SECONDS - 1.5:
            stop = f"popgate stopped reading after {last_growth:.1f} s"
        else:
            stop = f"popgate kept reading for all {FLOOD_SECONDS:.0f} s"
        text = f"sent {each} MiB of {what} per connection (mostly into kernel buffers), read nothing; {stop}"
        if read is not None:
            cmds = "/".join(f"{x // n:,}" for x in read)
            text += f"; popgate read {cmds} commands per connection; {held}/{len(socks)} connections still open"
        return text

    def attack_capa_flood(self, binary: Path, tag: str) -> tuple:
        gw = self.gateway(binary, f"{tag}-1-capa")
        self.warm_up(gw, self.victim)

        def attack(mon, other):
            socks = [connect_from(A2, gw.starttls_port, rcvbuf=4096) for _ in range(4)]
            for s in socks:
                hostile.read_line(s)
            return self.flood(gw, mon, socks, b"CAPA\r\n", "CAPA")
        return self.measured(gw, self.victim, attack)

    def attack_uidl_flood(self, binary: Path, tag: str) -> tuple:
        gw = self.gateway(binary, f"{tag}-2-uidl", plain_listener=True)
        self.warm_up(gw, self.victim)
        bulk = self.bulk

        def attack(mon, other):
            socks = []
            for _ in range(4):
                s = connect_from(A2, gw.plain_port, rcvbuf=4096)
                hostile.read_line(s)
                s.sendall(f"USER {bulk.user}\r\n".encode())
                hostile.read_line(s)
                s.sendall(f"PASS {bulk.password}\r\n".encode())
                r = hostile.read_line(s, 15)
                assert r.startswith(b"+OK"), r
                socks.append(s)
            return self.flood(gw, mon, socks, b"UIDL\r\n", "UIDL (~46 KB of answer each)")
        return self.measured(gw, bulk, attack)

    # 3: slowloris and stalled handshakes

    def attack_slowloris(self, binary: Path, tag: str) -> tuple:
        timeout = 3.0
        gw = self.gateway(binary, f"{tag}-3-slowloris", login_timeout="3s")
        self.warm_up(gw, self.victim)
        creds = f"USER {self.victim.user}\r\nPASS {self.victim.password}\r\n".encode()
        limit = timeout + 5

        def slowloris(tls: bool):
            t0 = time.monotonic()
            s = connect_from(A2, gw.implicit_port if tls else gw.starttls_port)
            if tls:
                s = self.pki.client_context().wrap_socket(s, server_hostname="localhost")
            try:
                return hostile.dribble(s, creds, t0, limit)
            finally:
                s.close()

        def stalled(first: bytes):
            return hostile.stalled_handshake_from(A2, gw.implicit_port, first, limit)

        def attack(mon, other):
            hello = hostile.client_hello()
            with ThreadPoolExecutor(4) as pool:
                futs = {"plaintext 1 B/s": pool.submit(slowloris, False),
                        "1 B/s inside TLS": pool.submit(slowloris, True),
                        "silent TLS": pool.submit(stalled, b""),
                        "half a ClientHello": pool.submit(stalled, hello[:len(hello) // 2])}
            parts = []
            for name, fut in futs.items():
                got, closed = fut.result()
                after = got.partition(b"\r\n")[2] if got.startswith(b"+OK") else got
                shown = ("greeting + " + after.decode("latin-1").strip()) if got.startswith(b"+OK") \
                    else (repr(got[:40]) if got else "no byte")
                when = f"closed at {closed:.1f} s" if closed is not None else f"**still open at {limit:.0f} s**"
                parts.append(f"{name}: {when} ({shown})")
            return "; ".join(parts)
        return self.measured(gw, self.victim, attack)

    # 4: connection limit per address

    def attack_conn_limit(self, binary: Path, tag: str) -> tuple:
        gw = self.gateway(binary, f"{tag}-4-limit", connections_per_ip=5)
        self.warm_up(gw, self.victim)
        wait_until(lambda: not tcp_peers(gw.pid), 5.0)

        def attack(mon, other):
            held, admitted, refused, other_answers = [], 0, 0, {}
            for _ in range(20):
                s = connect_from(A2, gw.starttls_port)
                s.settimeout(3)
                try:
                    data = s.recv(4096)
                except OSError:
                    data = b""
                if data.startswith(b"+OK"):
                    admitted += 1
                    held.append(s)
                    continue
                rest, closed = read_until_eof(s, 3.0)
                data += rest
                s.close()
                if data == hostile.REFUSED and closed:
                    refused += 1
                else:
                    key = f"{data[:40]!r} closed={closed}"
                    other_answers[key] = other_answers.get(key, 0) + 1
            time.sleep(1.0)   # the other client keeps going while the five are held
            ok = sum(1 for s in held if hostile.capa_works(s))
            for s in held:
                s.close()
            logs = len(hostile.refused_log_lines(gw, A2))
            text = (f"{admitted} admitted (+OK greeting), {refused} got `-ERR [SYS/TEMP] Too many connections` "
                    f"+ close; the admitted ones still answer CAPA: {ok}/{admitted}; "
                    f"{logs} refusal log line(s) for .2")
            if other_answers:
                text += "; other answers: " + ", ".join(f"{n}x {k}" for k, n in other_answers.items())
            return text
        return self.measured(gw, self.victim, attack)

    # 5: brute force against the per-address penalty

    def attack_brute_force(self, binary: Path, tag: str) -> tuple:
        gw = self.gateway(binary, f"{tag}-5-brute", failure_delay="1s", failure_delay_max="4s")
        self.warm_up(gw, self.victim)
        v = self.victim

        def attack(mon, other):
            wrong = []
            closed_after = []
            for session in range(2):
                c = gw.connect(source=A2, timeout=30)
                for _ in range(3):
                    r, took = hostile.timed_pass(c, v.user, f"wrong-{len(wrong)}")
                    assert r.startswith(b"-ERR"), r
                    wrong.append(took)
                closed_after.append(c.wait_closed(3.0))
                c.close()

            def right(source):
                with gw.connect(source=source, timeout=30) as c:
                    r, took = hostile.timed_pass(c, v.user, v.password)
                    c.quit()
                    return r, took
            with ThreadPoolExecutor(2) as pool:
                f2 = pool.submit(right, A2)
                time.sleep(0.3)
                f3 = pool.submit(right, A3)
                (r2, t2), (r3, t3) = f2.result(), f3.result()
            status = lambda r: "+OK" if r.startswith(b"+OK") else r.decode("latin-1")   # noqa: E731
            return (f"wrong PASS answered after {' / '.join(f'{t:.1f}' for t in wrong)} s "
                    f"(Dovecot's own answer to a wrong password takes {self.dovecot_failure:.1f} s of that; "
                    f"session closed after 3 failures: {'yes' if all(closed_after) else 'no'}); "
                    f"right PASS from .2: {status(r2)} after {t2:.2f} s, from .3: {status(r3)} after {t3:.2f} s")
        return self.measured(gw, v, attack)

    # 6: zero-window client after the session ended

    def attack_zero_window(self, binary: Path, tag: str, new_keys: bool) -> tuple:
        target = hostile.kernel_send_capacity() + 8 * MIB
        opts = {"flush_timeout": "2s", "output_buffer": 2 * target} if new_keys else {}
        gw = self.gateway(binary, f"{tag}-6-zerowindow", **opts)
        self.warm_up(gw, self.victim)
        n = target // hostile.capa_size(gw) + 1

        def attack(mon, other):
            s = connect_from(A2, gw.starttls_port, rcvbuf=4096)
            port = s.getsockname()[1]
            try:
                hostile.read_line(s)
                s.settimeout(30)
                s.sendall(b"CAPA\r\n" * n + b"QUIT\r\n")

                def all_read() -> bool:
                    q = tcp_queues(gw.pid, port)
                    return q is None or (q[1] == 0 and hostile.unsent(s) == 0)
                if not wait_until(all_read, 20, 0.02):
                    return "popgate did not read the commands up to QUIT within 20 s"
                t_end = time.monotonic()
                queued = tcp_queues(gw.pid, port)
                if queued is None:
                    return "connection gone as soon as QUIT was read"
                released = wait_until(lambda: tcp_queues(gw.pid, port) is None, ZERO_WINDOW_WATCH, 0.02)
                took = time.monotonic() - t_end
                mon.finish()          # `after` while the client still holds its end open
                what = (f"{n:,} CAPA (~{target / MIB:.0f} MiB of answers) + QUIT, window kept at zero; "
                        f"popgate read QUIT with {queued[0] / MIB:.1f} MiB still in its kernel send queue")
                if released:
                    return f"{what}; released the connection {took:.1f} s after reading QUIT"
                return f"{what}; **still holds the connection {took:.0f} s after reading QUIT**"
            finally:
                abort(s)
        return self.measured(gw, self.victim, attack)

    # 7: a hostile backend

    def attack_backend(self, binary: Path, tag: str, variant: str, new_keys: bool) -> tuple:
        if variant == "size":
            fake = self.fake(behaviour="huge_size", huge_size=2 ** 64 - 1, hostile_connection=2)
            opts = {}
        else:
            fake = self.fake(behaviour="fetch_flood", flood=100_000, hostile_connection=2)
            opts = {"max_messages": 100} if new_keys else {}
        gw = self.gateway(binary, f"{tag}-7{variant}", backend_tls="none", backend_port=fake.port,
                          backend_timeout="3s", **opts)
        with gw.connect() as c:       # backend connection 1: a normal session (warm-up)
            assert c.user_pass(FAKE_USER, FAKE_PASSWORD).startswith(b"+OK")
            c.quit()
        inbox0 = [(m.uid, frozenset(m.flags)) for m in fake.inbox()]

        def attack(mon, other):
            def login():
                t0 = time.monotonic()
                try:
                    with gw.connect(source=A2, timeout=BACKEND_ATTACK_WAIT) as c:
                        r = c.user_pass(FAKE_USER, FAKE_PASSWORD)
                        stat = c.command("STAT") if r.startswith(b"+OK") else None
                        return f"`{r.decode('latin-1')}`", stat, time.monotonic() - t0
                except (socket.timeout, TimeoutError):
                    return "**no answer**", None, time.monotonic() - t0
                except (ConnectionClosed, OSError) as exc:
                    return f"**connection closed** ({type(exc).__name__})", None, time.monotonic() - t0
            with ThreadPoolExecutor(1) as pool:
                fut = pool.submit(login)
                wait_until(lambda: fake.connections >= 2, 10, 0.01)   # the hostile connection is open
                other.start()                                       # backend connections 3, 4, ...
                r, stat, took = fut.result()
                time.sleep(2.0)
            what = (f"PASS → {r} after {took:.2f} s"
                    + (f", STAT → `{stat.decode('latin-1')}`" if stat is not None else ""))
            if variant != "size":
                what += f"; backend sent {fake.flood_sent / MIB:.1f} MiB of FETCH responses"
            return what
        return self.measured(gw, None, attack, other_user=(FAKE_USER, FAKE_PASSWORD), other_when="attack",
                             mailbox=lambda: fake_mailbox_cell(fake, inbox0))

    # 8: thousands of abrupt sessions

    def attack_abrupt(self, binary: Path, tag: str, new_keys: bool) -> tuple:
        gw = self.gateway(binary, f"{tag}-8-abrupt")
        self.warm_up(gw, self.victim)
        hello = hostile.client_hello()
        ports: dict[int, int] = {}   # client port -> how often the attack used it

        def wave(start: int, count: int) -> int:
            conns = []
            for k in range(start, start + count):
                kind = k % 6
                rst = (k // 6) % 2 == 1
                try:
                    s = connect_from(A2, gw.implicit_port if kind >= 3 else gw.starttls_port, timeout=5)
                except OSError:
                    continue
                try:
                    if kind == 1:
                        s.sendall(b"USER partial-comm")
                    elif kind == 2:
                        s.sendall(b"STLS\r\n" + hello[:40])
                    elif kind == 3:
                        s.sendall(hello[:len(hello) // 2])
                    elif kind == 4:
                        s.sendall(hello)
                except OSError:
                    pass
                conns.append((s, rst))
                port = s.getsockname()[1]
                ports[port] = ports.get(port, 0) + 1
            for s, rst in conns:
                abort(s) if rst else s.close()
            return len(conns)

        wave(0, 60)   # first-use allocations are not growth
        wait_until(lambda: len(tcp_peers(gw.pid)) == 0, 10, 0.2)

        def attack(mon, other):
            ports.clear()
            log_start = len(gw.stderr_bytes())
            t0 = time.monotonic()
            connected = 0
            for start in range(0, ABRUPT_SESSIONS, ABRUPT_WAVE):
                connected += wave(start, ABRUPT_WAVE)
                time.sleep(ABRUPT_PAUSE)
                if time.monotonic() - t0 > 120:
                    break
            took = time.monotonic() - t0
            other.stop()
            t1 = time.monotonic()
            back = wait_until(lambda: fd_count(gw.pid) <= mon.fds0, 20, 0.1)
            back_after = time.monotonic() - t1
            tail = (f"fds back to the baseline {back_after:.1f} s after the last client left" if back
                    else f"**{fd_count(gw.pid) - mon.fds0} fds above the baseline 20 s after the last client left**")
            # the sessions popgate logged as ended, by how they ended (`session ended: … client=IP:PORT … ending=X`)
            endings: dict[str, int] = {}
            log = gw.stderr_bytes()[log_start:].decode("utf-8", "replace")
            for m in re.finditer(r'session ended: [^"]*?client=127\.0\.0\.2:(\d+)[^"]*?ending=([\w-]+)', log):
                port = int(m.group(1))
                if ports.get(port, 0) > 0:
                    ports[port] -= 1
                    endings[m.group(2)] = endings.get(m.group(2), 0) + 1
            ended = sum(endings.values())
            split = f"{ended:,} became sessions (ending " + ", ".join(f"{k} ×{n:,}" for k, n in sorted(endings.items())) + ")"
            if connected > ended:
                split += (f", {connected - ended:,} without a session-ended line ("
                          + ("refused at accept over connections_per_ip 50" if new_keys and back else "never ended")
                          + ")")
            return (f"{connected:,} of {ABRUPT_SESSIONS:,} connected and vanished within {took:.1f} s "
                    f"(waves of {ABRUPT_WAVE}, {ABRUPT_PAUSE * 1000:.0f} ms apart); {split}; {tail}")
        return self.measured(gw, self.victim, attack)

    # 9: the forwarded client address

    def attack_forwarded(self, binary: Path, tag: str) -> tuple:
        dv = self.trusted_dovecot()
        acct = self.account(dv, f"fwd{tag}", [b"Subject: fwd %d\r\n\r\nhi\r\n" % i for i in range(VICTIM_MESSAGES)])
        gw = self.gateway(binary, f"{tag}-9-forward", backend_port=dv.ports.imap)
        self.warm_up(gw, acct)

        def rips(needle: str) -> str:
            lines = hostile.dovecot_lines(dv, acct.user, needle, timeout=10)
            counts: dict[str, int] = {}
            for ln in lines:
                m = re.search(r"rip=([^,\s]+)", ln)
                key = m.group(1) if m else "(none)"
                counts[key] = counts.get(key, 0) + 1
            return ", ".join(f"rip={k} ×{n}" for k, n in sorted(counts.items())) or "no line"

        def attack(mon, other):
            with gw.login(acct.user, acct.password, source=A2) as c:
                c.quit()
            with gw.connect(source=A2) as c:
                r = c.user_pass(acct.user, "wrong password")
            time.sleep(1.5)
            other.stop()
            time.sleep(0.5)
            return (f"client .2 logged in, then a wrong PASS ({r.decode('latin-1')}); Dovecot's log: "
                    f"`Login:` {rips('Login:')} (.1: the report's own IMAP logins and the warm-up session; "
                    f".3: the other client); "
                    f"`auth failed` {rips('auth failed')}")
        return self.measured(gw, acct, attack)

    # driving

    def run_build(self, binary: Path, tag: str, label: str, new_keys: bool, only: set) -> None:
        for attack in ORDER:
            number = 7 if attack == "7b" else attack
            if number not in only:
                continue
            if not new_keys and number in NEEDS_NEW_KEYS:
                self.rows.append(Row(attack, label, "n/a (no such limit)"))
                continue
            self.progress(f"{label}: attack {attack}: {ATTACKS[attack]}")
            try:
                if attack == 1:
                    cells = self.attack_capa_flood(binary, tag)
                elif attack == 2:
                    cells = self.attack_uidl_flood(binary, tag)
                elif attack == 3:
                    cells = self.attack_slowloris(binary, tag)
                elif attack == 4:
                    cells = self.attack_conn_limit(binary, tag)
                elif attack == 5:
                    cells = self.attack_brute_force(binary, tag)
                elif attack == 6:
                    cells = self.attack_zero_window(binary, tag, new_keys)
                elif attack == 7:
                    cells = self.attack_backend(binary, tag, "size", new_keys)
                elif attack == "7b":
                    cells = self.attack_backend(binary, tag, "flood", new_keys)
                elif attack == 8:
                    cells = self.attack_abrupt(binary, tag, new_keys)
                else:
                    cells = self.attack_forwarded(binary, tag)
                row = Row(attack, label, *cells)
            except Exception as exc:
                gw = self.gateways[-1] if self.gateways else None
                dead = death(gw) if gw is not None else ""
                row = Row(attack, label, f"{dead + '; ' if dead else ''}**report error**: "
                                         f"{type(exc).__name__}: {str(exc)[:200]}")
            finally:
                for gw in self.gateways:
                    gw.stop()
                for f in self.fakes:
                    f.stop()
                self.fakes.clear()
            self.rows.append(row)
            self.progress(f"  saw: {row.saw}")
            self.progress(f"  RSS {row.rss} MiB; CPU {row.cpu} s; fds {row.fds}; other client: {row.other}; "
                          f"mailbox: {row.mailbox}")


# -- environment ------------------------------------------------------------------------------------

def command_output(*cmd: str, cwd: Path | None = None) -> str:
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=30, cwd=cwd)
        out = (r.stdout or r.stderr).strip()
        return out.splitlines()[0] if out else "?"
    except (OSError, subprocess.SubprocessError):
        return "?"


def build_info(binary: Path) -> dict[str, str]:
    """What the binary is: debug/release (from its path), and the source tree it sits in: HEAD, the
    newest commit touching Sources/ (what the binary was most likely built from), uncommitted changes."""
    resolved = binary.resolve()
    kind = ("debug" if "/debug/" in str(resolved) else "release" if "/release/" in str(resolved) else "unknown")
    tree = next((p for p in resolved.parents if (p / ".git").exists()), None)
    info = {"path": str(resolved), "kind": kind, "head": "?", "sources": "?", "sources_time": "?", "dirty": ""}
    if tree is not None:
        info["head"] = command_output("git", "rev-parse", "--short", "HEAD", cwd=tree)
        info["sources"] = command_output("git", "log", "-1", "--format=%h", "--", "Sources", cwd=tree)
        info["sources_time"] = command_output("git", "log", "-1", "--format=%ci", "--", "Sources", cwd=tree)
        dirty = command_output("git", "status", "--porcelain", "--untracked-files=no", "--", "Sources", cwd=tree)
        info["dirty"] = "" if dirty in ("", "?") else " + uncommitted changes in Sources/"
    st = resolved.stat()
    info["size"] = f"{st.st_size / 1e6:.1f} MB"
    info["built"] = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(st.st_mtime))
    return info


def describe(binary: Path) -> str:
    i = build_info(binary)
    return (f"{i['path']} — **{i['kind']} build**, {i['size']}, built {i['built']}; its tree: HEAD {i['head']}, "
            f"newest commit touching Sources/ {i['sources']} ({i['sources_time']}){i['dirty']}")


def short_label(binary: Path) -> str:
    i = build_info(binary)
    return f"{i['head']}{'+dirty' if i['dirty'] else ''} ({i['kind']})"


def machine() -> str:
    model = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return (f"nproc={os.cpu_count()} ({len(os.sched_getaffinity(0))} usable), CPU: {model}, "
            f"kernel {platform.release()}, load avg {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


def parse_only(text: str) -> set[int]:
    out = {int(x) for x in text.split(",") if x.strip()}
    if not out or not out <= set(range(1, 10)):
        raise argparse.ArgumentTypeError("a comma-separated subset of 1..9")
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--popgate", default=str(REPO_ROOT / ".build" / "debug" / "popgate"),
                    help="the popgate binary (default .build/debug/popgate)")
    ap.add_argument("--baseline", help="an older popgate binary to run the same attacks against, side by side")
    ap.add_argument("--only", type=parse_only, default=set(range(1, 10)), help="attacks, e.g. 1,2,8")
    ap.add_argument("--keep", action="store_true", help="keep the temp dir (logs, configs)")
    args = ap.parse_args()
    builds = [(Path(args.popgate), "cur", True)]
    if args.baseline:
        builds.append((Path(args.baseline), "base", False))
    for b, _, _ in builds:
        if not b.exists():
            print(f"front_door: {b} not found (swift build?)", file=sys.stderr)
            return 2
    started = datetime.datetime.now().astimezone()
    print(f"PopGate front-door report — {started:%Y-%m-%d %H:%M %Z}")
    print(f"machine : {machine()}")
    labels = {}
    for b, tag, new_keys in builds:
        labels[tag] = short_label(b) + ("" if new_keys else " baseline")
        print(f"popgate : {describe(b)}{'' if new_keys else '  [baseline: attacks 3, 4, 5 need new config keys]'}")
    print(f"dovecot : {command_output('dovecot', '--version')}")
    root = Path(tempfile.mkdtemp(prefix="popgate-frontdoor-"))
    os.chmod(root, 0o755)   # Dovecot's unprivileged processes must reach the files inside
    report = Report(args, root)
    try:
        report.start()
        for b, tag, new_keys in builds:
            report.run_build(b, tag, labels[tag], new_keys, args.only)
    finally:
        report.stop()
        if args.keep:
            print(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    order = [labels[tag] for _, tag, _ in builds]
    rows = sorted(report.rows, key=lambda r: (ORDER.index(r.attack), order.index(r.build)))
    elapsed = time.monotonic() - report.t0
    print()
    print(f"### PopGate front door, measured ({started:%Y-%m-%d}, {machine()})")
    print()
    for b, tag, _ in builds:
        print(f"- `{labels[tag]}`: {describe(b)}")
    print("- attacker 127.0.0.2, other client 127.0.0.3 (a full session about once a second during each attack); "
          "one fresh popgate per attack, real Dovecot on loopback; RSS = VmRSS (peak incl. VmHWM growth)")
    print()
    print_table(rows)
    print()
    print(f"load avg at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}; report took {elapsed:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
