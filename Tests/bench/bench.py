#!/usr/bin/env python3
"""PopGate vs Dovecot's own POP3, measured in the same run against the same Dovecot and the
same user mailboxes (poplib over implicit TLS for both). `make bench` builds a release binary
and runs this script; see Tests/bench/README.md.

    python3 Tests/bench/bench.py --popgate .build/release/popgate [--runs 3] [--only 1,3]

Scenarios (each runs RUNS times per server, alternating which server goes first; the median is
reported; every scenario starts with one untimed warm-up session per server):
  1. 2,000 messages of ~2-50 KB: login, STAT, LIST, UIDL, RETR of all, QUIT: wall time, MB/s,
     server CPU of the session (popgate process | Dovecot's pop3 + pop3-login), client CPU
  2. one 25 MB message: RETR time and MB/s; peak RSS (VmHWM) of a fresh popgate process before
     and after vs the VmHWM of the `dovecot/pop3` process serving the Dovecot session
  3. 20 clients at once (one process each): login, LIST, RETR of 50 messages, QUIT:
     total wall time, p50/p95 (nearest rank) session time
  4. 50 sequential logins (TCP + TLS handshake, USER/PASS, QUIT) on a 10-message mailbox
PopGate runs with retention on_retrieve=seen, on_delete=keep (nothing is deleted); Dovecot's
POP3 sets \\Seen on RETR by itself, so both leave the mailboxes as they found them.
"""
from __future__ import annotations

import argparse
import base64
import hashlib
import math
import multiprocessing
import os
import platform
import poplib
import random
import shutil
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO_ROOT / "Tests" / "integration"))

from harness import corpus  # noqa: E402
from harness.certs import TestPKI, make_pki  # noqa: E402
from harness.dovecot import Dovecot  # noqa: E402
from harness.endpoint import DovecotPop3  # noqa: E402
from harness.gateway import Gateway, GatewayOptions  # noqa: E402
from harness.imap import ImapAccount  # noqa: E402
from harness.procinfo import cpu_seconds, status_kb  # noqa: E402

BULK_COUNT = 2000
BULK_SEED = 1939
CONCURRENT_CLIENTS = 20
CONCURRENT_RETRS = 50
LOGINS = 50
POP_TIMEOUT = 120.0

POPGATE, DOVECOT = "popgate", "dovecot"
SERVERS = (POPGATE, DOVECOT)


# -- the mailboxes ----------------------------------------------------------------------------

_TEXT = (
    "PopGate translates every POP3 command into IMAP, so the mail stays on the server while "
    "old clients keep working. Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do "
    "eiusmod tempor incididunt ut labore et dolore magna aliqua. Ut enim ad minim veniam, quis "
    "nostrud exercitation ullamco laboris nisi ut aliquip ex ea commodo consequat. ") * 4


def bulk_messages(n: int = BULK_COUNT, seed: int = BULK_SEED) -> list[bytes]:
    """n distinct messages, sizes log-uniform in ~2-50 KB, always the same bytes: a text part
    (lines of 40-76 characters, some starting with '.') and, in two of three, a base64 part."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        target = int(math.exp(rng.uniform(math.log(2_000), math.log(50_000))))
        head = (f"From: Sender {i % 37} <sender{i % 37}@example.net>\r\n"
                f"To: Bench <bench@example.net>\r\nSubject: bench message {i}\r\n"
                f"Date: Thu, 28 Nov 2024 10:{i // 60 % 60:02d}:{i % 60:02d} +0000\r\n"
                f"Message-ID: <bench-{i}@bench.popgate.test>\r\nMIME-Version: 1.0\r\n").encode()
        text_budget = target if i % 3 == 0 else target // 4
        lines, size = [], 0
        while size < text_budget:
            off, width = rng.randrange(0, len(_TEXT) - 80), rng.randrange(40, 77)
            line = _TEXT[off:off + width].strip() or "x"
            if rng.random() < 0.02:
                line = "." + line            # dot-stuffing on the wire
            lines.append(line)
            size += len(line) + 2
        text = ("\r\n".join(lines) + "\r\n").encode()
        if i % 3 == 0:
            msg = head + b"Content-Type: text/plain; charset=us-ascii\r\n\r\n" + text
        else:
            raw = rng.randbytes(max(1, (target - len(text) - 600) * 3 // 4))
            b64 = base64.encodebytes(raw).replace(b"\n", b"\r\n")
            msg = (head + b'Content-Type: multipart/mixed; boundary="bench-b"\r\n\r\n'
                   b"--bench-b\r\nContent-Type: text/plain\r\n\r\n" + text
                   + b"--bench-b\r\nContent-Type: application/octet-stream\r\n"
                   b"Content-Transfer-Encoding: base64\r\n\r\n" + b64 + b"--bench-b--\r\n")
        out.append(msg)
    return out


def login_messages(n: int = 10) -> list[bytes]:
    return [f"From: a@example.net\r\nTo: b@example.net\r\nSubject: login {i}\r\n\r\nbody {i}\r\n".encode()
            for i in range(n)]


@dataclass
class Account:
    user: str
    password: str
    count: int = 0
    octets: int = 0
    sizes: tuple[int, ...] = ()


def make_account(dovecot: Dovecot, prefix: str, messages: list[bytes]) -> Account:
    user = dovecot.new_user_name(prefix)
    password = f"bench-{os.urandom(6).hex()}"
    dovecot.add_user(user, password)
    ImapAccount(dovecot.host, dovecot.ports.imap, user, password).append(messages)
    sizes = tuple(len(m) for m in messages)
    return Account(user, password, len(messages), sum(sizes), sizes)


# -- clients -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Target:
    """Where a POP3S client connects (picklable: handed to the concurrent client processes)."""
    name: str
    host: str
    port: int
    ca_file: str


def pop_login(t: Target, acct: Account) -> poplib.POP3_SSL:
    ctx = ssl.create_default_context(cafile=t.ca_file)
    p = poplib.POP3_SSL(t.host, t.port, context=ctx, timeout=POP_TIMEOUT)
    p.user(acct.user)
    p.pass_(acct.password)
    return p


def full_session(t: Target, acct: Account, digest: bool = False, probe: "CpuProbe | None" = None):
    """Scenario 1: login, STAT, LIST, UIDL, RETR all, QUIT → (seconds, RETR octets, check)."""
    if probe is not None:
        probe.begin()
    start = time.perf_counter()
    p = pop_login(t, acct)
    if probe is not None:
        probe.logged_in()
    count, _ = p.stat()
    _, listing, _ = p.list()
    _, uidls, _ = p.uidl()
    octets = 0
    h = hashlib.sha256() if digest else None
    for n in range(1, count + 1):
        _, lines, o = p.retr(n)
        octets += o
        if h is not None:
            for line in lines:
                h.update(line)
                h.update(b"\n")
            h.update(b"\0")
    if probe is not None:
        probe.end()
    p.quit()
    elapsed = time.perf_counter() - start
    check = (count, tuple(listing), tuple(uidls), h.hexdigest() if h else None)
    return elapsed, octets, check


def concurrent_client(t: Target, acct: Account, first: int, barrier, results) -> None:
    """Scenario 3, one client (runs in its own process)."""
    try:
        barrier.wait(60)
        start = time.monotonic()
        p = pop_login(t, acct)
        p.list()
        octets = 0
        for n in range(first, first + CONCURRENT_RETRS):
            octets += p.retr(n)[2]
        p.quit()
        results.put(("ok", start, time.monotonic(), octets))
    except Exception as exc:  # reported by the parent
        results.put(("error", repr(exc), 0.0, 0))


def concurrent_run(t: Target, acct: Account):
    ctx = multiprocessing.get_context("fork")
    barrier = ctx.Barrier(CONCURRENT_CLIENTS + 1)
    results = ctx.Queue()
    step = max(1, (acct.count - CONCURRENT_RETRS) // CONCURRENT_CLIENTS)
    procs = [ctx.Process(target=concurrent_client,
                         args=(t, acct, 1 + k * step, barrier, results), daemon=True)
             for k in range(CONCURRENT_CLIENTS)]
    for pr in procs:
        pr.start()
    barrier.wait(60)           # all clients forked and ready: go
    got = [results.get(timeout=300) for _ in procs]
    for pr in procs:
        pr.join(30)
    errors = [g[1] for g in got if g[0] != "ok"]
    if errors:
        raise RuntimeError(f"{t.name}: {len(errors)} of {CONCURRENT_CLIENTS} clients failed: {errors[0]}")
    sessions = sorted(end - start for _, start, end, _ in got)
    # from the first client's start to the last one's end (CLOCK_MONOTONIC is system-wide)
    wall = max(end for _, _, end, _ in got) - min(start for _, start, _, _ in got)
    return wall, sessions, sum(g[3] for g in got)


def login_run(t: Target, acct: Account, n: int = LOGINS) -> list[float]:
    out = []
    for _ in range(n):
        start = time.perf_counter()
        p = pop_login(t, acct)
        p.quit()
        out.append(time.perf_counter() - start)
    return out


# -- /proc ---------------------------------------------------------------------------------------

def dovecot_children(master_pid: int, *executables: str) -> set[int]:
    """PIDs of Dovecot service processes (e.g. /usr/lib/dovecot/pop3) under our master."""
    out = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        pid = int(entry)
        try:
            if os.path.basename(os.readlink(f"/proc/{pid}/exe")) not in executables:
                continue
            with open(f"/proc/{pid}/status") as f:
                ppid = next(int(line.split()[1]) for line in f if line.startswith("PPid:"))
        except (OSError, StopIteration, ValueError):
            continue
        if ppid == master_pid:
            out.add(pid)
    return out


class CpuProbe:
    """Server-side CPU of ONE session (nothing else may run on these servers meanwhile).
    Dovecot POP3: the session's `pop3` process plus its `pop3-login` process, which stays as
    the TLS proxy for the whole session. PopGate: the growth of the popgate process, and
    apart from it the backend's `imap` + `imap-login` processes serving PopGate's session."""

    def __init__(self, master_pid: int, gateway_pid: int | None):
        self.master = master_pid
        self.gateway_pid = gateway_pid
        self.names = ("imap", "imap-login") if gateway_pid is not None else ("pop3", "pop3-login")
        self.server = self.backend = 0.0
        self.session_pids: set[int] = set()

    def begin(self) -> None:
        self.before = dovecot_children(self.master, *self.names)
        self.gw0 = cpu_seconds(self.gateway_pid) if self.gateway_pid is not None else 0.0

    def logged_in(self) -> None:
        self.session_pids = dovecot_children(self.master, *self.names) - self.before

    def end(self) -> None:
        """Call before QUIT: Dovecot's per-session processes exit with the session."""
        dovecot = sum(cpu_seconds(pid) for pid in self.session_pids)
        if self.gateway_pid is not None:
            self.server = cpu_seconds(self.gateway_pid) - self.gw0
            self.backend = dovecot
        else:
            self.server = dovecot

    def pid(self, executable: str) -> int:
        """The session's process running `executable` (e.g. pop3, imap)."""
        found = [p for p in self.session_pids if _exe(p) == executable]
        if len(found) != 1:
            raise RuntimeError(f"expected one new dovecot/{executable} process, found {found}")
        return found[0]


def _exe(pid: int) -> str:
    try:
        return os.path.basename(os.readlink(f"/proc/{pid}/exe"))
    except OSError:
        return ""


def mib(kb: int) -> float:
    return kb / 1024


# -- results --------------------------------------------------------------------------------------

@dataclass
class Row:
    label: str
    unit: str
    better: str                      # "lower" | "higher" | "" (information only)
    values: dict[str, list[float]] = field(default_factory=lambda: {s: [] for s in SERVERS})
    fmt: str = "{:.2f}"

    def add(self, server: str, value: float) -> None:
        self.values[server].append(value)

    def median(self, server: str) -> float | None:
        v = self.values[server]
        return statistics.median(v) if v else None


def nearest_rank(sorted_values: list[float], pct: float) -> float:
    k = max(1, math.ceil(pct / 100 * len(sorted_values)))
    return sorted_values[k - 1]


def print_table(rows: list[Row]) -> None:
    header = ("scenario", "PopGate", "Dovecot POP3", "ratio")
    body = []
    for r in rows:
        p, d = r.median(POPGATE), r.median(DOVECOT)
        cell = lambda x: "-" if x is None else r.fmt.format(x)   # noqa: E731
        ratio = "-" if p is None or d is None or d == 0 else f"{p / d:.2f}x"
        hint = {"lower": " (lower is better)", "higher": " (higher is better)"}.get(r.better, "")
        body.append((f"{r.label} [{r.unit}]{hint}", cell(p), cell(d), ratio))
    widths = [max(len(x[i]) for x in [header] + body) for i in range(4)]
    line = lambda cols: " | ".join(c.ljust(widths[i]) if i == 0 else c.rjust(widths[i])   # noqa: E731
                                   for i, c in enumerate(cols))
    print(line(header))
    print("-+-".join("-" * w for w in widths))
    for b in body:
        print(line(b))


def print_runs(rows: list[Row]) -> None:
    print("per-run values (PopGate | Dovecot POP3):")
    for r in rows:
        fmt = lambda vs: ", ".join(r.fmt.format(v) for v in vs) or "-"   # noqa: E731
        print(f"  {r.label} [{r.unit}]: {fmt(r.values[POPGATE])} | {fmt(r.values[DOVECOT])}")


# -- environment ------------------------------------------------------------------------------------

def command_output(*cmd: str, cwd: Path | None = None) -> str:
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=30, cwd=cwd)
        return (r.stdout or r.stderr).strip().splitlines()[0] if (r.stdout or r.stderr).strip() else "?"
    except (OSError, subprocess.SubprocessError):
        return "?"


def print_machine(binary: Path, backend_tls: str) -> None:
    model = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    commit = command_output("git", "rev-parse", "--short", "HEAD", cwd=REPO_ROOT)
    dirty = command_output("git", "status", "--porcelain", "--untracked-files=no", "--", "Sources",
                           cwd=REPO_ROOT)
    st = binary.stat()
    print(f"machine : nproc={os.cpu_count()} ({len(os.sched_getaffinity(0))} usable), model name: {model}, "
          f"kernel {platform.release()}, load avg {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"popgate : {binary} ({st.st_size / 1e6:.1f} MB, built "
          f"{time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(st.st_mtime))}), "
          f"source commit {commit}{' + uncommitted changes in Sources/' if dirty not in ('', '?') else ''}, "
          f"backend over {'IMAPS' if backend_tls == 'implicit' else 'IMAP STARTTLS'}")
    print(f"swift   : {command_output('swift', '--version')}")
    print(f"dovecot : {command_output('dovecot', '--version')}")
    print(f"client  : Python {platform.python_version()} poplib, {ssl.OPENSSL_VERSION}; "
          f"openssl CLI: {command_output('openssl', 'version')}")


# -- the bench ------------------------------------------------------------------------------------

class Bench:
    def __init__(self, args, root: Path):
        self.args = args
        self.root = root
        self.binary = Path(args.popgate).resolve()
        self.pki: TestPKI | None = None
        self.dovecot: Dovecot | None = None
        self.gateways: list[Gateway] = []
        self.rows: list[Row] = []
        self.notes: list[str] = []

    # servers

    def start(self) -> None:
        self.pki = make_pki(self.root / "pki")
        self.dovecot = Dovecot(self.root / "dovecot", self.pki)
        self.dovecot.start()
        self.dovecot_pop3 = DovecotPop3(self.dovecot, self.pki)

    def new_gateway(self) -> Gateway:
        d = self.dovecot
        tls = self.args.backend_tls
        opts = GatewayOptions(backend_port=d.ports.imaps if tls == "implicit" else d.ports.imap,
                              backend_tls=tls, on_delete="keep", on_retrieve="seen",
                              failure_delay="0s", drain="2s", log_level=self.args.log_level)
        gw = Gateway(self.root / "gw" / f"gw{len(self.gateways) + 1}", self.pki, opts, binary=self.binary)
        self.gateways.append(gw)
        gw.start()
        return gw

    def target(self, name: str, gw: Gateway | None = None) -> Target:
        if name == POPGATE:
            return Target(POPGATE, gw.host, gw.implicit_port, str(self.pki.ca_cert))
        return Target(DOVECOT, self.dovecot.host, self.dovecot_pop3.implicit_port, str(self.pki.ca_cert))

    def stop(self) -> None:
        for gw in self.gateways:
            gw.stop()
        if self.dovecot is not None:
            self.dovecot.stop()

    def order(self, run: int) -> tuple[str, str]:
        return SERVERS if run % 2 == 0 else SERVERS[::-1]

    def row(self, *a, **kw) -> Row:
        r = Row(*a, **kw)
        self.rows.append(r)
        return r

    # scenarios

    def probe(self, server: str, gw: Gateway | None) -> CpuProbe:
        return CpuProbe(self.dovecot.proc.pid, gw.pid if server == POPGATE else None)

    def scenario_bulk(self, gw: Gateway, acct: Account) -> None:
        wall = self.row(f"1. {acct.count:,} msgs: login+STAT+LIST+UIDL+RETR all+QUIT", "s", "lower")
        rate = self.row("1.   RETR throughput", "MB/s", "higher", fmt="{:.1f}")
        cpu = self.row("1.   server CPU (popgate | pop3+pop3-login)", "s", "lower")
        backend = self.row("1.   + backend CPU for PopGate (imap+imap-login)", "s", "")
        client = self.row("1.   client CPU (poplib)", "s", "")
        targets = {POPGATE: self.target(POPGATE, gw), DOVECOT: self.target(DOVECOT)}
        checks = {s: full_session(targets[s], acct, digest=True)[2] for s in SERVERS}   # warm-up
        same = checks[POPGATE] == checks[DOVECOT]
        self.notes.append(f"scenario 1 check (warm-up): message count, LIST, UIDL and the RETR'd lines of all "
                          f"{acct.count} messages identical on both servers: {'yes' if same else 'NO'}")
        if not same:
            for i, what in enumerate(("count", "LIST", "UIDL", "RETR digest")):
                if checks[POPGATE][i] != checks[DOVECOT][i]:
                    self.notes.append(f"  differs: {what}")
        for run in range(self.args.runs):
            for s in self.order(run):
                probe = self.probe(s, gw)
                c0 = time.process_time()
                elapsed, octets, _ = full_session(targets[s], acct, probe=probe)
                client.add(s, time.process_time() - c0)
                wall.add(s, elapsed)
                rate.add(s, octets / elapsed / 1e6)
                cpu.add(s, probe.server)
                if s == POPGATE:
                    backend.add(s, probe.backend)
                self.progress(f"1/{run + 1} {s}: {elapsed:.2f} s, {octets / 1e6:.1f} MB, "
                              f"server CPU {probe.server:.2f} s")

    def scenario_big(self, acct: Account) -> None:
        t_retr = self.row("2. 25 MB message: RETR", "s", "lower", fmt="{:.3f}")
        rate = self.row("2.   RETR throughput", "MB/s", "higher", fmt="{:.1f}")
        cpu = self.row("2.   server CPU, whole session (popgate | pop3+pop3-login)", "s", "lower")
        peak = self.row("2.   peak RSS after RETR (popgate | dovecot/pop3 VmHWM)", "MiB", "lower", fmt="{:.1f}")
        before = self.row("2.     VmHWM before RETR (after login)", "MiB", "", fmt="{:.1f}")
        growth = self.row("2.     VmHWM growth during RETR", "MiB", "", fmt="{:.1f}")
        imap_peak = self.row("2.     + backend dovecot/imap serving PopGate (VmHWM)", "MiB", "", fmt="{:.1f}")
        for run in range(self.args.runs):
            for s in self.order(run):
                gw = self.new_gateway() if s == POPGATE else None   # fresh process: its own VmHWM
                t = self.target(s, gw)
                if gw is not None:   # warm-up session: TLS contexts, first backend connection
                    p = pop_login(t, acct)
                    p.stat()
                    p.quit()
                probe = self.probe(s, gw)
                probe.begin()
                p = pop_login(t, acct)
                probe.logged_in()
                pid = gw.pid if gw is not None else probe.pid("pop3")
                hwm0 = status_kb(pid, "VmHWM")
                start = time.perf_counter()
                _, lines, octets = p.retr(1)
                elapsed = time.perf_counter() - start
                hwm1 = status_kb(pid, "VmHWM")
                if gw is not None:
                    imap_peak.add(s, mib(status_kb(probe.pid("imap"), "VmHWM")))
                probe.end()
                p.quit()
                del lines
                t_retr.add(s, elapsed)
                rate.add(s, octets / elapsed / 1e6)
                cpu.add(s, probe.server)
                before.add(s, mib(hwm0))
                peak.add(s, mib(hwm1))
                growth.add(s, mib(hwm1 - hwm0))
                self.progress(f"2/{run + 1} {s}: RETR {octets / 1e6:.1f} MB in {elapsed:.3f} s, "
                              f"VmHWM {mib(hwm0):.1f} -> {mib(hwm1):.1f} MiB, server CPU {probe.server:.2f} s")
                if gw is not None:
                    gw.stop()

    def scenario_concurrent(self, gw: Gateway, acct: Account) -> None:
        wall = self.row(f"3. {CONCURRENT_CLIENTS} clients x (login+LIST+{CONCURRENT_RETRS} RETR+QUIT): total",
                        "s", "lower")
        p50 = self.row("3.   session time p50", "s", "lower")
        p95 = self.row("3.   session time p95", "s", "lower")
        targets = {POPGATE: self.target(POPGATE, gw), DOVECOT: self.target(DOVECOT)}
        for s in SERVERS:
            concurrent_run(targets[s], acct)    # warm-up
        for run in range(self.args.runs):
            for s in self.order(run):
                total, sessions, octets = concurrent_run(targets[s], acct)
                wall.add(s, total)
                p50.add(s, statistics.median(sessions))
                p95.add(s, nearest_rank(sessions, 95))
                self.progress(f"3/{run + 1} {s}: {total:.2f} s total, {octets / 1e6:.1f} MB")

    def scenario_logins(self, gw: Gateway, acct: Account) -> None:
        med = self.row(f"4. {LOGINS} sequential logins (TLS+USER/PASS+QUIT): median", "ms", "lower", fmt="{:.1f}")
        targets = {POPGATE: self.target(POPGATE, gw), DOVECOT: self.target(DOVECOT)}
        for s in SERVERS:
            login_run(targets[s], acct, 5)      # warm-up
        for run in range(self.args.runs):
            for s in self.order(run):
                times = login_run(targets[s], acct)
                med.add(s, statistics.median(times) * 1000)
                self.progress(f"4/{run + 1} {s}: median {statistics.median(times) * 1000:.1f} ms")

    def progress(self, text: str) -> None:
        if not self.args.quiet:
            print(f"  [{time.monotonic() - self.t0:6.1f} s] {text}", flush=True)

    def run(self) -> None:
        self.t0 = time.monotonic()
        only = set(self.args.only)
        print_machine(self.binary, self.args.backend_tls)
        self.start()
        accounts = {}
        if only & {1, 3}:
            accounts["bulk"] = make_account(self.dovecot, "bulk", bulk_messages())
            a = accounts["bulk"]
            self.progress(f"mailbox 'bulk': {a.count} messages, {a.octets / 1e6:.1f} MB, sizes "
                          f"{min(a.sizes)}..{max(a.sizes)} bytes, median {statistics.median(a.sizes):.0f}")
        if 2 in only:
            accounts["big"] = make_account(self.dovecot, "big", [corpus.big()])
            self.progress(f"mailbox 'big': 1 message, {accounts['big'].octets / 1e6:.1f} MB")
        if 4 in only:
            accounts["login"] = make_account(self.dovecot, "login", login_messages())
        gw = self.new_gateway() if only & {1, 3, 4} else None
        if 1 in only:
            self.scenario_bulk(gw, accounts["bulk"])
        if 2 in only:
            self.scenario_big(accounts["big"])
        if 3 in only:
            self.scenario_concurrent(gw, accounts["bulk"])
        if 4 in only:
            self.scenario_logins(gw, accounts["login"])
        if gw is not None and not gw.is_running():
            self.notes.append("WARNING: the PopGate process exited during the bench")
        elapsed = time.monotonic() - self.t0
        print()
        print(f"PopGate vs Dovecot POP3 — median of {self.args.runs} runs each, same Dovecot, same mailboxes, "
              f"poplib over implicit TLS; ratio = PopGate / Dovecot")
        print_table(self.rows)
        print()
        print_runs(self.rows)
        for n in self.notes:
            print(n)
        print(f"load avg at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}; bench took {elapsed:.0f} s")


def parse_only(text: str) -> list[int]:
    out = sorted({int(x) for x in text.split(",") if x.strip()})
    if not out or any(x not in (1, 2, 3, 4) for x in out):
        raise argparse.ArgumentTypeError("a comma-separated subset of 1,2,3,4")
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--popgate", default=str(REPO_ROOT / ".build" / "release" / "popgate"),
                    help="the popgate binary (a release build for meaningful numbers)")
    ap.add_argument("--runs", type=int, default=3, help="timed runs per scenario and server (default 3)")
    ap.add_argument("--only", type=parse_only, default=[1, 2, 3, 4], help="scenarios, e.g. 1,3")
    ap.add_argument("--backend-tls", choices=["implicit", "starttls"], default="implicit",
                    help="PopGate's backend connection: IMAPS (default) or IMAP STARTTLS")
    ap.add_argument("--log-level", default="info", help="PopGate's log.level (default info)")
    ap.add_argument("--keep", action="store_true", help="keep the temp dir (logs, configs)")
    ap.add_argument("--quiet", action="store_true", help="no progress lines, only the results")
    args = ap.parse_args()
    if args.runs < 1:
        ap.error("--runs must be at least 1")
    if not Path(args.popgate).exists():
        print(f"bench: {args.popgate} not found; run `swift build -c release` (or `make bench`)",
              file=sys.stderr)
        return 2
    if "/debug/" in str(Path(args.popgate).resolve()):
        print("bench: WARNING: this looks like a debug build; numbers will not mean much", file=sys.stderr)
    root = Path(tempfile.mkdtemp(prefix="popgate-bench-"))
    os.chmod(root, 0o755)   # Dovecot's unprivileged processes must reach the files inside
    bench = Bench(args, root)
    try:
        bench.run()
    finally:
        bench.stop()
        if args.keep:
            print(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
