#!/usr/bin/env bash
# webrtc-bench.sh [CALLS...]   (default: 50 200 500)
#   The browser <-> phone media benchmark of docs/performance.md (issue 14): for every
#   repetition, every N and every mode, alternating, a fresh webrtc_harness (the PBX's
#   MediaService in a process of its own, pinned to core 1) carries N calls driven by
#   webrtc_load (pinned to core 0) over loopback UDP:
#     plain  RTP <-> RTP (the relay, the baseline of the same run),
#     dtls   browser (ICE, DTLS-SRTP, PCMU) <-> phone (RTP, PCMU), no transcoding,
#     opus   browser (ICE, DTLS-SRTP, Opus) <-> phone (RTP, PCMU), transcoded.
#   Each run prints one RESULT line (the harness's CPU over the window, per call).
#   Ports: generator GEN_BASE (50000) + 4 per call, harness PORT_MIN-PORT_MAX (40000-44999),
#   apart from media-compare.sh's so both can run on one machine.
#   Env: CARGO_TARGET_DIR (default target), REPS (3), SECS (10), WARMUP (3), MODES
#   ("plain dtls opus"), OUT (default bench/results/webrtc-<UTC time>.txt).
set -euo pipefail
cd "$(dirname "$0")/.."
T=${CARGO_TARGET_DIR:-target}
[ -x "$T/release/examples/webrtc_harness" ] || cargo build --release -p pbx --example webrtc_harness
[ -x "$T/release/examples/webrtc_load" ] || cargo build --release -p pbx-media --example webrtc_load
REPS=${REPS:-3}
SECS=${SECS:-10}
WARMUP=${WARMUP:-3}
MODES=${MODES:-plain dtls opus}
CALLS=${*:-50 200 500}
mkdir -p bench/results
OUT=${OUT:-bench/results/webrtc-$(date -u +%Y%m%dT%H%M%SZ).txt}
echo "webrtc-bench: results -> $OUT"
for rep in $(seq 1 "$REPS"); do
  for n in $CALLS; do
    for mode in $MODES; do
      echo "rep=$rep $(date -u +%H:%M:%S) load=$(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$OUT"
      taskset -c 0 "$T/release/examples/webrtc_load" --harness "$T/release/examples/webrtc_harness" \
        --harness-cpu 1 --mode "$mode" --calls "$n" --seconds "$SECS" --warmup "$WARMUP" \
        --gen-base "${GEN_BASE:-50000}" --port-min "${PORT_MIN:-40000}" --port-max "${PORT_MAX:-44999}" | tee -a "$OUT"
    done
  done
done
