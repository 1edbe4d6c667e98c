"""A throw-away CA and a `localhost` server certificate, made with the openssl CLI.

The same certificate serves Dovecot (IMAPS/STARTTLS/POP3S) and PopGate's own
listeners in tests; clients trust only `ca.pem`.
"""
from __future__ import annotations

import dataclasses
import os
import ssl
import subprocess
from pathlib import Path


@dataclasses.dataclass(frozen=True)
class TestPKI:
    ca_cert: Path
    cert: Path        # leaf certificate (localhost, 127.0.0.1)
    key: Path
    fullchain: Path   # leaf + CA

    def client_context(self, check_hostname: bool = True) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=str(self.ca_cert))
        ctx.check_hostname = check_hostname
        return ctx


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def make_pki(directory: Path) -> TestPKI:
    directory.mkdir(parents=True, exist_ok=True)
    d = directory
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
             "-subj", "/CN=PopGate Test CA", "-keyout", "ca.key", "-out", "ca.pem",
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=d)
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost",
             "-keyout", "server.key", "-out", "server.csr", cwd=d)
    (d / "server.ext").write_text(
        "basicConstraints=CA:FALSE\n"
        "keyUsage=critical,digitalSignature,keyEncipherment\n"
        "extendedKeyUsage=serverAuth\n"
        "subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    _openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
             "-CAcreateserial", "-days", "2", "-sha256", "-extfile", "server.ext",
             "-out", "server.pem", cwd=d)
    fullchain = d / "fullchain.pem"
    fullchain.write_bytes((d / "server.pem").read_bytes() + (d / "ca.pem").read_bytes())
    # Dovecot reads the key as root; PopGate runs as root in tests. Still, keep it private.
    os.chmod(d / "server.key", 0o600)
    os.chmod(d / "ca.key", 0o600)
    return TestPKI(ca_cert=d / "ca.pem", cert=d / "server.pem", key=d / "server.key",
                   fullchain=fullchain)
