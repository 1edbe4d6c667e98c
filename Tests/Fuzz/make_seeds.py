#!/usr/bin/env python3
"""Writes the seed corpora in Tests/Fuzz/corpus/<target>/ (committed; rerun after changing an input
format). Crashes the fuzzers found are kept as regression-* files; those this script does not write
(raw crash inputs) it leaves alone."""

import base64
import pathlib

ROOT = pathlib.Path(__file__).resolve().parent
CORPUS = ROOT / "corpus"
CONF = ROOT.parent.parent / "conf" / "popgate.yaml"


def write(target, name, data):
    folder = CORPUS / target
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(data if isinstance(data, bytes) else data.encode())


# --- FuzzSession: operations (see FuzzSession.swift) -------------------------------------------

def client(text):
    data = text.encode() if isinstance(text, str) else text
    out = b""
    while data:  # one operation carries at most 255 bytes
        out += bytes([0x00, min(len(data), 255)]) + data[:255]
        data = data[255:]
    return out


def backend(*reads, chunk=0):
    """The scripted backend answers (op 2, in chunks of `chunk` bytes); `reads` are the bytes its
    answer reads from the input (choices, counts, sizes, bodies)."""
    out = bytes([0x02 | (chunk << 4)])
    for r in reads:
        out += r if isinstance(r, bytes) else bytes([r])
    return out


def body(data):
    return bytes([len(data)]) + data


CONNECT = b"\x03"
IDLE, BACKEND_TIMER, AUTH_DELAY = b"\x04", b"\x14", b"\x24"


def login(user_lines="USER alice\r\nPASS S3cret pw\r\n", caps=0, messages=((0, 10, 0), (1, 3, 1), (2, 200, 0)),
          continuations=0):
    """USER/PASS, connect, greeting, (`continuations` literal continuation requests), login OK, SELECT,
    snapshot of `messages` (uid, size/37, flags)."""
    snapshot = bytes([len(messages)]) + b"".join(bytes(m) for m in messages)
    return (client(user_lines) + CONNECT + backend(caps) + backend() * continuations + backend(0)
            + backend(0, len(messages)) + backend(snapshot))


MESSAGE = (b"Return-Path: <bob@example.org>\r\nFrom: bob@example.org\r\nSubject: dots\r\n\r\n"
           b"line 1\r\n.starts with a dot\r\n..two dots\r\nbare LF\nlone CR\rend\r\n.\r\nlast")


def session(name, data, settings=0):
    """A session seed: the settings byte (see FuzzSession.swift), then the operations."""
    write("FuzzSession", name, bytes([settings]) + data)


FLAG, MOVE, EXPUNGE, KEEP, NO_SEEN, TOP_CHUNKS, BACKEND_STARTTLS = 0, 1, 2, 3, 4, 8, 16
BACKEND_TLS_ESTABLISHED = b"\x36"


def session_seeds():
    # Maildrop.visibleSize traps when the backend's RFC822.SIZEs add up past UInt64 (STAT).
    session("regression-stat-size-overflow", login(messages=((0, 255, 0), (1, 255, 0))) + client("STAT\r\n"))
    session("retr-top-dele-quit", login()
          + client("STAT\r\nLIST\r\nUIDL\r\nLIST 2\r\nUIDL 3\r\nRETR 1\r\n") + backend(0, body(MESSAGE))
          + client("TOP 3 1\r\n") + backend(0, body(MESSAGE), chunk=3)
          + client("DELE 1\r\nDELE 2\r\nRETR 1\r\nQUIT\r\n") + backend(0) + backend(0))
    session("auth-plain-initial-pipelined", client("CAPA\r\n")
          + client("AUTH PLAIN " + base64.b64encode(b"\0alice\0S3cret pw").decode() + "\r\nNOOP\r\nCAPA\r\n")
          + CONNECT + backend(0) + backend(0) + backend(0, 1) + backend(bytes([1, 0, 5, 0]))
          + client("RSET\r\nNOOP\r\nAPOP a b\r\nQUIT\r\n") + backend(0))
    session("auth-plain-continuation-no-sasl-ir", client("AUTH\r\nAUTH PLAIN\r\n")
          + client(base64.b64encode(b"admin\0alice\0pw").decode() + "\r\n")
          + CONNECT + backend(1) + backend() + backend(6) + backend(0) + backend(0, 0)
          + client("STAT\r\nQUIT\r\n"))
    session("login-literal-no-auth-plain", login("USER jörg\r\nPASS päss\r\n".encode(), caps=2, continuations=2)
          + client("RETR 2\r\n") + backend(0, body(b"short\n"), chunk=1) + client("QUIT\r\n") + backend(0))
    session("auth-failure-delay-retry", client("USER alice\r\nPASS wrong\r\n") + CONNECT + backend(0) + backend(7)
          + client("USER alice\r\n") + AUTH_DELAY + client("PASS S3cret pw\r\n") + CONNECT + backend(0) + backend(0)
          + backend(0, 0) + client("LIST\r\nQUIT\r\n"))
    session("garbage-and-timeouts", client(b"HELO\r\n" + b"X" * 600 + b"\r\nUSER\r\nPASS x\r\nRETR 1\r\n\x00\x01\r\n")
          + client("user bob\npass  two words \n") + BACKEND_TIMER + IDLE)
    session("backend-lost-mid-retr", login() + client("RETR 3\r\n")
          + b"\x01" + body(b"* 1 FETCH (UID 7 BODY[] {500}\r\nFrom: x\r\n\r\n") + b"\x16" + client("QUIT\r\n"))
    session("shutdown-drain", login() + client("LIST\r\n") + b"\x08" + client("NOOP\r\n")
          + client("USER a\r\n") + b"\x18")
    session("expunge-trycreate-throttled", login(messages=((0, 1, 0), (1, 2, 0)))
          + client("DELE 1\r\nRETR 2\r\n") + b"\x17" + backend(0, body(b"x" * 120), chunk=7) + b"\x07"
          + client("QUIT\r\n") + backend(0) + backend(15) + backend(0) + backend(0))
    session("move-trycreate-create", login(messages=((0, 1, 0), (1, 2, 0), (2, 3, 0)))
            + client("DELE 1\r\nDELE 3\r\nRETR 2\r\n") + backend(0, body(b"Subject: x\r\n\r\nhi\r\n"))
            + client("QUIT\r\n") + backend(0) + backend(0) + backend(15) + backend(14) + backend(0) + backend(0),
            settings=MOVE)
    session("expunge-no-seen", login(caps=0) + client("DELE 2\r\nRSET\r\nDELE 1\r\nLIST\r\nQUIT\r\n")
            + backend(0) + backend(0), settings=EXPUNGE | NO_SEEN)
    session("top-in-chunks", login(messages=((0, 255, 0), (1, 40, 0)))
            + client("TOP 2 3\r\n") + backend(0, body(MESSAGE)) + backend(0) * 6 + client("TOP 1 0\r\nQUIT\r\n")
            + backend(0, body(b"\x80" * 40)) + backend(0), settings=TOP_CHUNKS)
    session("backend-starttls", client("USER alice\r\nPASS S3cret pw\r\n") + CONNECT + backend(0) + backend(0)
            + BACKEND_TLS_ESTABLISHED + backend(0) + backend(0) + backend(0, 1) + backend(bytes([1, 0, 2, 0]))
            + client("UIDL\r\nQUIT\r\n"), settings=BACKEND_STARTTLS)


# --- FuzzIMAPParser: [mode] [k] [k lengths] [stream] ---------------------------------------------

DOVECOT = (
    b"* OK [CAPABILITY IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE LITERAL+ STARTTLS AUTH=PLAIN] Dovecot (Debian) ready.\r\n"
    b"+ \r\n"
    b"P1 OK [CAPABILITY IMAP4rev1 SASL-IR ID ENABLE IDLE UIDPLUS MOVE LITERAL+] Logged in\r\n"
    b"* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)\r\n"
    b"* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft \\*)] Flags permitted.\r\n"
    b"* 3 EXISTS\r\n* 0 RECENT\r\n* OK [UIDVALIDITY 1732780000] UIDs valid\r\n* OK [UIDNEXT 4] Predicted next UID\r\n"
    b"P2 OK [READ-WRITE] Select completed (0.001 + 0.000 secs).\r\n"
    b"* 1 FETCH (UID 1 RFC822.SIZE 1234 FLAGS (\\Seen))\r\n* 2 FETCH (UID 7 RFC822.SIZE 5 FLAGS ())\r\n"
    b"P3 OK Fetch completed.\r\n"
)
FETCH_BODY = (
    b"* 2 FETCH (UID 7 BODY[] {24}\r\nFrom: a\r\n\r\n)\r\n* 9 EXISTS)\r\n"
    b"* 1 FETCH (UID 3 MODSEQ (12) INTERNALDATE \"17-Jul-1996 02:44:25 -0700\" BODY[] {0}\r\n)\r\n"
    b"* 2 FETCH (UID 7 ENVELOPE (NIL {3}\r\na\r\n (\"x\" \"y\\\"z\")) BODY[]<0> {5}\r\nhello BODY[HEADER] NIL X-Q \"q\")\r\n"
    b"P4 OK Fetch completed.\r\n* VANISHED (EARLIER) 1:3\r\n* LIST (\\HasNoChildren) \".\" {5}\r\nINBOX\r\n"
    b"* 4 EXPUNGE\r\nP5 OK [COPYUID 38505 304,319:320 3956:3958] Done\r\nP6 NO [TRYCREATE] Mailbox doesn't exist: Trash\r\n"
    b"P7 NO [EXPUNGEISSUED] Some messages were expunged\r\n* BYE Server shutting down.\r\n"
)


def imap_seeds():
    write("FuzzIMAPParser", "dovecot-login-select", b"\x00\x00" + DOVECOT)
    write("FuzzIMAPParser", "fetch-bodies-split", b"\x00\x03\x05\x01\x11" + FETCH_BODY)
    write("FuzzIMAPParser", "fetch-bodies-small-limits", b"\x01\x00" + FETCH_BODY)
    # Literal injection: NUL + selector → {N}, {N+}, ~{N} with N at numeric edges.
    write("FuzzIMAPParser", "literal-edges-body", b"\x02\x00" + b"* 1 FETCH (UID 5 BODY[] \x00\x00)\r\n"
          + b"* 2 FETCH (BODY[] \x00\x0c" + b"* 3 FETCH (BODY[]<0> \x00\x06hello)\r\n")
    write("FuzzIMAPParser", "literal-edges-skipped", b"\x03\x01\x02" + b"* LIST () \".\" \x00\x07INBOX\r\n"
          + b"* 1 FETCH (ENVELOPE (\x00\x0aabc) UID 1)\r\n* STATUS \x00\x21x\r\nP1 OK done\r\n")
    # move_to: auto: LIST with special-use attributes and NAMESPACE, as Dovecot, Cyrus and Courier send them.
    write("FuzzIMAPParser", "list-namespace", b"\x00\x02\x09\x21" + b"* NAMESPACE ((\"INBOX.\" \".\")) ((\"user.\" \".\")) NIL\r\n"
          + b"* LIST (\\HasNoChildren \\Trash) \"/\" \"Deleted Messages\"\r\n* LIST (\\Noselect) NIL \"\"\r\n"
          + b"* LIST () \".\" [Gmail].Bin (\"CHILDINFO\" (\"SUBSCRIBED\"))\r\n* NAMESPACE ((\"\" \"/\")(\"#mh/\" \"/\" \"X\" (\"A\" \"B\"))) NIL NIL\r\nP3 OK done\r\n")
    write("FuzzIMAPParser", "literal-plus-and-tilde", b"\x02\x00" + b"* 1 FETCH (BODY[] \x00\x15)\r\n"
          + b"* 1 FETCH (X-GM (\x00\x29\x00\x16)) UID 2)\r\n")


# --- FuzzDotStuffer: [m] [k] [k lengths] [message] -----------------------------------------------

def dotstuffer_seeds():
    write("FuzzDotStuffer", "dot-lines", b"\x01\x00" + MESSAGE)
    write("FuzzDotStuffer", "dot-lines-split", b"\x00\x04\x01\x02\x03\x05" + MESSAGE)
    write("FuzzDotStuffer", "bare-lf-no-final-newline", b"\x03\x02\x07\x01" + b"A: 1\nB: 2\n\nbody\n.\n..\nno end")
    write("FuzzDotStuffer", "header-only", b"\x05\x00" + b"Subject: x\r\nX: .y\r\n")
    write("FuzzDotStuffer", "empty", b"\xff\x00")
    write("FuzzDotStuffer", "cr-starts-body-all-lines", b"\xff\x01\x01" + b"A: b\r\n\rX\r\n.\r\n\r\n")


# --- FuzzSASL: [mode] [payload] -------------------------------------------------------------------

def sasl_seeds():
    write("FuzzSASL", "rfc4616-example", b"\x00" + base64.b64encode(b"\0tim\0tanstaaftanftan"))
    write("FuzzSASL", "authzid", b"\x00" + base64.b64encode(b"admin\0alice\0S3cret pw"))
    write("FuzzSASL", "raw-message-utf8", b"\x01" + "\0jörg\0pässwörd".encode())
    write("FuzzSASL", "raw-message-empty-password", b"\x01\0alice\0")
    write("FuzzSASL", "padding", b"\x00Zg==")
    write("FuzzSASL", "cancel-and-empty", b"\x00=")


# --- FuzzConfig: YAML text -------------------------------------------------------------------------

MINIMAL = """listeners:
  - name: pop3
    address: 127.0.0.1:1110
    tls: none
    allow_plaintext_auth: true
backend:
  address: 127.0.0.1:143
  tls: none
"""


def config_seeds():
    write("FuzzConfig", "popgate.yaml", CONF.read_bytes())
    write("FuzzConfig", "minimal-plaintext.yaml", MINIMAL)
    write("FuzzConfig", "retention-move-timeouts.yaml", MINIMAL + """retention:
  on_retrieve: none
  on_delete: move
  move_to: "Deleted Items"
timeouts:
  idle: 30s
  backend: 500ms
  drain: 0
auth:
  failure_delay: 0s
uidl_format: "%u-%v"
mailbox: "Entw&APw-rfe"
""")
    write("FuzzConfig", "ipv6-unquoted.yaml", "listeners:\n  - name: p\n    address: [::]:110\n    tls: implicit\n"
          "tls:\n  certificate: cert.pem\n  key: key.pem\nbackend:\n  address: \"[::1]:993\"\n")
    write("FuzzConfig", "anchors-and-flow.yaml", "x: &a {name: p, address: '127.0.0.1:1', tls: none}\n"
          "listeners: [*a, *a]\nbackend: {address: h:1, tls: starttls, verify_certificate: false}\nlog: {level: debug}\n")
    write("FuzzConfig", "wrong-types.yaml", "listeners: 5\nbackend:\n  - a\nretention: {on_delete: shred}\nunknown: 1\n")


# --- FuzzProxyHeader: [split count n] [n split lengths] [bytes] ---------------------------------------

V2_SIG = b"\r\n\r\n\x00\r\nQUIT\n"


def proxy_seeds():
    def w(name, data, splits=b""):
        write("FuzzProxyHeader", name, bytes([len(splits)]) + splits + data)
    w("v1-tcp4-then-capa", b"PROXY TCP4 192.0.2.1 198.51.100.2 50812 995\r\nCAPA\r\n")
    w("v1-tcp6-bytewise", b"PROXY TCP6 2001:db8::1 ::ffff:198.51.100.2 1 65535\r\n", b"\x01")
    w("v1-unknown-longest", b"PROXY UNKNOWN " + b"ffff:" * 7 + b"ffff " + b"ffff:" * 7 + b"ffff 65535 65535\r\n")
    w("v1-unknown-short", b"PROXY UNKNOWN\r\n\x16\x03\x01")
    w("v2-tcp4-hello", V2_SIG + b"\x21\x11\x00\x0c" + bytes([192, 0, 2, 1, 198, 51, 100, 2, 0xC6, 0x7C, 3, 0xE3])
      + b"\x16\x03\x01\x00\x05hello", b"\x03\x07")
    w("v2-tcp6-tlv", V2_SIG + b"\x21\x21\x00\x2b" + bytes(range(32)) + b"\x00\x01\x00\x02" + b"\x01\x00\x04pop3")
    w("v2-local", V2_SIG + b"\x20\x00\x00\x00USER a\r\n")
    w("v2-unix", V2_SIG + b"\x21\x31\x00\xd8" + b"/run/a.sock".ljust(108, b"\0") + b"/run/b.sock".ljust(108, b"\0"))
    w("garbage", b"USER alice\r\n")


if __name__ == "__main__":
    session_seeds()
    imap_seeds()
    dotstuffer_seeds()
    sasl_seeds()
    config_seeds()
    proxy_seeds()
