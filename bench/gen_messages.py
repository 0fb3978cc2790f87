#!/usr/bin/env python3
"""Generate the benchmark mailbox: M messages (CRLF line endings) of a size
mix between about 2 KB and 200 KB, every 10th one a multipart/mixed message
with a base64 attachment. Deterministic (fixed seed), so every server and
every run gets the very same bytes.

usage: gen_messages.py OUTDIR COUNT
"""

import base64
import random
import sys
from email.utils import formatdate
from pathlib import Path

WORDS = (
    "meeting report invoice budget quarterly project update lunch review "
    "release schedule travel contract draft notes agenda summary bench "
    "server migration backup holiday question answer follow-up"
).split()

# Body sizes in bytes, weighted towards small mail like a real mailbox.
SIZES = [2048] * 6 + [4096] * 5 + [8192] * 4 + [16384] * 3 + [32768] * 2 + [65536, 131072, 204800]


def text_body(rng, size):
    lines = []
    n = 0
    while n < size:
        line = " ".join(rng.choice(WORDS) for _ in range(rng.randint(6, 12)))
        lines.append(line)
        n += len(line) + 2
    return "\r\n".join(lines) + "\r\n"


def message(rng, i):
    size = rng.choice(SIZES)
    subject = f"{rng.choice(WORDS)} {rng.choice(WORDS)} #{i}"
    if i % 10 == 0:
        subject = "bench " + subject  # some hits for UID SEARCH SUBJECT bench
    date = formatdate(1700000000 + i * 3600)
    head = (
        f"From: Sender {i % 7} <sender{i % 7}@remote.test>\r\n"
        f"To: Bench Users <users@example.test>\r\n"
        f"Subject: {subject}\r\n"
        f"Date: {date}\r\n"
        f"Message-ID: <gen{i}.{size}@bench.example.test>\r\n"
        f"MIME-Version: 1.0\r\n"
    )
    if i % 10 == 3:
        att = bytes(rng.getrandbits(8) for _ in range(max(size - 2048, 8192)))
        b64 = base64.encodebytes(att).decode().replace("\n", "\r\n")
        body = text_body(rng, 1024)
        return (
            head
            + 'Content-Type: multipart/mixed; boundary="b-{0}"\r\n\r\n'
            "This is a multi-part message in MIME format.\r\n"
            "--b-{0}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{1}"
            "--b-{0}\r\nContent-Type: application/octet-stream; name=\"data{0}.bin\"\r\n"
            "Content-Disposition: attachment; filename=\"data{0}.bin\"\r\n"
            "Content-Transfer-Encoding: base64\r\n\r\n{2}"
            "--b-{0}--\r\n".format(i, body, b64)
        ).encode()
    return (head + "Content-Type: text/plain; charset=utf-8\r\n\r\n" + text_body(rng, size)).encode()


def main():
    out, count = Path(sys.argv[1]), int(sys.argv[2])
    out.mkdir(parents=True, exist_ok=True)
    rng = random.Random(7)
    total = 0
    for i in range(1, count + 1):
        m = message(rng, i)
        total += len(m)
        (out / f"{i:05d}.eml").write_bytes(m)
    print(f"{count} messages, {total} bytes ({total / count / 1024:.1f} KB average)")


if __name__ == "__main__":
    main()
