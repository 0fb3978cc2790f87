#!/usr/bin/env bash
# Run every fuzz target for SECS seconds each (default 30); seeds: the MIME
# corpus for `mime`, small hand-written inputs for the protocol parsers.
# Needs cargo-fuzz (`cargo install cargo-fuzz --locked`); RUSTC_BOOTSTRAP=1
# gives the sanitizer flags it needs on the stable toolchain.
# A crash leaves its input in fuzz/artifacts/TARGET/ and fails the run.
set -euo pipefail
cd "$(dirname "$0")"
SECS=${1:-30}
export RUSTC_BOOTSTRAP=1
seed() { mkdir -p "corpus/$1"; printf '%b' "$2" > "corpus/$1/seed-$3"; }
seed smtp_command 'EHLO client.example\r\n' 1
seed smtp_command 'MAIL FROM:<a@b.example> SIZE=100 BODY=8BITMIME RET=HDRS ENVID=x\r\n' 2
seed smtp_command 'RCPT TO:<c@d.example> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;c@d.example\r\n' 3
seed smtp_command 'BDAT 1000 LAST\r\n' 4
seed smtp_data 'Subject: x\r\n\r\n..dot\r\nbare\rcr\n.\r\n' 1
seed imap_command 'a1 LOGIN {5}\r\nalice "pw"\r\n' 1
seed imap_command 'a2 UID FETCH 1:* (FLAGS BODY.PEEK[HEADER.FIELDS (FROM)]<0.100> BINARY[1.2])\r\n' 2
seed imap_command 'a3 SEARCH CHARSET UTF-8 OR (FROM "x" SINCE 1-Jan-2020) NOT TEXT {3+}\r\nabc\r\n' 3
seed imap_command 'a4 LIST (SUBSCRIBED) "" ("*" "%/x") RETURN (CHILDREN STATUS (MESSAGES))\r\n' 4
seed imap_command 'a5 APPEND INBOX (\\Seen) "01-Jan-2020 00:00:00 +0000" ~{3}\r\nabc\r\n' 5
seed pop3_command 'TOP 1 10\r\n' 1
seed pop3_command 'AUTH PLAIN AGFsaWNlAHB3\r\n' 2
seed sasl '\x00\x00alice\x00pw' 1
seed sasl '\x02n,a=alice@x,\x01auth=Bearer tok\x01\x01' 2
seed jmap_request '{"using":["urn:ietf:params:jmap:core"],"methodCalls":[["Email/query",{"accountId":"A1"},"0"],["Email/get",{"#ids":{"resultOf":"0","name":"Email/query","path":"/ids/*"}},"1"]]}' 1
seed mime 'Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nx\r\n--b--\r\n' 1
seed spam 'From: "a@b.test" <x@y.test>\r\nSubject: HELLO THERE FRIEND\r\nContent-Type: text/html; charset=gb2312\r\n\r\n<a href="http://192.0.2.1/">www.paypal.com</a> \xe4\xbd\xa0\xe5\xa5\xbd\r\n' 1
targets=$(cargo fuzz list)
cargo fuzz build -O
for t in $targets; do
    extra=()
    [ "$t" = mime ] && extra=(../crates/mail/tests/corpus/messages)
    echo "== $t (${SECS}s)"
    cargo fuzz run -O "$t" "corpus/$t" "${extra[@]}" -- -max_total_time="$SECS" -timeout=10 -rss_limit_mb=2048 \
        -max_len=262144 -print_final_stats=1 2>&1 | grep -E "^(stat::number_of_executed_units|stat::peak_rss_mb)|ERROR|SUMMARY|panicked" || true
    if ls "artifacts/$t"/crash-* "artifacts/$t"/oom-* "artifacts/$t"/timeout-* >/dev/null 2>&1; then
        echo "fuzz target $t found a failing input: fuzz/artifacts/$t/" >&2
        exit 1
    fi
done
