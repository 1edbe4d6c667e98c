"""systemd-native operation of the real popgate binary, without systemd running:

- socket activation through `systemd-socket-activate` (LISTEN_FDS/LISTEN_PID/LISTEN_FDNAMES);
- sd_notify: READY/STATUS/RELOADING/STOPPING/WATCHDOG datagrams on a unix socket the test binds;
- native journal entries, received on a private /run/systemd/journal (tmpfs in a mount namespace);
- the one-line session summary; SIGHUP reload (config, certificate, bad config); SIGTERM drain.

PopGate-only (the `gateway` fixture skips with POP3_TARGET=dovecot).
"""
from __future__ import annotations

import base64
import os
import poplib
import re
import shutil
import signal
import socket
import ssl
import struct
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

from harness.net import LOOPBACK, free_ports, port_accepts

A = b"Subject: A\r\n\r\nfirst message\r\n"
B = b"Subject: B\r\n\r\nthe second message\r\n"
C = b"Subject: C\r\n\r\nthird, the longest message of all\r\n"

SHUTTING_DOWN = b"-ERR [SYS/TEMP] Server shutting down."


# -- logfmt (stderr) helpers ----------------------------------------------------------------

_LOGFMT_PAIR = re.compile(r'([A-Za-z0-9_.\-]+)=("(?:[^"\\]|\\.)*"|[^ ]*)')
_UNESCAPE = {"n": "\n", "r": "\r", "t": "\t"}


def logfmt(line: str) -> dict[str, str]:
    """One logfmt line as a dict (quoted values unescaped)."""
    out = {}
    for key, value in _LOGFMT_PAIR.findall(line):
        if value.startswith('"'):
            value = re.sub(r"\\(.)", lambda m: _UNESCAPE.get(m.group(1), m.group(1)), value[1:-1])
        out[key] = value
    return out


def log_events(gw, start: int = 0) -> list[dict[str, str]]:
    return [logfmt(l) for l in gw.stderr_bytes()[start:].decode("utf-8", "replace").splitlines()
            if l.startswith("time=")]


def summaries(gw, client_port: int) -> list[dict[str, str]]:
    """The `session ended` events of the session whose client used `client_port`."""
    return [e for e in log_events(gw)
            if e.get("msg", "").startswith("session ended: ")
            and e.get("client") == f"{LOOPBACK}:{client_port}"]


def summary_of(gw, client_port: int, timeout: float = 5.0) -> dict[str, str]:
    """Waits for THE one summary line of a session (fails if there are several)."""
    deadline = time.monotonic() + timeout
    while not (found := summaries(gw, client_port)):
        if time.monotonic() > deadline:
            raise AssertionError(f"no session summary for client port {client_port}:\n{gw.stderr()[-3000:]}")
        time.sleep(0.03)
    time.sleep(0.1)   # a second line would come right after the first
    found = summaries(gw, client_port)
    assert len(found) == 1, f"one summary line per session, got {len(found)}: {found}"
    return found[0]


SUMMARY = re.compile(
    r"session ended: user=(?P<user>\S+) client=(?P<client>\S+) listener=(?P<listener>\S+) tls=(?P<tls>\S+) "
    r"ending=(?P<ending>\S+) listed=(?P<listed>\d+) retrieved=(?P<retrieved>\d+)/(?P<bytes>\d+)B "
    r"top=(?P<top>\d+) deleted=(?P<deleted>\d+) retention=(?P<retention>\S+) duration=(?P<duration>\d+\.\d{3})s"
    # sessions that logged in (docs/uidl.md)
    r"(?: uidl_hash=(?P<uidl_hash>[0-9a-f]{8}) uidl_change=(?P<uidl_change>first|no|yes))?")


def check_summary(event: dict[str, str], **expected) -> re.Match:
    """The summary message has the documented shape and the given values; its fields agree."""
    m = SUMMARY.fullmatch(event["msg"])
    assert m, f"summary line shape: {event['msg']!r}"
    for key, value in expected.items():
        assert m.group(key) == str(value), f"{key}: {m.group(key)!r} != {value!r} in {event['msg']!r}"
    fields = {"ending": "ending", "listed": "listed", "retrieved": "retrieved", "bytes": "retrieved_bytes",
              "top": "top", "deleted": "deleted", "retention": "retention", "duration": "duration",
              "tls": "tls", "listener": "listener", "client": "client"}
    for group, key in fields.items():
        assert event.get(key) == m.group(group), f"field {key}={event.get(key)!r} vs message {m.group(group)!r}"
    if m.group("user") != "-":
        assert event.get("user") == m.group("user")
    for key in ("uidl_hash", "uidl_change"):
        assert event.get(key) == m.group(key), f"field {key}={event.get(key)!r} vs message {m.group(key)!r}"
    return m


def local_port(conn) -> int:
    return conn.sock.getsockname()[1]


def octets(first_line: bytes) -> int:
    m = re.fullmatch(rb"\+OK (\d+) octets.*", first_line)
    assert m, first_line
    return int(m.group(1))


# -- sd_notify receiver ---------------------------------------------------------------------

class NotifySocket:
    """The service manager's end of sd_notify: a unix datagram socket at a short path."""

    def __init__(self):
        self.dir = Path(tempfile.mkdtemp(prefix="pgn-"))   # sun_path is only 108 bytes
        self.path = self.dir / "notify"
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(self.path))
        self.log: list[tuple[float, bytes]] = []   # (monotonic arrival, datagram), everything received

    def next(self, timeout: float, gw=None) -> bytes:
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(65536)
        except (socket.timeout, TimeoutError):
            got = [d for _, d in self.log]
            where = f"\npopgate stderr:\n{gw.stderr()[-3000:]}" if gw is not None else ""
            raise AssertionError(f"no notify datagram within {timeout}s (so far: {got}){where}") from None
        self.log.append((time.monotonic(), data))
        return data

    def collect(self, duration: float) -> list[tuple[float, bytes]]:
        """Everything that arrives within `duration` seconds."""
        out = []
        deadline = time.monotonic() + duration
        while (left := deadline - time.monotonic()) > 0:
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(65536)
            except (socket.timeout, TimeoutError):
                break
            self.log.append((time.monotonic(), data))
            out.append(self.log[-1])
        return out

    def close(self):
        self.sock.close()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def notify():
    n = NotifySocket()
    yield n
    n.close()


def status_text(open_: int, sessions: int, logins: int, failed: int, backend_errors: int = 0) -> str:
    return (f"{open_} sessions open; since start: {sessions} sessions, {logins} logins, "
            f"{failed} failed logins, {backend_errors} backend errors")


def monotonic_usec() -> int:
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000


# -- socket activation ----------------------------------------------------------------------

def socket_activate(sockets: list[tuple[str | None, int]]):
    """A launcher: `systemd-socket-activate -l 127.0.0.1:PORT … [--fdname=A:B…] popgate …`.
    Without --accept it binds at once and execs popgate (same pid) on the first connection."""
    def launch(gw, argv):
        out = ["systemd-socket-activate"]
        for _, port in sockets:
            out += ["-l", f"{LOOPBACK}:{port}"]
        names = [n for n, _ in sockets]
        if any(n is not None for n in names):
            out.append("--fdname=" + ":".join(names))
        return out + argv
    return launch


def wait_activator_listening(gw, ports):
    for i, port in enumerate(ports):
        gw.wait_for_log(rf"Listening on {re.escape(LOOPBACK)}:{port} as {3 + i}\.", timeout=10)


@pytest.fixture
def activator():
    if shutil.which("systemd-socket-activate") is None:
        pytest.skip("systemd-socket-activate missing (Debian package systemd)")


def test_socket_activation_adopts_passed_sockets_by_name(gateway, mailbox, activator, pki):
    mailbox.append([A, B])
    act = dict(zip(("pop3", "pop3s"), free_ports(2)))
    gw = gateway(plain_listener=True, launcher=socket_activate(list(act.items())), wait_for="none")
    wait_activator_listening(gw, act.values())

    # The first connection makes systemd-socket-activate exec popgate, which must accept it.
    p = poplib.POP3_SSL(LOOPBACK, act["pop3s"], context=pki.client_context(), timeout=15)
    try:
        assert p.getwelcome().startswith(b"+OK")
        p.user(mailbox.user)
        p.pass_(mailbox.password)
        resp, lines, _ = p.retr(2)
        assert resp.startswith(b"+OK") and b"\r\n".join(lines) + b"\r\n" == B
    finally:
        p.quit()
    p = poplib.POP3(LOOPBACK, act["pop3"], timeout=15)
    try:
        p.stls(context=pki.client_context())
        p.user(mailbox.user)
        p.pass_(mailbox.password)
        resp, lines, _ = p.retr(1)
        assert resp.startswith(b"+OK") and b"\r\n".join(lines) + b"\r\n" == A
    finally:
        p.quit()

    # exec'd in place: LISTEN_PID was this pid, and it is popgate now
    assert os.path.realpath(f"/proc/{gw.pid}/exe") == os.path.realpath(gw.binary)
    # the configured addresses of the passed listeners are not bound; the one not passed is
    assert not port_accepts(gw.ports["starttls"]) and not port_accepts(gw.ports["implicit"])
    p = poplib.POP3(LOOPBACK, gw.plain_port, timeout=15)
    assert p.getwelcome().startswith(b"+OK")
    p.quit()
    listening = {e["listener"]: e for e in log_events(gw) if e.get("msg") == "listening"}
    assert {k: (v["activated"], v["address"]) for k, v in listening.items()} == {
        "pop3": ("true", f"{LOOPBACK}:{act['pop3']}"),
        "pop3s": ("true", f"{LOOPBACK}:{act['pop3s']}"),
        "pop3-plain": ("false", f"{LOOPBACK}:{gw.plain_port}"),
    }, listening


@pytest.mark.parametrize("names,bad", [(["pop3s", "smtp"], "smtp"), ([None], "unknown"), (["metrics"], "no metrics section")],
                         ids=["unmatched-name", "no-fdname", "metrics-without-section"])
def test_socket_activation_unknown_name_is_a_startup_error(gateway, activator, names, bad):
    ports = free_ports(len(names))
    gw = gateway(launcher=socket_activate(list(zip(names, ports))), wait_for="none")
    wait_activator_listening(gw, ports)
    with socket.create_connection((LOOPBACK, ports[-1]), timeout=5) as s:
        code = gw.wait_exit(10)
        assert code is not None, "popgate must refuse to start"
        assert code != 0
        s.settimeout(2)
        try:
            assert s.recv(100) == b"", "the queued connection must not be served"
        except ConnectionResetError:
            pass
    err = [l for l in gw.stderr().splitlines() if l.startswith("time=")]
    assert any("level=critical" in l and bad in l for l in err), gw.stderr()


def test_socket_activation_serves_metrics_on_the_socket_named_metrics(gateway, activator):
    act = dict(zip(("pop3s", "metrics"), free_ports(2)))
    gw = gateway(metrics=True, launcher=socket_activate(list(act.items())), wait_for="none")
    wait_activator_listening(gw, act.values())
    # The first connection, a scrape, makes systemd-socket-activate exec popgate, which must answer it.
    with urllib.request.urlopen(f"http://{LOOPBACK}:{act['metrics']}/metrics", timeout=15) as resp:
        assert resp.status == 200
        text = resp.read().decode()
    assert re.search(r'^popgate_build_info\{version="[^"]+"\} 1', text, re.M), text
    assert os.path.realpath(f"/proc/{gw.pid}/exe") == os.path.realpath(gw.binary)
    # the passed socket replaces metrics.address
    assert not port_accepts(gw.metrics_port)
    listening = {e["listener"]: e for e in log_events(gw) if e.get("msg") == "listening"}
    assert (listening["metrics"]["activated"], listening["metrics"]["address"]) == ("true", f"{LOOPBACK}:{act['metrics']}")
    assert listening["pop3s"]["activated"] == "true"


# -- sd_notify -------------------------------------------------------------------------------

def test_notify_ready_status_reload_stopping(gateway, notify, mailbox):
    mailbox.append([A])
    gw = gateway(env={"NOTIFY_SOCKET": str(notify.path)}, wait_for="none")
    ready = notify.next(10, gw)
    t_ready = time.monotonic()
    assert ready == ("READY=1\nSTATUS=" + status_text(0, 0, 0, 0)).encode()
    # READY means listening
    assert port_accepts(gw.starttls_port, timeout=0.2) and port_accepts(gw.implicit_port, timeout=0.2)

    with gw.connect() as bad:
        assert bad.user_pass(mailbox.user, "wrong").startswith(b"-ERR")
    c = gw.login(mailbox.user, mailbox.password)
    try:
        status = notify.next(7, gw)
        assert 4.0 <= time.monotonic() - t_ready <= 6.5, "STATUS= comes every 5 s"
        assert status == ("STATUS=" + status_text(1, 4, 1, 1)).encode()
        assert c.quit() == b"+OK Logging out."
    finally:
        c.close()
    time.sleep(0.2)

    before = monotonic_usec()
    gw.signal(signal.SIGHUP)
    reloading = notify.next(5, gw)
    after = monotonic_usec()
    m = re.fullmatch(rb"RELOADING=1\nMONOTONIC_USEC=(\d+)", reloading)
    assert m, reloading
    assert before <= int(m.group(1)) <= after, "MONOTONIC_USEC is CLOCK_MONOTONIC at the reload"
    assert notify.next(5, gw) == ("READY=1\nSTATUS=" + status_text(0, 4, 1, 1)).encode()

    gw.signal(signal.SIGTERM)
    assert notify.next(5, gw) == b"STOPPING=1"
    assert gw.wait_exit(5) == 0
    late = notify.collect(0.3)
    assert late == [], f"nothing after STOPPING=1: {late}"
    assert not any(d.startswith(b"WATCHDOG") for _, d in notify.log), "no watchdog without WATCHDOG_USEC"


def _watchdog_launcher(own: bool):
    def launch(gw, argv):
        pid = "$$" if own else "1"
        return ["sh", "-c", f'export WATCHDOG_PID={pid}; exec "$@"', "sh", *argv]
    return launch


@pytest.mark.parametrize("own_pid", [True, False], ids=["watchdog-pid-is-popgate", "watchdog-pid-is-other"])
def test_watchdog_pings(gateway, notify, own_pid):
    gw = gateway(env={"NOTIFY_SOCKET": str(notify.path), "WATCHDOG_USEC": "2000000"},
                 launcher=_watchdog_launcher(own_pid), wait_for="none")
    assert notify.next(10, gw).startswith(b"READY=1\nSTATUS=")
    t_ready = time.monotonic()
    got = notify.collect(3.4)
    if not own_pid:
        assert got == [], f"WATCHDOG_PID names another process: no pings, got {got}"
        return
    # About every 1 s (WATCHDOG_USEC/2). The window leaves room for a loaded CI machine; what must
    # not happen is no ping, pings at the full 2 s interval, or a flood.
    assert {d for _, d in got} == {b"WATCHDOG=1"} and 2 <= len(got) <= 4, got
    times = [t_ready] + [t for t, _ in got]
    gaps = [b - a for a, b in zip(times, times[1:])]
    assert all(0.5 <= g <= 1.7 for g in gaps), f"WATCHDOG=1 about every 1 s (WATCHDOG_USEC/2): {gaps}"
    assert gw.is_running()


# -- journald --------------------------------------------------------------------------------

JOURNAL_RECEIVER = r'''
import array, os, socket, struct, sys
path, out = sys.argv[1], sys.argv[2]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(path)
with open(out, "ab", buffering=0) as f:
    while True:
        data, ancillary, _, _ = s.recvmsg(1 << 21, socket.CMSG_SPACE(16 * 4))
        for level, kind, cdata in ancillary:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                fds = array.array("i")
                fds.frombytes(cdata[:len(cdata) - len(cdata) % fds.itemsize])
                for fd in fds:   # a big entry comes as a sealed memfd
                    os.lseek(fd, 0, os.SEEK_SET)
                    while chunk := os.read(fd, 1 << 20):
                        data += chunk
                    os.close(fd)
        f.write(struct.pack("<Q", len(data)) + data)
'''

# Runs as `unshare -m sh -c SCRIPT sh popgate serve …`: the tmpfs is private to this mount
# namespace (unshare -m makes propagation private), so the host's /run is untouched.
JOURNAL_WRAPPER = r'''
set -e
if [ -d /run/systemd/journal ]; then
    mount -t tmpfs -o mode=0755 tmpfs /run/systemd/journal
elif [ -d /run/systemd ]; then
    mount -t tmpfs -o mode=0755 tmpfs /run/systemd
    mkdir /run/systemd/journal
else
    mkdir -p /run/systemd/journal
    mount -t tmpfs -o mode=0755 tmpfs /run/systemd/journal
fi
python3 "$PG_JOURNAL_RECEIVER" /run/systemd/journal/socket "$PG_JOURNAL_OUT" &
i=0
while [ ! -S /run/systemd/journal/socket ]; do
    i=$((i + 1)); [ $i -lt 500 ] || { echo "journal receiver did not start" >&2; exit 97; }
    sleep 0.01
done
case "$PG_JOURNAL_STREAM" in
    match) export JOURNAL_STREAM="$(stat -L -c %d:%i /proc/self/fd/2)" ;;
    mismatch) export JOURNAL_STREAM="$(stat -L -c %d /proc/self/fd/2):1" ;;
esac
exec "$@"
'''


@pytest.fixture
def journal(workdir):
    """journal(stream=None|"match"|"mismatch") → (options for gateway(), reader of the entries)."""
    if shutil.which("unshare") is None:
        pytest.skip("unshare (util-linux) missing")
    r = subprocess.run(["unshare", "-m", "true"], capture_output=True)
    if r.returncode != 0:
        pytest.skip(f"cannot create a mount namespace (needs root/CAP_SYS_ADMIN): {r.stderr!r}")
    d = Path(tempfile.mkdtemp(prefix="journal-", dir=workdir))
    receiver = d / "receiver.py"
    receiver.write_text(JOURNAL_RECEIVER)
    out = d / "datagrams"
    out.touch()

    def options(stream: str | None = None) -> dict:
        return {"launcher": lambda gw, argv: ["unshare", "-m", "sh", "-c", JOURNAL_WRAPPER, "sh", *argv],
                "env": {"PG_JOURNAL_RECEIVER": str(receiver), "PG_JOURNAL_OUT": str(out),
                        "PG_JOURNAL_STREAM": stream or ""}}

    def datagrams() -> list[bytes]:
        raw, out_list, i = out.read_bytes(), [], 0
        while i + 8 <= len(raw):
            (n,) = struct.unpack_from("<Q", raw, i)
            if i + 8 + n > len(raw):
                break
            out_list.append(raw[i + 8:i + 8 + n])
            i += 8 + n
        return out_list
    return options, datagrams


def parse_native(datagram: bytes) -> dict[str, bytes]:
    """journald's native protocol: `KEY=value\\n`, or `KEY\\n<u64 LE length><value>\\n`."""
    fields: dict[str, bytes] = {}
    i = 0
    while i < len(datagram):
        nl = datagram.index(b"\n", i)
        line = datagram[i:nl]
        if b"=" in line:
            key, value = line.split(b"=", 1)
            i = nl + 1
        else:
            key = line
            (n,) = struct.unpack_from("<Q", datagram, nl + 1)
            value = datagram[nl + 9:nl + 9 + n]
            assert datagram[nl + 9 + n:nl + 10 + n] == b"\n", "binary field must end with a newline"
            i = nl + 10 + n
        name = key.decode("ascii")
        assert re.fullmatch(r"[A-Z0-9_]{1,64}", name) and not name[0].isdigit(), f"bad field name {name!r}"
        assert name not in fields, f"field {name} twice in one entry"
        fields[name] = value
    return fields


def _wait_entries(datagrams, done, timeout=5.0) -> list[dict[str, bytes]]:
    deadline = time.monotonic() + timeout
    while True:
        entries = [parse_native(d) for d in datagrams()]
        if done(entries) or time.monotonic() > deadline:
            return entries
        time.sleep(0.05)


# (not named `target`: that is conftest's POP3_TARGET fixture)
@pytest.mark.parametrize("log_target,stream", [("journal", None), ("auto", "match")],
                         ids=["target-journal", "auto-with-JOURNAL_STREAM"])
def test_journal_entries_of_a_session(gateway, journal, new_mailbox, dovecot, log_target, stream):
    password = "Sekr1t-p4ss-" + os.urandom(4).hex()
    mb = new_mailbox(password=password)
    mb.append([A, B])
    options, datagrams = journal
    gw = gateway(log_target=log_target, log_level="trace", **options(stream))

    payload = base64.b64encode(f"\0{mb.user}\0{password}".encode())
    with gw.connect("implicit") as c1:       # AUTH PLAIN, initial response
        port1 = local_port(c1)
        assert c1.command(b"AUTH PLAIN " + payload).startswith(b"+OK")
        assert c1.multi("RETR 1")[1] == A
        assert c1.quit().startswith(b"+OK")
    with gw.connect("starttls") as c2:       # USER/PASS after STLS
        port2 = local_port(c2)
        assert c2.user_pass(mb.user, password).startswith(b"+OK")
        assert c2.multi("RETR 2")[1] == B
        assert c2.quit().startswith(b"+OK")

    def ended(entries, port):
        return [e for e in entries if e.get("POPGATE_CLIENT") == f"{LOOPBACK}:{port}".encode()
                and e["MESSAGE"].startswith(b"session ended: ")]
    _wait_entries(datagrams, lambda es: ended(es, port1) and ended(es, port2))
    gw.signal(signal.SIGTERM)
    assert gw.wait_exit(5) == 0
    # the receiver may still be reading the last datagrams (gw.stop() kills it with the process group)
    _wait_entries(datagrams, lambda es: any(e["MESSAGE"] == b"stopped" for e in es))
    raw = datagrams()
    entries = [parse_native(d) for d in raw]
    assert entries, "no journal entries received"

    for e in entries:
        assert e["SYSLOG_IDENTIFIER"] == b"popgate", e
        assert re.fullmatch(rb"[0-7]", e["PRIORITY"]), e
        assert "MESSAGE" in e and e["CODE_FILE"].endswith(b".swift") and re.fullmatch(rb"\d+", e["CODE_LINE"]), e
    messages = [e["MESSAGE"] for e in entries]
    assert b"ready" in messages and b"stopping" in messages and b"stopped" in messages, messages
    listening = {e["POPGATE_LISTENER"]: e for e in entries if e["MESSAGE"] == b"listening"}
    assert listening[b"pop3s"]["POPGATE_ADDRESS"] == f"{LOOPBACK}:{gw.implicit_port}".encode()
    assert listening[b"pop3s"]["POPGATE_ACTIVATED"] == b"false"

    backend = f"{LOOPBACK}:{dovecot.ports.imap}".encode()
    for port, listener, retrieved in ((port1, b"pop3s", A), (port2, b"pop3", B)):
        client = f"{LOOPBACK}:{port}".encode()
        mine = [e for e in entries if e.get("POPGATE_CLIENT") == client]
        sessions = {e.get("POPGATE_SESSION") for e in mine}
        assert len(sessions) == 1 and None not in sessions, f"one POPGATE_SESSION per session: {sessions}"
        assert all(e["POPGATE_LISTENER"] == listener for e in mine)
        (login,) = [e for e in mine if e["MESSAGE"] == b"logged in"]
        (end,) = ended(entries, port)
        for e in (login, end):
            assert e["POPGATE_USER"] == mb.user.encode(), e
            assert e["POPGATE_BACKEND"] == backend, e
            assert e["POPGATE_TLS"] == b"TLSv1.3", e
            assert e["PRIORITY"] == b"6", e
        assert login["POPGATE_MESSAGES"] == b"2", login
        assert end["MESSAGE"].startswith(
            b"session ended: user=%s client=%s listener=%s tls=TLSv1.3 ending=quit listed=2 retrieved=1/%dB "
            b"top=0 deleted=0 retention=none duration=" % (mb.user.encode(), client, listener, len(retrieved))), end
        assert (end["POPGATE_ENDING"], end["POPGATE_RETRIEVED"], end["POPGATE_RETRIEVED_BYTES"]) == \
            (b"quit", b"1", str(len(retrieved)).encode()), end

    blob = b"\n".join(raw)
    for secret in (password.encode(), payload, base64.b64encode(password.encode())):
        assert secret not in blob, f"secret {secret!r} in a journal entry"
        assert secret not in gw.stderr_bytes()
    assert b"level=" not in gw.stderr_bytes(), f"logs go to the journal only:\n{gw.stderr()[-2000:]}"


def test_journal_stream_of_another_file_logs_to_stderr(gateway, journal):
    options, datagrams = journal
    gw = gateway(log_target="auto", **options("mismatch"))
    gw.wait_for_log(r"^time=\S+ level=info msg=ready$", timeout=5)
    gw.signal(signal.SIGTERM)
    assert gw.wait_exit(5) == 0
    gw.wait_for_log(r"^time=\S+ level=info msg=stopped$", timeout=5)
    time.sleep(0.3)   # what was sent has reached the receiver's file by now
    assert datagrams() == [], "JOURNAL_STREAM names another file: stderr, not the journal"


# -- the session summary line ------------------------------------------------------------------

def test_summary_line_of_a_quit_session(gateway, mailbox):
    mailbox.append([A, B, C])
    gw = gateway(on_delete="flag")
    t0 = time.monotonic()
    with gw.login(mailbox.user, mailbox.password) as c:
        port = local_port(c)
        first, body = c.multi("LIST")
        assert len(body.split(b"\r\n")) - 1 == 3
        first, body = c.multi("RETR 1")
        assert body == A
        size = octets(first)
        assert c.multi("TOP 2 0")[1] == b"Subject: B\r\n\r\n"
        assert c.command("DELE 1").startswith(b"+OK")
        assert c.quit() == b"+OK Logging out."
    elapsed = time.monotonic() - t0
    e = summary_of(gw, port)
    m = check_summary(e, user=mailbox.user, client=f"{LOOPBACK}:{port}", listener="pop3s", tls="TLSv1.3",
                      ending="quit", listed=3, retrieved=1, bytes=size, top=1, deleted=1, retention="flagged")
    assert size == len(A)
    assert 0 < float(m.group("duration")) <= elapsed + 0.05
    assert e["level"] == "info" and e["session"]


def test_summary_line_of_a_dropped_connection(gateway, mailbox):
    uids = mailbox.append([A, B, C])
    gw = gateway(on_delete="expunge")
    c = gw.login(mailbox.user, mailbox.password, mode="starttls")
    port = local_port(c)
    assert c.multi("RETR 3")[1] == C
    assert c.command("DELE 2").startswith(b"+OK")
    c.abort()
    e = summary_of(gw, port)
    check_summary(e, user=mailbox.user, listener="pop3", tls="TLSv1.3", ending="client-gone", listed=3,
                  retrieved=1, bytes=len(C), top=0, retention="none")
    assert mailbox.flags() == {u: set() for u in uids}, "nothing applied"


@pytest.mark.parametrize("ending", ["client-gone", "timeout"])
def test_summary_counts_deletes_of_a_session_ended_without_quit(gateway, mailbox, ending):
    mailbox.append([A, B])
    gw = gateway(idle="1s")
    c = gw.login(mailbox.user, mailbox.password)
    port = local_port(c)
    assert c.command("DELE 2").startswith(b"+OK")
    if ending == "client-gone":
        c.abort()
    else:
        assert c.wait_closed(4)
        c.close()
    check_summary(summary_of(gw, port, timeout=4), ending=ending, deleted=1, retention="none")


def test_summary_line_of_an_idle_timeout(gateway, mailbox):
    mailbox.append([A])
    gw = gateway(idle="2s")
    with gw.login(mailbox.user, mailbox.password) as c:
        port = local_port(c)
        t0 = time.monotonic()
        assert c.wait_closed(timeout=5), "idle 2s: the server must close"
        waited = time.monotonic() - t0
        assert c.discarded == b"-ERR Disconnected for inactivity.\r\n", c.discarded
    assert 1.8 <= waited <= 3.0, waited
    e = summary_of(gw, port)
    m = check_summary(e, user=mailbox.user, ending="timeout", listed=1, retrieved=0, bytes=0, deleted=0,
                      retention="none")
    assert 2.0 <= float(m.group("duration")) <= 3.5, m.group("duration")


# -- reload (SIGHUP) ---------------------------------------------------------------------------

def make_leaf(pki, directory: Path, org: str) -> tuple[Path, Path, int]:
    """A new localhost certificate from the test CA with another subject and a random serial."""
    directory.mkdir(parents=True, exist_ok=True)
    ca_dir = pki.ca_cert.parent
    serial = int.from_bytes(os.urandom(8), "big") | 1
    run = dict(cwd=directory, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    subprocess.run(["openssl", "req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/O={org}/CN=localhost",
                    "-keyout", "leaf.key", "-out", "leaf.csr"], **run)
    subprocess.run(["openssl", "x509", "-req", "-in", "leaf.csr", "-CA", str(pki.ca_cert),
                    "-CAkey", str(ca_dir / "ca.key"), "-set_serial", str(serial), "-days", "2", "-sha256",
                    "-extfile", str(ca_dir / "server.ext"), "-out", "leaf.pem"], **run)
    chain = directory / "chain.pem"
    chain.write_bytes((directory / "leaf.pem").read_bytes() + pki.ca_cert.read_bytes())
    return chain, directory / "leaf.key", serial


def der(pem_file: Path) -> bytes:
    return ssl.PEM_cert_to_DER_cert(pem_file.read_text())


def peer_der(conn) -> bytes:
    return conn.sock.getpeercert(binary_form=True)


@pytest.fixture
def own_certs(tmp_path, pki):
    """Copies of the test certificate the gateway reads, so a test may replace them."""
    d = tmp_path / "tls"
    d.mkdir()
    shutil.copy(pki.fullchain, d / "chain.pem")
    shutil.copy(pki.key, d / "key.pem")
    return d / "chain.pem", d / "key.pem"


def replace_file(target: Path, source: Path) -> None:
    tmp = target.with_suffix(".new")
    shutil.copy(source, tmp)
    os.replace(tmp, target)


def test_reload_reads_new_certificate_and_open_session_keeps_working(gateway, mailbox, pki, own_certs, tmp_path):
    mailbox.append([A, B])
    chain, key = own_certs
    gw = gateway(certificate=str(chain), key=str(key))
    old = gw.login(mailbox.user, mailbox.password)
    try:
        assert peer_der(old) == der(pki.cert)
        new_chain, new_key, serial = make_leaf(pki, tmp_path / "new", org="PopGate Reloaded")
        replace_file(key, new_key)
        replace_file(chain, new_chain)
        mark = len(gw.stderr_bytes())
        gw.signal(signal.SIGHUP)
        gw.wait_for_log(r'msg="reloaded configuration"', start=mark, timeout=5)

        for mode in ("implicit", "starttls"):
            with gw.connect(mode) as c:
                assert peer_der(c) == der(tmp_path / "new" / "leaf.pem"), f"{mode}: new sessions get the new cert"
                cert = c.sock.getpeercert()
                assert int(cert["serialNumber"], 16) == serial
                assert (("organizationName", "PopGate Reloaded"),) in cert["subject"]
                assert c.user_pass(mailbox.user, mailbox.password).startswith(b"+OK")
        # the session opened before the reload goes on
        first, body = old.multi("LIST")
        assert first.startswith(b"+OK") and body == b"1 %d\r\n2 %d\r\n" % (len(A), len(B))
        assert old.multi("RETR 2")[1] == B
        assert old.quit() == b"+OK Logging out."
    finally:
        old.close()
    assert gw.is_running()


@pytest.mark.parametrize("breakage", ["config", "certificate"])
def test_reload_rejects_bad_config_and_keeps_serving(gateway, mailbox, pki, own_certs, breakage):
    mailbox.append([A, B])
    chain, key = own_certs
    gw = gateway(certificate=str(chain), key=str(key), on_delete="flag")
    mark = len(gw.stderr_bytes())
    if breakage == "config":
        gw.write_config(on_delete="bogus")
    else:
        chain.write_text("-----BEGIN CERTIFICATE-----\nnot a certificate\n-----END CERTIFICATE-----\n")
    gw.signal(signal.SIGHUP)
    m = gw.wait_for_log(r"^.*reload rejected.*$", start=mark, timeout=5)
    line = m.group(0).decode()
    assert "level=error" in line, line
    if breakage == "config":
        assert "retention.on_delete" in line and "bogus" in line, line
    time.sleep(0.3)
    assert gw.is_running(), "a rejected reload must not stop the daemon"
    assert "reloaded configuration" not in gw.stderr_bytes()[mark:].decode()

    with gw.login(mailbox.user, mailbox.password) as c:   # old settings: old cert, on_delete flag
        assert peer_der(c) == der(pki.cert)
        port = local_port(c)
        assert c.command("DELE 1").startswith(b"+OK")
        assert c.quit() == b"+OK Logging out."
    check_summary(summary_of(gw, port), ending="quit", deleted=1, retention="flagged")
    assert mailbox.flags()[mailbox.uids[0]] == {"$POP3Deleted", "\\Seen"}


def test_reload_retention_applies_to_new_sessions_only(gateway, mailbox):
    uids = mailbox.append([A, B, C])
    gw = gateway(on_delete="flag")
    before = gw.login(mailbox.user, mailbox.password)
    try:
        mark = len(gw.stderr_bytes())
        gw.write_config(on_delete="keep")
        gw.signal(signal.SIGHUP)
        gw.wait_for_log(r'msg="reloaded configuration"', start=mark, timeout=5)
        with gw.login(mailbox.user, mailbox.password) as after:
            port_after = local_port(after)
            assert after.command("DELE 2").startswith(b"+OK")
            assert after.quit() == b"+OK Logging out."
        port_before = local_port(before)
        assert before.command("DELE 1").startswith(b"+OK")
        assert before.quit() == b"+OK Logging out."
    finally:
        before.close()
    check_summary(summary_of(gw, port_before), deleted=1, retention="flagged")
    check_summary(summary_of(gw, port_after), deleted=1, retention="kept")
    assert mailbox.flags() == {uids[0]: {"$POP3Deleted", "\\Seen"}, uids[1]: {"\\Seen"}, uids[2]: set()}


def test_reload_changes_the_log_level(gateway):
    gw = gateway(log_level="info")

    def touch() -> None:
        with socket.create_connection((LOOPBACK, gw.starttls_port), timeout=5) as s:
            assert s.recv(100).startswith(b"+OK")

    touch()
    gw.wait_for_log(r'msg="session ended', timeout=5)
    assert "level=debug" not in gw.stderr(), "info hides debug lines"
    mark = len(gw.stderr_bytes())
    gw.write_config(log_level="debug")
    gw.signal(signal.SIGHUP)
    gw.wait_for_log(r'msg="reloaded configuration"', start=mark, timeout=5)
    touch()
    gw.wait_for_log(r"level=debug msg=connected", start=mark, timeout=5)


# -- graceful stop (SIGTERM) ----------------------------------------------------------------------

def assert_refused(port: int) -> None:
    """A new connection fails, or is closed without a byte (no greeting, no TLS handshake)."""
    try:
        s = socket.create_connection((LOOPBACK, port), timeout=2)
    except ConnectionRefusedError:
        return
    with s:
        s.settimeout(2)
        try:
            data = s.recv(100)
        except ConnectionResetError:
            return
        except (socket.timeout, TimeoutError):
            raise AssertionError(f"port {port}: connection accepted and left open during the drain") from None
        assert data == b"", f"port {port} still serves during the drain: {data!r}"


def test_sigterm_drains_sessions(gateway, new_mailbox):
    mbs = {name: new_mailbox(prefix=name) for name in "abc"}
    uids = {name: mb.append([A, B]) for name, mb in mbs.items()}
    gw = gateway(drain="3s", on_delete="expunge")
    conns = {name: gw.login(mb.user, mb.password) for name, mb in mbs.items()}
    try:
        for c in conns.values():
            assert c.command("DELE 1").startswith(b"+OK")
        ports = {name: local_port(c) for name, c in conns.items()}
        mark = len(gw.stderr_bytes())
        t0 = time.monotonic()
        gw.signal(signal.SIGTERM)
        gw.wait_for_log(r"msg=stopping", start=mark, timeout=2)
        time.sleep(0.1)
        assert_refused(gw.implicit_port)
        assert_refused(gw.starttls_port)

        assert conns["a"].command("STAT") == SHUTTING_DOWN
        assert conns["a"].wait_closed(2), "refused command: the session is closed"
        assert conns["b"].command("QUIT") == b"+OK Logging out."
        assert conns["b"].wait_closed(2)
        assert conns["c"].wait_closed(5), "silent session: closed at the drain deadline"
        t_c = time.monotonic() - t0
        assert conns["c"].discarded == SHUTTING_DOWN + b"\r\n", conns["c"].discarded
        assert 2.7 <= t_c <= 4.0, f"closed {t_c:.2f}s after SIGTERM with drain 3s"
        code = gw.wait_exit(3.0 + 2.5 - (time.monotonic() - t0))
        assert code == 0, f"exit code {code} ({time.monotonic() - t0:.2f}s after SIGTERM)"
    finally:
        for c in conns.values():
            c.close()

    # (deleted= of the unapplied sessions: see test_summary_counts_deletes_of_a_session_ended_without_quit)
    check_summary(summary_of(gw, ports["a"]), ending="shutdown", retention="none")
    check_summary(summary_of(gw, ports["b"]), ending="quit", deleted=1, retention="expunged")
    check_summary(summary_of(gw, ports["c"]), ending="shutdown", retention="none")
    for name in "ac":   # nothing applied: both messages there, no flags
        assert mbs[name].flags() == {u: set() for u in uids[name]}, name
    assert [m.uid for m in mbs["b"].messages(bodies=False)] == [uids["b"][1]]


def _poll_with_session(gw, ctx, mailbox, session=None):
    """One implicit-TLS poll (USER/PASS, STAT, QUIT) offering `session`; returns (reused, new session).
    A session can only be offered from the SSLContext that made it, as a real client keeps one."""
    raw = socket.create_connection((LOOPBACK, gw.implicit_port), timeout=10)
    with ctx.wrap_socket(raw, server_hostname="localhost", session=session) as s:
        f = s.makefile("rb")
        assert f.readline().startswith(b"+OK")
        for line in (f"USER {mailbox.user}\r\n", f"PASS {mailbox.password}\r\n", "STAT\r\n", "QUIT\r\n"):
            s.sendall(line.encode())
            assert f.readline().startswith(b"+OK"), line.split()[0]
        # A TLS 1.3 ticket arrives after the handshake; it has been read with the answers.
        return s.session_reused, s.session


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_3, ssl.TLSVersion.TLSv1_2], ids=["tls1.3", "tls1.2"])
def test_tls_tickets_resume_polls_until_a_reload_rotates_the_key(gateway, mailbox, pki, version):
    """A client polling every few minutes resumes its TLS session from a ticket (no certificate, no
    signature); a reload makes a new ticket key, so tickets from before it give a full handshake."""
    mailbox.append([A])
    gw = gateway()
    ctx = pki.client_context()
    ctx.minimum_version = ctx.maximum_version = version
    reused, ticket = _poll_with_session(gw, ctx, mailbox)
    assert not reused, "the first poll has no session to resume"
    assert ticket is not None and ticket.has_ticket, f"no ticket: {ticket}"
    reused, again = _poll_with_session(gw, ctx, mailbox, session=ticket)
    assert reused, "the ticket from the first poll resumes the second"

    mark = len(gw.stderr_bytes())
    gw.signal(signal.SIGHUP)
    gw.wait_for_log(r'msg="reloaded configuration"', start=mark, timeout=5)
    reused, fresh = _poll_with_session(gw, ctx, mailbox, session=again)
    assert not reused, "a ticket issued before the reload must not resume after it"
    reused, _ = _poll_with_session(gw, ctx, mailbox, session=fresh)
    assert reused, "tickets issued after the reload resume"
