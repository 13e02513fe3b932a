#!/usr/bin/env bash
# register-bench.sh [regbench.py options...]
#   The REGISTER-with-digest benchmark of docs/performance.md: in ONE run, the highest sustained
#   REGISTER rate with 0 failures and 0 retransmissions for the PBX and for Kamailio (alternating,
#   3 repetitions, medians), then memory idle and with 10,000 bindings for both.
#   Method and options: bench/regbench.py --help. Scenario and users: bench/sipp/ (copied from
#   the shared bench kit, ../shared/bench/sipp); Kamailio config: bench/peers/kamailio.cfg (same
#   origin; its /tmp/kam paths and port are rewritten per run into a temp dir).
#   Env: PBX_BIN (default: target/release/pbx, built with `cargo build --release -p pbx` when
#   missing), OUT (default bench/results/register-<UTC time>.json).
#   Needs: sip-tester, kamailio, kamailio-sqlite-modules, sqlite3, python3. Everything listens on
#   127.0.0.1 only; only the processes it started are stopped, by PID.
#   Takes 20-60 minutes (every SIPp run is 20 s against a freshly started server).
set -euo pipefail
cd "$(dirname "$0")/.."
for t in sipp kamailio sqlite3 python3; do
  command -v "$t" >/dev/null || {
    echo "register-bench: $t missing (apt-get install sip-tester kamailio kamailio-sqlite-modules sqlite3)" >&2
    exit 2
  }
done
PBX_BIN=${PBX_BIN:-${CARGO_TARGET_DIR:-target}/release/pbx}
if [ ! -x "$PBX_BIN" ]; then
  cargo build --release -p pbx
fi
mkdir -p bench/results
OUT=${OUT:-bench/results/register-$(date -u +%Y%m%dT%H%M%SZ).json}
echo "register-bench: pbx=$PBX_BIN ($("$PBX_BIN" --version 2>/dev/null || echo '?')) results -> $OUT"
exec python3 bench/regbench.py --pbx-bin "$PBX_BIN" --json "$OUT" "$@"
