#!/usr/bin/env python3
"""Media relay benchmark: the PBX's relay and rtpengine driven by the same generator, in one run.

Usage (normally through bench/media-compare.sh):
  mediacompare.py --media-bench BIN --relay BIN [--calls 100,250,500,1000] [--reps 3]
                  [--seconds 10] [--json OUT.json]

For every repetition and every N (servers alternating: pbx N, rtpengine N, pbx next N, ...):
  * pbx: `taskset -c 0 media-bench --relay BIN --relay-cpu 1 --calls N` (the harness
    pbx/server/examples/relay_harness.rs, a fresh process per N, relay ports --relay-ports);
  * rtpengine: a fresh `taskset -c 1 rtpengine --config-file=bench/peers/rtpengine.conf` (the kit's
    config: userspace forwarding, ng on 127.0.0.1:2223, ports 30000-39999), then
    `taskset -c 0 media-bench --rtpengine 127.0.0.1:2223 --rtpengine-pid PID --calls N`, then
    rtpengine is stopped (by PID).
The generator's phones use --gen-base .. + 4N. Figures per run are media-bench's row; the summary
is the median over repetitions per relay and N, and the PBX / rtpengine ratio of CPU per call.
"""
import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
COLS = ["calls", "pps", "loss_pct", "jitter_us", "p50_us", "p99_us", "cpu_core_pct",
        "cpu_us_per_pkt", "cpu_pct_per_call", "rss_mb_per_1000", "send_errors"]


def log(msg):
    print(msg, flush=True)


def parse_row(out):
    for line in out.splitlines():
        f = [x.strip() for x in line.strip().strip("|").split("|")]
        if len(f) == len(COLS) and f[0].isdigit():
            return {k: float(v) for k, v in zip(COLS, f)}
    return None


def run_bench(argv, timeout, tries=3):
    """One media-bench run; retried when a port was taken (the generator's and the relays' ports
    lie in the kernel's ephemeral range, which other programs' sockets may take for a moment)."""
    for attempt in range(1, tries + 1):
        try:
            return run_once(argv, timeout)
        except RuntimeError as e:
            if "AddrInUse" not in str(e) or attempt == tries:
                raise
            log(f"  port taken, retrying in 3 s: {str(e)[-120:]}")
            time.sleep(3)


def run_once(argv, timeout):
    r = subprocess.run(["taskset", "-c", "0"] + argv, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=timeout)
    row = parse_row(r.stdout.decode(errors="replace"))
    if r.returncode != 0 or row is None:
        raise RuntimeError(f"media-bench failed (rc={r.returncode}): {r.stdout.decode()[-1500:]}")
    return row


def start_rtpengine(work, conf):
    logf = open(os.path.join(work, "rtpengine.log"), "ab")
    p = subprocess.Popen(["taskset", "-c", "1", "rtpengine", f"--config-file={conf}",
                          f"--pidfile={work}/rtpengine.pid"], stdout=logf, stderr=subprocess.STDOUT,
                         stdin=subprocess.DEVNULL)
    time.sleep(2)
    if p.poll() is not None:
        raise RuntimeError(f"rtpengine exited; see {work}/rtpengine.log")
    return p, logf


def stop(p):
    if p.poll() is None:
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(15)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(5)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--media-bench", required=True)
    ap.add_argument("--relay", required=True)
    ap.add_argument("--calls", default="100,250,500,1000")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--gen-base", type=int, default=46000)
    ap.add_argument("--relay-ports", default="30000-39999")
    ap.add_argument("--servers", default="pbx,rtpengine",
                    help="any of pbx, rtpengine, pbx-before (the harness given by --relay-before)")
    ap.add_argument("--relay-before", help="a relay_harness built from an earlier commit, run as "
                    "server pbx-before: before/after figures of a change in one run")
    ap.add_argument("--json")
    a = ap.parse_args()
    if not shutil.which("rtpengine") and "rtpengine" in a.servers:
        raise SystemExit("mediacompare: rtpengine not found (apt-get install rtpengine-daemon)")
    work = tempfile.mkdtemp(prefix="mediacompare.")
    conf = os.path.join(work, "rtpengine.conf")
    shutil.copy(os.path.join(HERE, "peers", "rtpengine.conf"), conf)
    lo, hi = a.relay_ports.split("-")
    common = ["--seconds", str(a.seconds), "--warmup", str(a.warmup), "--gen-base", str(a.gen_base)]
    runs = []
    for rep in range(1, a.reps + 1):
        for n in [int(x) for x in a.calls.split(",")]:
            for server in a.servers.split(","):
                if server in ("pbx", "pbx-before"):
                    relay = a.relay if server == "pbx" else a.relay_before
                    row = run_bench([a.media_bench, "--relay", relay, "--relay-cpu", "1",
                                     "--port-min", lo, "--port-max", hi, "--calls", str(n)] + common,
                                    a.seconds + a.warmup + 60)
                else:
                    p, logf = start_rtpengine(work, conf)
                    try:
                        row = run_bench([a.media_bench, "--rtpengine", "127.0.0.1:2223",
                                         "--rtpengine-pid", str(p.pid), "--calls", str(n)] + common,
                                        a.seconds + a.warmup + 120)
                    finally:
                        stop(p)
                        logf.close()
                row.update(server=server, rep=rep)
                runs.append(row)
                log("rep {rep} {server:9} calls={calls:5.0f} pps={pps:7.0f} loss={loss_pct:.3f}% "
                    "jitter={jitter_us:.0f}us p50={p50_us:.0f}us p99={p99_us:.0f}us cpu={cpu_core_pct:.1f}% "
                    "cpu/call={cpu_pct_per_call:.4f}% rss/1000={rss_mb_per_1000:.1f}MB".format(**row))
                time.sleep(1)
    med = {}
    for r in runs:
        med.setdefault(r["server"], {}).setdefault(int(r["calls"]), []).append(r)
    summary = {}
    log("\n| calls | relay | pkt/s | loss % | jitter µs | p50 µs | p99 µs | CPU % core | CPU % core per call | RSS MB / 1000 calls |")
    log("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for n in [int(x) for x in a.calls.split(",")]:
        for server in a.servers.split(","):
            rs = med.get(server, {}).get(n, [])
            if not rs:
                continue
            m = {k: statistics.median(r[k] for r in rs) for k in COLS}
            summary.setdefault(server, {})[n] = m
            log(f"| {n} | {server} | {m['pps']:.0f} | {m['loss_pct']:.3f} | {m['jitter_us']:.0f} | "
                f"{m['p50_us']:.0f} | {m['p99_us']:.0f} | {m['cpu_core_pct']:.1f} | "
                f"{m['cpu_pct_per_call']:.4f} | {m['rss_mb_per_1000']:.1f} |")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"calls": a.calls, "reps": a.reps, "seconds": a.seconds, "median": summary,
                       "runs": runs}, f, indent=1)
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
