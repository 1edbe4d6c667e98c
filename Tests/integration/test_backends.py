"""The core of PopGate against two independent IMAP servers: Dovecot and pymap (PyPI `pymap`, maildir
backend). Login, LIST/UIDL, byte-exact RETR, TOP, every retention mode and the error codes run against
both; where pymap lacks something PopGate decides on (PERMANENTFLAGS without `\\*`, no NAMESPACE, no
SPECIAL-USE, no SASL-IR) the test asserts what PopGate must then do, not a skip. pymap's maildir
backend serves every message with LF line ends (Python's mailbox module reads the files as text), so
"byte-exact" means: the bytes the backend serves as BODY[], as with Dovecot; the POP3 side must still be
CRLF lines, and a moved message must be the same message in the target folder.

Sessions use `on_delete: keep` unless a test says otherwise: the default `flag` is refused by pymap
(test_on_delete_flag).

`retention.move_to: auto` against real Dovecots configured like the servers it is for: one whose
`\\Trash` special-use mailbox has another name, one whose personal folders live under `INBOX.` (as on
Cyrus and Courier)."""
from __future__ import annotations

import dataclasses
import os
import re
import time
from collections.abc import Callable

import pytest

from harness import corpus
from harness.dovecot import Dovecot
from harness.imap import ImapAccount
from harness.net import free_ports
from harness.pop3 import expected_pop3_bytes, parse_list, parse_uidl, unstuff
from harness.pymap import Pymap

A = b"Subject: A\r\n\r\nfirst message\r\n"
B = b"Subject: B\r\n\r\nsecond message\r\n.leading dot\r\n"
C = b"Subject: C\r\nX-Two: lines\r\n\r\nthird\r\nmessage\r\nhas\r\nfive\r\nlines\r\n"
W = b"Subject: W\r\n\r\nwebmail set \\Deleted on me\r\n"


@dataclasses.dataclass
class Box:
    user: str
    password: str
    imap: ImapAccount

    def append(self, messages, folder: str = "INBOX", flags=None) -> list[int]:
        return self.imap.append(list(messages), folder=folder, flags=flags)

    def messages(self, folder: str = "INBOX"):
        return self.imap.messages(folder)

    def bodies(self, folder: str = "INBOX") -> dict[int, bytes]:
        """What the backend serves as BODY[] (pymap: LF line ends), by UID."""
        return {m.uid: m.body for m in self.imap.messages(folder)}

    def flags(self, folder: str = "INBOX"):
        return {u: set(f) - {"\\Recent"} for u, f in self.imap.flags(folder).items()}


@dataclasses.dataclass
class Backend:
    name: str
    port: int
    tls: str                       # how PopGate reaches it
    new_box: Callable[[], Box]
    gateway: Callable[..., object]

    def popgate(self, **kw):
        kw.setdefault("on_delete", "keep")
        return self.gateway(backend_port=self.port, backend_tls=self.tls, **kw)


def _box(server, prefix: str) -> Box:
    user = server.new_user_name(prefix)
    password = f"pw-{os.urandom(6).hex()}-Zq"
    server.add_user(user, password)
    port = server.ports.imap if isinstance(server, Dovecot) else server.port
    return Box(user, password, ImapAccount(server.host, port, user, password))


@pytest.fixture(params=["dovecot", "pymap"])
def backend(request, gateway, dovecot) -> Backend:
    if request.param == "dovecot":
        return Backend("dovecot", dovecot.ports.imap, "starttls", lambda: _box(dovecot, "b"), gateway)
    pymap = request.getfixturevalue("pymap")
    return Backend("pymap", pymap.port, "none", lambda: _box(pymap, "p"), gateway)


def pop3_form(served: bytes) -> bytes:
    """What RETR must deliver (un-stuffed) for a served BODY[]: its bytes, a bare LF made CRLF (RFC 1939
    lines; pymap serves LF lines), CRLF at the end."""
    return expected_pop3_bytes(re.sub(rb"(?<!\r)\n", b"\r\n", served))


def uidl_map(conn) -> dict[int, int]:
    first, body = conn.multi("UIDL")
    assert first.startswith(b"+OK"), first
    return {int(u[:8], 16): n for n, u in parse_uidl(body)}


# -- reading ------------------------------------------------------------------------------------

def test_login_list_uidl_and_byte_exact_retr(backend):
    box = backend.new_box()
    messages = list(corpus.small().values())
    uids = box.append(messages)
    imap = box.messages()
    assert [m.uid for m in imap] == uids
    gw = backend.popgate()
    with gw.login(box.user, box.password) as c:
        assert c.command("STAT") == b"+OK %d %d" % (len(imap), sum(m.size for m in imap))
        first, body = c.multi("LIST")
        assert parse_list(body) == [(n, m.size) for n, m in enumerate(imap, 1)], "sizes are RFC822.SIZE"
        uidvalidity = box.imap.uidvalidity()
        first, body = c.multi("UIDL")
        assert parse_uidl(body) == [(n, "%08x%08x" % (m.uid, uidvalidity)) for n, m in enumerate(imap, 1)]
        for n, m in enumerate(imap, 1):
            first, raw = c.multi(f"RETR {n}")
            assert first.startswith(b"+OK"), first
            assert unstuff(raw) == pop3_form(m.body), f"message {n} on {backend.name}"
        assert c.quit().startswith(b"+OK")


def top_of(body: bytes, n: int) -> bytes:
    """The header, the blank line and `n` body lines of a served body (CRLF or, from pymap, LF lines)."""
    lines = re.findall(rb"[^\n]*\n|[^\n]+$", body)
    blank = next(i for i, line in enumerate(lines) if line in (b"\r\n", b"\n"))
    return pop3_form(b"".join(lines[:blank + 1 + n]))


def test_top_counts_body_lines(backend):
    box = backend.new_box()
    uids = box.append([A, B, C])
    served = box.bodies()
    gw = backend.popgate()
    with gw.login(box.user, box.password) as c:
        assert unstuff(c.multi("TOP 3 0")[1]) == top_of(served[uids[2]], 0)
        assert unstuff(c.multi("TOP 3 2")[1]) == top_of(served[uids[2]], 2)
        assert top_of(served[uids[2]], 2).replace(b"\r\n", b"\n") == b"Subject: C\nX-Two: lines\n\nthird\nmessage\n"
        assert unstuff(c.multi("TOP 2 5")[1]) == pop3_form(served[uids[1]]), "beyond the end: the whole message"
        assert b"\n..leading dot" in c.multi("TOP 2 5")[1], "dot-stuffed"
        assert c.quit().startswith(b"+OK")
    assert all(f == set() for f in box.flags().values()), "TOP never sets \\Seen"


def test_bad_password_is_auth_error(backend):
    box = backend.new_box()
    gw = backend.popgate()
    c = gw.connect()
    c.command(f"USER {box.user}")
    assert c.command("PASS wrong-password").startswith(b"-ERR [AUTH]")
    # the same connection may try again and gets in
    c.command(f"USER {box.user}")
    assert c.command(f"PASS {box.password}").startswith(b"+OK")
    assert c.quit().startswith(b"+OK")


def test_backend_down_is_sys_temp(backend, gateway, workdir):
    (closed,) = free_ports(1)
    gw = gateway(backend_port=closed, backend_tls=backend.tls)
    c = gw.connect()
    c.command("USER anyone")
    assert c.command("PASS whatever").startswith(b"-ERR [SYS/TEMP]")
    c.close()


def test_pymap_stopped_under_a_running_gateway_is_sys_temp(gateway, workdir):
    p = Pymap(workdir / f"pymap-down-{os.urandom(3).hex()}")
    p.start()
    try:
        box = _box(p, "d")
        box.append([A])
        gw = gateway(backend_port=p.port, backend_tls="none", on_delete="keep")
        with gw.login(box.user, box.password) as c:
            assert c.quit().startswith(b"+OK")
        p.stop()
        c = gw.connect()
        c.command(f"USER {box.user}")
        assert c.command(f"PASS {box.password}").startswith(b"-ERR [SYS/TEMP]")
        c.close()
    finally:
        p.stop()


# -- retention --------------------------------------------------------------------------------------

def test_on_delete_expunge_removes_exactly_the_deleted(backend):
    box = backend.new_box()
    uids = box.append([A, B, C, W], flags=[(), (), (), ("\\Deleted",)])
    gw = backend.popgate(on_delete="expunge")
    with gw.login(box.user, box.password) as c:
        num = uidl_map(c)
        assert c.command(f"DELE {num[uids[0]]}").startswith(b"+OK")
        assert c.command(f"DELE {num[uids[2]]}").startswith(b"+OK")
        assert c.quit().startswith(b"+OK")
    left = box.messages()
    assert [m.uid for m in left] == [uids[1], uids[3]], "only the DELE'd messages are expunged (UIDPLUS)"
    assert "\\Deleted" in left[1].flags, "another client's \\Deleted message stays"


def test_on_delete_move_auto_goes_to_trash_byte_exact(backend):
    """Neither test server marks a \\Trash: Dovecot's NAMESPACE prefix is "", pymap has no NAMESPACE;
    both give `Trash`, created on TRYCREATE (pymap moves with MOVE as Dovecot does)."""
    box = backend.new_box()
    uids = box.append([A, B, C])
    served = box.bodies()
    gw = backend.popgate(on_delete="move")
    with gw.login(box.user, box.password) as c:
        assert c.command("DELE 1").startswith(b"+OK")
        assert c.command("DELE 3").startswith(b"+OK")
        assert c.quit().startswith(b"+OK")
    assert [m.uid for m in box.messages()] == [uids[1]]
    assert sorted(m.body for m in box.messages("Trash")) == sorted([served[uids[0]], served[uids[2]]])
    assert re.search(r"deleted messages go to Trash.*trash=default" if backend.name == "pymap"
                     else r"deleted messages go to Trash.*trash=namespace|deleted messages go to Trash.*trash=default",
                     gw.stderr()), gw.stderr()[-2000:]


def test_on_delete_flag(backend):
    box = backend.new_box()
    uids = box.append([A, B])
    gw = backend.popgate(on_delete="flag")
    if backend.name == "pymap":
        # pymap's PERMANENTFLAGS lack \* and the keyword: the mark would be dropped, so the login is refused.
        c = gw.connect()
        c.command(f"USER {box.user}")
        answer = c.command(f"PASS {box.password}")
        assert answer == b"-ERR [SYS/PERM] Backend cannot deep the deletion mark.".replace(b"deep", b"keep"), answer
        c.close()
        assert re.search(r"PERMANENTFLAGS \(\\\\Answered \\\\Deleted \\\\Draft \\\\Flagged \\\\Seen\)", gw.stderr()), gw.stderr()[-2000:]
        assert box.flags() == {uids[0]: set(), uids[1]: set()}
        return
    with gw.login(box.user, box.password) as c:
        assert c.command("DELE 1").startswith(b"+OK")
        assert c.quit().startswith(b"+OK")
    assert box.flags() == {uids[0]: {"$POP3Deleted", "\\Seen"}, uids[1]: set()}
    with gw.login(box.user, box.password) as c:
        assert c.command("STAT") == b"+OK 1 %d" % len(B)


def test_on_delete_keep(backend):
    box = backend.new_box()
    uids = box.append([A, B])
    total = sum(len(b) for b in box.bodies().values())
    gw = backend.popgate(on_delete="keep")
    with gw.login(box.user, box.password) as c:
        assert c.command("DELE 1").startswith(b"+OK")
        assert c.quit().startswith(b"+OK")
    assert box.flags() == {uids[0]: {"\\Seen"}, uids[1]: set()}
    with gw.login(box.user, box.password) as c:
        assert c.command("STAT") == b"+OK 2 %d" % total


@pytest.mark.parametrize("on_retrieve", ["seen", "none"])
def test_on_retrieve(backend, on_retrieve):
    box = backend.new_box()
    uids = box.append([A, B, C])
    served = box.bodies()
    gw = backend.popgate(on_retrieve=on_retrieve, on_delete="keep")
    with gw.login(box.user, box.password) as c:
        assert unstuff(c.multi("RETR 1")[1]) == pop3_form(served[uids[0]])
        assert c.multi("TOP 2 0")[0].startswith(b"+OK")
        time.sleep(0.2)
        assert box.flags()[uids[0]] == set(), "\\Seen waits for QUIT"
        assert c.quit().startswith(b"+OK")
    expected = {"\\Seen"} if on_retrieve == "seen" else set()
    assert box.flags() == {uids[0]: expected, uids[1]: set(), uids[2]: set()}


def test_dropped_session_applies_nothing(backend):
    box = backend.new_box()
    uids = box.append([A, B])
    served = box.bodies()
    gw = backend.popgate(on_delete="expunge")
    c = gw.login(box.user, box.password)
    assert c.command("DELE 1").startswith(b"+OK")
    assert unstuff(c.multi("RETR 2")[1]) == pop3_form(served[uids[1]])
    c.abort()
    time.sleep(0.5)
    assert box.flags() == {uids[0]: set(), uids[1]: set()}


# -- move_to: auto against Dovecots configured like other servers ------------------------------------

SPECIAL_USE_NAMESPACE = """namespace inbox {
  inbox = yes
  separator = /
  mailbox "Deleted Items" {
    special_use = \\Trash
    auto = create
  }
  mailbox Trash {
  }
}"""

INBOX_PREFIX_NAMESPACE = """namespace inbox {
  inbox = yes
  prefix = INBOX.
  separator = .
}"""


@pytest.fixture(scope="module")
def special_use_dovecot(workdir, pki):
    d = Dovecot(workdir / "dovecot-special-use", pki, namespace=SPECIAL_USE_NAMESPACE)
    d.start()
    yield d
    d.stop()


@pytest.fixture(scope="module")
def inbox_prefix_dovecot(workdir, pki):
    d = Dovecot(workdir / "dovecot-inbox-prefix", pki, namespace=INBOX_PREFIX_NAMESPACE)
    d.start()
    yield d
    d.stop()


def test_move_auto_uses_the_special_use_trash(gateway, special_use_dovecot):
    box = _box(special_use_dovecot, "s")
    box.imap.create("Trash")   # a folder named Trash exists, but the server's \Trash is another one
    uids = box.append([A, B, C])
    gw = gateway(backend_port=special_use_dovecot.ports.imap, on_delete="move")
    with gw.login(box.user, box.password) as c:
        assert c.command("DELE 2").startswith(b"+OK")
        assert c.quit().startswith(b"+OK")
    assert [m.uid for m in box.messages()] == [uids[0], uids[2]]
    assert [m.body for m in box.messages("Deleted Items")] == [B], "byte-exact in the special-use folder"
    assert box.messages("Trash") == []
    assert re.search(r'deleted messages go to Deleted Items.*trash=special-use', gw.stderr()), gw.stderr()[-2000:]


def test_move_explicit_name_stays_exact_on_a_special_use_server(gateway, special_use_dovecot):
    box = _box(special_use_dovecot, "s")
    box.append([A, B])
    gw = gateway(backend_port=special_use_dovecot.ports.imap, on_delete="move", move_to="Trash")
    with gw.login(box.user, box.password) as c:
        assert c.command("DELE 1").startswith(b"+OK")
        assert c.quit().startswith(b"+OK")
    assert [m.body for m in box.messages("Trash")] == [A]


def test_move_auto_under_an_inbox_dot_namespace(gateway, inbox_prefix_dovecot):
    box = _box(inbox_prefix_dovecot, "n")
    uids = box.append([A, B, C])
    gw = gateway(backend_port=inbox_prefix_dovecot.ports.imap, on_delete="move")
    for _ in range(2):   # creates INBOX.Trash, then moves into the existing folder
        with gw.login(box.user, box.password) as c:
            assert c.command("DELE 1").startswith(b"+OK")
            assert c.quit().startswith(b"+OK")
    assert [m.uid for m in box.messages()] == [uids[2]]
    assert [m.body for m in box.messages("INBOX.Trash")] == [A, B], "byte-exact, in order"
    assert "INBOX.Trash" in box.imap.folders()
    assert re.search(r'deleted messages go to INBOX\.Trash.*trash=namespace', gw.stderr()), gw.stderr()[-2000:]


def test_move_to_a_name_outside_the_namespace_fails_at_quit(gateway, inbox_prefix_dovecot):
    """Why `auto` is the default: the old default `Trash` is outside the only namespace of such a
    server, so every QUIT with deletions failed. Named exactly, it still fails, and says so."""
    box = _box(inbox_prefix_dovecot, "n")
    uids = box.append([A])
    gw = gateway(backend_port=inbox_prefix_dovecot.ports.imap, on_delete="move", move_to="Trash")
    with gw.login(box.user, box.password) as c:
        assert c.command("DELE 1").startswith(b"+OK")
        assert c.quit().startswith(b"-ERR [SYS/TEMP]")
    assert [m.uid for m in box.messages()] == uids, "nothing lost"
