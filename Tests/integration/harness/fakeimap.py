"""A scripted fake IMAP backend for fault injection (threads, plaintext, loopback).

Minimal correct IMAP otherwise: CAPABILITY (AUTH=PLAIN SASL-IR UIDPLUS MOVE),
AUTHENTICATE PLAIN (with and without initial response), LOGIN, SELECT with
UIDVALIDITY, UID FETCH (UID RFC822.SIZE FLAGS BODY.PEEK[] BODY.PEEK[]<o.l>),
UID STORE, UID EXPUNGE, UID MOVE/COPY, CREATE, NOOP, LOGOUT. Every command
received is recorded (`commands`, tags stripped, literals inlined) so tests can
assert e.g. that no STORE/EXPUNGE was sent.

Behaviours (`behaviour=`):
  normal             nothing injected
  hang_banner        accept the connection, never send the greeting
  close_banner       accept and close at once
  garbage_banner     send garbage instead of a greeting
  garbage_response   valid greeting, then garbage as the answer to the first command
  unavailable_login  LOGIN/AUTHENTICATE → NO [UNAVAILABLE]
  inuse_select       SELECT → NO [INUSE]
  drop_mid_literal   the first BODY[] FETCH sends half of the literal, then closes
  drop_at_quit       the first UID STORE/EXPUNGE/MOVE/COPY closes the connection unanswered
  huge_size          on connection number `hostile_connection` (default the first), UID FETCH
                     answers claim RFC822.SIZE `huge_size` for every message (others: real sizes)
  fetch_flood        on connection number `hostile_connection`, SELECT says `* 5 EXISTS`, then
                     the first UID FETCH sends `flood` FETCH responses (UIDs 1..flood) before the
                     tagged OK, as fast as the peer reads; `flood_sent` counts the bytes sent
"""
from __future__ import annotations

import base64
import re
import socket
import threading
from dataclasses import dataclass, field

BEHAVIOURS = {"normal", "hang_banner", "close_banner", "garbage_banner", "garbage_response",
              "unavailable_login", "inuse_select", "drop_mid_literal", "drop_at_quit",
              "huge_size", "fetch_flood"}
CAPABILITIES = "IMAP4rev1 AUTH=PLAIN SASL-IR UIDPLUS MOVE ID ENABLE"


@dataclass
class FakeMessage:
    uid: int
    body: bytes
    flags: set[str] = field(default_factory=set)


class _Closed(Exception):
    pass


class _Literal(bytes):
    """A token that arrived as a literal (so `{5}` is never confused with a quoted string)."""


class FakeImapBackend:
    def __init__(self, *, behaviour: str = "normal", messages: list[bytes] | None = None,
                 user: str = "fakeuser", password: str = "fake pass",
                 uidvalidity: int = 3735928559, first_uid: int = 1,
                 flags: list[set[str]] | None = None, capabilities: str = CAPABILITIES,
                 huge_size: int = 18446744073709551615, flood: int = 100_000,
                 hostile_connection: int = 1):
        if behaviour not in BEHAVIOURS:
            raise ValueError(f"unknown behaviour {behaviour!r}")
        self.behaviour = behaviour
        self.huge_size = huge_size
        self.flood = flood
        self.flood_sent = 0
        self.hostile_connection = hostile_connection
        self.user, self.password = user, password
        self.uidvalidity = uidvalidity
        self.capabilities = capabilities
        msgs = messages or []
        flags = flags or [set() for _ in msgs]
        self.folders: dict[str, list[FakeMessage]] = {
            "INBOX": [FakeMessage(first_uid + i, m, set(f)) for i, (m, f) in enumerate(zip(msgs, flags))]}
        self.uidnext = {"INBOX": first_uid + len(msgs)}
        self.commands: list[str] = []
        self.connections = 0
        self.lock = threading.RLock()
        self._injected = False
        self._stop = threading.Event()
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(16)
        self._listener.settimeout(0.1)   # the accept loop polls _stop
        self.port = self._listener.getsockname()[1]
        self._clients: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept_loop, name="fake-imap", daemon=True)

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> "FakeImapBackend":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        try:
            self._listener.close()
        except OSError:
            pass
        with self.lock:
            clients = list(self._clients)
        for c in clients:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            try:
                c.close()
            except OSError:
                pass
        self._thread.join(timeout=5)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # -- inspection --------------------------------------------------------------------------

    def command_names(self) -> list[str]:
        """Upper-cased command names received, 'UID FETCH' style for UID commands."""
        out = []
        for c in self.commands:
            words = c.split(" ")
            name = words[0].upper()
            if name == "UID" and len(words) > 1:
                name += " " + words[1].upper()
            out.append(name)
        return out

    def sent_any(self, *names: str) -> bool:
        got = set(self.command_names())
        return any(n.upper() in got for n in names)

    def inbox(self) -> list[FakeMessage]:
        with self.lock:
            return [FakeMessage(m.uid, m.body, set(m.flags)) for m in self.folders["INBOX"]]

    # -- server ------------------------------------------------------------------------------

    def _accept_loop(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except (socket.timeout, TimeoutError):
                continue
            except OSError:
                return
            conn.settimeout(None)
            with self.lock:
                self.connections += 1
                index = self.connections
                self._clients.append(conn)
            threading.Thread(target=self._serve, args=(conn, index), daemon=True).start()

    def _inject_once(self) -> bool:
        with self.lock:
            if self._injected:
                return False
            self._injected = True
            return True

    def _serve(self, conn: socket.socket, index: int) -> None:
        session = _Session(self, conn, index)
        try:
            session.run()
        except (_Closed, OSError):
            pass
        finally:
            try:
                conn.close()
            except OSError:
                pass
            with self.lock:
                if conn in self._clients:
                    self._clients.remove(conn)


class _Session:
    def __init__(self, server: FakeImapBackend, conn: socket.socket, index: int = 0):
        self.s = server
        self.conn = conn
        self.buf = b""
        self.authenticated = False
        self.selected: str | None = None
        # huge_size / fetch_flood: only connection number `hostile_connection` is hostile
        self.hostile = (server.behaviour in ("huge_size", "fetch_flood")
                        and index == server.hostile_connection)

    # -- I/O -------------------------------------------------------------------------------

    def send(self, data: bytes) -> None:
        self.conn.sendall(data)

    def _fill(self) -> None:
        chunk = self.conn.recv(65536)
        if not chunk:
            raise _Closed()
        self.buf += chunk

    def _line(self) -> bytes:
        while b"\r\n" not in self.buf:
            if len(self.buf) > 1_000_000:
                raise _Closed()
            self._fill()
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _exact(self, n: int) -> bytes:
        while len(self.buf) < n:
            self._fill()
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def read_command(self) -> tuple[bytes, list]:
        """(raw text for the record, tokens) — literals become _Literal tokens."""
        tokens: list = []
        record = b""
        while True:
            line = self._line()
            m = re.search(rb"\{(\d+)(\+?)\}$", line)
            head = line[:m.start()] if m else line
            tokens.extend(_tokenize(head))
            record += head
            if not m:
                return record, tokens
            n = int(m.group(1))
            if not m.group(2):
                self.send(b"+ Ready for literal data\r\n")
            payload = self._exact(n)
            tokens.append(_Literal(payload))
            record += b"{%d}" % n

    # -- the protocol ------------------------------------------------------------------------

    def run(self) -> None:
        b = self.s.behaviour
        if b == "close_banner":
            return
        if b == "hang_banner":
            while not self.s._stop.wait(0.1):
                pass
            return
        if b == "garbage_banner":
            self.send(b"\x00\xff\xfe garbage \x01\x02 not IMAP at all\r\n)))(((\r\n")
            while not self.s._stop.wait(0.1):
                pass
            return
        self.send(b"* OK [CAPABILITY " + self.s.capabilities.encode() + b"] Fake IMAP ready.\r\n")
        while True:
            record, tokens = self.read_command()
            if len(tokens) < 2:
                self.send(b"* BAD Missing tag or command\r\n")
                continue
            tag = tokens[0] if isinstance(tokens[0], bytes) else b"*"
            with self.s.lock:
                self.s.commands.append(record.split(b" ", 1)[1].decode("utf-8", "replace")
                                       if b" " in record else record.decode("utf-8", "replace"))
            if self.s.behaviour == "garbage_response" and self.s._inject_once():
                self.send(b"%%% this is \x00 garbage {abc}\r\n* 12x FETCH (((\r\n")
                continue
            name = tokens[1].upper() if isinstance(tokens[1], bytes) else b""
            args = tokens[2:]
            handler = getattr(self, "cmd_" + name.decode("ascii", "replace").lower(), None)
            if name == b"UID" and args:
                sub = args[0].upper()
                handler = getattr(self, "cmd_uid_" + sub.decode("ascii", "replace").lower(), None)
                args = args[1:]
            if handler is None:
                self.send(tag + b" BAD Unknown command\r\n")
                continue
            if handler(tag, args) == "close":
                return

    def ok(self, tag: bytes, text: bytes = b"Completed") -> None:
        self.send(tag + b" OK " + text + b"\r\n")

    # any state
    def cmd_capability(self, tag, args):
        self.send(b"* CAPABILITY " + self.s.capabilities.encode() + b"\r\n")
        self.ok(tag)

    def cmd_noop(self, tag, args):
        self.ok(tag)

    def cmd_id(self, tag, args):
        self.send(b'* ID ("name" "FakeIMAP")\r\n')
        self.ok(tag)

    def cmd_enable(self, tag, args):
        self.send(b"* ENABLED\r\n")
        self.ok(tag)

    def cmd_logout(self, tag, args):
        self.send(b"* BYE Logging out\r\n")
        self.ok(tag, b"Logout completed")
        return "close"

    # not authenticated
    def _login_result(self, tag, user: bytes, password: bytes, authzid: bytes = b"") -> None:
        if self.s.behaviour == "unavailable_login":
            self.send(tag + b" NO [UNAVAILABLE] Temporary authentication failure.\r\n")
            return
        ok = (user.decode("utf-8", "replace") == self.s.user
              and password.decode("utf-8", "replace") == self.s.password
              and authzid in (b"", user))
        if ok:
            self.authenticated = True
            self.send(tag + b" OK [CAPABILITY " + self.s.capabilities.encode() + b"] Logged in\r\n")
        else:
            self.send(tag + b" NO [AUTHENTICATIONFAILED] Authentication failed.\r\n")

    def cmd_login(self, tag, args):
        if self.authenticated or len(args) != 2:
            self.send(tag + b" BAD Invalid LOGIN\r\n")
            return
        self._login_result(tag, bytes(args[0]), bytes(args[1]))

    def cmd_authenticate(self, tag, args):
        if self.authenticated or not args or args[0].upper() != b"PLAIN":
            self.send(tag + b" NO Unsupported mechanism\r\n")
            return
        if len(args) > 1:
            payload = bytes(args[1])
        else:
            self.send(b"+ \r\n")
            payload = self._line()
            with self.s.lock:
                self.s.commands.append("<sasl response>")
        if payload == b"*":
            self.send(tag + b" BAD Authentication aborted\r\n")
            return
        try:
            decoded = base64.b64decode(b"" if payload == b"=" else payload, validate=True)
            authzid, user, password = decoded.split(b"\0")
        except Exception:
            self.send(tag + b" BAD Invalid base64 or PLAIN message\r\n")
            return
        self._login_result(tag, user, password, authzid)

    # authenticated
    def cmd_select(self, tag, args):
        if not self.authenticated or len(args) != 1:
            self.send(tag + b" BAD Wrong state or arguments\r\n")
            return
        if self.s.behaviour == "inuse_select":
            self.send(tag + b" NO [INUSE] Mailbox is locked by another session\r\n")
            return
        name = _folder_name(self.s, bytes(args[0]))
        if name is None:
            self.send(tag + b" NO [NONEXISTENT] Mailbox doesn't exist\r\n")
            return
        self.selected = name
        with self.s.lock:
            n = len(self.s.folders[name])
            nxt = self.s.uidnext[name]
        if self.hostile and self.s.behaviour == "fetch_flood":
            n, nxt = 5, 6
        self.send(b"* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)\r\n"
                  b"* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft \\*)] Flags permitted.\r\n"
                  b"* %d EXISTS\r\n* 0 RECENT\r\n"
                  b"* OK [UIDVALIDITY %d] UIDs valid\r\n"
                  b"* OK [UIDNEXT %d] Predicted next UID\r\n" % (n, self.s.uidvalidity, nxt))
        self.ok(tag, b"[READ-WRITE] Select completed")

    def cmd_create(self, tag, args):
        if not self.authenticated or len(args) != 1:
            self.send(tag + b" BAD Wrong state or arguments\r\n")
            return
        name = bytes(args[0]).decode("utf-8", "replace")
        with self.s.lock:
            if _folder_name(self.s, bytes(args[0])) is not None:
                self.send(tag + b" NO [ALREADYEXISTS] Mailbox already exists\r\n")
                return
            self.s.folders[name] = []
            self.s.uidnext[name] = 1
        self.ok(tag, b"Create completed")

    def _need_selected(self, tag) -> bool:
        if self.selected is None:
            self.send(tag + b" BAD No mailbox selected\r\n")
            return False
        return True

    def cmd_uid_fetch(self, tag, args):
        if not self._need_selected(tag) or len(args) < 2:
            return
        if self.hostile and self.s.behaviour == "fetch_flood":
            self.hostile = False
            return self._fetch_flood(tag)
        with self.s.lock:
            msgs = list(self.s.folders[self.selected])
        uids = _parse_set(bytes(args[0]), max((m.uid for m in msgs), default=0))
        items = [bytes(t).upper() for t in args[1:] if t not in (b"(", b")")]
        for seq, m in enumerate(msgs, start=1):
            if m.uid not in uids:
                continue
            parts = [b"UID %d" % m.uid]
            body_item = None
            for it in items:
                if it == b"UID":
                    continue
                if it == b"RFC822.SIZE":
                    size = self.s.huge_size if self.hostile and self.s.behaviour == "huge_size" else len(m.body)
                    parts.append(b"RFC822.SIZE %d" % size)
                elif it == b"FLAGS":
                    parts.append(b"FLAGS (" + " ".join(sorted(m.flags)).encode() + b")")
                elif it.startswith(b"BODY.PEEK[]") or it.startswith(b"BODY[]"):
                    body_item = it
                else:
                    self.send(tag + b" BAD Unsupported fetch item\r\n")
                    return
            if body_item is None:
                self.send(b"* %d FETCH (" % seq + b" ".join(parts) + b")\r\n")
                continue
            pm = re.search(rb"<(\d+)\.(\d+)>$", body_item)
            if pm:
                o, ln = int(pm.group(1)), int(pm.group(2))
                data = m.body[o:o + ln]
                label = b"BODY[]<%d>" % o
            else:
                data = m.body
                label = b"BODY[]"
            if not body_item.startswith(b"BODY.PEEK"):
                with self.s.lock:
                    m.flags.add("\\Seen")
            head = b"* %d FETCH (" % seq + b" ".join(parts) + b" " + label + b" {%d}\r\n" % len(data)
            if self.s.behaviour == "drop_mid_literal" and len(data) > 1 and self.s._inject_once():
                self.send(head + data[:len(data) // 2])
                self.conn.shutdown(socket.SHUT_RDWR)
                return "close"
            self.send(head + data + b")\r\n")
        self.ok(tag, b"Fetch completed")

    def _fetch_flood(self, tag):
        """More FETCH responses than the SELECT announced: UIDs 1..flood, sent in big chunks
        (sendall blocks while the peer does not read, so memory here stays small)."""
        batch = 2000
        for start in range(1, self.s.flood + 1, batch):
            stop = min(start + batch, self.s.flood + 1)
            chunk = b"".join(b"* %d FETCH (UID %d RFC822.SIZE 100 FLAGS ())\r\n" % (i, i)
                             for i in range(start, stop))
            self.send(chunk)
            with self.s.lock:
                self.s.flood_sent += len(chunk)
        self.ok(tag, b"Fetch completed")

    def _maybe_drop_at_quit(self) -> bool:
        if self.s.behaviour == "drop_at_quit" and self.s._inject_once():
            self.conn.shutdown(socket.SHUT_RDWR)
            return True
        return False

    def cmd_uid_store(self, tag, args):
        if not self._need_selected(tag) or len(args) < 3:
            return
        if self._maybe_drop_at_quit():
            return "close"
        op = bytes(args[1]).upper()
        flags = {bytes(t).decode() for t in args[2:] if t not in (b"(", b")")}
        with self.s.lock:
            msgs = self.s.folders[self.selected]
            uids = _parse_set(bytes(args[0]), max((m.uid for m in msgs), default=0))
            for seq, m in enumerate(msgs, start=1):
                if m.uid in uids:
                    if op.startswith(b"+"):
                        m.flags |= flags
                    elif op.startswith(b"-"):
                        m.flags -= flags
                    else:
                        m.flags = set(flags)
                    if not op.endswith(b".SILENT"):
                        self.send(b"* %d FETCH (UID %d FLAGS (%s))\r\n"
                                  % (seq, m.uid, " ".join(sorted(m.flags)).encode()))
        self.ok(tag, b"Store completed")

    def _expunge(self, uids: set[int] | None) -> None:
        with self.s.lock:
            msgs = self.s.folders[self.selected]
            seq = 1
            for m in list(msgs):
                if "\\Deleted" in m.flags and (uids is None or m.uid in uids):
                    msgs.remove(m)
                    self.send(b"* %d EXPUNGE\r\n" % seq)
                else:
                    seq += 1

    def cmd_uid_expunge(self, tag, args):
        if not self._need_selected(tag) or len(args) != 1:
            return
        if self._maybe_drop_at_quit():
            return "close"
        with self.s.lock:
            top = max((m.uid for m in self.s.folders[self.selected]), default=0)
        self._expunge(_parse_set(bytes(args[0]), top))
        self.ok(tag, b"Expunge completed")

    def cmd_expunge(self, tag, args):
        if not self._need_selected(tag):
            return
        if self._maybe_drop_at_quit():
            return "close"
        self._expunge(None)
        self.ok(tag, b"Expunge completed")

    def _copy(self, tag, args, move: bool):
        if not self._need_selected(tag) or len(args) != 2:
            return
        if self._maybe_drop_at_quit():
            return "close"
        dest = _folder_name(self.s, bytes(args[1]))
        if dest is None:
            self.send(tag + b" NO [TRYCREATE] Mailbox doesn't exist\r\n")
            return
        with self.s.lock:
            msgs = self.s.folders[self.selected]
            uids = _parse_set(bytes(args[0]), max((m.uid for m in msgs), default=0))
            src, dst = [], []
            for m in msgs:
                if m.uid in uids:
                    nu = self.s.uidnext[dest]
                    self.s.uidnext[dest] += 1
                    self.s.folders[dest].append(FakeMessage(nu, m.body, set(m.flags)))
                    src.append(m.uid)
                    dst.append(nu)
            code = b"[COPYUID %d %s %s]" % (self.s.uidvalidity, ",".join(map(str, src)).encode(),
                                            ",".join(map(str, dst)).encode())
            if move:
                self.send(b"* OK " + code + b" Moved UIDs.\r\n")
                seq = 1
                for m in list(msgs):
                    if m.uid in uids:
                        msgs.remove(m)
                        self.send(b"* %d EXPUNGE\r\n" % seq)
                    else:
                        seq += 1
                self.ok(tag, b"Move completed")
            else:
                self.ok(tag, code + b" Copy completed")

    def cmd_uid_copy(self, tag, args):
        return self._copy(tag, args, move=False)

    def cmd_uid_move(self, tag, args):
        return self._copy(tag, args, move=True)


def _folder_name(server: FakeImapBackend, raw: bytes) -> str | None:
    name = raw.decode("utf-8", "replace")
    if name.upper() == "INBOX":
        return "INBOX"
    return name if name in server.folders else None


def _parse_set(text: bytes, top: int) -> set[int]:
    out: set[int] = set()
    for part in text.split(b","):
        if b":" in part:
            a, b = part.split(b":", 1)
            lo = top if a == b"*" else int(a)
            hi = top if b == b"*" else int(b)
            lo, hi = min(lo, hi), max(lo, hi)
            out.update(range(lo, hi + 1))
        else:
            out.add(top if part == b"*" else int(part))
    return out


def _tokenize(data: bytes) -> list:
    """Atoms (with [...] sections kept whole), quoted strings (unescaped), parens."""
    out: list = []
    i, n = 0, len(data)
    while i < n:
        c = data[i:i + 1]
        if c == b" ":
            i += 1
        elif c in (b"(", b")"):
            out.append(c)
            i += 1
        elif c == b'"':
            j, val = i + 1, bytearray()
            while j < n and data[j:j + 1] != b'"':
                if data[j:j + 1] == b"\\" and j + 1 < n:
                    j += 1
                val += data[j:j + 1]
                j += 1
            out.append(_Literal(bytes(val)))
            i = j + 1
        else:
            j, depth = i, 0
            while j < n:
                ch = data[j:j + 1]
                if ch == b"[":
                    depth += 1
                elif ch == b"]":
                    depth -= 1
                elif depth == 0 and ch in (b" ", b"(", b")"):
                    break
                j += 1
            out.append(data[i:j])
            i = j
    return out
