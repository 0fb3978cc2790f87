#!/usr/bin/env bash
# bench/compare.sh — run the same workloads against Letterbox and against
# the classic pair Postfix (SMTP) + Dovecot (IMAP, POP3, LMTP) on this
# machine, and write bench/RESULTS.md. See bench/README.md.
#
# Private instances only: every server runs from a temporary directory on
# loopback high ports; the system-wide postfix/dovecot services are never
# started (and are stopped and disabled if installing the packages started
# them). Needs root (package installation, Dovecot and Postfix masters).

set -euo pipefail

usage() {
    cat <<'EOF'
usage: bench/compare.sh [--quick] [--rounds N] [--idle-connections N] [--out FILE] [--keep] [--build]
                        [--bin-dir DIR] [--imaptest PATH] [--imaptest-secs N]
                        [--search-messages N] [--search-iterations K]

  --quick                 one short round of everything (smoke test, ~3 minutes);
                          writes bench/RESULTS-quick.md unless --out is given
  --rounds N              rounds of every workload (default 3; 1 with --quick)
  --idle-connections N    IDLE connections held (default 2000; 200 with --quick)
  --out FILE              where to write the report (default bench/RESULTS.md)
  --keep                  keep the temporary directory (configs, logs, JSON)
  --build                 run `cargo build --release` of letterbox, letterbox-bench and the store
                          example query_bench first (done anyway when target/release binaries are missing)
  --bin-dir DIR           take letterbox, letterbox-bench and examples/query_bench from DIR
                          (default: this repository's target/release; never built with --bin-dir)
  --no-sysctl             do not raise fs.inotify.max_user_instances for Dovecot's IDLE
  --dovecot-scheme S      password scheme of Dovecot's passwd-file (default PLAIN; e.g. ARGON2ID,
                          SHA512-CRYPT: hashed once with `doveadm pw -s S`)
  --imaptest PATH         Dovecot's imaptest binary (default: $IMAPTEST, else `imaptest` in PATH);
                          when missing or not runnable, the imaptest workloads are skipped
  --imaptest-secs N       seconds of every imaptest run (default 60; 10 with --quick)
  --search-messages N     messages in the search-at-scale mailbox (default 100000; 2000 with --quick;
                          0 skips the search workload)
  --search-iterations K   times each search runs per round (default 10; 5 with --quick)
EOF
}

QUICK=0
KEEP=0
BUILD=0
SYSCTL=1
ROUNDS=""
IDLE_N=""
OUT=""
DC_SCHEME=PLAIN
IMAPTEST_BIN=${IMAPTEST:-}
IMAPTEST_SECS=""
SEARCH_N=""
SEARCH_ITERS=""
BIN_DIR=""
while [[ $# -gt 0 ]]; do
    case "$1" in
        --quick) QUICK=1 ;;
        --keep) KEEP=1 ;;
        --build) BUILD=1 ;;
        --no-sysctl) SYSCTL=0 ;;
        --rounds) ROUNDS=${2:?--rounds needs a number}; shift ;;
        --idle-connections) IDLE_N=${2:?--idle-connections needs a number}; shift ;;
        --out) OUT=${2:?--out needs a file}; shift ;;
        --dovecot-scheme) DC_SCHEME=${2:?--dovecot-scheme needs a scheme}; shift ;;
        --imaptest) IMAPTEST_BIN=${2:?--imaptest needs a path}; shift ;;
        --imaptest-secs) IMAPTEST_SECS=${2:?--imaptest-secs needs a number}; shift ;;
        --search-messages) SEARCH_N=${2:?--search-messages needs a number}; shift ;;
        --search-iterations) SEARCH_ITERS=${2:?--search-iterations needs a number}; shift ;;
        --bin-dir) BIN_DIR=${2:?--bin-dir needs a directory}; shift ;;
        -h | --help) usage; exit 0 ;;
        *) echo "compare.sh: unknown argument $1" >&2; usage >&2; exit 2 ;;
    esac
    shift
done

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH=$ROOT/bench
BIN_DIR_GIVEN=0
if [[ -n $BIN_DIR ]]; then
    BIN_DIR_GIVEN=1
    BIN_DIR=$(cd "$BIN_DIR" 2>/dev/null && pwd) || { echo "compare.sh: --bin-dir: no such directory" >&2; exit 2; }
else
    BIN_DIR=$ROOT/target/release
fi
LB=$BIN_DIR/letterbox
LBB=$BIN_DIR/letterbox-bench
QB=$BIN_DIR/examples/query_bench  # store-level query timings (crates/store/examples/query_bench.rs)
# The checkout the binaries were built from (for the commit in the report).
SRC_ROOT=$(git -C "$BIN_DIR" rev-parse --show-toplevel 2>/dev/null || echo "$ROOT")

# ---- workload sizes ---------------------------------------------------------
# Normal mode is sized to finish in well under 20 minutes on a 2-core machine,
# except the search-at-scale workload (100,000 messages), which adds its own
# fill and scan time (bench/README.md, "Search at scale").
USERS=10            # user1..user10@example.test on every server
CONNS=8             # concurrent IMAP / POP3 clients
PASSWORD=password   # every user's password
if [[ $QUICK == 1 ]]; then
    ROUNDS=${ROUNDS:-1}
    IDLE_N=${IDLE_N:-200}
    MSGS=30         # messages in every mailbox before the IMAP/POP3 workloads
    IMAP_SECS=5
    POP3_SECS=5
    SMTP_CONNS=4
    SMTP_MSGS=10    # per connection
    SMTP_SOURCE_MSGS=200
    IDLE_SAMPLES=5
    IMAPTEST_SECS=${IMAPTEST_SECS:-10}
    SEARCH_N=${SEARCH_N:-2000}
    SEARCH_ITERS=${SEARCH_ITERS:-5}
    OUT=${OUT:-$BENCH/RESULTS-quick.md}
else
    ROUNDS=${ROUNDS:-3}
    IDLE_N=${IDLE_N:-2000}
    MSGS=100
    IMAP_SECS=15
    POP3_SECS=15
    SMTP_CONNS=8
    SMTP_MSGS=50
    SMTP_SOURCE_MSGS=4000
    IDLE_SAMPLES=20
    IMAPTEST_SECS=${IMAPTEST_SECS:-60}
    SEARCH_N=${SEARCH_N:-100000}
    SEARCH_ITERS=${SEARCH_ITERS:-10}
    OUT=${OUT:-$BENCH/RESULTS.md}
fi
SMTP_SIZES=2048,8192,32768,204800
IMAPTEST_CLIENTS=10 # imaptest clients=; users user1..user$USERS, picked at random per session
[[ $IMAPTEST_SECS =~ ^[1-9][0-9]*$ ]] || { echo "compare.sh: --imaptest-secs needs a positive number" >&2; exit 2; }
[[ $SEARCH_N =~ ^[0-9]+$ ]] || { echo "compare.sh: --search-messages needs a number" >&2; exit 2; }
[[ $SEARCH_ITERS =~ ^[1-9][0-9]*$ ]] || { echo "compare.sh: --search-iterations needs a positive number" >&2; exit 2; }
SEARCH_BOX=bench-search  # mailbox of user1 that letterbox-bench search fills and searches
QUERY_ITERS=50           # query_bench iterations of each store-level query
BENCH_USER=lbbench  # system user owning Dovecot's mail (Dovecot refuses uid 0)

log() { printf '[compare %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "FATAL: $*"; exit 1; }

[[ $EUID -eq 0 ]] || die "needs root (installs packages, runs Dovecot and Postfix masters)"
command -v python3 >/dev/null || die "python3 is needed"

START_EPOCH=$(date +%s)

# ---- cleanup ------------------------------------------------------------------
TMP=""
LB_PID=""
DC_PID=""
PF_STARTED=0
PFDIR=""
PFQUEUE=""
DCCONF=""
SYSCTL_OLD=""

# Every process descending from $1 (children first listed last).
descendants() {
    local kids k
    kids=$(ps -o pid= --ppid "$1" 2>/dev/null || true)
    for k in $kids; do
        echo "$k"
        descendants "$k"
    done
}

# Send TERM to one pid, wait up to $2 seconds, then KILL.
stop_pid() {
    local pid=$1 secs=${2:-15} i
    kill -0 "$pid" 2>/dev/null || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < secs * 10; i++)); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
}

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    set +e
    if [[ -n $LB_PID ]]; then
        log "stopping Letterbox (pid $LB_PID)"
        stop_pid "$LB_PID" 20
        wait "$LB_PID" 2>/dev/null
    fi
    if [[ $PF_STARTED == 1 ]]; then
        log "stopping private Postfix"
        local pfpid="" pfkids=""
        [[ -f $PFQUEUE/pid/master.pid ]] && pfpid=$(tr -d ' ' <"$PFQUEUE/pid/master.pid")
        [[ -n $pfpid ]] && pfkids=$(descendants "$pfpid")
        timeout 30 postfix -c "$PFDIR" stop >/dev/null 2>&1
        [[ -n $pfpid ]] && stop_pid "$pfpid" 10
        for k in $pfkids; do stop_pid "$k" 2; done
    fi
    if [[ -n $DC_PID ]]; then
        log "stopping private Dovecot (master pid $DC_PID)"
        local dckids
        dckids=$(descendants "$DC_PID")
        stop_pid "$DC_PID" 20
        for k in $dckids; do stop_pid "$k" 2; done
    fi
    if [[ -n $SYSCTL_OLD ]]; then
        echo "$SYSCTL_OLD" >/proc/sys/fs/inotify/max_user_instances
        log "fs.inotify.max_user_instances restored to $SYSCTL_OLD"
    fi
    if [[ -n $TMP && -d $TMP ]]; then
        if [[ $KEEP == 1 ]]; then
            log "kept $TMP"
        else
            rm -rf "$TMP"
        fi
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT
trap 'log "terminated"; exit 143' TERM

# ---- packages -----------------------------------------------------------------
install_peer_packages() {
    local pkgs=(dovecot-core dovecot-imapd dovecot-pop3d dovecot-lmtpd postfix) missing=() p
    for p in "${pkgs[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
    done
    [[ ${#missing[@]} -eq 0 ]] && return 0
    log "installing ${missing[*]}"
    echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
    if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"; then
        apt-get update -q
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
    fi
    # The packages may have started (and enabled) the system-wide services:
    # this benchmark runs private instances only, so stop and disable those.
    local svc
    for svc in dovecot postfix; do
        if [[ -d /run/systemd/system ]]; then
            systemctl stop "$svc" >/dev/null 2>&1 || true
            systemctl disable "$svc" >/dev/null 2>&1 || true
        else
            service "$svc" stop >/dev/null 2>&1 || true
            update-rc.d "$svc" disable >/dev/null 2>&1 || true
        fi
    done
    log "system-wide dovecot/postfix services stopped and disabled"
}

# ---- build --------------------------------------------------------------------
if [[ $BIN_DIR_GIVEN == 1 ]]; then
    [[ $BUILD == 0 ]] || die "--build and --bin-dir exclude each other (--bin-dir binaries are never rebuilt)"
    [[ -x $LB && -x $LBB ]] || die "--bin-dir: letterbox and letterbox-bench must both be there"
elif [[ $BUILD == 1 || ! -x $LB || ! -x $LBB || ($SEARCH_N -gt 0 && ! -x $QB) ]]; then
    log "building release binaries"
    # One cargo at a time on this machine: share the lock other builds take.
    cargo_cmd=(cargo build --release -p letterbox -p letterbox-bench -p letterbox-store --bins --example query_bench)
    [[ -x /usr/bin/flock ]] && cargo_cmd=(/usr/bin/flock "${CARGO_LOCK:-/tmp/letterbox-cargo.lock}" "${cargo_cmd[@]}")
    (cd "$ROOT" && "${cargo_cmd[@]}")
fi
install_peer_packages

# imaptest (Dovecot's IMAP stress tester) is not packaged: build it yourself
# (bench/README.md). Without a runnable binary its workloads are skipped and
# the report says why; the rest of the run is unaffected.
IMAPTEST_SKIP=""
[[ -n $IMAPTEST_BIN ]] || IMAPTEST_BIN=$(command -v imaptest 2>/dev/null || true)
if [[ -z $IMAPTEST_BIN ]]; then
    IMAPTEST_SKIP="no imaptest binary given (--imaptest PATH or IMAPTEST=PATH) and none in PATH"
elif [[ ! -x $IMAPTEST_BIN ]]; then
    IMAPTEST_SKIP="the imaptest binary given (${IMAPTEST_BIN##*/}) was not found or is not executable"
elif ! "$IMAPTEST_BIN" --help >/dev/null 2>&1; then
    IMAPTEST_SKIP="\`${IMAPTEST_BIN##*/} --help\` failed (missing libraries? it links against Dovecot's libdovecot.so)"
fi
if [[ -n $IMAPTEST_SKIP ]]; then
    log "imaptest workloads will be skipped: $IMAPTEST_SKIP (${IMAPTEST_BIN:-no path})"
else
    IMAPTEST_BIN=$(readlink -f "$IMAPTEST_BIN")
    log "imaptest: $IMAPTEST_BIN, ${IMAPTEST_SECS}s per run"
fi

if ! id "$BENCH_USER" >/dev/null 2>&1; then
    useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin "$BENCH_USER"
    log "created system user $BENCH_USER (owner of Dovecot's benchmark mail)"
fi
BUID=$(id -u "$BENCH_USER")
BGID=$(id -g "$BENCH_USER")
id dovecot >/dev/null 2>&1 || die "user dovecot missing (dovecot-core should have created it)"
id dovenull >/dev/null 2>&1 || die "user dovenull missing (dovecot-core should have created it)"

# ---- temp dir, ports ------------------------------------------------------------
TMP=$(mktemp -d /tmp/lbbench.XXXXXX)
chmod 755 "$TMP" # Dovecot's and Postfix's unprivileged processes traverse it
RES=$TMP/results
mkdir -p "$RES/letterbox" "$RES/peer"
: >"$RES/commands.txt"
: >"$RES/failures.txt"
log "working in $TMP"

# Seven distinct free loopback ports (sockets held open together while picking).
read -r P_LB_SMTP P_LB_IMAP P_LB_POP3 P_PF_SMTP P_DC_IMAP P_DC_POP3 P_DC_LMTP < <(python3 - <<'EOF'
import socket
socks = []
for _ in range(7):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
EOF
)

wait_port() { # port, seconds, what
    local i
    for ((i = 0; i < $2 * 10; i++)); do
        if python3 -c "import socket,sys; socket.create_connection(('127.0.0.1', int(sys.argv[1])), 1).close()" "$1" 2>/dev/null; then
            return 0
        fi
        sleep 0.1
    done
    die "$3 is not listening on 127.0.0.1:$1"
}

if [[ $SYSCTL == 1 ]]; then
    cur=$(cat /proc/sys/fs/inotify/max_user_instances)
    want=$((IDLE_N + 512))
    if ((cur < want)); then
        # Dovecot's IDLE uses one inotify instance per imap process, all under
        # one uid here; past the limit it falls back to polling every 30 s.
        if echo "$want" >/proc/sys/fs/inotify/max_user_instances 2>/dev/null; then
            SYSCTL_OLD=$cur
            log "fs.inotify.max_user_instances raised $cur -> $want for the run (restored on exit)"
        else
            log "WARNING: could not raise fs.inotify.max_user_instances ($cur); Dovecot IDLE may poll"
        fi
    fi
fi

# ---- messages -------------------------------------------------------------------
log "generating $MSGS messages"
MSG_INFO=$(python3 "$BENCH/gen_messages.py" "$TMP/msgs" "$MSGS")
log "$MSG_INFO"
if [[ -z $IMAPTEST_SKIP ]]; then
    # imaptest's APPENDs take their messages from one mbox file: the same ones.
    python3 "$BENCH/make_mbox.py" "$TMP/msgs" "$TMP/imaptest.mbox" >/dev/null
fi
ADDRS=()
for ((u = 1; u <= USERS; u++)); do ADDRS+=("user$u@example.test"); done

# ---- Letterbox ----------------------------------------------------------------
LBCONF=$TMP/letterbox.toml
LBDATA=$TMP/letterbox-data
cat >"$LBCONF" <<EOF
hostname = "localhost"

[auth]
allow_plaintext = true          # TLS is off for every server in this benchmark
failure_delay_ms = 0
max_failures_per_ip = 1000000
max_failures_per_account = 1000000

[limits]
max_connections = 20000
max_connections_per_ip = 20000

[listeners]
smtp = "127.0.0.1:$P_LB_SMTP"
submission = ""
submissions = ""
imap = "127.0.0.1:$P_LB_IMAP"
imaps = ""
pop3 = "127.0.0.1:$P_LB_POP3"
pop3s = ""
http = ""
https = ""
EOF
lbcli() { "$LB" --config "$LBCONF" --data "$LBDATA" "$@" 2>>"$TMP/letterbox-cli.log"; }
log "Letterbox: domain and $USERS users (argon2id hashing)"
lbcli domain add example.test >/dev/null
for a in "${ADDRS[@]}"; do
    echo "$PASSWORD" | lbcli user add "$a" >/dev/null
done
log "Letterbox: filling mailboxes with letterbox deliver ($MSGS x $USERS)"
t0=$(date +%s.%N)
for a in "${ADDRS[@]}"; do
    for m in "$TMP"/msgs/*.eml; do
        lbcli deliver "$a" <"$m" >/dev/null
    done
done
LB_FILL_SECS=$(python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.1f}')" "$t0" "$(date +%s.%N)")
log "Letterbox: filled in ${LB_FILL_SECS}s"

log "Letterbox: starting (serve, not --dev)"
"$LB" --config "$LBCONF" --data "$LBDATA" serve >"$TMP/letterbox.out" 2>"$TMP/letterbox.log" &
LB_PID=$!
for ((i = 0; i < 300; i++)); do
    grep -qx 'letterbox: ready' "$TMP/letterbox.out" 2>/dev/null && break
    kill -0 "$LB_PID" 2>/dev/null || die "letterbox exited: $(tail -5 "$TMP/letterbox.log")"
    sleep 0.1
done
grep -qx 'letterbox: ready' "$TMP/letterbox.out" || die "letterbox did not become ready"
wait_port "$P_LB_IMAP" 10 "Letterbox IMAP"
log "Letterbox: ready (pid $LB_PID)"

# ---- Dovecot ------------------------------------------------------------------
DCDIR=$TMP/dovecot
DCCONF=$DCDIR/dovecot.conf
mkdir -p "$DCDIR/run" "$DCDIR/state" "$TMP/mail"
chown "$BUID:$BGID" "$TMP/mail"
chmod 700 "$TMP/mail"
# Default {PLAIN} passwords: no hashing cost at login (Letterbox pays argon2id).
if [[ $DC_SCHEME == PLAIN ]]; then
    DC_HASH="{PLAIN}$PASSWORD"
else
    DC_HASH=$(doveadm pw -s "$DC_SCHEME" -p "$PASSWORD") || die "doveadm pw -s $DC_SCHEME failed"
fi
for a in "${ADDRS[@]}"; do
    echo "$a:$DC_HASH:$BUID:$BGID::$TMP/mail/example.test/${a%@*}::"
done >"$DCDIR/users"
chmod 640 "$DCDIR/users"
chgrp dovecot "$DCDIR/users"
cat >"$DCCONF" <<EOF
# Private Dovecot for bench/compare.sh (nothing under /etc is read).
base_dir = $DCDIR/run
state_dir = $DCDIR/state
instance_name = lbbench-dovecot
log_path = $TMP/dovecot.log
protocols = imap pop3 lmtp
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
mail_location = maildir:$TMP/mail/%d/%n
mail_fsync = optimized
first_valid_uid = $BUID
last_valid_uid = $BUID
default_internal_user = dovecot
default_login_user = dovenull
default_client_limit = $((IDLE_N * 2 + 2000))
default_vsz_limit = 1G
pop3_uidl_format = %08Xu%08Xv

passdb {
  driver = passwd-file
  args = username_format=%u $DCDIR/users
}
userdb {
  driver = passwd-file
  args = username_format=%u $DCDIR/users
}

namespace inbox {
  inbox = yes
  separator = /
  mailbox Drafts {
    special_use = \\Drafts
    auto = subscribe
  }
  mailbox Junk {
    special_use = \\Junk
    auto = subscribe
  }
  mailbox Trash {
    special_use = \\Trash
    auto = subscribe
  }
  mailbox Sent {
    special_use = \\Sent
    auto = subscribe
  }
  mailbox Archive {
    special_use = \\Archive
    auto = subscribe
  }
}

protocol imap {
  mail_max_userip_connections = $((IDLE_N + 100))
}
protocol pop3 {
  mail_max_userip_connections = $((IDLE_N + 100))
}

service imap-login {
  inet_listener imap {
    address = 127.0.0.1
    port = $P_DC_IMAP
  }
  inet_listener imaps {
    port = 0
  }
  service_count = 0             # performance mode: long-lived login processes
  process_min_avail = $(nproc)
  client_limit = $((IDLE_N + 1000))
}
service pop3-login {
  inet_listener pop3 {
    address = 127.0.0.1
    port = $P_DC_POP3
  }
  inet_listener pop3s {
    port = 0
  }
  service_count = 0
  process_min_avail = $(nproc)
  client_limit = 2000
}
service imap {
  process_limit = $((IDLE_N + 500))
}
service pop3 {
  process_limit = 1000
}
service lmtp {
  inet_listener lmtp {
    address = 127.0.0.1
    port = $P_DC_LMTP
  }
  unix_listener lmtp {
    mode = 0600
  }
}
EOF
doveconf -c "$DCCONF" -n >/dev/null 2>"$TMP/doveconf.log" || die "Dovecot rejects $DCCONF"
log "Dovecot: starting private instance"
dovecot -c "$DCCONF" 2>>"$TMP/doveconf.log" || die "dovecot failed to start: $(tail -5 "$TMP/dovecot.log" 2>/dev/null)"
for ((i = 0; i < 100; i++)); do
    [[ -s $DCDIR/run/master.pid ]] && break
    sleep 0.1
done
DC_PID=$(tr -d ' ' <"$DCDIR/run/master.pid")
wait_port "$P_DC_IMAP" 15 "Dovecot IMAP"
wait_port "$P_DC_LMTP" 15 "Dovecot LMTP"
log "Dovecot: ready (master pid $DC_PID)"
log "Dovecot: filling mailboxes over LMTP ($MSGS x $USERS)"
t0=$(date +%s.%N)
python3 "$BENCH/lmtp_fill.py" 127.0.0.1 "$P_DC_LMTP" "$TMP/msgs" "${ADDRS[@]}" >&2
DC_FILL_SECS=$(python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.1f}')" "$t0" "$(date +%s.%N)")
log "Dovecot: filled in ${DC_FILL_SECS}s"

# ---- Postfix ------------------------------------------------------------------
PFDIR=$TMP/postfix           # config directory (main.cf, master.cf)
PFQUEUE=$TMP/postfix-queue   # outside $PFDIR: postfix-script wants the config tree root-owned
PFDATA=$TMP/postfix-data
mkdir -p "$PFDIR" "$PFQUEUE" "$PFDATA"
chown postfix "$PFDATA"
chmod 700 "$PFDATA"
cat >"$PFDIR/main.cf" <<EOF
# Private Postfix for bench/compare.sh: accepts mail for example.test on
# 127.0.0.1:$P_PF_SMTP and hands it to the private Dovecot over LMTP.
compatibility_level = 3.6
queue_directory = $PFQUEUE
data_directory = $PFDATA
command_directory = /usr/sbin
daemon_directory = /usr/lib/postfix/sbin
mail_owner = postfix
setgid_group = postdrop
syslog_name = postfix-lbbench
maillog_file = $TMP/postfix.log
maillog_file_prefixes = $TMP
myhostname = mx.example.test
mydomain = example.test
myorigin = \$myhostname
mydestination = example.test
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
local_recipient_maps =
local_transport = lmtp:inet:127.0.0.1:$P_DC_LMTP
alias_maps =
alias_database =
smtpd_recipient_restrictions = permit_mynetworks, reject
smtpd_relay_restrictions = permit_mynetworks, reject
smtputf8_enable = no
biff = no
append_dot_mydomain = no
message_size_limit = 52428800
smtp_dns_support_level = disabled
EOF
cat >"$PFDIR/master.cf" <<EOF
# service type  private unpriv  chroot  wakeup  maxproc command
127.0.0.1:$P_PF_SMTP inet n - n - - smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
lmtp      unix  -       -       n       -       -       lmtp
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
EOF
log "Postfix: creating queue and starting private instance"
postfix -c "$PFDIR" check >"$TMP/postfix-check.log" 2>&1 || die "postfix check failed: $(tail -5 "$TMP/postfix.log" 2>/dev/null)"
postfix -c "$PFDIR" start >>"$TMP/postfix-check.log" 2>&1 || die "postfix start failed: $(tail -5 "$TMP/postfix.log" 2>/dev/null)"
PF_STARTED=1
wait_port "$P_PF_SMTP" 15 "Postfix SMTP"
log "Postfix: ready"

# Messages still in Postfix's queue (not yet handed to Dovecot).
pf_queued() { find "$PFQUEUE/incoming" "$PFQUEUE/active" "$PFQUEUE/deferred" "$PFQUEUE/maildrop" -type f 2>/dev/null | wc -l; }
# Wait (at most 300 s) until Postfix has handed everything to Dovecot.
wait_pf_drained() {
    local i
    for ((i = 0; i < 3000; i++)); do
        [[ $(pf_queued) -eq 0 ]] && return 0
        sleep 0.1
    done
}

# ---- versions -----------------------------------------------------------------
V_DOVECOT=$(dovecot -c "$DCCONF" --version)
V_POSTFIX=$(postconf -c "$PFDIR" -h mail_version)
V_LETTERBOX=$("$LB" --version)
V_COMMIT=$(git -C "$SRC_ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
# The binary may include uncommitted changes (built from the working tree).
V_DIRTY=$(git -C "$SRC_ROOT" status --porcelain --untracked-files=no -- crates Cargo.toml Cargo.lock 2>/dev/null | wc -l)
if [[ $V_DIRTY -gt 0 ]]; then V_COMMIT="$V_COMMIT + uncommitted changes in $V_DIRTY file(s) under crates/"; fi

# ---- workloads ----------------------------------------------------------------
# run_bench SERVER WORKLOAD ROUND ARGS...: one letterbox-bench run, JSON kept
# (as $RES/SERVER/WORKLOAD_rROUND.json).
run_bench() {
    local server=$1 wl=$2 round=$3
    shift 3
    run_bench_as "$server" "$wl" "${wl}_r$round" "round $round" "r$round" "$@"
}
# run_bench_as SERVER WORKLOAD STEM LABEL TAG ARGS...: the same, kept as
# $RES/SERVER/STEM.{json,out,err}; LABEL names the run in logs and failures,
# TAG prefixes its line in commands.txt (the report quotes the r1 lines).
run_bench_as() {
    local server=$1 wl=$2 stem=$3 label=$4 tag=$5
    shift 5
    local base=$RES/$server/$stem
    local cmd=("$LBB" "$wl" "$@" --json "$base.json")
    echo "$tag $server: ${cmd[*]}" >>"$RES/commands.txt"
    log "$label: $wl against $server"
    if ! "${cmd[@]}" 2>"$base.err" | tee "$base.out" >&2; then
        echo "$label, $wl, $server: exit status non-zero; $(grep -v $'\r' "$base.err" | tail -3 | tr '\n' ' ')" >>"$RES/failures.txt"
        log "WARNING: $wl against $server failed (see failures in the report)"
    fi
}

# Run one workload ROUNDS times on both servers, alternating which goes
# first to cancel out ordering effects: `alternate FN PAUSE` calls
# `FN server round` for server in letterbox/peer, then sleeps PAUSE seconds.
alternate() {
    local fn=$1 pause=$2 r s order
    for ((r = 1; r <= ROUNDS; r++)); do
        if ((r % 2 == 1)); then order=(letterbox peer); else order=(peer letterbox); fi
        for s in "${order[@]}"; do
            "$fn" "$s" "$r"
            sleep "$pause"
        done
    done
}

# One user per client (--users = clients): client i always logs in as user i+1, so
# sessions never share a mailbox (Letterbox locks a POP3 maildrop, RFC 1939).
IMAP_ARGS=(--users "$CONNS" --password "$PASSWORD" -c "$CONNS")
bench_imap() {
    local port=$P_DC_IMAP
    [[ $1 == letterbox ]] && port=$P_LB_IMAP
    run_bench "$1" imap "$2" --port "$port" "${IMAP_ARGS[@]}" --duration "$IMAP_SECS"
}
bench_pop3() {
    local port=$P_DC_POP3
    [[ $1 == letterbox ]] && port=$P_LB_POP3
    run_bench "$1" pop3 "$2" --port "$port" "${IMAP_ARGS[@]}" --duration "$POP3_SECS"
}
bench_idle() {
    local target=(--port "$P_DC_IMAP" --pid "$DC_PID" --pid-children --smtp-port "$P_PF_SMTP")
    [[ $1 == letterbox ]] && target=(--port "$P_LB_IMAP" --pid "$LB_PID" --smtp-port "$P_LB_SMTP")
    run_bench "$1" idle "$2" "${target[@]}" --users "$USERS" --password "$PASSWORD" \
        -c "$IDLE_N" --samples "$IDLE_SAMPLES" --sample-timeout 15
}
bench_smtp() {
    local s=$1 r=$2 port=$P_PF_SMTP
    [[ $s == letterbox ]] && port=$P_LB_SMTP
    run_bench "$s" smtp "$r" --port "$port" --users "$USERS" -c "$SMTP_CONNS" -m "$SMTP_MSGS" --sizes "$SMTP_SIZES"
    [[ $s == peer ]] || return 0
    # Postfix said 250 when the message was queued; wait until all of it is in Dovecot.
    local t0 left
    t0=$(date +%s.%N)
    wait_pf_drained
    left=$(pf_queued)
    python3 -c "import json,sys; print(json.dumps({'seconds': float(sys.argv[2]) - float(sys.argv[1]), 'left': int(sys.argv[3])}))" \
        "$t0" "$(date +%s.%N)" "$left" >"$RES/peer/smtp_drain_r$r.json"
    [[ $left -eq 0 ]] || echo "round $r, smtp, peer: $left message(s) still in Postfix's queue after 300 s" >>"$RES/failures.txt"
}

# Postfix's own SMTP load generator, smtp-source (in Debian's postfix
# package): SMTP_SOURCE_MSGS messages of 4 KB from SMTP_CONNS parallel
# sessions, one connection per message (its default), all to user2. Timed
# from start to exit; for Postfix also until its queue is empty (all in
# Dovecot). Both sides' INBOX counts before and after check that every
# message arrived.
SMTP_SOURCE=$(command -v smtp-source || echo /usr/sbin/smtp-source)
inbox_count() { # port: messages in user2's INBOX
    python3 - "$1" "$PASSWORD" "${ADDRS[1]}" <<'EOF2'
import imaplib, sys
c = imaplib.IMAP4("127.0.0.1", int(sys.argv[1]))
c.login(sys.argv[3], sys.argv[2])
typ, data = c.status("INBOX", "(MESSAGES)")
print(int(data[0].split(b"MESSAGES")[1].strip(b" ()")))
c.logout()
EOF2
}
bench_smtp_source() {
    local s=$1 r=$2 port=$P_PF_SMTP imap=$P_DC_IMAP
    [[ $s == letterbox ]] && port=$P_LB_SMTP imap=$P_LB_IMAP
    local base=$RES/$s/smtp_source_r$r
    local cmd=("$SMTP_SOURCE" -s "$SMTP_CONNS" -m "$SMTP_SOURCE_MSGS" -l 4096 -f bench@example.test -t "${ADDRS[1]}" "127.0.0.1:$port")
    echo "r$r $s: ${cmd[*]}" >>"$RES/commands.txt"
    log "round $r: smtp-source against $s ($SMTP_SOURCE_MSGS messages)"
    local before after t0 t1 t2 rc=0
    before=$(inbox_count "$imap") || before=""
    t0=$(date +%s.%N)
    timeout 600 "${cmd[@]}" >"$base.out" 2>"$base.err" || rc=$?
    t1=$(date +%s.%N)
    [[ $s == peer ]] && wait_pf_drained
    t2=$(date +%s.%N)
    after=$(inbox_count "$imap") || after=""
    python3 -c 'import json,sys
n, t0, t1, t2, rc = int(sys.argv[1]), *map(float, sys.argv[2:5]), int(sys.argv[5])
before, after = (int(x) if x else None for x in sys.argv[6:8])
print(json.dumps({"messages": n, "seconds": t1 - t0, "drain_seconds": t2 - t1, "exit": rc,
                  "delivered": after - before if None not in (before, after) else None}))' \
        "$SMTP_SOURCE_MSGS" "$t0" "$t1" "$t2" "$rc" "$before" "$after" >"$base.json"
    if [[ $rc -ne 0 ]]; then
        echo "round $r, smtp-source, $s: exit status $rc; $(tail -2 "$base.err" | tr '\n' ' ')" >>"$RES/failures.txt"
    fi
    python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print("  %.0f msgs/s accepted, %s delivered" % (r["messages"]/r["seconds"], r["delivered"]))' "$base.json" >&2 || true
}

# imaptest (Dovecot's own stress tester) in two modes: `churn` is its
# default (each client logs in, runs random commands, logs out, a new client
# takes its place); `steady` sets logout=0, so sessions stay logged in like
# real clients. It works in its own mailbox of every user, holding only what
# it appended: imaptest remembers every message it saw by Message-ID, and
# the INBOXes hold copies of the same messages that differ in their trace
# headers per user and delivery, which it would report as errors. msgs=$MSGS
# keeps the mailbox near the fill size (it appends below, deletes above).
# output=FILE gives per-second sums of command durations (exact averages).
IMAPTEST_BOX=imaptest
create_imaptest_box() { # port: CREATE $IMAPTEST_BOX for every user (an existing one is fine)
    python3 - "$1" "$IMAPTEST_BOX" "$PASSWORD" "${ADDRS[@]}" <<'EOF'
import imaplib, sys
port, box, password, users = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4:]
for u in users:
    c = imaplib.IMAP4("127.0.0.1", port)
    c.login(u, password)
    typ, data = c.create(box)
    if typ != "OK" and c.select(box)[0] != "OK":
        sys.exit(f"{u}: CREATE {box} failed: {data}")
    c.logout()
EOF
}
run_imaptest() {
    local server=$1 mode=$2 round=$3
    local port=$P_DC_IMAP
    [[ $server == letterbox ]] && port=$P_LB_IMAP
    local base=$RES/$server/imaptest_${mode}_r$round
    local args=(host=127.0.0.1 "port=$port" "user=user%d@example.test" "users=1-$USERS" "pass=$PASSWORD"
        "clients=$IMAPTEST_CLIENTS" "box=$IMAPTEST_BOX" "mbox=$TMP/imaptest.mbox" "msgs=$MSGS" "secs=$IMAPTEST_SECS,20")
    [[ $mode == steady ]] && args+=(logout=0)
    args+=("output=$base.results")
    echo "r$round $server: imaptest ${args[*]}" >>"$RES/commands.txt"
    log "round $round: imaptest $mode against $server (${IMAPTEST_SECS}s)"
    local rc=0
    # Not a tty: no escape sequences. INT first: imaptest then logs its clients out.
    timeout -s INT -k 15 $((IMAPTEST_SECS + 60)) "$IMAPTEST_BIN" "${args[@]}" >"$base.out" 2>"$base.err" </dev/null || rc=$?
    if [[ $rc -ne 0 ]]; then
        echo "round $round, imaptest $mode, $server: exit status $rc; $(grep -v '^ ' "$base.err" | tail -3 | tr '\n' ' ')" >>"$RES/failures.txt"
        log "WARNING: imaptest $mode against $server exited with status $rc"
    fi
    if ! python3 "$BENCH/imaptest_parse.py" "$base.out" "$base.err" "$base.results" "$IMAPTEST_SECS" >"$base.json"; then
        echo "round $round, imaptest $mode, $server: no command completed or output not understood; first error: $(grep -m1 -E '(Error|Fatal|Panic):' "$base.err" | cut -c1-200)" >>"$RES/failures.txt"
        log "WARNING: imaptest $mode against $server: output not parsed"
    fi
    python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print("  %s cmds/s (start %s, end %s), %d error line(s)" % (
        *(f"{r[k]:.0f}" if r.get(k) is not None else "n/a" for k in ("cmds_per_second", "start_cmds_per_second", "end_cmds_per_second")), r["errors"]))' \
        "$base.json" >&2 2>/dev/null || true
}
bench_imaptest_churn() { run_imaptest "$1" churn "$2"; }
bench_imaptest_steady() { run_imaptest "$1" steady "$2"; }

# Search at scale: one mailbox ($SEARCH_BOX) of user1 holding $SEARCH_N
# generated messages (letterbox-bench search: deterministic, the same on both
# servers), searched with UID SEARCH BODY (rare and common word), TEXT and
# FROM. Each server is filled once, before the rounds (MULTIAPPEND; that run
# also does one untimed pass of every search, which warms both alike); the
# rounds then find the mailbox full and only search. After every Letterbox
# round the store example query_bench reads Letterbox's data directory
# (read-only, beside the running server): "50 newest, collapsed by thread"
# (the JMAP mail list query, which Dovecot has no equivalent of) and a
# full-text query, plus the size of the full-text index.
SEARCH_SKIP=""
QUERY_SKIP=""
if [[ $SEARCH_N -eq 0 ]]; then
    SEARCH_SKIP="--search-messages 0"
elif [[ ! -x $QB ]]; then
    QUERY_SKIP="no query_bench binary in the binaries' directory (examples/query_bench; build it with \`cargo build --release -p letterbox-store --example query_bench\`)"
fi
SEARCH_ARGV=()
search_args() { # server: sets SEARCH_ARGV (user1 only: --users 1)
    local port=$P_DC_IMAP
    [[ $1 == letterbox ]] && port=$P_LB_IMAP
    SEARCH_ARGV=(--port "$port" --users 1 --password "$PASSWORD" --mailbox "$SEARCH_BOX" --messages "$SEARCH_N")
}
search_fill() { # server: the once-only fill (its fill_seconds is reported as information)
    search_args "$1"
    run_bench_as "$1" search search_fill "filling $SEARCH_BOX ($SEARCH_N messages)" "r1" "${SEARCH_ARGV[@]}" --iterations 1
}
bench_search() {
    search_args "$1"
    run_bench "$1" search "$2" "${SEARCH_ARGV[@]}" --iterations "$SEARCH_ITERS"
    [[ $1 == letterbox ]] && run_query_bench "$2"
    return 0
}
run_query_bench() { # round
    [[ -z $QUERY_SKIP ]] || return 0
    local base=$RES/letterbox/query_r$1
    local cmd=("$QB" "$LBDATA" "${ADDRS[0]}" "$QUERY_ITERS")
    echo "r$1 letterbox: ${cmd[*]}" >>"$RES/commands.txt"
    log "round $1: query_bench (store-level queries) on Letterbox's data directory"
    if ! timeout 900 "${cmd[@]}" >"$base.out" 2>"$base.err"; then
        echo "round $1, query_bench, letterbox: exit status non-zero; $(tail -3 "$base.err" | tr '\n' ' ')" >>"$RES/failures.txt"
        log "WARNING: query_bench failed (see failures in the report)"
    fi
    cat "$base.out" >&2
}
# What each side's search mailbox takes on disk, once the rounds are done.
# Dovecot: the files of its Maildir folder (index, transaction log and cache
# are dovecot.index*; it has no full-text index here). Letterbox: counts from
# its database (read-only) to put query_bench's database-wide sizes per body.
search_sizes() {
    python3 - "$TMP/mail/example.test/${ADDRS[0]%@*}/.$SEARCH_BOX" "$LBDATA/letterbox.db" "${ADDRS[0]}" <<'EOF' >"$RES/search_sizes.json"
import json, os, sqlite3, sys
box, db, user = sys.argv[1:4]
out = {"dovecot": None, "letterbox": None}
if os.path.isdir(box):
    files = {n: os.path.getsize(os.path.join(box, n)) for n in sorted(os.listdir(box))
             if os.path.isfile(os.path.join(box, n))}
    msgs = [os.path.join(box, d, n) for d in ("cur", "new") if os.path.isdir(os.path.join(box, d))
            for n in os.listdir(os.path.join(box, d))]
    out["dovecot"] = {"files": files, "messages": len(msgs),
                      "message_bytes": sum(os.path.getsize(m) for m in msgs)}
try:
    c = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    one = lambda q, *a: c.execute(q, a).fetchone()[0]
    acct = "(SELECT id FROM accounts WHERE address = ?)"
    out["letterbox"] = {"indexed_bodies": one("SELECT COUNT(*) FROM blob_text"),
                        "emails": one("SELECT COUNT(*) FROM emails"),
                        "user_emails": one(f"SELECT COUNT(*) FROM emails WHERE account_id = {acct}", user),
                        "user_threads": one(f"SELECT COUNT(DISTINCT thread_id) FROM emails WHERE account_id = {acct}", user),
                        "database_bytes": sum(os.path.getsize(db + x) for x in ("", "-wal") if os.path.exists(db + x))}
    c.close()
except Exception as e:  # a schema change must not break the report
    out["letterbox"] = {"error": str(e)}
print(json.dumps(out))
EOF
}

alternate bench_imap 1
alternate bench_pop3 1
alternate bench_idle 3 # let the server release the connections (Dovecot: $IDLE_N imap processes exit)
# SMTP after these: it grows the mailboxes, the workloads above run on identical ones.
alternate bench_smtp 1
if [[ -x $SMTP_SOURCE ]]; then
    alternate bench_smtp_source 1
else
    echo "smtp-source not found (Debian package postfix)" >"$RES/smtp_source_skipped.txt"
fi
# imaptest last (it leaves its mailbox behind).
if [[ -z $IMAPTEST_SKIP ]]; then
    for port in "$P_LB_IMAP" "$P_DC_IMAP"; do
        if ! err=$(create_imaptest_box "$port" 2>&1); then
            echo "imaptest: CREATE $IMAPTEST_BOX on port $port failed: $(tail -1 <<<"$err")" >>"$RES/failures.txt"
            log "WARNING: could not create mailbox $IMAPTEST_BOX on port $port"
        fi
    done
    alternate bench_imaptest_churn 2
    alternate bench_imaptest_steady 2
else
    echo "$IMAPTEST_SKIP" >"$RES/imaptest_skipped.txt"
fi
# Search at scale last: its large mailbox is in neither server's way before.
if [[ -z $SEARCH_SKIP ]]; then
    search_fill letterbox
    search_fill peer
    alternate bench_search 1
    search_sizes || log "WARNING: could not measure the search mailboxes' sizes"
    [[ -z $QUERY_SKIP ]] || echo "$QUERY_SKIP" >"$RES/query_skipped.txt"
    echo "{\"messages\": $SEARCH_N, \"iterations\": $SEARCH_ITERS, \"query_iterations\": $QUERY_ITERS, \"mailbox\": \"$SEARCH_BOX\"}" >"$RES/search_config.json"
else
    echo "$SEARCH_SKIP" >"$RES/search_skipped.txt"
fi

# ---- report -------------------------------------------------------------------
log "writing $OUT"
LB_RSS_END=$(awk '/VmRSS/ {print $2}' "/proc/$LB_PID/status" 2>/dev/null || echo "?")
ELAPSED=$(($(date +%s) - START_EPOCH))
# Count and excerpt the warnings/errors each server logged during the run.
lb_err=$(grep -cE ' (ERROR|WARN) ' "$TMP/letterbox.log" || true)
dc_err=$(grep -ciE 'error|fatal|panic|warning' "$TMP/dovecot.log" || true)
pf_err=$(grep -ciE 'error|fatal|panic|warning|deferred|bounced' "$TMP/postfix.log" || true)
{
    echo "# Letterbox vs Postfix + Dovecot — benchmark results"
    echo
    echo "Written by \`bench/compare.sh$([[ $QUICK == 1 ]] && echo ' --quick')\` (see bench/README.md for how to read it)."
    echo
    echo "| | |"
    echo "| --- | --- |"
    echo "| date | $(date -u '+%Y-%m-%d %H:%M UTC') |"
    echo "| machine | $(nproc) CPUs, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1), $(awk '/MemTotal/ {printf "%.1f GiB RAM", $2/1048576}' /proc/meminfo) |"
    echo "| OS / kernel | $(sed -n 's/^PRETTY_NAME=//p' /etc/os-release | tr -d '"') / $(uname -r) |"
    echo "| Letterbox | $V_LETTERBOX (commit $V_COMMIT, release build) |"
    echo "| Dovecot | $V_DOVECOT |"
    echo "| Postfix | $V_POSTFIX |"
    if [[ -n $IMAPTEST_SKIP ]]; then
        echo "| imaptest | not run: $IMAPTEST_SKIP |"
    else
        echo "| imaptest | $IMAPTEST_CLIENTS clients, ${IMAPTEST_SECS}s per run, two modes (login churn, steady state \`logout=0\`) |"
    fi
    echo "| mode | $([[ $QUICK == 1 ]] && echo quick || echo normal): $ROUNDS round(s), servers alternating which goes first |"
    echo "| mailboxes | $USERS users, each holding the same $MSGS generated messages ($MSG_INFO) |"
    echo "| filling | Letterbox: \`letterbox deliver\` per message, ${LB_FILL_SECS}s; Dovecot: LMTP, ${DC_FILL_SECS}s (not a benchmark: process start per message vs one connection) |"
    if [[ -z $SEARCH_SKIP ]]; then
        echo "| search at scale | mailbox \`$SEARCH_BOX\` of user1 with $SEARCH_N generated messages (MULTIAPPEND, once per server), every search ${SEARCH_ITERS}x per round |"
    else
        echo "| search at scale | not run: $SEARCH_SKIP |"
    fi
    echo "| total run time | ${ELAPSED}s |"
    echo
    echo "Ratios are Letterbox / peer. For throughput rows (msg/s, ops/s, sessions/s, MB/s, connections) higher is better, so a"
    echo "ratio above 1 favours Letterbox; for latency, delay and memory rows lower is better, so a ratio below 1 favours Letterbox."
    echo
    python3 "$BENCH/summarize.py" "$RES"
    echo "## Failures"
    echo
    if [[ -s $RES/failures.txt ]]; then
        sed 's/^/- /' "$RES/failures.txt"
    else
        echo "None: every letterbox-bench$([[ -z $IMAPTEST_SKIP ]] && echo " and imaptest") run exited successfully."
    fi
    echo
    echo "## Server logs"
    echo
    echo "- Letterbox log: $lb_err WARN/ERROR line(s); RSS at the end of the run: ${LB_RSS_END} kB."
    echo "- Dovecot log: $dc_err line(s) matching error/fatal/panic/warning."
    echo "- Postfix log: $pf_err line(s) matching error/fatal/panic/warning/deferred/bounced."
    if [[ $lb_err -gt 0 ]]; then
        echo
        echo "First Letterbox WARN/ERROR lines:"
        echo
        echo '```'
        grep -E ' (ERROR|WARN) ' "$TMP/letterbox.log" | head -15 | cut -c1-400
        echo '```'
    fi
    if [[ $dc_err -gt 0 ]]; then
        echo
        echo "First Dovecot error/warning lines:"
        echo
        echo '```'
        grep -iE 'error|fatal|panic|warning' "$TMP/dovecot.log" | head -10 | cut -c1-400
        echo '```'
    fi
    echo
    echo "## Settings that differ"
    echo
    echo "- TLS is off on every server (plaintext LOGIN/USER/AUTH allowed: Letterbox \`[auth] allow_plaintext = true\`,"
    echo "  Dovecot \`disable_plaintext_auth = no\`, \`ssl = no\`)."
    echo "- Password checking: Letterbox stores argon2id hashes (argon2 crate defaults: m=19 MiB, t=2, p=1) and verifies one per"
    echo "  LOGIN/PASS, except that a password verified against the same hash in the last 10 minutes is accepted from a cache"
    echo "  (a user's logins pay argon2id about once every 10 minutes)."
    if [[ $DC_SCHEME == PLAIN ]]; then
        echo "  Dovecot's passwd-file holds \`{PLAIN}\` passwords, so its logins cost nothing. This weighs on"
        echo "  sessions/s (IMAP, POP3) and connections opened/s (IDLE): compare the LOGIN/PASS rows."
    else
        echo "  Dovecot's passwd-file holds \`{$DC_SCHEME}\` hashes (\`doveadm pw -s $DC_SCHEME\`: \`${DC_HASH:0:40}...\`)."
    fi
    echo "- Letterbox verifies passwords on tokio's blocking thread pool (up to 512 threads), each verification allocating"
    echo "  19 MiB; when many logins arrive at once (IDLE opens 200 connections at a time) the process grows to hundreds of"
    echo "  threads and keeps that memory (allocator arenas), so its IDLE RSS/PSS per connection mostly reflects login"
    echo "  concurrency, not what an idle session costs."
    echo "- Dovecot delays IDLE notifications by design: a mailbox change seen through inotify is reported after 500 ms"
    echo "  (NOTIFY_DELAY_MSECS in lib-storage's mailbox-watch.c); its notification delay also includes Postfix's queue + LMTP."
    echo "- IMAP/POP3 use one user per client ($CONNS clients, user1..user$CONNS), so no two sessions share a mailbox."
    if [[ -z $IMAPTEST_SKIP ]]; then
        echo "- imaptest works in a mailbox \`$IMAPTEST_BOX\` of every user (created before its runs, empty at first, then near"
        echo "  $MSGS messages: \`msgs=$MSGS\`), not in the INBOX. It picks a random user among user1..user$USERS for every session"
        echo "  ($IMAPTEST_CLIENTS clients), so sessions share mailboxes and see each other's APPEND/STORE/EXPUNGE; it pipelines commands"
        echo "  and checks every reply against the mailbox state it tracks (its \"Error:\" lines). In login churn every session"
        echo "  starts with a LOGIN (on Letterbox mostly answered from its cache of verified passwords, see above)."
    fi
    echo "- Durability: Letterbox's store is SQLite in WAL mode with \`synchronous = FULL\` (the WAL is fsync'ed at every commit,"
    echo "  before the reply); Dovecot uses \`mail_fsync = optimized\` (default: new mail fsync'ed on save), Postfix its defaults"
    echo "  (queue file fsync'ed before the 250 reply)."
    echo "- Storage layout: Letterbox keeps one copy of a message body per content hash, so the fill's identical messages (the"
    echo "  same $MSGS to every user) share one blob per message; Dovecot's Maildir holds one file per user and message."
    echo "- Letterbox is one process; Dovecot is a master with login, auth, and one \`imap\`/\`pop3\` process per session"
    echo "  (\`imap-login\`/\`pop3-login\` in performance mode, \`service_count = 0\`, \`process_min_avail = $(nproc)\`)."
    echo "- Auth throttling disabled on Letterbox (\`failure_delay_ms = 0\`, failure limits 1000000) and its connection limits raised"
    echo "  to 20000; Dovecot's \`mail_max_userip_connections\`, process and client limits raised for $IDLE_N IDLE connections."
    if [[ -n $SYSCTL_OLD ]]; then
        echo "- \`fs.inotify.max_user_instances\` was raised from $SYSCTL_OLD to $((IDLE_N + 512)) for the run (restored afterwards): every"
        echo "  Dovecot \`imap\` process in IDLE takes an inotify instance, all under one uid; past the limit Dovecot polls every 30 s."
    fi
    echo "- Postfix delivers to Dovecot over LMTP (\`local_transport = lmtp:inet:...\`, \`local_recipient_maps =\` empty); no"
    echo "  chroot, logging to a file through postlogd. Letterbox logs at its default level (info) to a file."
    echo "- Both sides log every session; neither runs spam/virus filtering or SPF/DKIM checks in this set-up."
    if [[ -z $SEARCH_SKIP ]]; then
        echo "- Search: Dovecot has no full-text search plugin configured (no \`fts\`/\`fts_lucene\`/\`fts_solr\`/\`fts_flatcurve\` in"
        echo "  \`mail_plugins\`), so its SEARCH BODY/TEXT reads and scans every message file of the mailbox (FROM needs only"
        echo "  the header, which Dovecot can keep in its cache file); Letterbox answers BODY/TEXT from its trigram full-text index"
        echo "  (SQLite FTS5). That is the main reason for any difference in the search tables."
    fi
    echo
    echo "## Commands run"
    echo
    echo "Servers (private instances in a temporary directory, loopback ports picked free at start):"
    echo
    echo '```'
    echo "letterbox --config \$TMP/letterbox.toml --data \$TMP/letterbox-data domain add example.test"
    echo "echo $PASSWORD | letterbox ... user add userN@example.test            # N = 1..$USERS"
    echo "letterbox ... deliver userN@example.test < \$TMP/msgs/NNNNN.eml        # every message to every user"
    echo "letterbox --config \$TMP/letterbox.toml --data \$TMP/letterbox-data serve"
    echo "dovecot -c \$TMP/dovecot/dovecot.conf"
    echo "python3 bench/lmtp_fill.py 127.0.0.1 LMTPPORT \$TMP/msgs user1@example.test ...  # every message to every user"
    echo "postfix -c \$TMP/postfix check && postfix -c \$TMP/postfix start"
    echo '```'
    echo
    echo "Workloads (ports of this run: Letterbox SMTP $P_LB_SMTP, IMAP $P_LB_IMAP, POP3 $P_LB_POP3; Postfix SMTP $P_PF_SMTP;"
    echo "Dovecot IMAP $P_DC_IMAP, POP3 $P_DC_POP3, LMTP $P_DC_LMTP); every round ran the same commands with its own JSON file:"
    echo
    echo '```'
    grep '^r1 ' "$RES/commands.txt" | sed -e 's/^r1 //' -e "s|$BIN_DIR/|target/release/|g" -e "s|$ROOT/||g" -e "s|$TMP|\$TMP|g"
    [[ -n $IMAPTEST_SKIP ]] || echo "python3 bench/make_mbox.py \$TMP/msgs \$TMP/imaptest.mbox   # imaptest's APPEND source, before the runs"
    echo '```'
    echo
    echo "Order: all IMAP rounds, then POP3, then IDLE, then SMTP (SMTP after these because it adds mail; the IDLE probes add"
    if [[ -n $IMAPTEST_SKIP ]]; then
        echo "$IDLE_SAMPLES small messages per run to both sides alike)."
    else
        echo "$IDLE_SAMPLES small messages per run to both sides alike), then imaptest login churn, then imaptest steady state"
        echo "(in their own mailbox \`$IMAPTEST_BOX\`, which keeps what they left from one round to the next)."
    fi
    if [[ -z $SEARCH_SKIP ]]; then
        echo "Search at scale last: one fill of \`$SEARCH_BOX\` per server (the \`--iterations 1\` lines above: Letterbox, then"
        echo "Dovecot), then the search rounds (they find the mailbox full and do not append), each Letterbox round followed by"
        echo "query_bench on its data directory."
    fi
} >"$OUT"
log "done in ${ELAPSED}s: $OUT"
