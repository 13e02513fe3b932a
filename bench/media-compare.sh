#!/usr/bin/env bash
# media-compare.sh [mediacompare.py options...]
#   The media relay benchmark of docs/performance.md: the PBX's relay (relay harness, the PBX's
#   MediaService in a process of its own) and rtpengine (userspace forwarding,
#   bench/peers/rtpengine.conf, driven over its ng protocol) carry the same G.711 load from
#   bench/media-bench, N = 100, 250, 500, 1000 calls, alternating, 3 repetitions, medians.
#   Generator on core 0, relay on core 1.
#   Ports: generator phones 46000-49999, relay ports 30000-39999 (rtpengine's config; the two
#   relays never run at the same time), rtpengine ng 127.0.0.1:2223 and CLI 2224.
#   Before/after a change in one run: --relay-before OLD_relay_harness --servers pbx-before,pbx.
#   Env: CARGO_TARGET_DIR (default target), OUT (default bench/results/media-<UTC time>.json).
#   Needs: rtpengine-daemon, taskset, python3, cargo. Takes about 10 minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
# Without rtpengine, only a --servers list without it can run (e.g. --servers pbx-before,pbx).
command -v rtpengine >/dev/null || [[ "$*" == *--servers* && "$*" != *rtpengine* ]] \
  || { echo "media-compare: apt-get install rtpengine-daemon" >&2; exit 2; }
T=${CARGO_TARGET_DIR:-target}
[ -x "$T/release/examples/relay_harness" ] || cargo build --release -p pbx --example relay_harness
MB_T=$(realpath -m "${MEDIA_BENCH_TARGET:-$T/media-bench}")
[ -x "$MB_T/release/media-bench" ] || (cd bench/media-bench && CARGO_TARGET_DIR="$MB_T" cargo build --release)
mkdir -p bench/results
OUT=${OUT:-bench/results/media-$(date -u +%Y%m%dT%H%M%SZ).json}
echo "media-compare: results -> $OUT"
exec python3 bench/mediacompare.py --media-bench "$MB_T/release/media-bench" \
  --relay "$T/release/examples/relay_harness" --json "$OUT" "$@"
