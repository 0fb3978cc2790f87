#!/usr/bin/env python3
"""Deliver every message of a directory to every user over LMTP (one
recipient per transaction, so the replies are unambiguous).

usage: lmtp_fill.py HOST PORT MSGDIR ADDRESS...
"""

import smtplib
import sys
from pathlib import Path


def main():
    host, port, msgdir, users = sys.argv[1], int(sys.argv[2]), Path(sys.argv[3]), sys.argv[4:]
    msgs = [p.read_bytes() for p in sorted(msgdir.glob("*.eml"))]
    with smtplib.LMTP(host, port) as c:
        c.ehlo("fill.bench.test")  # LHLO for smtplib.LMTP
        for user in users:
            for m in msgs:
                refused = c.sendmail("fill@remote.test", [user], m)
                if refused:
                    sys.exit(f"LMTP refused {user}: {refused}")
    print(f"{len(msgs)} messages x {len(users)} users delivered over LMTP")


if __name__ == "__main__":
    main()
