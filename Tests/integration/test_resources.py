"""Resources around the 25 MB message: a client that vanishes mid-RETR must not leak the
backend connection or fds; a RETR (even to a slow reader) must not buffer the message.
PopGate-only (reads /proc of the gateway process)."""
from __future__ import annotations

import hashlib
import time

from harness.pop3 import expected_pop3_bytes, unstuff
from harness.procinfo import established_to, fd_count, status_kb, wait_until


def big_number(corpus_mailbox) -> int:
    return len(corpus_mailbox.uids)        # the 25 MB message is the last one


def small_session(gw, mb) -> None:
    """One full session (login, RETR, QUIT): warms up allocations and TLS contexts."""
    with gw.login(mb.user, mb.password) as c:
        assert c.multi("RETR 1")[0].startswith(b"+OK")
        assert c.quit().startswith(b"+OK")


def test_client_disconnect_mid_retr_releases_backend(gateway, corpus_mailbox, dovecot):
    gw = gateway(on_retrieve="seen")
    small_session(gw, corpus_mailbox)
    backend_port = dovecot.ports.imap
    assert wait_until(lambda: established_to(gw.pid, backend_port) == 0, 10)
    base_fds = fd_count(gw.pid)
    for _ in range(2):
        c = gw.login(corpus_mailbox.user, corpus_mailbox.password)
        assert established_to(gw.pid, backend_port) == 1
        c.send(f"RETR {big_number(corpus_mailbox)}\r\n")
        assert c.line().startswith(b"+OK")
        got = 0
        while got < 2_000_000:
            chunk = c.sock.recv(65536)
            assert chunk
            got += len(chunk)
        c.abort()
        assert wait_until(lambda: established_to(gw.pid, backend_port) == 0, 15), \
            "backend connection still open after the client went away"
        assert wait_until(lambda: fd_count(gw.pid) <= base_fds, 15), \
            f"fd leak: {fd_count(gw.pid)} fds, baseline {base_fds}"
    assert gw.is_running()
    small_session(gw, corpus_mailbox)


def test_big_retr_memory_and_bytes(gateway, corpus_mailbox):
    """A slow reader: stop reading for 3 s after the first MB. Without back-pressure the gateway
    would pull the whole message from Dovecot into memory in that time."""
    gw = gateway()
    small_session(gw, corpus_mailbox)
    expected = expected_pop3_bytes(corpus_mailbox.imap.body(corpus_mailbox.uids[-1]))
    hwm_before = status_kb(gw.pid, "VmHWM")
    # a small receive buffer keeps the kernel from absorbing the message on our side
    c = gw.connect("implicit", rcvbuf=64 * 1024, timeout=60)
    assert c.user_pass(corpus_mailbox.user, corpus_mailbox.password).startswith(b"+OK")
    c.send(f"RETR {big_number(corpus_mailbox)}\r\n")
    assert c.line().startswith(b"+OK")
    while len(c.buf) < 1_000_000:
        c._fill()
    time.sleep(3.0)
    body = c.multiline_raw()
    hwm_after = status_kb(gw.pid, "VmHWM")
    c.quit()
    assert hashlib.sha256(unstuff(body)).digest() == hashlib.sha256(expected).digest()
    growth_mb = (hwm_after - hwm_before) / 1024
    assert growth_mb < 16, f"VmHWM grew by {growth_mb:.1f} MB during a 25 MB RETR"


def test_client_that_stops_reading_mid_retr_is_closed(gateway, corpus_mailbox, dovecot):
    """A client that stays connected but stops reading in the middle of a RETR must not hold the
    backend connection forever: after an idle period without progress the session ends."""
    gw = gateway(idle="2s", on_retrieve="seen")
    backend_port = dovecot.ports.imap
    c = gw.connect("implicit", rcvbuf=64 * 1024, timeout=30)
    assert c.user_pass(corpus_mailbox.user, corpus_mailbox.password).startswith(b"+OK")
    t0 = time.monotonic()
    c.send(f"RETR {big_number(corpus_mailbox)}\r\n")
    assert c.line().startswith(b"+OK")
    while len(c.buf) < 1_000_000:
        c._fill()
    assert wait_until(lambda: established_to(gw.pid, backend_port) == 0, 15), \
        "a stalled reader still holds the backend connection"
    assert time.monotonic() - t0 >= 1.5, "closed before an idle period had passed"
    c.abort()
    assert gw.is_running()
    assert 'ending=timeout' in gw.stderr(), "the summary line tells why the session ended"
