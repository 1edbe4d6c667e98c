"""IMAP-side helpers: populate a user's folders and read them back.

Appends go over a raw socket (LITERAL+ MULTIAPPEND, pipelined) so the backend
receives the corpus bytes exactly (imaplib.append would rewrite line endings).
Reads use imaplib.
"""
from __future__ import annotations

import base64
import dataclasses
import imaplib
import re
import socket
from typing import Iterable, Sequence

imaplib._MAXLINE = 10_000_000   # long FETCH lines are fine in tests


@dataclasses.dataclass(frozen=True)
class ImapMessage:
    uid: int
    flags: frozenset[str]
    size: int            # RFC822.SIZE
    body: bytes | None   # BODY[] (None when not fetched)


class ImapError(Exception):
    pass


def _sasl_plain(user: str, password: str, authzid: str = "") -> bytes:
    return f"{authzid}\0{user}\0{password}".encode("utf-8")


class ImapAccount:
    """One user's view of the IMAP backend (Dovecot's plain IMAP port on loopback)."""

    def __init__(self, host: str, port: int, user: str, password: str):
        self.host, self.port, self.user, self.password = host, port, user, password

    # -- connections -----------------------------------------------------------------

    def connect(self) -> imaplib.IMAP4:
        m = imaplib.IMAP4(self.host, self.port, timeout=60)
        m.authenticate("PLAIN", lambda _challenge: _sasl_plain(self.user, self.password))
        return m

    # -- writing -----------------------------------------------------------------------

    def append(self, messages: Sequence[bytes], folder: str = "INBOX",
               flags: Sequence[Iterable[str]] | Iterable[str] | None = None,
               batch: int = 500) -> list[int]:
        """Appends raw messages (bytes kept as given) and returns their UIDs in order.
        `flags`: None, one iterable of flags for all, or one iterable per message."""
        per_message = _per_message_flags(messages, flags)
        uids: list[int] = []
        with _RawImap(self.host, self.port) as raw:
            raw.login_plain(self.user, self.password)
            for start in range(0, len(messages), batch):
                chunk = list(zip(messages[start:start + batch], per_message[start:start + batch]))
                uids.extend(raw.multiappend(folder, chunk))
            raw.logout()
        return uids

    def store(self, uids: Iterable[int], flags: Iterable[str], folder: str = "INBOX") -> None:
        m = self.connect()
        try:
            _ok(m.select(_quote(folder)))
            uid_set = ",".join(str(u) for u in uids)
            _ok(m.uid("STORE", uid_set, "+FLAGS.SILENT", "(" + " ".join(flags) + ")"))
        finally:
            _logout(m)

    def create(self, folder: str) -> None:
        m = self.connect()
        try:
            _ok(m.create(_quote(folder)))
        finally:
            _logout(m)

    # -- reading -----------------------------------------------------------------------

    def messages(self, folder: str = "INBOX", bodies: bool = True) -> list[ImapMessage]:
        """UID, FLAGS, RFC822.SIZE (and BODY.PEEK[]) of every message, sorted by UID."""
        m = self.connect()
        try:
            typ, data = m.select(_quote(folder), readonly=True)
            if typ != "OK":
                raise ImapError(f"SELECT {folder}: {data}")
            if int(data[0]) == 0:
                return []
            items = "(UID FLAGS RFC822.SIZE" + (" BODY.PEEK[])" if bodies else ")")
            typ, data = m.uid("FETCH", "1:*", items)
            _ok((typ, data))
            return sorted(_parse_fetch(data), key=lambda x: x.uid)
        finally:
            _logout(m)

    def flags(self, folder: str = "INBOX") -> dict[int, frozenset[str]]:
        return {x.uid: x.flags for x in self.messages(folder, bodies=False)}

    def body(self, uid: int, folder: str = "INBOX") -> bytes:
        m = self.connect()
        try:
            _ok(m.select(_quote(folder), readonly=True))
            typ, data = m.uid("FETCH", str(uid), "(UID BODY.PEEK[])")
            _ok((typ, data))
            found = [x for x in _parse_fetch(data) if x.uid == uid]
            if not found:
                raise ImapError(f"no message with UID {uid} in {folder}")
            return found[0].body
        finally:
            _logout(m)

    def folders(self) -> list[str]:
        m = self.connect()
        try:
            typ, data = m.list()
            _ok((typ, data))
            names = []
            for line in data:
                if line is None:
                    continue
                if isinstance(line, tuple):   # name sent as a literal
                    names.append(line[1].decode("utf-8", "replace"))
                    continue
                mm = re.match(rb'\((.*?)\) (NIL|"(?:[^"\\]|\\.)*") (.*)$', line)
                if not mm:
                    raise ImapError(f"unparsable LIST line {line!r}")
                name = mm.group(3)
                if name.startswith(b'"'):
                    name = re.sub(rb'\\(.)', rb'\1', name[1:-1])
                names.append(name.decode("utf-8", "replace"))
            return sorted(names)
        finally:
            _logout(m)

    def uidvalidity(self, folder: str = "INBOX") -> int:
        m = self.connect()
        try:
            _ok(m.select(_quote(folder), readonly=True))
            typ, data = m.response("UIDVALIDITY")
            return int(data[0])
        finally:
            _logout(m)


# -- internals -----------------------------------------------------------------------

def _per_message_flags(messages, flags) -> list[tuple[str, ...]]:
    if flags is None:
        return [()] * len(messages)
    flags = list(flags)
    if flags and not isinstance(flags[0], str):
        if len(flags) != len(messages):
            raise ValueError("one flag list per message expected")
        return [tuple(f) for f in flags]
    return [tuple(flags)] * len(messages)


def _quote(name: str) -> str:
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _ok(result) -> None:
    typ, data = result
    if typ != "OK":
        raise ImapError(f"{typ} {data}")


def _logout(m: imaplib.IMAP4) -> None:
    try:
        m.logout()
    except Exception:
        pass


_UID = re.compile(rb"\bUID (\d+)")
_SIZE = re.compile(rb"\bRFC822\.SIZE (\d+)")
_FLAGS = re.compile(rb"\bFLAGS \(([^)]*)\)")


def _parse_fetch(data) -> list[ImapMessage]:
    """Groups imaplib's FETCH data (tuples for literals, bytes for the rest) per message."""
    out: list[ImapMessage] = []
    meta = b""
    body: bytes | None = None

    def flush():
        nonlocal meta, body
        if meta.strip():
            uid = _UID.search(meta)
            size = _SIZE.search(meta)
            flags = _FLAGS.search(meta)
            if uid:
                out.append(ImapMessage(
                    uid=int(uid.group(1)),
                    flags=frozenset(flags.group(1).decode().split()) if flags else frozenset(),
                    size=int(size.group(1)) if size else -1,
                    body=body))
        meta, body = b"", None

    for item in data:
        if item is None:
            continue
        if isinstance(item, tuple):
            head, literal = item
            if re.match(rb"\d+ \(", head) and meta:
                flush()
            meta += head
            if re.search(rb"BODY\[\]\s*\{\d+\}$", head):
                body = literal
        else:
            if re.match(rb"\d+ \(", item):
                flush()
            meta += b" " + item
    flush()
    return out


class _RawImap:
    """Just enough raw IMAP for pipelined LITERAL+ appends."""

    def __init__(self, host: str, port: int):
        self.sock = socket.create_connection((host, port), timeout=120)
        self.buf = b""
        self.tag = 0
        greeting = self._line()
        if not greeting.startswith(b"* OK"):
            raise ImapError(f"unexpected greeting {greeting!r}")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.sock.close()

    def _line(self) -> bytes:
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ImapError("connection closed by IMAP server")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _next_tag(self) -> bytes:
        self.tag += 1
        return b"r%d" % self.tag

    def _wait(self, tag: bytes) -> bytes:
        while True:
            line = self._line()
            if line.startswith(tag + b" "):
                if not line[len(tag) + 1:].startswith(b"OK"):
                    raise ImapError(line.decode("utf-8", "replace"))
                return line

    def login_plain(self, user: str, password: str) -> None:
        # Without an initial response: pymap has no SASL-IR (RFC 4959), Dovecot takes either.
        tag = self._next_tag()
        ir = base64.b64encode(_sasl_plain(user, password))
        self.sock.sendall(tag + b" AUTHENTICATE PLAIN\r\n")
        line = self._line()
        if not line.startswith(b"+"):
            raise ImapError(f"expected a continuation request, got {line!r}")
        self.sock.sendall(ir + b"\r\n")
        self._wait(tag)

    def multiappend(self, folder: str, items: list[tuple[bytes, tuple[str, ...]]]) -> list[int]:
        tag = self._next_tag()
        parts = [tag, b" APPEND ", _quote(folder).encode("utf-8")]
        for msg, flags in items:
            if flags:
                parts.append(b" (" + " ".join(flags).encode() + b")")
            parts.append(b" {%d+}\r\n" % len(msg))
            parts.append(msg)
        parts.append(b"\r\n")
        self.sock.sendall(b"".join(parts))
        line = self._wait(tag)
        m = re.search(rb"\[APPENDUID \d+ ([0-9:,]+)\]", line)
        if not m:
            raise ImapError(f"no APPENDUID in {line!r}")
        uids: list[int] = []
        for part in m.group(1).split(b","):
            if b":" in part:
                a, b = (int(x) for x in part.split(b":"))
                uids.extend(range(min(a, b), max(a, b) + 1))
            else:
                uids.append(int(part))
        if len(uids) != len(items):
            raise ImapError(f"APPENDUID lists {len(uids)} UIDs for {len(items)} messages")
        return uids

    def logout(self) -> None:
        tag = self._next_tag()
        self.sock.sendall(tag + b" LOGOUT\r\n")
        try:
            self._wait(tag)
        except ImapError:
            pass
