#!/usr/bin/env python3
"""Concatenate the messages written by gen_messages.py into one mbox file,
the source imaptest's APPEND commands read (`mbox=FILE`).

usage: make_mbox.py MSGDIR OUTFILE

mboxrd-style: a "From " separator line before every message, LF line
endings (imaptest turns them back into CRLF), body lines starting with
">*From " quoted with one more ">". Message-IDs get an "imaptest." prefix:
imaptest remembers what it saw of a message by Message-ID across users and
mailboxes, and the delivered copies of the same messages differ (trace
headers such as Received or Return-Path), which it would report as errors.
"""

import re
import sys
from email.utils import parsedate_to_datetime
from pathlib import Path

FROM_LINE = re.compile(rb"^>*From ")
MESSAGE_ID = re.compile(rb"^(Message-ID:\s*<)", re.IGNORECASE)


def main():
    src, out = Path(sys.argv[1]), Path(sys.argv[2])
    count = 0
    with out.open("wb") as f:
        for p in sorted(src.glob("*.eml")):
            head, sep, body = p.read_bytes().replace(b"\r\n", b"\n").partition(b"\n\n")
            head_lines = [MESSAGE_ID.sub(rb"\1imaptest.", line) for line in head.split(b"\n")]
            date = None
            for line in head_lines:
                if line.lower().startswith(b"date:"):
                    try:
                        date = parsedate_to_datetime(line[5:].decode().strip())
                    except (TypeError, ValueError):
                        pass
            stamp = date.strftime("%a %b %d %H:%M:%S %Y") if date else "Thu Jan  1 00:00:00 2026"
            f.write(f"From bench@example.test {stamp}\n".encode())
            lines = head_lines + ([b""] + body.split(b"\n") if sep else [])
            if lines and lines[-1] == b"":
                lines.pop()  # the message's final line break
            for line in lines:
                f.write((b">" + line if FROM_LINE.match(line) else line) + b"\n")
            f.write(b"\n")
            count += 1
    print(f"{count} messages in {out.name}")


if __name__ == "__main__":
    main()
