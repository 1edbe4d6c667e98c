"""UIDL migration (docs/uidl.md): `uidl_format` presets and `uidl_source: header` byte-identical with
Dovecot's own POP3 configured the same way (`pop3_uidl_format`, `pop3_reuse_xuidl`, set per user on
the one test Dovecot), and the summary line's `uidl_hash`/`uidl_change` across a real UIDVALIDITY
change (`doveadm mailbox update --uid-validity`). PopGate-only (the `gateway` fixture)."""
from __future__ import annotations

import os
import re
import subprocess
import time

import pytest

from harness.gateway import GatewayOptions, popgate_binary, render_config
from harness.imap import ImapAccount
from harness.net import free_ports
from harness.pop3 import parse_uidl

#: preset → the pop3_uidl_format Dovecot documents for that server
PRESETS = {
    "dovecot": "%08Xu%08Xv",
    "dovecot-0.99": "%v.%u",
    "uw-imap": "%08Xv%08Xu",
    "cyrus": "%v.%u",
    "cyrus-old": "%u",
}


def _user(dovecot, prefix: str, settings: dict[str, str] | None = None):
    user = dovecot.new_user_name(prefix)
    password = f"pw-{os.urandom(6).hex()}"
    dovecot.add_user(user, password, settings=settings)
    return user, password, ImapAccount(dovecot.host, dovecot.ports.imap, user, password)


def _message(n: int, headers: str = "") -> bytes:
    return (f"From: a@example.net\r\nSubject: message {n}\r\n{headers}\r\n" + "line\r\n" * n).encode()


def _uidls(server, user: str, password: str) -> tuple[bytes, list[bytes]]:
    """The whole UIDL answer and single UIDLs of messages 1 and 2, raw."""
    with server.login(user, password) as c:
        first, body = c.multi("UIDL")
        assert first.startswith(b"+OK"), first
        singles = [c.command("UIDL 1"), c.command("UIDL 2")]
        c.command("QUIT")
    return body, singles


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_preset_equals_dovecot_pop3_with_that_format(gateway, dovecot, dovecot_pop3, preset):
    user, password, imap = _user(dovecot, "preset", {"pop3_uidl_format": PRESETS[preset]})
    imap.append([_message(n) for n in range(1, 6)])
    ours = _uidls(gateway(uidl_format=preset), user, password)
    theirs = _uidls(dovecot_pop3, user, password)
    assert ours == theirs, f"{preset}: UIDL differs from Dovecot's pop3_uidl_format={PRESETS[preset]}"
    # and the formats really differ from one another where they should
    validity = imap.uidvalidity()
    uid1 = imap.messages(bodies=False)[0].uid
    assert parse_uidl(ours[0])[0][1] == {
        "dovecot": "%08x%08x" % (uid1, validity), "uw-imap": "%08x%08x" % (validity, uid1),
        "dovecot-0.99": f"{validity}.{uid1}", "cyrus": f"{validity}.{uid1}", "cyrus-old": f"{uid1}",
    }[preset]


@pytest.mark.parametrize("value, reason", [
    ("courier-v0", "file names"),
    ("courier-v2", "courierpop3dsizelist"),
    ("tpop3d", "MD5 of the Maildir file name"),
    ("%u-%m", "mbox only"),
    ("%f", "file name"),
    ("exchange", "neither a preset"),
])
def test_presets_imap_cannot_reproduce_are_refused(gateway, workdir, pki, dovecot, value, reason):
    gateway()   # PopGate-only
    d = workdir / "uidl-check"
    d.mkdir(exist_ok=True)
    path = d / f"{re.sub(r'[^a-z0-9]', '_', value)}.yaml"
    path.write_text(render_config(GatewayOptions(backend_port=dovecot.ports.imap, uidl_format=value), pki,
                                  {"starttls": 1110, "implicit": 1995}))
    r = subprocess.run([str(popgate_binary()), "check-config", "--config", str(path)],
                       capture_output=True, timeout=30, stdin=subprocess.DEVNULL)
    out = (r.stdout + r.stderr).decode()
    assert r.returncode != 0, out
    assert f'uidl_format: invalid UIDL format "{value}"' in out and reason in out, out


# -- uidl_source: header ---------------------------------------------------------------------------

def test_x_uidl_equals_dovecot_reuse_xuidl(gateway, dovecot, dovecot_pop3):
    """Well-formed X-UIDL headers: PopGate's UIDLs are Dovecot's pop3_reuse_xuidl=yes UIDLs, byte for
    byte, and the snapshot asked for the header."""
    user, password, imap = _user(dovecot, "xuidl", {"pop3_reuse_xuidl": "yes"})
    imap.append([
        _message(1, "X-UIDL: 4e5a1b2c00000001\r\n"),
        _message(2),
        _message(3, "x-uidl:\t <3@old.example>\r\n"),      # any case, leading blanks
        _message(4, "X-UIDL: first\r\nX-UIDL: second\r\n"),   # the first field counts
        _message(5, "X-Uidl: " + "z" * 70 + "\r\n"),          # RFC 1939's longest
    ])
    gw = gateway(uidl_source="header")
    ours = _uidls(gw, user, password)
    assert ours == _uidls(dovecot_pop3, user, password)
    assert [u for _, u in parse_uidl(ours[0])][:1] == ["4e5a1b2c00000001"]
    assert re.search(r"x_uidl=4\b", gw.stderr()) and re.search(r"x_uidl_ignored=0\b", gw.stderr()), gw.stderr()[-2000:]


def test_x_uidl_that_cannot_be_a_uidl_falls_back_to_the_format(gateway, dovecot, dovecot_pop3):
    """Where PopGate deliberately differs from pop3_reuse_xuidl (which passes any value through): a
    value that repeats an earlier message's, is longer than 70 octets, has a space or trailing blanks
    that Dovecot would send, or is folded, is not used; the UIDL set stays unique (RFC 1939 §7)."""
    user, password, imap = _user(dovecot, "xuidlbad", {"pop3_reuse_xuidl": "yes"})
    uids = imap.append([
        _message(1, "X-UIDL: same\r\n"),
        _message(2, "X-UIDL: same\r\n"),
        _message(3, "X-UIDL: " + "y" * 71 + "\r\n"),
        _message(4, "X-UIDL: two words\r\n"),
        _message(5, "X-UIDL: fold\r\n ed\r\n"),
        _message(6, "X-UIDL: trailing  \r\n"),
    ])
    validity = imap.uidvalidity()
    fmt = lambda uid: "%08x%08x" % (uid, validity)
    body, _ = _uidls(gateway(uidl_source="header"), user, password)
    assert body == b"".join(b"%d %s\r\n" % (n, u.encode()) for n, u in enumerate(
        ["same", fmt(uids[1]), fmt(uids[2]), fmt(uids[3]), fmt(uids[4]), "trailing"], start=1))
    theirs, _ = _uidls(dovecot_pop3, user, password)
    assert b"2 same\r\n" in theirs and b"6 trailing  \r\n" in theirs, "Dovecot's side of the difference"


# -- uidl_change --------------------------------------------------------------------------------------

def _summaries(gw, user: str, count: int, timeout: float = 10.0) -> list[str]:
    """The summary lines of `user`'s sessions, once there are `count` (the line may follow the QUIT answer)."""
    deadline = time.monotonic() + timeout
    while True:
        found = [l for l in re.findall(r'msg="(session ended: [^"]*)"', gw.stderr()) if f"user={user} " in l]
        if len(found) >= count or time.monotonic() > deadline:
            return found


def test_uidl_change_flags_a_uidvalidity_change(gateway, dovecot):
    user, password, imap = _user(dovecot, "uidlchg")
    imap.append([_message(n) for n in range(1, 5)])
    gw = gateway()

    def session(dele: int | None = None) -> str:
        with gw.login(user, password) as c:
            assert c.multi("UIDL")[0].startswith(b"+OK")
            if dele:
                assert c.command(f"DELE {dele}").startswith(b"+OK")
            assert c.command("QUIT").startswith(b"+OK")
        return user

    session()
    imap.append([_message(9)])            # new mail: normal
    session(dele=1)                       # a deletion: normal
    session()
    before = imap.uidvalidity()
    r = subprocess.run(["doveadm", "-c", str(dovecot.config_path), "mailbox", "update", "-u", user,
                        "--uid-validity", str(before + 1000), "INBOX"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    assert imap.uidvalidity() == before + 1000
    session()
    session()
    mine = _summaries(gw, user, 5)
    assert len(mine) == 5, mine
    changes = [re.search(r"uidl_change=(\w+)", l).group(1) for l in mine]
    hashes = [re.search(r"uidl_hash=([0-9a-f]{8})\b", l).group(1) for l in mine]
    assert changes == ["first", "no", "no", "yes", "no"], mine
    assert hashes[2] != hashes[1], "one message fewer"
    assert hashes[3] != hashes[2], "new UIDVALIDITY, new UIDLs"
    assert hashes[4] == hashes[3]
    assert "UIDLs changed since this user's previous session" in gw.stderr()
