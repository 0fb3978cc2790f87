#!/usr/bin/env python3
"""Turn one imaptest run into a JSON result for summarize.py.

usage: imaptest_parse.py STDOUT STDERR RESULTS SECS > result.json

STDOUT   imaptest's standard output: every second one row of per-command
         counts (commands that got their tagged reply in that second), a
         header of command names every ten rows, and at the end "Totals:"
         with the header and the count of every command over the whole run.
STDERR   its standard error: "Error: ..." lines (imaptest checks every reply
         against the state it tracks) and fatal errors.
RESULTS  the file of its `output=FILE` option: a header, then every second,
         per command, three tab-separated numbers: count, timed count, sum of
         the timed commands' durations in milliseconds. The per-command
         averages come from there (whole run) rather than from the
         "ms/cmd avg" line, which only covers the interval since imaptest
         last printed it (with `output=`, the last second; without, the
         last ten) and is rounded down to whole milliseconds.
SECS     the run's `secs=` value: rows past it (clients logging out when
         imaptest stops them) are left out of the rates.
"""

import json
import re
import sys
from pathlib import Path

COUNT_ROW = re.compile(r"^\s*((?:\d+\s+)+)\s*\d+/\s*\d+")  # counts, then "running/total clients"
INTERVAL = 10  # seconds averaged for the "start" and "end" rates


def parse_stdout(text):
    names, rows, totals = [], [], None
    lines = [l.replace("\x1b[1m", "").replace("\x1b[0m", "") for l in text.splitlines()]  # bold on a tty
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.strip() == "Totals:":
            # header (names), percentages (one or two lines), counts
            j = i + 1
            tnames = lines[j].split() if j < len(lines) else []
            for k in range(j + 1, len(lines)):
                cells = lines[k].split()
                if cells and all(c.isdigit() for c in cells) and len(cells) == len(tnames):
                    totals = dict(zip(tnames, map(int, cells)))
                    break
            break
        m = COUNT_ROW.match(line)
        if m:
            cells = [int(c) for c in m.group(1).split()]
            if names and len(cells) == len(names):
                rows.append(cells)
        else:
            cells = line.split()
            if cells and all(re.fullmatch(r"[A-Z][A-Za-z0-9]{3}", c) for c in cells):
                names = cells
        i += 1
    return names, rows, totals


def parse_results(path, names):
    """Sum count / timed count / msecs per command over every row of output=FILE."""
    try:
        lines = Path(path).read_text().splitlines()
    except OSError:
        return None
    if len(lines) < 2:
        return None
    sums = [[0, 0] for _ in names]
    for line in lines[1:]:
        cells = line.split("\t")
        if len(cells) != 3 * len(names):
            continue
        for k in range(len(names)):
            sums[k][0] += int(cells[3 * k + 1])
            sums[k][1] += int(cells[3 * k + 2])
    return {n: (s[1] / s[0] if s[0] else None) for n, s in zip(names, sums)}


def main():
    out_path, err_path, res_path, secs = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    out = Path(out_path).read_text(errors="replace") if Path(out_path).exists() else ""
    err = Path(err_path).read_text(errors="replace") if Path(err_path).exists() else ""
    names, rows, totals = parse_stdout(out)
    rows = rows[:secs]
    per_second = [sum(r) for r in rows]

    def mean(v):
        return sum(v) / len(v) if v else None

    avg_ms = parse_results(res_path, names) if names else None
    errors = [l for l in (out + "\n" + err).splitlines() if re.search(r"\b(Error|Fatal|Panic):", l)]
    n = min(INTERVAL, len(per_second))
    result = {
        "seconds": len(per_second),
        "commands": names,
        "totals": totals,
        "total_commands": sum(totals.values()) if totals else None,
        "cmds_per_second": mean(per_second),
        "start_cmds_per_second": mean(per_second[:n]),
        "end_cmds_per_second": mean(per_second[-n:]),
        "per_second_by_command": {nm: mean([r[k] for r in rows]) for k, nm in enumerate(names)},
        "avg_ms": avg_ms,
        "errors": len(errors),
        "first_errors": errors[:5],
    }
    json.dump(result, sys.stdout, indent=1)
    print()
    # A run without count rows, without Totals or without a single completed
    # command (e.g. connect() refused: imaptest still exits 0) is a failure.
    sys.exit(0 if per_second and result["total_commands"] else 1)


if __name__ == "__main__":
    main()
