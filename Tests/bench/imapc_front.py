"""Dovecot's POP3 over `imapc` storage: the peer that does PopGate's job (what a provider would run
instead of PopGate), for the benchmark. A SECOND Dovecot instance next to the harness's backend
Dovecot: its own base_dir, state_dir, log and config in its own folder, listening on loopback only,
`protocols = pop3`, one pop3s listener with the test PKI's (or another) certificate.

    front = ImapcFront(root / "imapc", pki, backend)   # backend: a started harness Dovecot
    front.start(); ...; front.stop()

How it works (Dovecot 2.3):
  - passdb imap: a POP3 login is checked by logging in to the backend over IMAP with the same
    user and password (plain IMAP on loopback; `backend_tls="imaps"` switches to the IMAPS port);
    `default_fields` hand user and password on to the mail process (`userdb_imapc_user`,
    `userdb_imapc_password`), `userdb prefetch` takes them from there;
  - mail_location = imapc:~/imapc: the mail process logs in to the backend again over IMAP
    (imapc_host/imapc_port) and keeps its own index cache under the user's home in this instance's
    folder (`mail_home`);
  - imapc_features = rfc822.size fetch-headers modseq: POP3 needs every message's size for STAT
    and LIST; without `rfc822.size` imapc would fetch whole bodies to count them. `fetch-headers`
    lets it ask for headers only where it can, `modseq` lets it resync its cache cheaply;
  - pop3_uidl_format = %08Xu%08Xv: the backend's UIDVALIDITY and UIDs, so the UIDLs are the very
    ones Dovecot's own POP3 and PopGate (its default uidl_format) give for the same mailbox;
  - auth_cache: successful passdb imap lookups are cached (5 min), as a provider would do; a
    repeated poll costs one backend login (the mail process's) instead of two;
  - no auth failure penalty (anvil-auth-penalty off, auth_failure_delay 0): the bench logs in
    hundreds of times from 127.0.0.1 and never fails a login;
  - login processes in Dovecot's default high-security mode, like the backend's own POP3: one
    pop3-login process per connection, which stays as the TLS proxy of the session.
`limits=True` raises the process/client limits (idle-sessions scenario).
"""
from __future__ import annotations

import atexit
import os
import pwd
import subprocess
from pathlib import Path

import sys

REPO_ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO_ROOT / "Tests" / "integration"))

from harness.certs import TestPKI  # noqa: E402
from harness.dovecot import DH_PEM, Dovecot, DovecotProcess  # noqa: E402
from harness.net import LOOPBACK, free_ports, wait_for_ports  # noqa: E402


class ImapcFront(DovecotProcess):
    kind = "imapc"
    label = "imapc front "

    def __init__(self, root: Path, pki: TestPKI, backend: Dovecot, *, cert: Path | None = None,
                 key: Path | None = None, backend_tls: str = "none", max_sessions: int = 1000):
        """`cert`/`key`: the pop3s certificate (default: the PKI's fullchain and key).
        `backend_tls`: "none" (plain IMAP on loopback) or "imaps"."""
        self.root = root
        self.pki = pki
        self.backend = backend
        self.cert = cert or pki.fullchain
        self.key = key or pki.key
        self.backend_tls = backend_tls
        self.max_sessions = max_sessions
        self.host = LOOPBACK
        (self.pop3s,) = free_ports(1)
        self.implicit_port = self.pop3s
        self.config_path = root / "dovecot.conf"
        self.log_path = root / "dovecot.log"
        self.home_root = root / "home"
        self.proc: subprocess.Popen | None = None
        mail = pwd.getpwnam("mail")
        self.mail_uid, self.mail_gid = mail.pw_uid, mail.pw_gid

    def backend_description(self) -> str:
        return ("IMAPS" if self.backend_tls == "imaps" else "plain IMAP") + " on loopback"

    def render_config(self) -> str:
        r = self.root
        b = self.backend
        if self.backend_tls == "imaps":
            port = b.ports.imaps
            passdb_ssl = f" ssl=imaps ssl_ca_file={self.pki.ca_cert}"
            imapc_ssl = f"imapc_ssl = imaps\nssl_client_ca_file = {self.pki.ca_cert}\n"
        else:
            port = b.ports.imap
            passdb_ssl = imapc_ssl = ""
        dh = f"ssl_dh = <{DH_PEM}\n" if DH_PEM.exists() else ""
        n = self.max_sessions
        return f"""# PopGate bench: Dovecot POP3 over imapc, in front of the backend Dovecot; loopback only
base_dir = {r}/run
state_dir = {r}/state
instance_name = popgate-bench-imapc-{self.pop3s}
log_path = {self.log_path}
listen = {LOOPBACK}
protocols = pop3
shutdown_clients = yes

ssl = yes
ssl_cert = <{self.cert}
ssl_key = <{self.key}
{dh}
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_failure_delay = 0
auth_cache_size = 10M
auth_cache_ttl = 5 min
first_valid_uid = {self.mail_uid}
first_valid_gid = {self.mail_gid}
mail_uid = {self.mail_uid}
mail_gid = {self.mail_gid}
mail_home = {self.home_root}/%u
mail_location = imapc:~/imapc
mail_fsync = never
mail_max_userip_connections = {n + 100}

imapc_host = {LOOPBACK}
imapc_port = {port}
{imapc_ssl}imapc_features = rfc822.size fetch-headers modseq
pop3_uidl_format = %08Xu%08Xv

passdb {{
  driver = imap
  args = host={LOOPBACK} port={port}{passdb_ssl}
  default_fields = userdb_imapc_user=%u userdb_imapc_password=%w
}}
userdb {{
  driver = prefetch
}}
service anvil {{
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
default_process_limit = {n + 100}
default_client_limit = {2 * n + 1000}
service pop3-login {{
  inet_listener pop3 {{
    port = 0
  }}
  inet_listener pop3s {{
    address = {LOOPBACK}
    port = {self.pop3s}
    ssl = yes
  }}
}}
protocol pop3 {{
  mail_max_userip_connections = {n + 100}
}}
"""

    def start(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        os.chmod(self.root, 0o755)
        for sub in ("run", "state"):
            (self.root / sub).mkdir(exist_ok=True)
        self.home_root.mkdir(exist_ok=True)
        os.chown(self.home_root, self.mail_uid, self.mail_gid)
        self.config_path.write_text(self.render_config())
        check = subprocess.run(["doveconf", "-n", "-c", str(self.config_path)],
                               capture_output=True, text=True)
        if check.returncode != 0:
            raise RuntimeError(f"imapc front: doveconf rejects the config:\n{check.stderr}")
        stderr = open(self.root / "dovecot.stderr", "wb")
        self.proc = subprocess.Popen(["dovecot", "-c", str(self.config_path), "-F"],
                                     stdin=subprocess.DEVNULL, stdout=stderr, stderr=stderr,
                                     start_new_session=True)
        stderr.close()
        atexit.register(self.stop)
        try:
            wait_for_ports([self.pop3s], timeout=30, alive=lambda: self.proc.poll() is None)
        except Exception as exc:
            self.stop()
            raise RuntimeError(f"imapc front did not start: {exc}\n{self.diagnostics()}") from exc

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid
