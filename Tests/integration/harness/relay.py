"""A TCP relay that records what passes through it, in the order it passed.

One thread serves every connection with one selector, so the recorded order of the two
directions is the order in which the relay handled them: a chunk is recorded before it is
passed on, so an answer recorded after a command cannot have been caused by anything the
relay had not yet passed on. Put between PopGate and a backend, it shows how many round
trips an exchange took.

Recorded chunks hold whatever the peers sent (credentials too): tests must summarise them
(`command_names`) rather than print them.
"""
from __future__ import annotations

import re
import selectors
import socket
import threading
import time

from .net import LOOPBACK

#: a tagged IMAP status line (PopGate's tags are P<n>, its LOGOUT's Z)
TAGGED = re.compile(rb"(?m)^[A-Z]\d* (OK|NO|BAD)\b")


class RecordingRelay:
    def __init__(self, target_port: int, target_host: str = LOOPBACK):
        self.target = (target_host, target_port)
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind((LOOPBACK, 0))
        self._listener.listen(16)
        self.port = self._listener.getsockname()[1]
        #: per accepted connection: [("c2s" | "s2c", chunk), ...] in relay order
        self.connections: list[list[tuple[str, bytes]]] = []
        self._open = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="recording-relay", daemon=True)

    def __enter__(self) -> "RecordingRelay":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._listener.close()

    def wait_closed(self, connections: int, timeout: float = 10.0) -> None:
        """Waits until `connections` were accepted and all of them are closed again."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if len(self.connections) >= connections and self._open == 0:
                    return
            time.sleep(0.05)
        raise TimeoutError(f"relay: {len(self.connections)} connections, {self._open} still open")

    def _run(self) -> None:
        sel = selectors.DefaultSelector()
        self._listener.setblocking(False)
        sel.register(self._listener, selectors.EVENT_READ, None)
        while not self._stop.is_set():
            for key, _ in sel.select(timeout=0.1):
                if key.data is None:
                    self._accept(sel)
                else:
                    self._pass_on(sel, key.fileobj, *key.data)
        for key in list(sel.get_map().values()):
            key.fileobj.close()
        sel.close()

    def _accept(self, sel) -> None:
        client, _ = self._listener.accept()
        server = socket.create_connection(self.target, timeout=10)
        for s in (client, server):
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            s.setblocking(True)
        with self._lock:
            events: list[tuple[str, bytes]] = []
            self.connections.append(events)
            self._open += 1
        link = {"open": True}
        sel.register(client, selectors.EVENT_READ, (server, "c2s", events, link))
        sel.register(server, selectors.EVENT_READ, (client, "s2c", events, link))

    def _pass_on(self, sel, source, sink, direction, events, link) -> None:
        try:
            chunk = source.recv(65536)
        except OSError:
            chunk = b""
        if chunk:
            with self._lock:
                events.append((direction, chunk))
            try:
                sink.sendall(chunk)
                return
            except OSError:
                pass
        # Either side closed: close both (the exchanges recorded here end with a LOGOUT).
        for s in (source, sink):
            try:
                sel.unregister(s)
            except (KeyError, ValueError):
                pass
            s.close()
        if link["open"]:
            link["open"] = False
            with self._lock:
                self._open -= 1


def command_names(data: bytes) -> list[str]:
    """IMAP command lines as `TAG NAME` (`UID FETCH` for UID commands), never their arguments."""
    names = []
    for line in data.split(b"\r\n"):
        words = line.split(b" ")
        if len(words) < 2 or not re.fullmatch(rb"[A-Z]\d*", words[0]):
            continue   # the rest of a literal, or an empty line
        name = words[1].upper()
        if name == b"UID" and len(words) > 2:
            name += b" " + words[2].upper()
        names.append(f"{words[0].decode()} {name.decode()}")
    return names


def sent_before_first_tagged_answer(events: list[tuple[str, bytes]]) -> bytes:
    """What the client side wrote before the relay passed on the server's first tagged answer."""
    sent = b""
    answered = b""
    for direction, chunk in events:
        if direction == "c2s":
            sent += chunk
            continue
        answered += chunk
        if TAGGED.search(answered):
            break
    return sent


def tagged_statuses(events: list[tuple[str, bytes]]) -> list[str]:
    """The server's tagged answers as `TAG STATUS`, in order."""
    answered = b"".join(chunk for direction, chunk in events if direction == "s2c")
    return [m.group(0).decode() for m in re.finditer(rb"(?m)^[A-Z]\d* (?:OK|NO|BAD)\b", answered)]
