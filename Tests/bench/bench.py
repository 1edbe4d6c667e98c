#!/usr/bin/env python3
"""PopGate vs Dovecot's own POP3 vs Dovecot's POP3 over imapc storage, measured in the same run
against the same backend Dovecot and the same mailboxes, all over implicit TLS (POP3S) with the same
certificate. `make bench` builds a release binary and runs this script; `make bench-quick` runs it
with small sizes. See Tests/bench/README.md and BENCHMARKS.md.

    python3 Tests/bench/bench.py --popgate .build/release/popgate [--runs 3] [--only 1,2]
    python3 Tests/bench/bench.py --popgate ... --quick

The three servers:
  popgate : the popgate binary (backend: the harness Dovecot over IMAPS, or STARTTLS)
  native  : the backend Dovecot's own pop3s port (Maildir, the same files)
  imapc   : a second Dovecot, `protocols = pop3`, mail_location = imapc: pointed at the backend
            (Tests/bench/imapc_front.py): what a provider would run instead of PopGate
Scenarios (medians of --runs runs, rotating which server goes first, one untimed warm-up session
per server first):
  1 mailbox-size series: login + STAT + UIDL + QUIT on 1,000 ... 100,000 messages (raw client)
  2 poll sessions: TLS, USER/PASS, STAT, UIDL (1,000 messages), QUIT; sequential and in parallel
  3 CPU per poll session (from 2's sequential run): the server, and the backend work it caused
  4 bulk: one session RETRs 1,000 messages of 100 KB: MB/s, CPU seconds per GB
  5 one 50 MB message read slowly, then at full speed: RSS growth of the serving process
  6 idle logged-in sessions: RSS per session, sessions per GiB; plus 10,000 against PopGate alone
Mailboxes are written as Maildir files straight into the backend's user folders (no APPEND).
PopGate runs with retention on_retrieve=seen, on_delete=keep; nothing is ever deleted.
"""
from __future__ import annotations

import argparse
import datetime
import math
import multiprocessing
import os
import platform
import pwd
import resource
import selectors
import shutil
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO_ROOT / "Tests" / "integration"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness.certs import TestPKI, make_pki  # noqa: E402
from harness.dovecot import Dovecot  # noqa: E402
from harness.gateway import Gateway, GatewayOptions  # noqa: E402
from harness.procinfo import cpu_seconds, status_kb  # noqa: E402
from cgroupcpu import CgroupCpu  # noqa: E402
from imapc_front import ImapcFront  # noqa: E402

POPGATE, NATIVE, IMAPC = "popgate", "native", "imapc"
SERVERS = (POPGATE, NATIVE, IMAPC)
TITLES = {POPGATE: "PopGate", NATIVE: "Dovecot POP3", IMAPC: "Dovecot POP3/imapc"}
TIMEOUT = 300.0


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


# -- certificates -------------------------------------------------------------------------------

def ec_pki(pki: TestPKI) -> TestPKI:
    """An EC P-256 `localhost` certificate from the test PKI's CA (the harness makes RSA-2048)."""
    d = pki.ca_cert.parent
    (d / "ec.ext").write_text("basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n"
                              "extendedKeyUsage=serverAuth\nsubjectAltName=DNS:localhost,IP:127.0.0.1\n")
    for args in (["req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                  "-subj", "/CN=localhost", "-keyout", "ec.key", "-out", "ec.csr"],
                 ["x509", "-req", "-in", "ec.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
                  "-days", "2", "-sha256", "-extfile", "ec.ext", "-out", "ec.pem"]):
        subprocess.run(["openssl", *args], cwd=d, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    os.chmod(d / "ec.key", 0o600)
    (d / "ec-fullchain.pem").write_bytes((d / "ec.pem").read_bytes() + (d / "ca.pem").read_bytes())
    return TestPKI(ca_cert=pki.ca_cert, cert=d / "ec.pem", key=d / "ec.key", fullchain=d / "ec-fullchain.pem")


# -- the backend Dovecot ---------------------------------------------------------------------------

# PopGate's backend connection, as the machine line prints it.
BACKEND_LINKS = {"none": "plain IMAP (loopback)", "implicit": "IMAPS", "starttls": "IMAP STARTTLS"}

class BenchDovecot(Dovecot):
    """The harness Dovecot with settings appended: later values win in Dovecot's config."""

    # enough processes for a few hundred idle sessions per protocol (the default is 100 per service);
    # the process model stays Dovecot's default (one login process and one mail process per session)
    SESSIONS = """
# -- PopGate bench: room for a few hundred sessions per service --
default_process_limit = 1100
default_client_limit = 4000
"""
    # 10,000 idle PopGate sessions mean 10,000 IMAP sessions here: imap-login in performance mode
    # (it stays as TLS proxy of IMAPS sessions), imap processes serving many sessions each
    MANY = """
# -- PopGate bench: 10,000 IMAP sessions --
default_client_limit = 30000
protocol imap {
  mail_max_userip_connections = 30000
}
service imap-login {
  service_count = 0
  client_limit = 2000
  process_limit = 32
  process_min_avail = 2
}
service imap {
  service_count = 0
  client_limit = 500
  process_limit = 100
}
"""

    def __init__(self, root: Path, pki: TestPKI):
        super().__init__(root, pki)
        self.extra = self.SESSIONS

    def render_config(self) -> str:
        return super().render_config() + self.extra


# -- mailboxes as Maildir files ------------------------------------------------------------------------

@dataclass
class Account:
    user: str
    password: str
    count: int
    octets: int          # sum of the message sizes (CRLF, as POP3 counts them)


def filler_lines(n_bytes: int, seed: int) -> bytes:
    """Text lines of 76 characters (base64 alphabet), CRLF, about n_bytes."""
    alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    line = bytes(alphabet[(seed * 7 + i * 13) % 64] for i in range(76)) + b"\r\n"
    return line * max(1, n_bytes // len(line))


def message(i: int, size: int, user: str) -> bytes:
    head = (f"From: Sender {i % 37} <sender{i % 37}@example.net>\r\nTo: {user}@example.net\r\n"
            f"Subject: bench message {i}\r\nDate: Thu, 28 Nov 2024 10:{i // 60 % 60:02d}:{i % 60:02d} +0000\r\n"
            f"Message-ID: <bench-{i}-{user}@bench.popgate.test>\r\nMIME-Version: 1.0\r\n"
            "Content-Type: text/plain; charset=us-ascii\r\n\r\n").encode()
    return head + filler_lines(size - len(head), i)


def write_maildir(dovecot: Dovecot, user: str, count: int, size: int) -> int:
    """Writes `count` messages of about `size` bytes into the user's Maildir/cur (CRLF line ends,
    `S=` and `W=` in the name, so Dovecot needs to read no file to know its size); returns octets."""
    mail = pwd.getpwnam("mail")
    home = dovecot.home_root / user
    maildir = dovecot.maildir(user)
    for d in (home, maildir, maildir / "cur", maildir / "new", maildir / "tmp"):
        d.mkdir(exist_ok=True)
        os.chown(d, mail.pw_uid, mail.pw_gid)
    base = int(time.time()) - count - 100
    octets = 0
    cur = maildir / "cur"
    for i in range(count):
        data = message(i, size, user)
        name = f"{base + i}.M{i:07d}P{os.getpid()}.bench,S={len(data)},W={len(data)}:2,"
        path = cur / name
        with open(path, "wb") as f:
            f.write(data)
        os.chown(path, mail.pw_uid, mail.pw_gid)
        octets += len(data)
    return octets


# -- the raw POP3S client (the same code for all three servers) ---------------------------------------------

class Pop3Error(Exception):
    pass


class FastPop3:
    """A POP3 client over an ssl socket that reads multi-line answers with large recv()s until
    CRLF.CRLF (no line-by-line parsing): the client's own cost stays small."""

    def __init__(self, port: int, ctx: ssl.SSLContext, host: str = "127.0.0.1", source: str | None = None):
        raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if source:
            raw.bind((source, 0))
        raw.settimeout(TIMEOUT)
        raw.connect((host, port))
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock = ctx.wrap_socket(raw, server_hostname="localhost")
        self.buf = bytearray()
        self.line()   # greeting

    def _more(self, size: int = 1 << 20) -> None:
        chunk = self.sock.recv(size)
        if not chunk:
            raise Pop3Error("connection closed")
        self.buf += chunk

    def line(self) -> bytes:
        while True:
            i = self.buf.find(b"\r\n")
            if i >= 0:
                out = bytes(self.buf[:i])
                del self.buf[:i + 2]
                if not out.startswith(b"+OK"):
                    raise Pop3Error(out.decode("latin-1"))
                return out
            self._more()

    def command(self, cmd: str) -> bytes:
        self.sock.sendall(cmd.encode() + b"\r\n")
        return self.line()

    def multi(self, cmd: str) -> tuple[int, int]:
        """Sends a multi-line command; returns (lines, bytes) of the answer's body."""
        self.sock.sendall(cmd.encode() + b"\r\n")
        self.line()
        if self.buf.startswith(b".\r\n"):
            del self.buf[:3]
            return 0, 0
        start = 0
        while True:
            i = self.buf.find(b"\r\n.\r\n", start)
            if i >= 0:
                body = memoryview(self.buf)[:i + 2]
                lines = bytes(body).count(b"\r\n") if len(body) < (8 << 20) else _count_lines(body)
                size = len(body)
                body.release()
                del self.buf[:i + 5]
                return lines, size
            start = max(0, len(self.buf) - 4)
            self._more()

    def login(self, user: str, password: str) -> None:
        self.command(f"USER {user}")
        self.command(f"PASS {password}")

    def quit(self) -> None:
        try:
            self.command("QUIT")
        finally:
            self.sock.close()


def _count_lines(body: memoryview) -> int:
    n, step = 0, 1 << 22
    for k in range(0, len(body), step):
        n += bytes(body[k:k + step]).count(b"\r\n")
    return n


@dataclass(frozen=True)
class Target:
    """Where a client connects (picklable for the parallel client processes)."""
    name: str
    port: int
    ca_file: str

    def context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=self.ca_file)


def poll_session(t: Target, acct: Account, ctx: ssl.SSLContext) -> float:
    """TLS connect, USER/PASS, STAT, UIDL, QUIT; checks the UIDL line count; returns seconds."""
    start = time.perf_counter()
    c = FastPop3(t.port, ctx)
    c.login(acct.user, acct.password)
    c.command("STAT")
    lines, _ = c.multi("UIDL")
    c.quit()
    elapsed = time.perf_counter() - start
    if lines != acct.count:
        raise RuntimeError(f"{t.name}: UIDL gave {lines} lines, expected {acct.count}")
    return elapsed


def parallel_worker(t: Target, acct: Account, n: int, barrier, results) -> None:
    try:
        ctx = t.context()
        barrier.wait(60)
        start = time.monotonic()
        for _ in range(n):
            poll_session(t, acct, ctx)
        results.put(("ok", start, time.monotonic()))
    except Exception as exc:
        results.put(("error", repr(exc), 0.0))


def parallel_polls(t: Target, acct: Account, procs: int, per_proc: int) -> float:
    """`procs` processes run `per_proc` poll sessions each; returns sessions per second."""
    mp = multiprocessing.get_context("fork")
    barrier, results = mp.Barrier(procs + 1), mp.Queue()
    workers = [mp.Process(target=parallel_worker, args=(t, acct, per_proc, barrier, results), daemon=True)
               for _ in range(procs)]
    for w in workers:
        w.start()
    barrier.wait(60)
    got = [results.get(timeout=TIMEOUT) for _ in workers]
    for w in workers:
        w.join(30)
    errors = [g[1] for g in got if g[0] != "ok"]
    if errors:
        raise RuntimeError(f"{t.name}: {len(errors)} of {procs} client processes failed: {errors[0]}")
    wall = max(g[2] for g in got) - min(g[1] for g in got)
    return procs * per_proc / wall


# -- /proc ------------------------------------------------------------------------------------------

def children(master: int, *executables: str) -> set[int]:
    """PIDs of Dovecot service processes (e.g. pop3, pop3-login) of this master."""
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
        if ppid == master:
            out.add(pid)
    return out


def exe(pid: int) -> str:
    try:
        return os.path.basename(os.readlink(f"/proc/{pid}/exe"))
    except OSError:
        return ""


def rss_kb(pid: int) -> int:
    try:
        return status_kb(pid, "VmRSS")
    except (OSError, KeyError):
        return 0


def pss_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def nofile_soft(pid: int) -> int:
    with open(f"/proc/{pid}/limits") as f:
        for line in f:
            if line.startswith("Max open files"):
                v = line.split()[3]
                return 1 << 62 if v == "unlimited" else int(v)
    return 0


class RssSampler:
    """Samples VmRSS of one process at 50 Hz in a thread; `peak` is the largest value seen."""

    def __init__(self, pid: int):
        self.pid = pid
        self.start_kb = rss_kb(pid)
        self.peak = self.start_kb
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, rss_kb(self.pid))
            time.sleep(0.02)

    def stop(self) -> None:
        self._stop.set()
        self._t.join()
        self.peak = max(self.peak, rss_kb(self.pid))


# -- idle sessions held from one process -----------------------------------------------------------

class IdleSessions:
    """Opens N POP3S sessions (TLS, USER, PASS, STAT) with non-blocking sockets and a selector,
    at most `window` in progress at once, spread over source addresses 127.0.0.2 ...; keeps them
    open (idle) until close()."""

    def __init__(self, port: int, ctx: ssl.SSLContext, user: str, password: str, per_ip: int = 40):
        self.port, self.ctx, self.user, self.password, self.per_ip = port, ctx, user, password, per_ip
        self.sel = selectors.DefaultSelector()
        self.idle: list[ssl.SSLSocket] = []
        self.failed: list[str] = []

    def source(self, k: int) -> str:
        n = 2 + k // self.per_ip              # 127.0.0.2 ... ; 127.0.x.y beyond 253 addresses
        return f"127.0.{n // 254}.{n % 254 + 1}" if n >= 254 else f"127.0.0.{n}"

    def open(self, n: int, window: int = 64, timeout: float = 600.0) -> None:
        started = 0
        active = 0
        deadline = time.monotonic() + timeout
        last_report = time.monotonic()
        while len(self.idle) + len(self.failed) < n:
            while active < window and started < n:
                self._start(started)
                started += 1
                active += 1
            for key, mask in self.sel.select(timeout=1.0):
                done = self._step(key.data)
                if done is not None:
                    active -= 1
                    if done:
                        self.idle.append(key.data["sock"])
            if time.monotonic() > deadline:
                raise TimeoutError(f"only {len(self.idle)} of {n} idle sessions after {timeout:.0f} s")
            if len(self.failed) > max(10, n // 20):
                raise RuntimeError(f"{len(self.failed)} idle sessions failed, e.g. {self.failed[:3]}")
            if time.monotonic() - last_report > 10:
                last_report = time.monotonic()
                log(f"    ... {len(self.idle)} of {n} sessions idle")

    def _start(self, k: int) -> None:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8192)   # idle: keep the client side small
        s.bind((self.source(k), 0))
        s.connect_ex(("127.0.0.1", self.port))
        state = {"sock": s, "st": "connect", "buf": b"", "k": k}
        self.sel.register(s, selectors.EVENT_WRITE, state)

    def _fail(self, state, why: str) -> bool:
        self.failed.append(f"#{state['k']} at {state['st']}: {why}")
        try:
            self.sel.unregister(state["sock"])
        except (KeyError, ValueError):
            pass
        state["sock"].close()
        return False

    def _want(self, state, events: int) -> None:
        self.sel.modify(state["sock"], events, state)

    def _step(self, state) -> bool | None:
        """Advances one session; True: it is idle now, False: failed, None: in progress."""
        s = state["sock"]
        try:
            if state["st"] == "connect":
                err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if err:
                    return self._fail(state, os.strerror(err))
                self.sel.unregister(s)
                s = self.ctx.wrap_socket(s, server_hostname="localhost", do_handshake_on_connect=False)
                state["sock"], state["st"] = s, "handshake"
                self.sel.register(s, selectors.EVENT_READ | selectors.EVENT_WRITE, state)
            if state["st"] == "handshake":
                try:
                    s.do_handshake()
                except ssl.SSLWantReadError:
                    self._want(state, selectors.EVENT_READ)
                    return None
                except ssl.SSLWantWriteError:
                    self._want(state, selectors.EVENT_WRITE)
                    return None
                state["st"] = "greeting"
                self._want(state, selectors.EVENT_READ)
            # reading answers: greeting -> USER -> PASS -> STAT
            while True:
                try:
                    chunk = s.recv(4096)
                except ssl.SSLWantReadError:
                    return None
                if not chunk:
                    return self._fail(state, "closed by the server")
                state["buf"] += chunk
                if not state["buf"].endswith(b"\r\n"):
                    continue
                answer, state["buf"] = state["buf"], b""
                if not answer.startswith(b"+OK"):
                    return self._fail(state, answer[:200].decode("latin-1").strip())
                nxt = {"greeting": ("user", f"USER {self.user}"), "user": ("pass", f"PASS {self.password}"),
                       "pass": ("stat", "STAT"), "stat": ("idle", None)}[state["st"]]
                state["st"] = nxt[0]
                if nxt[1] is None:
                    self.sel.unregister(s)
                    return True
                s.sendall(nxt[1].encode() + b"\r\n")   # a few bytes: fits the socket buffer
        except (OSError, ssl.SSLError) as exc:
            return self._fail(state, repr(exc))

    def close(self) -> None:
        for s in self.idle:
            try:
                s.close()
            except OSError:
                pass
        self.idle = []
        self.sel.close()


# -- results ------------------------------------------------------------------------------------------

@dataclass
class Row:
    label: str
    unit: str
    better: str = ""                 # lower | higher | "" (information)
    fmt: str = "{:.2f}"
    values: dict[str, list[float]] = field(default_factory=lambda: {s: [] for s in SERVERS})

    def add(self, server: str, value: float) -> None:
        self.values[server].append(value)

    def median(self, server: str) -> float | None:
        v = self.values[server]
        return statistics.median(v) if v else None

    def cell(self, server: str) -> str:
        m = self.median(server)
        return "-" if m is None else self.fmt.format(m)

    def ratio(self, other: str) -> str:
        p, o = self.median(POPGATE), self.median(other)
        if p is None or o is None or float(self.fmt.format(o).replace(",", "")) == 0:
            return "-"   # nothing to divide by at the precision shown
        return f"{p / o:.2f}x"

    def title(self) -> str:
        hint = {"lower": ", lower is better", "higher": ", higher is better"}.get(self.better, "")
        return f"{self.label} [{self.unit}{hint}]"


HEADER = ("scenario", TITLES[POPGATE], TITLES[NATIVE], TITLES[IMAPC], "PopGate/native", "PopGate/imapc")


def table_rows(rows: list[Row]) -> list[tuple[str, ...]]:
    return [(r.title(), r.cell(POPGATE), r.cell(NATIVE), r.cell(IMAPC), r.ratio(NATIVE), r.ratio(IMAPC))
            for r in rows]


def print_text_table(rows: list[Row]) -> None:
    body = table_rows(rows)
    widths = [max(len(x[i]) for x in [HEADER] + body) for i in range(len(HEADER))]
    fmt = lambda cols: " | ".join(c.ljust(widths[i]) if i == 0 else c.rjust(widths[i])   # noqa: E731
                                  for i, c in enumerate(cols))
    print(fmt(HEADER))
    print("-+-".join("-" * w for w in widths))
    for b in body:
        print(fmt(b))


def print_markdown_table(rows: list[Row]) -> None:
    print("| " + " | ".join(HEADER) + " |")
    print("|---|" + "---:|" * (len(HEADER) - 1))
    for b in table_rows(rows):
        print("| " + " | ".join(c.replace("|", "\\|") for c in b) + " |")


# -- environment ------------------------------------------------------------------------------------

def first_line(*cmd: str, cwd: Path | None = None) -> str:
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=30, cwd=cwd)
        out = (r.stdout or r.stderr).strip()
        return out.splitlines()[0] if out else "?"
    except (OSError, subprocess.SubprocessError):
        return "?"


def machine_lines(binary: Path, args) -> list[str]:
    model = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    mem = "?"
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                mem = f"{int(line.split()[1]) / 1048576:.1f} GiB"
    commit = first_line("git", "log", "-1", "--format=%h %cd", "--date=short", cwd=REPO_ROOT)
    dirty = first_line("git", "status", "--porcelain", "--untracked-files=no", "--", "Sources", cwd=REPO_ROOT)
    st = binary.stat()
    shown = binary.relative_to(REPO_ROOT) if binary.is_relative_to(REPO_ROOT) else binary
    return [
        f"date    : {datetime.datetime.now().astimezone().strftime('%Y-%m-%d %H:%M %Z')}",
        f"machine : {model}, {os.cpu_count()} cores ({len(os.sched_getaffinity(0))} usable), {mem} RAM, "
        f"kernel {platform.release()}, {first_line('sh', '-c', '. /etc/os-release && echo $PRETTY_NAME')}",
        f"popgate : {shown} ({st.st_size / 1e6:.1f} MB, built "
        f"{time.strftime('%Y-%m-%d %H:%M', time.localtime(st.st_mtime))}), commit {commit}"
        f"{' + uncommitted changes in Sources/' if dirty not in ('', '?') else ''}; "
        f"backend over {BACKEND_LINKS[args.backend_tls]}, log.level {args.log_level}",
        f"dovecot : {first_line('dovecot', '--version')}; {first_line('swift', '--version')}",
        f"client  : Python {platform.python_version()}, {ssl.OPENSSL_VERSION}",
    ]


def loadavg() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


# -- the bench --------------------------------------------------------------------------------------------

class Bench:
    def __init__(self, args, root: Path):
        self.args = args
        self.root = root
        self.binary = Path(args.popgate).resolve()
        self.rows: list[Row] = []
        self.notes: list[str] = []
        self.targets_met: list[tuple[str, bool | None, str]] = []
        self.gateways: list[Gateway] = []
        self.dovecot: BenchDovecot | None = None
        self.front: ImapcFront | None = None
        self.cg_backend: CgroupCpu | None = None
        self.cg_front: CgroupCpu | None = None
        self.accounts: dict[str, Account] = {}
        self.t0 = time.monotonic()

    # servers

    def start(self) -> None:
        rsa = make_pki(self.root / "pki")
        self.pki = ec_pki(rsa) if self.args.cert == "ec" else rsa
        self.dovecot = BenchDovecot(self.root / "dovecot", self.pki)
        self.dovecot.start()
        self.cg_backend = CgroupCpu("backend")
        self.cg_backend.adopt(self.dovecot.proc.pid)
        self.front = ImapcFront(self.root / "imapc", self.pki, self.dovecot, backend_tls=self.args.imapc_tls,
                                max_sessions=max(1000, self.args.idle))
        self.front.start()
        self.cg_front = CgroupCpu("imapc")
        self.cg_front.adopt(self.front.pid)
        self.gw = self.new_gateway("main")
        self.ctx = ssl.create_default_context(cafile=str(self.pki.ca_cert))
        self.targets = {POPGATE: Target(POPGATE, self.gw.implicit_port, str(self.pki.ca_cert)),
                        NATIVE: Target(NATIVE, self.dovecot.ports.pop3s, str(self.pki.ca_cert)),
                        IMAPC: Target(IMAPC, self.front.pop3s, str(self.pki.ca_cert))}

    def gateway_options(self, **kw) -> GatewayOptions:
        d, tls = self.dovecot, self.args.backend_tls
        # The idle scenario opens thousands of sessions of one user: no per-user cap (the default is 10).
        kw.setdefault("sessions_per_user", 0)
        return GatewayOptions(backend_port=d.ports.imaps if tls == "implicit" else d.ports.imap,
                              backend_tls=tls, on_delete="keep", on_retrieve="seen", failure_delay="0s",
                              drain="2s", log_level=self.args.log_level,
                              certificate=str(self.pki.fullchain), key=str(self.pki.key), **kw)

    def new_gateway(self, name: str, launcher=None, **kw) -> Gateway:
        gw = Gateway(self.root / "gw" / name, self.pki, self.gateway_options(launcher=launcher, **kw),
                     binary=self.binary)
        self.gateways.append(gw)
        gw.start()
        return gw

    def stop(self) -> None:
        for gw in self.gateways:
            gw.stop()
        if self.front is not None:
            self.front.stop()
        if self.dovecot is not None:
            self.dovecot.stop()
        for cg in (self.cg_backend, self.cg_front):
            if cg is not None:
                cg.remove()

    def restart_backend(self, extra: str) -> None:
        """Restarts the backend Dovecot with other settings (same ports, folders, mailboxes)."""
        self.dovecot.stop()
        self.dovecot.extra = extra
        self.dovecot.start()
        self.cg_backend.adopt(self.dovecot.proc.pid)

    # helpers

    def progress(self, text: str) -> None:
        log(f"  [{time.monotonic() - self.t0:6.1f} s] {text}")

    def row(self, *a, **kw) -> Row:
        r = Row(*a, **kw)
        self.rows.append(r)
        return r

    def order(self, run: int) -> tuple[str, ...]:
        k = run % len(SERVERS)
        return SERVERS[k:] + SERVERS[:k]

    def account(self, name: str, count: int, size: int) -> Account:
        """A user with `count` messages of ~`size` bytes, written as Maildir files once per run."""
        if name not in self.accounts:
            t = time.monotonic()
            user = self.dovecot.new_user_name(name)
            password = f"bench-{os.urandom(6).hex()}"
            self.dovecot.add_user(user, password)
            octets = write_maildir(self.dovecot, user, count, size)
            self.accounts[name] = Account(user, password, count, octets)
            self.progress(f"mailbox {name}: {count:,} messages, {octets / 1e6:.1f} MB written in "
                          f"{time.monotonic() - t:.1f} s")
        return self.accounts[name]

    def series_session(self, server: str, acct: Account) -> float:
        return poll_session(self.targets[server], acct, self.ctx)

    # 1. mailbox-size series

    def scenario_series(self) -> None:
        sizes = self.args.sizes
        per_size: dict[int, Row] = {}
        for n in sizes:
            acct = self.account(f"s{n}", n, self.args.series_msg_size)
            r = per_size[n] = self.row(f"1. {n:,} msgs: login+STAT+UIDL+QUIT", "s", "lower", "{:.3f}")
            for s in SERVERS:   # warm-up: Dovecot indexes the new Maildir, imapc fills its cache
                t = self.series_session(s, acct)
                self.progress(f"1 {n:,} warm-up {s}: {t:.3f} s")
            for run in range(self.args.runs):
                for s in self.order(run):
                    t = self.series_session(s, acct)
                    r.add(s, t)
                    self.progress(f"1 {n:,} run {run + 1} {s}: {t:.3f} s")
        lo, hi = (10_000, 100_000) if {10_000, 100_000} <= set(sizes) else (min(sizes), max(sizes))
        if lo != hi:
            exp = self.row(f"1. growth exponent {lo:,} -> {hi:,} msgs", "log(t_hi/t_lo)/log(n_hi/n_lo)",
                           "lower", "{:.2f}")
            for s in SERVERS:
                a, b = per_size[lo].median(s), per_size[hi].median(s)
                exp.add(s, math.log(b / a) / math.log(hi / lo))
            self.exponent = (lo, hi, exp)
        self.series = per_size

    # 2 + 3. poll sessions and CPU per poll

    def scenario_polls(self) -> None:
        acct = self.account("s1000", 1000, self.args.series_msg_size)
        n = self.args.polls
        seq = self.row(f"2. poll sessions, {n} sequential (TLS+USER/PASS+STAT+UIDL of 1,000+QUIT)",
                       "sessions/s", "higher", "{:.1f}")
        par = self.row(f"2. poll sessions, {self.args.parallel} in parallel x {self.args.parallel_polls}",
                       "sessions/s", "higher", "{:.1f}")
        cpu = self.row("3. server CPU per poll (popgate process / Dovecot instance / imapc-front instance)",
                       "ms", "lower", "{:.2f}")
        back = self.row("3.   + backend Dovecot CPU per poll it caused", "ms", "", "{:.2f}")
        total = self.row("3.   total CPU per poll (server + backend)", "ms", "lower", "{:.2f}")
        for s in SERVERS:
            for _ in range(3):
                self.series_session(s, acct)
        for run in range(self.args.runs):
            for s in self.order(run):
                g0 = cpu_seconds(self.gw.pid)
                b0, f0 = self.cg_backend.usage(), self.cg_front.usage()
                t = time.perf_counter()
                for _ in range(n):
                    poll_session(self.targets[s], acct, self.ctx)
                rate = n / (time.perf_counter() - t)
                time.sleep(0.3)   # the last session's processes finish logging out
                g, b, f = cpu_seconds(self.gw.pid) - g0, self.cg_backend.usage() - b0, self.cg_front.usage() - f0
                seq.add(s, rate)
                if s == POPGATE:
                    server, backend = g, b
                elif s == NATIVE:
                    server, backend = b, None
                else:
                    server, backend = f, b
                cpu.add(s, server / n * 1000)
                if backend is not None:
                    back.add(s, backend / n * 1000)
                total.add(s, (server + (backend or 0)) / n * 1000)
                self.progress(f"2 sequential run {run + 1} {s}: {rate:.1f} sessions/s, CPU/poll "
                              f"{server / n * 1000:.2f} ms + backend {(backend or 0) / n * 1000:.2f} ms")
        for run in range(self.args.runs):
            for s in self.order(run):
                rate = parallel_polls(self.targets[s], acct, self.args.parallel, self.args.parallel_polls)
                par.add(s, rate)
                self.progress(f"2 parallel run {run + 1} {s}: {rate:.1f} sessions/s")
        self.polls = (seq, par, cpu)

    # 4. bulk RETR

    def bulk_session(self, server: str, acct: Account) -> tuple[float, int]:
        start = time.perf_counter()
        c = FastPop3(self.targets[server].port, self.ctx)
        c.login(acct.user, acct.password)
        c.command("STAT")
        octets = 0
        for i in range(1, acct.count + 1):
            octets += c.multi(f"RETR {i}")[1]
        c.quit()
        elapsed = time.perf_counter() - start
        if abs(octets - acct.octets) > acct.count * 4:
            raise RuntimeError(f"{server}: RETR gave {octets} bytes, the mailbox has {acct.octets}")
        return elapsed, octets

    def scenario_bulk(self) -> None:
        acct = self.account("bulk", self.args.bulk_count, self.args.bulk_size)
        rate = self.row(f"4. bulk: RETR {acct.count:,} x {self.args.bulk_size // 1000} KB in one session",
                        "MB/s", "higher", "{:.1f}")
        cpu = self.row("4.   server CPU per GB (popgate process / Dovecot instance / imapc-front instance)",
                       "s/GB", "lower", "{:.2f}")
        back = self.row("4.   + backend Dovecot CPU per GB it caused", "s/GB", "", "{:.2f}")
        for s in SERVERS:
            self.bulk_session(s, acct)
        for run in range(self.args.runs):
            for s in self.order(run):
                g0, b0, f0 = cpu_seconds(self.gw.pid), self.cg_backend.usage(), self.cg_front.usage()
                elapsed, octets = self.bulk_session(s, acct)
                time.sleep(0.3)
                g, b, f = cpu_seconds(self.gw.pid) - g0, self.cg_backend.usage() - b0, self.cg_front.usage() - f0
                gb = octets / 1e9
                server, backend = {POPGATE: (g, b), NATIVE: (b, None), IMAPC: (f, b)}[s]
                rate.add(s, octets / elapsed / 1e6)
                cpu.add(s, server / gb)
                if backend is not None:
                    back.add(s, backend / gb)
                self.progress(f"4 run {run + 1} {s}: {octets / 1e6:.0f} MB in {elapsed:.2f} s = "
                              f"{octets / elapsed / 1e6:.1f} MB/s, CPU {server / gb:.2f} s/GB"
                              f"{'' if backend is None else f' + backend {backend / gb:.2f} s/GB'}")
        self.bulk = (rate, cpu)

    # 5. big message, slow reader

    def scenario_big(self) -> None:
        size = self.args.big_mb * 1_000_000
        acct = self.account("big", 1, size)
        growth = self.row(f"5. {self.args.big_mb} MB message read slowly: RSS growth of the serving process "
                          "(popgate / dovecot pop3 / imapc-front pop3)", "MiB", "lower", "{:.1f}")
        login_growth = self.row("5.   + its pop3-login process (TLS proxy)", "MiB", "", "{:.1f}")
        secs = self.row("5.   RETR time (slow part included)", "s", "", "{:.1f}")
        for s in SERVERS:
            self.big_session(s, acct, slow=False)
        for run in range(self.args.runs):
            for s in self.order(run):
                g, lg, t = self.big_session(s, acct, slow=True)
                growth.add(s, g)
                if lg is not None:
                    login_growth.add(s, lg)
                secs.add(s, t)
                self.progress(f"5 run {run + 1} {s}: RSS +{g:.1f} MiB"
                              f"{'' if lg is None else f' (pop3-login +{lg:.1f} MiB)'}, RETR {t:.1f} s")

    def big_session(self, server: str, acct: Account, slow: bool) -> tuple[float, float | None, float]:
        master = {NATIVE: self.dovecot.proc.pid, IMAPC: self.front.pid}.get(server)
        before = children(master, "pop3", "pop3-login") if master else set()
        c = FastPop3(self.targets[server].port, self.ctx)
        c.login(acct.user, acct.password)
        c.command("STAT")
        login_pid = None
        if master:
            new = children(master, "pop3", "pop3-login") - before
            pid = next(p for p in new if exe(p) == "pop3")
            login_pid = next((p for p in new if exe(p) == "pop3-login"), None)
        else:
            pid = self.gw.pid
        samplers = [RssSampler(pid)] + ([RssSampler(login_pid)] if login_pid else [])
        hwm0 = status_kb(pid, "VmHWM")
        start = time.perf_counter()
        c.sock.sendall(b"RETR 1\r\n")
        got, done = 0, False
        rate, slow_for = self.args.slow_rate, self.args.slow_seconds
        buf = bytearray()
        while not done:
            elapsed = time.perf_counter() - start
            slow_now = slow and elapsed < slow_for
            chunk = c.sock.recv(16384 if slow_now else 1 << 20)
            if not chunk:
                raise RuntimeError(f"{server}: closed during RETR")
            got += len(chunk)
            buf += chunk[-8:]
            del buf[:-8]
            done = buf.endswith(b"\r\n.\r\n")
            if slow_now:
                ahead = got / rate - (time.perf_counter() - start)
                if ahead > 0:
                    time.sleep(ahead)
        retr = time.perf_counter() - start
        for sm in samplers:
            sm.stop()
        hwm1 = status_kb(pid, "VmHWM")
        c.quit()
        if got < size_floor(acct.octets):
            raise RuntimeError(f"{server}: RETR gave {got} bytes of {acct.octets}")
        peak = samplers[0].peak
        if hwm1 > hwm0:   # the high-water mark moved during the RETR: it saw a peak sampling may miss
            peak = max(peak, hwm1)
        lg = (samplers[1].peak - samplers[1].start_kb) / 1024 if len(samplers) > 1 else None
        return (peak - samplers[0].start_kb) / 1024, lg, retr

    # 6. idle sessions

    def idle_pids(self, server: str) -> tuple[int | None, set[int], set[int]]:
        """(popgate pid or None, the server's per-session processes, the backend's imap processes)."""
        d = self.dovecot.proc.pid
        if server == POPGATE:
            return self.gw_idle.pid, set(), children(d, "imap", "imap-login")
        if server == NATIVE:
            return None, children(d, "pop3", "pop3-login"), set()
        return None, children(self.front.pid, "pop3", "pop3-login"), children(d, "imap", "imap-login")

    def scenario_idle(self) -> None:
        n = self.args.idle
        acct = self.account("idle", 10, 2000)
        per = self.row(f"6. {n} idle logged-in sessions: RSS per session (popgate: growth / N; "
                       "Dovecot: pop3 + pop3-login RSS / N)", "KiB", "lower", "{:.1f}")
        pss = self.row("6.   the same as PSS (shared pages split)", "KiB", "", "{:.1f}")
        back = self.row("6.   + backend imap/imap-login processes per session (RSS)", "KiB", "", "{:.1f}")
        per_gb = self.row("6.   idle sessions per GiB (from the RSS row)", "sessions", "higher", "{:,.0f}")
        per_gb_pss = self.row("6.   idle sessions per GiB (from the PSS row)", "sessions", "higher", "{:,.0f}")
        self.gw_idle = self.new_gateway("idle", connections=max(1000, 2 * n), connections_per_ip=1000)
        targets = dict(self.targets)
        targets[POPGATE] = Target(POPGATE, self.gw_idle.implicit_port, str(self.pki.ca_cert))
        for s in SERVERS:
            c = FastPop3(targets[s].port, self.ctx)
            c.login(acct.user, acct.password)
            c.quit()
        time.sleep(0.5)
        for s in SERVERS:   # one run: memory figures hardly move between runs
            kb, pkb, bkb = self.idle_run(s, targets[s].port, acct, n)
            per.add(s, kb)
            pss.add(s, pkb)
            if bkb is not None:
                back.add(s, bkb)
            per_gb.add(s, 1048576 / kb if kb > 0 else float("nan"))
            per_gb_pss.add(s, 1048576 / pkb if pkb > 0 else float("nan"))
            self.progress(f"6 {s}: {n} idle sessions, {kb:.1f} KiB each (PSS {pkb:.1f})"
                          f"{'' if bkb is None else f', backend {bkb:.1f} KiB each'}")
        self.gw_idle.stop()

    def idle_run(self, server: str, port: int, acct: Account, n: int, gw: Gateway | None = None,
                 settle: bool = True):
        gw = gw or self.gw_idle
        own0, procs0, back0 = self.idle_pids(server) if server != POPGATE else (gw.pid, set(), set())
        if server == POPGATE:
            back0 = children(self.dovecot.proc.pid, "imap", "imap-login")
            rss0, pss0 = rss_kb(gw.pid), pss_kb(gw.pid)
        sessions = IdleSessions(port, self.ctx, acct.user, acct.password)
        try:
            sessions.open(n)
            # Let the last logins settle and the sessions become idle: PopGate gives back the buffers
            # a login grew once a session has waited 2 s for a command (GatewaySession.idleMemoryDelay).
            time.sleep(3.0)
            if sessions.failed:
                self.notes.append(f"6 {server}: {len(sessions.failed)} of {n} sessions failed, e.g. "
                                  f"{sessions.failed[0]}")
            held = len(sessions.idle)
            d = self.dovecot.proc.pid
            if server == POPGATE:
                back1 = children(d, "imap", "imap-login")
                kb = (rss_kb(gw.pid) - rss0) / held
                pkb = (pss_kb(gw.pid) - pss0) / held
                newb = back1 - back0
            else:
                master = d if server == NATIVE else self.front.pid
                new = children(master, "pop3", "pop3-login") - procs0
                kb = sum(rss_kb(p) for p in new) / held
                pkb = sum(pss_kb(p) for p in new) / held
                newb = (children(d, "imap", "imap-login") - back0) if server == IMAPC else None
            bkb = None if newb is None else sum(rss_kb(p) for p in newb) / held
            self.idle_info = (held, len(newb) if newb is not None else 0)
        finally:
            sessions.close()
        # wait until the per-session processes are gone before the next server
        deadline = time.monotonic() + (60 if settle else 0)
        while time.monotonic() < deadline:
            live = (children(self.dovecot.proc.pid, "pop3", "imap") | children(self.front.pid, "pop3"))
            if len(live) <= 2:
                break
            time.sleep(0.2)
        return kb, pkb, bkb

    def scenario_many_idle(self) -> None:
        n = self.args.idle_sessions
        acct = self.account("idle", 10, 2000)
        need = 2 * n + 1000
        self.progress(f"6 PopGate alone, {n:,} idle sessions: restarting the backend Dovecot with room for "
                      f"{n:,} IMAP sessions")
        self.restart_backend(BenchDovecot.SESSIONS + BenchDovecot.MANY)
        try:
            own = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
            launcher = None
            if own < need:
                want = max(need, 65536)
                probe = subprocess.run(["prlimit", f"--nofile={want}:{want}", "--", "true"],
                                       capture_output=True, text=True)
                if probe.returncode == 0:
                    launcher = lambda gw, argv: ["prlimit", f"--nofile={want}:{want}", "--"] + argv  # noqa: E731
                    self.notes.append(f"6: popgate started under prlimit --nofile={want} (the soft limit it "
                                      f"would inherit is {own})")
                else:
                    self.notes.append(f"6: popgate inherits an open-files limit of {own} and it cannot be raised "
                                      f"here (prlimit: {probe.stderr.strip()}; no CAP_SYS_RESOURCE)")
            gw = self.new_gateway("idle-many", launcher=launcher, connections=n + 1000, connections_per_ip=1000)
            limit = nofile_soft(gw.pid)
            if limit < need - 900:   # one client and one backend socket per session, plus a margin
                fit = (limit - 150) // 2
                self.notes.append(f"6: popgate's open-files limit {limit} holds 2 fds x {fit:,} sessions, not "
                                  f"{n:,}: the run uses {fit:,}")
                n = fit
            c = FastPop3(gw.implicit_port, self.ctx)
            c.login(acct.user, acct.password)
            c.quit()
            time.sleep(0.5)
            kb, pkb, bkb = self.idle_run(POPGATE, gw.implicit_port, acct, n, gw=gw, settle=False)
            held, backend_procs = self.idle_info
            r = self.row(f"6. {held:,} idle sessions, PopGate alone: RSS per session", "KiB", "lower", "{:.1f}")
            r.add(POPGATE, kb)
            r2 = self.row(f"6.   idle sessions per GiB at {held:,}", "sessions", "higher", "{:,.0f}")
            r2.add(POPGATE, 1048576 / kb if kb > 0 else float("nan"))
            self.many_idle = (held, kb)
            self.notes.append(f"6: {held:,} of {n:,} sessions held against popgate (its open-files limit: "
                              f"{limit}); RSS {kb:.1f} KiB each, PSS {pkb:.1f} KiB; backend: {backend_procs} "
                              f"imap/imap-login processes (imap-login in performance mode, imap serving up to 500 "
                              f"sessions per process), {bkb:.1f} KiB RSS per session there")
            self.progress(f"6 PopGate {held:,} idle sessions: {kb:.1f} KiB each")
            gw.stop()
        finally:
            self.restart_backend(BenchDovecot.SESSIONS)

    # report

    def check_targets(self) -> None:
        t = self.targets_met

        def add(name: str, ok: bool | None, value: str) -> None:
            t.append((name, ok, value))

        if hasattr(self, "series") and 100_000 in self.series:
            r = self.series[100_000]
            ratio = r.median(POPGATE) / r.median(NATIVE)
            add("100k-message login <= 1.5x Dovecot POP3", ratio <= 1.5, f"{ratio:.2f}x")
        if hasattr(self, "exponent") and self.exponent[:2] == (10_000, 100_000):
            e = self.exponent[2].median(POPGATE)
            add("growth exponent 10k -> 100k <= 1.1", e <= 1.1, f"{e:.2f}")
        if hasattr(self, "polls"):
            seq, par, cpu = self.polls
            for label, r in (("sequential", seq), ("parallel", par)):
                a = r.median(POPGATE) / r.median(NATIVE)
                b = r.median(POPGATE) / r.median(IMAPC)
                add(f"polls ({label}) >= 0.9x Dovecot POP3", a >= 0.9, f"{a:.2f}x")
                add(f"polls ({label}) >= 2x Dovecot POP3/imapc", b >= 2, f"{b:.2f}x")
            c = cpu.median(POPGATE)
            add("gateway CPU per poll <= 1.5 ms", c <= 1.5, f"{c:.2f} ms")
        if hasattr(self, "bulk"):
            rate, cpu = self.bulk
            a = rate.median(POPGATE) / rate.median(NATIVE)
            add("bulk MB/s >= 1.0x Dovecot POP3", a >= 1.0, f"{a:.2f}x")
            c = cpu.median(POPGATE)
            add("gateway CPU per GB <= 1.5 s", c <= 1.5, f"{c:.2f} s")
        if hasattr(self, "many_idle"):
            held, kb = self.many_idle
            if held >= 10_000:
                add("10,000 idle sessions at <= 16 KiB each", kb <= 16, f"{held:,} held, {kb:.1f} KiB each")
            else:   # the machine's fd limit (see the notes): the per-session figure still says it
                add("10,000 idle sessions at <= 16 KiB each", None if kb <= 16 else False,
                    f"only {held:,} held here (open-files limit), {kb:.1f} KiB each")
        else:
            add("10,000 idle sessions at <= 16 KiB each", None, "not run (--idle-sessions 0)")

    def run(self) -> None:
        only = set(self.args.only)
        header = machine_lines(self.binary, self.args)
        load0 = loadavg()
        for line in header:
            print(line)
        print(f"load avg at start: {load0}")
        sys.stdout.flush()
        self.start()
        self.progress(f"servers up: popgate :{self.gw.implicit_port}, Dovecot pop3s :{self.dovecot.ports.pop3s}, "
                      f"imapc front pop3s :{self.front.pop3s}; CPU of the Dovecot instances: "
                      f"{self.cg_backend.describe()}")
        if 1 in only:
            self.scenario_series()
        if only & {2, 3}:
            self.scenario_polls()
        if 4 in only:
            self.scenario_bulk()
        if 5 in only:
            self.scenario_big()
        if 6 in only:
            self.scenario_idle()
            if self.args.idle_sessions > 0:
                self.scenario_many_idle()
        if not self.gw.is_running():
            self.notes.append("WARNING: the PopGate process exited during the bench")
        self.check_targets()
        elapsed = time.monotonic() - self.t0
        load1 = loadavg()
        cert = "EC P-256" if self.args.cert == "ec" else "RSA-2048"
        print()
        print(f"PopGate vs Dovecot POP3 vs Dovecot POP3 over imapc — median of {self.args.runs} run(s) each "
              f"(idle: one), same backend Dovecot and mailboxes, implicit TLS with a {cert} certificate; "
              f"ratios = PopGate / other")
        print_text_table(self.rows)
        print()
        print("per-run values (PopGate | Dovecot POP3 | Dovecot POP3/imapc):")
        for r in self.rows:
            f = lambda vs: ", ".join(r.fmt.format(v) for v in vs) or "-"   # noqa: E731
            print(f"  {r.label}: {f(r.values[POPGATE])} | {f(r.values[NATIVE])} | {f(r.values[IMAPC])}")
        print()
        print("issue targets:" + (" (a --quick run: small sizes, indicative only)" if self.args.quick else ""))
        for name, ok, value in self.targets_met:
            print(f"  [{'met' if ok else 'NOT met' if ok is False else 'n/a'}] {name}: {value}")
        for n in self.notes:
            print(f"note: {n}")
        print(f"imapc front: backend over {self.front.backend_description()}; instance CPU from "
              f"{self.cg_front.describe()}")
        print(f"load avg at end: {load1}; bench took {elapsed:.0f} s")
        print()
        print("Markdown (BENCHMARKS.md):")
        print()
        for line in header:
            print(f"- {line.split(':', 1)[0].strip()}: {line.split(':', 1)[1].strip()}")
        print(f"- load average: {load0} at start, {load1} at end; {elapsed / 60:.1f} min; "
              f"{self.args.runs} run(s) per figure, median")
        print(f"- certificate: {cert} for all three servers; imapc front reaches the backend over "
              f"{self.front.backend_description()}")
        print()
        print_markdown_table(self.rows)
        print()
        for name, ok, value in self.targets_met:
            print(f"- {'✅ met' if ok else '❌ not met' if ok is False else '– n/a'}: {name} ({value})")


def size_floor(octets: int) -> int:
    return int(octets * 0.99)


def int_list(text: str) -> list[int]:
    return [int(x.replace("_", "").replace(",", "")) for x in text.split(",") if x.strip()]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--popgate", default=str(REPO_ROOT / ".build" / "release" / "popgate"),
                    help="the popgate binary (a release build for meaningful numbers)")
    ap.add_argument("--runs", type=int, default=3, help="timed runs per figure and server (default 3)")
    ap.add_argument("--only", default="1,2,3,4,5,6", help="scenarios, e.g. 1,4 (3 runs with 2)")
    ap.add_argument("--quick", action="store_true",
                    help="small sizes: series 1,000/10,000, 50 polls, 4x10 parallel, 100 bulk messages, "
                         "10 MB big message, 50 idle sessions, no 10,000-session run, 1 run")
    ap.add_argument("--sizes", type=int_list, default=[1000, 10_000, 20_000, 50_000, 100_000],
                    help="mailbox sizes of the series (default 1000,10000,20000,50000,100000)")
    ap.add_argument("--series-msg-size", type=int, default=1500, help="bytes per series message (default 1500)")
    ap.add_argument("--polls", type=int, default=200, help="sequential poll sessions (default 200)")
    ap.add_argument("--parallel", type=int, default=8, help="parallel client processes (default 8)")
    ap.add_argument("--parallel-polls", type=int, default=100, help="poll sessions per process (default 100)")
    ap.add_argument("--bulk-count", type=int, default=1000, help="messages RETR'd in scenario 4 (default 1000)")
    ap.add_argument("--bulk-size", type=int, default=100_000, help="bytes per bulk message (default 100000)")
    ap.add_argument("--big-mb", type=int, default=50, help="the big message in MB (default 50)")
    ap.add_argument("--slow-rate", type=float, default=1e6, help="slow reader's bytes/s (default 1e6)")
    ap.add_argument("--slow-seconds", type=float, default=4.0, help="how long it reads slowly (default 4)")
    ap.add_argument("--idle", type=int, default=200, help="idle sessions per server (default 200)")
    ap.add_argument("--idle-sessions", type=int, default=10_000,
                    help="idle sessions against PopGate alone (default 10000; 0: skip)")
    ap.add_argument("--backend-tls", choices=["none", "implicit", "starttls"], default="none",
                    help="PopGate's backend connection: plain IMAP on loopback (default, like the imapc "
                         "front's), IMAPS or IMAP STARTTLS")
    ap.add_argument("--imapc-tls", choices=["none", "imaps"], default="none",
                    help="the imapc front's backend connection: plain IMAP on loopback (default) or IMAPS")
    ap.add_argument("--cert", choices=["ec", "rsa"], default="ec",
                    help="server certificate of all three servers: EC P-256 (default) or the PKI's RSA-2048")
    ap.add_argument("--log-level", default="info", help="PopGate's log.level (default info)")
    ap.add_argument("--keep", action="store_true", help="keep the temp dir (logs, configs)")
    args = ap.parse_args()
    if args.quick:
        args.sizes, args.polls, args.parallel, args.parallel_polls = [1000, 10_000], 50, 4, 10
        args.bulk_count, args.big_mb, args.slow_seconds, args.idle, args.idle_sessions = 100, 10, 1.0, 50, 0
        args.runs = 1
    try:
        args.only = sorted({int(x) for x in args.only.split(",") if x.strip()})
        assert args.only and all(1 <= x <= 6 for x in args.only)
    except (ValueError, AssertionError):
        ap.error("--only: a comma-separated subset of 1,2,3,4,5,6")
    if args.runs < 1:
        ap.error("--runs must be at least 1")
    if not Path(args.popgate).exists():
        log(f"bench: {args.popgate} not found; run `make bench` (or swift build -c release)")
        return 2
    if "/debug/" in str(Path(args.popgate).resolve()):
        log("bench: WARNING: this looks like a debug build; numbers will not mean much")
    # 10,000 sessions: this process holds 10,000 sockets, and its children inherit the limit
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = max(hard, 2 * max(args.idle, args.idle_sessions) + 4096)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, want))   # a higher hard limit needs root
    except (ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    root = Path(tempfile.mkdtemp(prefix="popgate-bench-"))
    os.chmod(root, 0o755)   # Dovecot's unprivileged processes must reach the files inside
    bench = Bench(args, root)
    previous = signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        bench.run()
    except KeyboardInterrupt:
        log("bench: interrupted, stopping the servers")
        return 130
    finally:
        signal.signal(signal.SIGTERM, previous)
        bench.stop()
        if args.keep:
            log(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
