"""fail2ban: deploy/fail2ban/filter.d/popgate.conf, run by `fail2ban-regex` over the log of a real
session mix (real Dovecot, the real daemon, poplib): every failed login's line matches, with the
client's address, and nothing else does, neither successful logins nor a user name that spells out
another address. Both log forms: native journal entries (as fail2ban's systemd backend formats them)
and logfmt lines on stderr. PopGate-only; skipped without fail2ban-regex (Debian: fail2ban)."""
from __future__ import annotations

import base64
import poplib
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from harness.net import LOOPBACK
from test_systemd import _wait_entries, journal, parse_native  # noqa: F401  (journal is a fixture)

FILTER = Path(__file__).resolve().parents[2] / "deploy/fail2ban/filter.d/popgate.conf"
COMMON = Path("/etc/fail2ban/filter.d")
DECOY = "192.0.2.66"   # named inside a user name: must never be what fail2ban takes as the client

pytestmark = pytest.mark.skipif(shutil.which("fail2ban-regex") is None,
                                reason="fail2ban-regex missing (Debian package fail2ban)")


def session_mix(gw, pki, good, bad_password: str) -> int:
    """Successful and failed logins over poplib; returns the number of failed logins."""
    ctx = pki.client_context()
    failed = 0

    def refused(call) -> None:
        nonlocal failed
        with pytest.raises(poplib.error_proto) as e:
            call()
        assert b"[AUTH]" in e.value.args[0], e.value.args
        failed += 1

    p = poplib.POP3_SSL(LOOPBACK, gw.implicit_port, context=ctx, timeout=30)
    p.user(good.user)
    p.pass_(good.password)                                   # success
    p.stat()
    p.quit()

    p = poplib.POP3_SSL(LOOPBACK, gw.implicit_port, context=ctx, timeout=30)
    p.user(good.user)
    refused(lambda: p.pass_(bad_password))                   # wrong password
    p.user("nosuchuser")
    refused(lambda: p.pass_(bad_password))                   # unknown user, same session
    p.quit()

    p = poplib.POP3(LOOPBACK, gw.starttls_port, timeout=30)
    p.stls(ctx)
    payload = base64.b64encode(f"\0{good.user}\0{bad_password}".encode()).decode()
    refused(lambda: p._shortcmd(f"AUTH PLAIN {payload}"))    # AUTH PLAIN, wrong password
    p.user(good.user)
    p.pass_(good.password)                                   # then a success in the same session
    p.quit()

    for decoy in (f"x client={DECOY} user=y", f'x" msg="authentication failed: client={DECOY} user=y'):
        p = poplib.POP3_SSL(LOOPBACK, gw.implicit_port, context=ctx, timeout=30)
        p.user(decoy)
        refused(lambda: p.pass_(bad_password))
        p.quit()
    return failed


def fail2ban_regex(tmp_path: Path, lines: list[str]) -> tuple[list[str], str]:
    """Runs fail2ban-regex on the lines; returns the matched lines and the full output."""
    log = tmp_path / "popgate.log"
    log.write_text("".join(line + "\n" for line in lines))
    # The filter next to the common.conf it includes, as in /etc/fail2ban/filter.d.
    filters = tmp_path / "filter.d"
    filters.mkdir(exist_ok=True)
    shutil.copy(FILTER, filters / "popgate.conf")
    for name in ("common.conf", "common.local"):
        if (COMMON / name).exists() and not (filters / name).exists():
            (filters / name).symlink_to(COMMON / name)
    r = subprocess.run(["fail2ban-regex", "--print-all-matched", "--print-no-missed", str(log),
                        str(filters / "popgate.conf")],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    summary = re.search(r"^Lines: (\d+) lines, (\d+) ignored, (\d+) matched, (\d+) missed", r.stdout, re.M)
    assert summary and int(summary.group(1)) == len(lines), r.stdout
    matched: list[str] = []
    if "|- Matched line(s):" in r.stdout:
        for line in r.stdout.split("|- Matched line(s):", 1)[1].splitlines()[1:]:
            if not line.startswith("|  "):
                break
            matched.append(line[3:])
    assert len(matched) == int(summary.group(3)), r.stdout
    print(f"\nfail2ban-regex {log.name} filter.d/popgate.conf: {summary.group(0)}")   # shown with pytest -s
    return matched, r.stdout


def check(matched: list[str], failure_lines: list[str], failed: int, output: str) -> None:
    assert len(failure_lines) == failed, "one line per failed login"
    assert len(matched) == failed, output
    assert sorted(matched) == sorted(failure_lines), output
    for line in matched:
        assert f"authentication failed: client={LOOPBACK} user=" in line, line
    assert not any("logged in" in line or "session ended" in line for line in matched), output


def test_fail2ban_filter_on_logfmt_lines(gateway, new_mailbox, pki, tmp_path):
    good = new_mailbox()
    gw = gateway(log_target="stderr", log_level="info", failure_delay="0s")
    failed = session_mix(gw, pki, good, "wrong-" + good.password)
    gw.wait_for_log(r"session ended: user=x\\\" msg=")
    gw.signal(signal.SIGTERM)
    assert gw.wait_exit(10) == 0
    lines = [line for line in gw.stderr().splitlines() if line.startswith("time=")]
    assert any("logged in" in line for line in lines)
    failures = [line for line in lines if ' msg="authentication failed: ' in line]
    for line in failures:    # the fields: the address without port, and the user
        assert f" client_ip={LOOPBACK} " in line and " user=" in line, line
    matched, output = fail2ban_regex(tmp_path, lines)
    check(matched, failures, failed, output)


def test_fail2ban_filter_on_journal_entries(gateway, journal, new_mailbox, pki, tmp_path):
    good = new_mailbox()
    options, datagrams = journal
    gw = gateway(log_target="journal", log_level="info", failure_delay="0s", **options())
    failed = session_mix(gw, pki, good, "wrong-" + good.password)
    gw.signal(signal.SIGTERM)
    assert gw.wait_exit(10) == 0
    entries = _wait_entries(datagrams, lambda es: any(e["MESSAGE"] == b"stopped" for e in es))
    failures = [e for e in entries if e["MESSAGE"].startswith(b"authentication failed: ")]
    assert len(failures) == failed
    for e in failures:
        assert e["POPGATE_CLIENT_IP"] == LOOPBACK.encode(), e
        assert e["PRIORITY"] == b"5", e          # notice
        assert "POPGATE_USER" in e and "POPGATE_SESSION" in e, e
    # What fail2ban's systemd backend reads: "<_HOSTNAME> <SYSLOG_IDENTIFIER>[<_PID>]: <MESSAGE>"
    # (journald adds _HOSTNAME and _PID; the date is passed beside the line, here in front of it).
    stamp = time.strftime("%Y-%m-%d %H:%M:%S")
    lines = [f"{stamp} mailhost {e['SYSLOG_IDENTIFIER'].decode()}[{gw.pid}]: {e['MESSAGE'].decode()}"
             for e in entries]
    matched, output = fail2ban_regex(tmp_path, lines)
    check(matched, [line for line in lines if "]: authentication failed: " in line], failed, output)
