"""A raw POP3 client for byte-exact assertions (no un-stuffing, no line-ending fixes).

`Pop3Conn` reads exactly what the server sends. Multi-line responses are returned
raw (dot-stuffing kept, terminating ".CRLF" removed); `unstuff()` reverses the
RFC 1939 byte-stuffing when a test wants the message bytes.
"""
from __future__ import annotations

import base64
import socket
import ssl
import time


class ConnectionClosed(Exception):
    """The server closed the connection (EOF) before the expected bytes arrived."""


MULTILINE_KEYWORDS = {"CAPA", "RETR", "TOP"}   # LIST/UIDL only without an argument


def is_multiline(command: str | bytes) -> bool:
    text = command.decode("latin-1") if isinstance(command, bytes) else command
    parts = text.strip().split()
    if not parts:
        return False
    kw = parts[0].upper()
    if kw in MULTILINE_KEYWORDS:
        return True
    if kw in ("LIST", "UIDL", "AUTH") and len(parts) == 1:   # "AUTH" alone lists mechanisms
        return True
    return False


class Pop3Conn:
    def __init__(self, host: str, port: int, *, implicit_tls: bool = False,
                 context: ssl.SSLContext | None = None, server_hostname: str = "localhost",
                 timeout: float = 30.0, read_greeting: bool = True, rcvbuf: int | None = None,
                 source: str | None = None):
        self.host, self.port = host, port
        self.timeout = timeout
        self.server_hostname = server_hostname
        self.sock: socket.socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf is not None:   # set before connect, so the TCP window stays small
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        if source is not None:   # a chosen client address, e.g. 127.0.0.2 (all of 127/8 is loopback)
            self.sock.bind((source, 0))
        self.sock.settimeout(timeout)
        self.sock.connect((host, port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = bytearray()
        self.tls = False
        if implicit_tls:
            if context is None:
                raise ValueError("implicit TLS needs an SSL context")
            self.sock = context.wrap_socket(self.sock, server_hostname=server_hostname)
            self.tls = True
        self.greeting = self.line() if read_greeting else b""

    # -- context manager ---------------------------------------------------------------

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass

    def abort(self) -> None:
        """Closes with a TCP RST (SO_LINGER 0): the peer sees the connection reset at once."""
        try:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        except OSError:
            pass
        self.close()

    # -- low level -----------------------------------------------------------------------

    def send(self, data: bytes | str) -> None:
        if isinstance(data, str):
            data = data.encode("utf-8")
        self.sock.sendall(data)

    def _fill(self) -> None:
        try:
            chunk = self.sock.recv(262144)
        except (ConnectionResetError, ssl.SSLEOFError, ssl.SSLZeroReturnError):
            chunk = b""
        if not chunk:
            raise ConnectionClosed(f"connection closed; {len(self.buf)} bytes unparsed: {bytes(self.buf[:200])!r}")
        self.buf += chunk

    def line(self) -> bytes:
        """One line without its CRLF (a bare LF also ends it, and is reported by line_raw)."""
        raw = self.line_raw()
        return raw[:-2] if raw.endswith(b"\r\n") else raw[:-1]

    def line_raw(self) -> bytes:
        start = 0
        while True:
            i = self.buf.find(b"\n", start)
            if i >= 0:
                out = bytes(self.buf[:i + 1])
                del self.buf[:i + 1]
                return out
            start = len(self.buf)
            self._fill()

    def multiline_raw(self) -> bytes:
        """The body of a multi-line response after its first line: raw bytes up to, not
        including, the terminating ".CRLF" line (dot-stuffing kept)."""
        search_from = 0
        while True:
            if self.buf[:3] == b".\r\n":          # empty body: the terminator comes at once
                del self.buf[:3]
                return b""
            i = self.buf.find(b"\r\n.\r\n", search_from)
            if i >= 0:
                out = bytes(self.buf[:i + 2])
                del self.buf[:i + 5]
                return out
            search_from = max(0, len(self.buf) - 4)
            self._fill()

    def pending(self, wait: float = 0.3) -> bytes:
        """Whatever arrives within `wait` seconds (b"" if nothing); does not raise on EOF."""
        data = bytes(self.buf)
        self.buf.clear()
        self.sock.settimeout(wait)
        try:
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    break
                data += chunk
        except (socket.timeout, TimeoutError, ssl.SSLError, OSError):
            pass
        finally:
            self.sock.settimeout(self.timeout)
        return data

    def wait_closed(self, timeout: float = 10.0) -> bool:
        """True if the server closes the connection within `timeout` (data before EOF is
        discarded into `self.discarded`)."""
        self.discarded = bytes(self.buf)
        self.buf.clear()
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                self.sock.settimeout(max(0.05, deadline - time.monotonic()))
                try:
                    chunk = self.sock.recv(65536)
                except (socket.timeout, TimeoutError):
                    return False
                except ssl.SSLWantReadError:
                    continue
                if not chunk:
                    return True
                self.discarded += chunk
            return False
        except (ConnectionResetError, BrokenPipeError, ssl.SSLError):
            return True
        except OSError:
            return True
        finally:
            try:
                self.sock.settimeout(self.timeout)
            except OSError:
                pass

    # -- commands ----------------------------------------------------------------------------

    def command(self, cmd: str | bytes) -> bytes:
        """Sends one command line (CRLF added) and returns the first response line."""
        if isinstance(cmd, str):
            cmd = cmd.encode("utf-8")
        self.send(cmd + b"\r\n")
        return self.line()

    def multi(self, cmd: str | bytes) -> tuple[bytes, bytes | None]:
        """A command with a multi-line answer: (first line, raw body) or (first line, None) on -ERR."""
        first = self.command(cmd)
        if not first.startswith(b"+OK"):
            return first, None
        return first, self.multiline_raw()

    def response(self, cmd: str | bytes) -> bytes:
        """The complete response (first line + CRLF + multi-line part with its terminator)
        for `cmd`, as raw bytes: used to compare whole transcripts."""
        multi = is_multiline(cmd)
        first = self.command(cmd)
        out = first + b"\r\n"
        if multi and first.startswith(b"+OK"):
            out += self.multiline_raw() + b".\r\n"
        return out

    def read_response(self, cmd: str | bytes) -> bytes:
        """Like `response` but without sending (for pipelined commands already sent)."""
        first = self.line()
        out = first + b"\r\n"
        if is_multiline(cmd) and first.startswith(b"+OK"):
            out += self.multiline_raw() + b".\r\n"
        return out

    def capa(self) -> list[bytes]:
        first, body = self.multi("CAPA")
        assert first.startswith(b"+OK"), first
        return [l for l in body.split(b"\r\n") if l]

    def stls(self, context: ssl.SSLContext) -> bytes:
        """STLS and the TLS handshake. Refuses to go on if the server sent anything after
        its +OK in plaintext (that would be an injection/desync bug)."""
        resp = self.command("STLS")
        if not resp.startswith(b"+OK"):
            return resp
        if self.buf:
            raise AssertionError(f"plaintext bytes after STLS +OK: {bytes(self.buf)!r}")
        self.sock = context.wrap_socket(self.sock, server_hostname=self.server_hostname)
        self.tls = True
        return resp

    def user_pass(self, user: str, password: str) -> bytes:
        r = self.command(f"USER {user}")
        if not r.startswith(b"+OK"):
            return r
        return self.command(b"PASS " + password.encode("utf-8"))

    def auth_plain(self, user: str, password: str, *, authzid: str = "", initial: bool = True) -> bytes:
        payload = base64.b64encode(f"{authzid}\0{user}\0{password}".encode("utf-8"))
        if initial:
            return self.command(b"AUTH PLAIN " + payload)
        r = self.command("AUTH PLAIN")
        if not r.startswith(b"+ ") and r != b"+":
            return r
        return self.command(payload)

    def quit(self) -> bytes:
        try:
            return self.command("QUIT")
        finally:
            self.close()


def unstuff(raw: bytes) -> bytes:
    """Reverses RFC 1939 §3 byte-stuffing of a multi-line body (CRLF line endings)."""
    if not raw:
        return b""
    lines = raw.split(b"\r\n")
    out = []
    for ln in lines:
        out.append(ln[1:] if ln.startswith(b".") else ln)
    return b"\r\n".join(out)


def expected_pop3_bytes(imap_body: bytes) -> bytes:
    """What a POP3 RETR must deliver (un-stuffed) for a backend BODY[]: the same bytes,
    plus the CRLF that ends the last line when the message had none."""
    return imap_body if imap_body.endswith(b"\r\n") or imap_body == b"" else imap_body + b"\r\n"


def parse_list(raw: bytes) -> list[tuple[int, int]]:
    out = []
    for ln in raw.split(b"\r\n"):
        if ln:
            a, b = ln.split(b" ")
            out.append((int(a), int(b)))
    return out


def parse_uidl(raw: bytes) -> list[tuple[int, str]]:
    out = []
    for ln in raw.split(b"\r\n"):
        if ln:
            a, b = ln.split(b" ", 1)
            out.append((int(a), b.decode("ascii")))
    return out
