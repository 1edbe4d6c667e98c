#!/usr/bin/env python3
"""`make demo`: a throw-away Dovecot with a demo mailbox on loopback and PopGate in front of
it, in the foreground. Prints curl and fetchmail commands that fetch the demo mail through
PopGate. Ctrl-C, SIGTERM (kill) and SIGHUP (the terminal closed) stop both and remove the temp dir.

    python3 Tests/integration/demo.py [--popgate BIN] [--backend-tls implicit|starttls]
    python3 Tests/integration/demo.py --dovecot-only     # the same commands against Dovecot's POP3
"""
from __future__ import annotations

import argparse
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness.certs import make_pki  # noqa: E402
from harness.dovecot import Dovecot  # noqa: E402
from harness.gateway import GatewayOptions, popgate_binary, render_config  # noqa: E402
from harness.imap import ImapAccount  # noqa: E402
from harness.net import free_ports, wait_for_ports  # noqa: E402

USER, PASSWORD = "demo", "demo-password"

MESSAGES = [
    b"From: PopGate Demo <demo@popgate.test>\r\nTo: demo@popgate.test\r\nSubject: Welcome to PopGate\r\n"
    b"Date: Thu, 28 Nov 2024 10:00:00 +0000\r\n\r\n"
    b"This message lives in Dovecot (IMAP) and reached you over POP3 through PopGate.\r\n",
    "From: PopGate Demo <demo@popgate.test>\r\nTo: demo@popgate.test\r\nSubject: Grüße – UTF-8\r\n"
    "Date: Thu, 28 Nov 2024 10:01:00 +0000\r\nContent-Type: text/plain; charset=utf-8\r\n"
    "Content-Transfer-Encoding: 8bit\r\n\r\nÜnïcödé body.\r\n.A line starting with a dot.\r\n.\r\nEnd.\r\n"
    .encode(),
    b"From: PopGate Demo <demo@popgate.test>\r\nTo: demo@popgate.test\r\nSubject: Third\r\n"
    b"Date: Thu, 28 Nov 2024 10:02:00 +0000\r\n\r\n" + b"".join(b"line %d\r\n" % i for i in range(1, 21)),
]


class Stop(Exception):
    """SIGTERM or SIGHUP: unwind like Ctrl-C, so the `finally` below stops PopGate and Dovecot
    (Python's default for those signals is to die at once, leaving both running)."""


def _stop(signum, _frame) -> None:
    raise Stop(signal.Signals(signum).name)


def _say(text: str) -> None:
    try:
        print(text, file=sys.stderr, flush=True)
    except OSError:   # the terminal is gone (SIGHUP): cleaning up matters more
        pass


def main() -> int:
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _stop)
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--popgate", default=str(popgate_binary()), help="the popgate binary")
    ap.add_argument("--backend-tls", choices=["implicit", "starttls"], default="implicit")
    ap.add_argument("--dovecot-only", action="store_true",
                    help="no PopGate: print the commands for Dovecot's own POP3 (to try the demo)")
    ap.add_argument("--log-level", default="info")
    args = ap.parse_args()

    if not args.dovecot_only and not Path(args.popgate).exists():
        print(f"demo: {args.popgate} not found; run `make build` (or use --dovecot-only)", file=sys.stderr)
        return 2

    root = Path(tempfile.mkdtemp(prefix="popgate-demo-"))
    os.chmod(root, 0o755)
    dovecot = None
    gw_proc = None
    try:
        pki = make_pki(root / "pki")
        dovecot = Dovecot(root / "dovecot", pki)
        dovecot.start()
        dovecot.add_user(USER, PASSWORD)
        ImapAccount(dovecot.host, dovecot.ports.imap, USER, PASSWORD).append(MESSAGES)

        if args.dovecot_only:
            starttls_port, implicit_port = dovecot.ports.pop3, dovecot.ports.pop3s
        else:
            starttls_port, implicit_port = free_ports(2)
            opts = GatewayOptions(
                backend_port=dovecot.ports.imaps if args.backend_tls == "implicit" else dovecot.ports.imap,
                backend_tls=args.backend_tls, log_level=args.log_level, failure_delay="1s")
            config = root / "popgate.yaml"
            config.write_text(render_config(opts, pki, {"starttls": starttls_port, "implicit": implicit_port}))
            # own session: Ctrl-C reaches only this script, which then stops PopGate with SIGTERM
            gw_proc = subprocess.Popen([args.popgate, "serve", "--config", str(config)],
                                       stdin=subprocess.DEVNULL, start_new_session=True)
            wait_for_ports([starttls_port, implicit_port], timeout=30, alive=lambda: gw_proc.poll() is None)

        print_instructions(root, pki, starttls_port, implicit_port, dovecot, args)
        if gw_proc is not None:
            return_code = gw_proc.wait()
            print(f"demo: popgate exited with status {return_code}", file=sys.stderr)
            return return_code
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        _say("\ndemo: stopping")
        return 0
    except Stop as stop:
        _say(f"demo: {stop}: stopping")
        return 0
    finally:
        # A second signal must not interrupt the cleanup.
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, signal.SIG_IGN)
        if gw_proc is not None and gw_proc.poll() is None:
            gw_proc.send_signal(signal.SIGTERM)
            try:
                gw_proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                gw_proc.kill()
                gw_proc.wait()
        if dovecot is not None:
            dovecot.stop()
        shutil.rmtree(root, ignore_errors=True)


def print_instructions(root: Path, pki, starttls_port: int, implicit_port: int, dovecot, args) -> None:
    ca = shlex.quote(str(pki.ca_cert))
    out = root / "fetched"
    out.mkdir()
    rc = root / "fetchmailrc"
    rc.write_text(
        "set no syslog\nset invisible\n"
        f"poll 127.0.0.1 with proto POP3 service {implicit_port} auth password\n"
        f'  user "{USER}" there with password "{PASSWORD}" is root here\n'
        f'  ssl sslcertfile "{pki.ca_cert}" sslcertck sslcommonname localhost\n'
        "  keep fetchall\n"
        f"  mda \"/bin/sh -c 'cat > {out}/message.$$'\"\n")
    os.chmod(rc, 0o600)
    who = "Dovecot's own POP3" if args.dovecot_only else "PopGate"
    print(f"""
==============================================================================
 PopGate demo — {who} on 127.0.0.1, backed by a throw-away Dovecot
   POP3 + STLS      127.0.0.1:{starttls_port}
   POP3S (implicit) 127.0.0.1:{implicit_port}
   IMAP backend     127.0.0.1:{dovecot.ports.imaps} (IMAPS), user {USER} / {PASSWORD}, {len(MESSAGES)} messages
   test CA          {pki.ca_cert}
 Try, in another terminal:

   # list, then fetch message 1 over implicit TLS
   curl -sS --cacert {ca} -u {USER}:{PASSWORD} pop3s://127.0.0.1:{implicit_port}/
   curl -sS --cacert {ca} -u {USER}:{PASSWORD} pop3s://127.0.0.1:{implicit_port}/1

   # message 2 over STLS
   curl -sS --cacert {ca} --ssl-reqd -u {USER}:{PASSWORD} pop3://localhost:{starttls_port}/2

   # fetchmail (keep): every message into {out}/
   fetchmail -f {shlex.quote(str(rc))} --nodetach --nosyslog -i {shlex.quote(str(root / 'fetchids'))}
   ls {out}

 Ctrl-C (or SIGTERM/SIGHUP) stops {'PopGate and ' if not args.dovecot_only else ''}Dovecot and removes {root}
==============================================================================
""", flush=True)


if __name__ == "__main__":
    sys.exit(main())
