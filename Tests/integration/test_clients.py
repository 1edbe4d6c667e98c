"""Real POP3 clients nobody here wrote: curl (pop3s:// and STLS), fetchmail (implicit TLS,
keep/nokeep) and mpop (STLS, maildir). poplib is used in test_maildrop.py."""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from harness import corpus
from harness.pop3 import expected_pop3_bytes


def lf(data: bytes) -> bytes:
    return data.replace(b"\r\n", b"\n")


@pytest.fixture
def loaded(mailbox):
    mailbox.append(corpus.small())
    return mailbox


def run(cmd, tmp_path: Path, timeout=120) -> subprocess.CompletedProcess:
    env = {**os.environ, "HOME": str(tmp_path)}
    return subprocess.run(cmd, capture_output=True, env=env, timeout=timeout, stdin=subprocess.DEVNULL)


# -- curl -------------------------------------------------------------------------------------------

@pytest.mark.skipif(shutil.which("curl") is None, reason="curl not installed")
@pytest.mark.parametrize("how", ["pop3s", "stls"])
def test_curl_downloads_every_message(pop3_server, loaded, pki, tmp_path, how):
    srv = pop3_server()
    imap = loaded.messages()
    for n, m in enumerate(imap, start=1):
        if how == "pop3s":
            url = f"pop3s://127.0.0.1:{srv.implicit_port}/{n}"
            extra = []
        else:
            url = f"pop3://localhost:{srv.starttls_port}/{n}"
            extra = ["--ssl-reqd"]
        r = run(["curl", "-sS", "--cacert", str(pki.ca_cert), *extra,
                 "-u", f"{loaded.user}:{loaded.password}", url], tmp_path)
        assert r.returncode == 0, r.stderr
        assert r.stdout == expected_pop3_bytes(m.body), f"message {n} via curl {how}"


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl not installed")
def test_curl_list(pop3_server, loaded, pki, tmp_path):
    srv = pop3_server()
    sizes = [m.size for m in loaded.messages(bodies=False)]
    r = run(["curl", "-sS", "--cacert", str(pki.ca_cert), "-u", f"{loaded.user}:{loaded.password}",
             f"pop3s://127.0.0.1:{srv.implicit_port}/"], tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout == b"".join(b"%d %d\r\n" % (n, s) for n, s in enumerate(sizes, start=1))


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl not installed")
def test_curl_wrong_password_fails(pop3_server, loaded, pki, tmp_path):
    srv = pop3_server()
    r = run(["curl", "-sS", "--cacert", str(pki.ca_cert), "-u", f"{loaded.user}:wrong",
             f"pop3s://127.0.0.1:{srv.implicit_port}/1"], tmp_path)
    assert r.returncode == 67, (r.returncode, r.stderr)     # CURLE_LOGIN_DENIED


# -- fetchmail --------------------------------------------------------------------------------------

def fetchmail(srv, mb, pki, tmp_path: Path, keep: bool) -> list[bytes]:
    out = tmp_path / ("keep" if keep else "nokeep")
    out.mkdir()
    rc = tmp_path / f"fetchmailrc-{out.name}"
    assert '"' not in mb.password and "\\" not in mb.password   # fetchmailrc string syntax
    rc.write_text(
        "set no syslog\nset invisible\n"
        f"poll 127.0.0.1 with proto POP3 service {srv.implicit_port} auth password\n"
        f'  user "{mb.user}" there with password "{mb.password}" is root here\n'
        f'  ssl sslcertfile "{pki.ca_cert}" sslcertck sslcommonname localhost\n'
        f"  {'keep' if keep else 'nokeep'} fetchall no rewrite\n"
        f"  mda \"/bin/sh -c 'cat > {out}/msg.$$'\"\n")
    os.chmod(rc, 0o600)
    r = run(["fetchmail", "-f", str(rc), "--nodetach", "--nosyslog", "-i", str(tmp_path / "ids"),
             "--pidfile", str(tmp_path / "fetchmail.pid")], tmp_path)
    assert r.returncode == 0, (r.returncode, r.stdout.decode()[-2000:], r.stderr.decode()[-2000:])
    return sorted(fetchmail_norm(p.read_bytes()) for p in out.iterdir())


def fetchmail_norm(data: bytes) -> bytes:
    """fetchmail hands the MDA LF line endings and ends a header-only message with a blank
    line of its own: compare without trailing newlines."""
    return lf(data).rstrip(b"\n")


@pytest.mark.skipif(shutil.which("fetchmail") is None, reason="fetchmail not installed")
@pytest.mark.parametrize("on_delete", ["expunge", "flag"])
def test_fetchmail_keep_then_nokeep(pop3_server, loaded, pki, tmp_path, on_delete):
    srv = pop3_server(on_delete=on_delete)
    imap = loaded.messages()
    want = sorted(fetchmail_norm(expected_pop3_bytes(m.body)) for m in imap)

    assert fetchmail(srv, loaded, pki, tmp_path, keep=True) == want
    flags = loaded.flags()
    assert len(flags) == len(imap), "keep must not remove anything"
    assert all("\\Seen" in f for f in flags.values()), "RETR'd messages get \\Seen at QUIT"
    with srv.login(loaded.user, loaded.password) as c:
        assert c.command("STAT").startswith(b"+OK %d " % len(imap))

    assert fetchmail(srv, loaded, pki, tmp_path, keep=False) == want
    with srv.login(loaded.user, loaded.password) as c:
        assert c.command("STAT") == b"+OK 0 0", "nokeep: nothing listed any more"
    left = loaded.flags()
    if on_delete == "expunge":
        assert left == {}
    else:
        assert len(left) == len(imap) and all({"$POP3Deleted", "\\Seen"} <= f for f in left.values())


# -- mpop ------------------------------------------------------------------------------------------------

def mpop(srv, mb, pki, tmp_path: Path, maildir: Path) -> subprocess.CompletedProcess:
    for sub in ("cur", "new", "tmp"):
        (maildir / sub).mkdir(parents=True, exist_ok=True)
    pwfile = tmp_path / "mpop-password"
    pwfile.write_text(mb.password)
    return run(["mpop", "--host=localhost", f"--port={srv.starttls_port}", "--tls=on", "--tls-starttls=on",
                f"--tls-trust-file={pki.ca_cert}", "--auth=user", f"--user={mb.user}",
                f"--passwordeval=cat {pwfile}", f"--delivery=maildir,{maildir}", "--keep=on",
                f"--uidls-file={tmp_path / 'uidls'}", "--received-header=off", "--only-new=on", "-q"],
               tmp_path)


@pytest.mark.skipif(shutil.which("mpop") is None, reason="mpop not installed")
def test_mpop_stls_maildir_and_uidl_stability(pop3_server, loaded, pki, tmp_path):
    srv = pop3_server()
    imap = loaded.messages()
    maildir = tmp_path / "Maildir"
    r = mpop(srv, loaded, pki, tmp_path, maildir)
    assert r.returncode == 0, (r.stdout, r.stderr)
    got = sorted(p.read_bytes() for p in (maildir / "new").iterdir())
    assert got == sorted(lf(expected_pop3_bytes(m.body)) for m in imap)
    # second run: the UIDLs are unchanged, so mpop fetches nothing new
    r = mpop(srv, loaded, pki, tmp_path, maildir)
    assert r.returncode == 0, (r.stdout, r.stderr)
    assert len(list((maildir / "new").iterdir())) == len(imap)
