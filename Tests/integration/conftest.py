"""pytest fixtures for PopGate's real-component integration tests.

Environment:
  POP3_TARGET   popgate (default) | dovecot — which POP3 server the tests talk to.
                `dovecot` runs every test that makes sense against Dovecot's own POP3
                (validating harness and assertions); PopGate-only tests are skipped.
  POPGATE_BIN   the gateway binary (default <repo>/.build/debug/popgate).
  KEEP_TMP=1    keep the temp dir (Dovecot/PopGate logs) after the run.
"""
from __future__ import annotations

import dataclasses
import os
import re
import shutil
import sys
import tempfile
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import corpus  # noqa: E402
from harness.certs import make_pki  # noqa: E402
from harness.dovecot import Dovecot  # noqa: E402
from harness.endpoint import DovecotPop3  # noqa: E402
from harness.fakeimap import FakeImapBackend  # noqa: E402
from harness.gateway import Gateway, GatewayOptions  # noqa: E402
from harness.imap import ImapAccount  # noqa: E402
from harness.pymap import Pymap  # noqa: E402

TARGET = os.environ.get("POP3_TARGET", "popgate").strip().lower()
if TARGET not in ("popgate", "dovecot"):
    raise pytest.UsageError(f"POP3_TARGET must be popgate or dovecot, got {TARGET!r}")


def pytest_report_header(config):
    return f"POP3_TARGET={TARGET}"


# -- session: temp dir, PKI, Dovecot -------------------------------------------------------

@pytest.fixture(scope="session")
def target() -> str:
    return TARGET


@pytest.fixture(scope="session")
def workdir():
    d = Path(tempfile.mkdtemp(prefix="popgate-it-"))
    os.chmod(d, 0o755)   # Dovecot's unprivileged processes must reach the files inside
    yield d
    if os.environ.get("KEEP_TMP") != "1":
        shutil.rmtree(d, ignore_errors=True)
    else:
        print(f"\nkept {d}")


@pytest.fixture(scope="session")
def pki(workdir):
    return make_pki(workdir / "pki")


@pytest.fixture(scope="session")
def dovecot(workdir, pki):
    d = Dovecot(workdir / "dovecot", pki)
    d.start()
    yield d
    d.stop()


@pytest.fixture(scope="session")
def pymap(workdir):
    """pymap (maildir backend) on loopback: the second, independent IMAP server (test_backends.py)."""
    p = Pymap(workdir / "pymap")
    p.start()
    yield p
    p.stop()


@pytest.fixture(scope="session")
def dovecot_pop3(dovecot, pki) -> DovecotPop3:
    """Dovecot's own POP3: the reference for byte-exact comparisons."""
    return DovecotPop3(dovecot, pki)


# -- mailboxes ----------------------------------------------------------------------------

@dataclasses.dataclass
class Mailbox:
    user: str
    password: str
    imap: ImapAccount
    uids: list[int] = dataclasses.field(default_factory=list)

    def append(self, messages, folder: str = "INBOX", flags=None) -> list[int]:
        if isinstance(messages, dict):
            messages = list(messages.values())
        uids = self.imap.append(list(messages), folder=folder, flags=flags)
        if folder == "INBOX":
            self.uids.extend(uids)
        return uids

    def messages(self, folder: str = "INBOX", bodies: bool = True):
        return self.imap.messages(folder, bodies=bodies)

    def flags(self, folder: str = "INBOX"):
        return {u: f - {"\\Recent"} for u, f in self.imap.flags(folder).items()}

    def folders(self):
        return self.imap.folders()


def _new_mailbox(dovecot, prefix: str = "u", password: str | None = None) -> Mailbox:
    user = dovecot.new_user_name(prefix)
    password = password if password is not None else f"pw-{os.urandom(6).hex()}-Zq"
    dovecot.add_user(user, password)
    return Mailbox(user, password, ImapAccount(dovecot.host, dovecot.ports.imap, user, password))


@pytest.fixture
def mailbox(dovecot) -> Mailbox:
    """A fresh user with an empty Maildir."""
    return _new_mailbox(dovecot)


@pytest.fixture
def new_mailbox(dovecot):
    """Factory for more fresh users (e.g. with a chosen password)."""
    return lambda password=None, prefix="u": _new_mailbox(dovecot, prefix, password)


@pytest.fixture(scope="session")
def corpus_mailbox(dovecot) -> Mailbox:
    """READ-ONLY: the small edge-case corpus followed by the 25 MB message (the last one)."""
    mb = _new_mailbox(dovecot, "corpus")
    mb.append(corpus.small())
    mb.append([corpus.big()])
    return mb


@pytest.fixture(scope="session")
def bulk_mailbox(dovecot) -> Mailbox:
    """READ-ONLY: 2,000 small messages."""
    mb = _new_mailbox(dovecot, "bulk")
    mb.append(corpus.bulk(2000))
    return mb


# -- servers under test ---------------------------------------------------------------------

@pytest.fixture
def gateway(request, workdir, pki, dovecot, target):
    """Factory: gateway(**GatewayOptions fields) → a started PopGate in front of Dovecot
    (or of `backend_port=` e.g. a fake backend). PopGate-only: skipped when POP3_TARGET=dovecot."""
    if target != "popgate":
        pytest.skip("PopGate-only test (POP3_TARGET=dovecot)")
    started: list[Gateway] = []
    request.node._popgate_started = started   # for the failure report (pytest_runtest_makereport)
    counter = [0]

    def start(**kw) -> Gateway:
        backend_tls = kw.setdefault("backend_tls", "starttls")
        if "backend_port" not in kw:
            kw["backend_port"] = dovecot.ports.imaps if backend_tls == "implicit" else dovecot.ports.imap
        counter[0] += 1
        safe = re.sub(r"[^A-Za-z0-9_.-]", "_", request.node.name)[:60]
        d = workdir / "gw" / f"{safe}-{counter[0]}"
        gw = Gateway(d, pki, GatewayOptions(**kw))
        started.append(gw)
        gw.start()
        return gw

    yield start
    for gw in started:
        gw.stop()


#: options the Dovecot reference can honour as configured in the harness
_DOVECOT_COMPATIBLE = {
    "on_delete": {None, "expunge"},
    "on_retrieve": {None, "seen"},
    "failure_delay": {None, "0s", "0"},
    "idle": {None},
    "backend_timeout": {None},
    "backend_tls": {None, "starttls", "implicit"},
    "mailbox": {None, "INBOX"},
}


@pytest.fixture
def pop3_server(request, target, dovecot_pop3):
    """Factory: pop3_server(**GatewayOptions fields) → the POP3 server under test.
    POP3_TARGET=popgate: a fresh PopGate with those options. POP3_TARGET=dovecot: Dovecot's
    POP3 if it behaves like the options say (on_delete=expunge, …), else the test is skipped."""
    if target == "popgate":
        gw_factory = request.getfixturevalue("gateway")
        return gw_factory

    def dovecot_endpoint(**kw):
        for key, value in kw.items():
            allowed = _DOVECOT_COMPATIBLE.get(key)
            if key == "plain_listener" or value is None:
                continue
            if allowed is None or value not in allowed:
                pytest.skip(f"Dovecot POP3 cannot emulate {key}={value!r}")
        return dovecot_pop3
    return dovecot_endpoint


@pytest.fixture
def fake_backend():
    """Factory: fake_backend(behaviour=..., messages=[...]) → a started FakeImapBackend."""
    started: list[FakeImapBackend] = []

    def start(**kw) -> FakeImapBackend:
        f = FakeImapBackend(**kw).start()
        started.append(f)
        return f

    yield start
    for f in started:
        f.stop()


@pytest.fixture
def dovecot_differs(request, target):
    """Call dovecot_differs("reason") in a test whose assertion is PopGate's spec where Dovecot
    behaves differently: with POP3_TARGET=dovecot the test is then a strict xfail (it must fail)."""
    def mark(reason: str) -> None:
        if target == "dovecot":
            request.node.add_marker(pytest.mark.xfail(reason=f"known Dovecot difference: {reason}",
                                                      strict=True))
    return mark


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """On a failure, attach the gateway's stderr to the report."""
    outcome = yield
    rep = outcome.get_result()
    if rep.when == "call" and rep.failed:
        for gw in getattr(item, "_popgate_started", []):
            rep.sections.append((f"popgate stderr ({gw.workdir.name})", gw.stderr()[-6000:]))
