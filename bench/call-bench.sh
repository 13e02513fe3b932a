#!/usr/bin/env bash
# call-bench.sh [callbench.py options...]
#   The call-rate benchmark of docs/performance.md (INVITE to BYE, no media): in ONE run, the
#   highest call rate with 0 failed calls for the PBX and for Kamailio (alternating, 3 repetitions,
#   medians), then server CPU and memory at a fixed rate (300 calls/s) for both.
#   PBX: the SIPp UAS registers as extension 1000, callers 1001-1999 answer the PBX's 407.
#   Kamailio: stateful proxy to the same SIPp UAS. SIPp on core 0, the server on core 1.
#   --trunk: calls out through a trunk instead: the callers dial 0301234567, the PBX's dialplan
#   sends it to trunk:bench/${number} (`pbx trunk add bench --host` the SIPp UAS, which answers
#   the trunk's OPTIONS with -aa); Kamailio challenges the INVITEs too (-A WITH_INVITE_AUTH) and
#   relays them, record-routed, to the same UAS.
#   Method and options: bench/callbench.py --help. Scenarios: bench/sipp/call_uac_auth.xml (the
#   kit's call_uac_late180.xml plus the 407 branch), call_uas.xml and register.xml (unchanged
#   copies from ../shared); Kamailio config: bench/peers/kamailio.cfg (paths and ports rewritten).
#   Ports: server 45060, UAC 45061, UAS 45070, SIPp media 46000/46010, PBX RTP 46020-49999.
#   Env: PBX_BIN (default: $CARGO_TARGET_DIR/release/pbx, built when missing), OUT (default
#   bench/results/calls-<UTC time>.json).
#   Needs: sip-tester, kamailio, kamailio-sqlite-modules, sqlite3, python3, taskset. Everything
#   listens on 127.0.0.1 only; only the processes it started are stopped, by PID.
#   Takes 10-30 minutes with the defaults (--duration 10: about 5 minutes).
set -euo pipefail
cd "$(dirname "$0")/.."
for t in sipp kamailio sqlite3 python3 taskset; do
  command -v "$t" >/dev/null || {
    echo "call-bench: $t missing (apt-get install sip-tester kamailio kamailio-sqlite-modules sqlite3)" >&2
    exit 2
  }
done
PBX_BIN=${PBX_BIN:-${CARGO_TARGET_DIR:-target}/release/pbx}
if [ ! -x "$PBX_BIN" ]; then
  cargo build --release -p pbx
fi
mkdir -p bench/results
OUT=${OUT:-bench/results/calls-$(date -u +%Y%m%dT%H%M%SZ).json}
echo "call-bench: pbx=$PBX_BIN ($("$PBX_BIN" --version 2>/dev/null || echo '?')) results -> $OUT"
exec python3 bench/callbench.py --pbx-bin "$PBX_BIN" --json "$OUT" "$@"
