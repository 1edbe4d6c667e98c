"""The message corpus, made by the tests (deterministic, no files shipped).

Each entry is raw bytes as APPENDed to the backend. Note: Dovecot stores mail
with LF and serves BODY[] with CRLF, so bare-LF input reaches a POP3 client as
CRLF either way; the fake backend serves bytes exactly as given.
"""
from __future__ import annotations

import base64
import random

BIG_SEED = 20241128
BIG_RAW_SIZE = 18_750_000          # → about 25.3 MB of base64 text with CRLFs


def _h(subject: str, extra: str = "") -> bytes:
    return (f"From: Alice <alice@example.net>\r\nTo: Bob <bob@example.net>\r\n"
            f"Subject: {subject}\r\nDate: Thu, 28 Nov 2024 10:00:00 +0000\r\n"
            f"Message-ID: <{subject.replace(' ', '-')}@corpus.popgate.test>\r\n{extra}").encode()


def small() -> dict[str, bytes]:
    """Named edge-case messages, in a fixed order (message numbers follow it)."""
    body_lines = b"".join(b"body line %d\r\n" % i for i in range(1, 11))
    return {
        # RFC 1939 §3 stuffing: lines starting with "." incl. "..", ".x", and "." alone
        "dots": _h("dots") + b"\r\n.leading dot\r\n..two dots\r\n.\r\nmiddle\r\n...\r\n. space\r\nend\r\n",
        # a line that is just "." as the LAST line (looks like a terminator if unstuffed)
        "just_dot": _h("just dot") + b"\r\nfirst\r\n.\r\n",
        "no_final_newline": _h("no final newline") + b"\r\nline one\r\nlast line without CRLF",
        "bare_lf": _h("bare lf").replace(b"\r\n", b"\n") + b"\nbare\nLF\n.dot\nline endings\n",
        "utf8_8bit": _h("8bit").replace(b"Subject: 8bit", "Subject: Grüße aus Köln – ½ € ✓".encode())
        + b"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
        + "Ünïcödé bödy: 日本語テキスト, emoji 📬, naïve café.\r\n.Ø leading dot\r\n".encode(),
        "long_line": _h("long line") + b"\r\n" + b"L" * 1500 + b"\r\nshort\r\n." + b"x" * 1200 + b"\r\n",
        "empty_body": _h("empty body") + b"\r\n",
        "header_only": _h("header only"),       # no blank line at all
        "ten_lines": _h("ten lines") + b"\r\n" + body_lines,
        "ten_lines_no_eol": _h("ten lines no eol") + b"\r\n" + body_lines.rstrip(b"\r\n"),
        "blank_lines": _h("blank lines") + b"\r\n\r\n\r\nafter two blank lines\r\n\r\n",
    }


def big(raw_size: int = BIG_RAW_SIZE, seed: int = BIG_SEED) -> bytes:
    """A multipart message with a base64 attachment, about 25 MB, always the same bytes."""
    data = random.Random(seed).randbytes(raw_size)
    b64 = base64.encodebytes(data).replace(b"\n", b"\r\n")
    return (_h("big attachment",
               'MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="XXpopgateXX"\r\n')
            + b"\r\n--XXpopgateXX\r\nContent-Type: text/plain\r\n\r\nSee attachment.\r\n"
            + b"--XXpopgateXX\r\nContent-Type: application/octet-stream\r\n"
            + b"Content-Transfer-Encoding: base64\r\n"
            + b'Content-Disposition: attachment; filename="random.bin"\r\n\r\n'
            + b64 + b"--XXpopgateXX--\r\n")


def bulk(n: int = 2000) -> list[bytes]:
    """n small distinct messages of varying size (some with dot lines)."""
    out = []
    for i in range(n):
        body = b"".join(b"message %d line %d\r\n" % (i, j) for j in range(i % 7))
        if i % 13 == 0:
            body += b".dot line\r\n"
        out.append(_h(f"bulk {i}") + b"\r\n" + body)
    return out
