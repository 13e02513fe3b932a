#!/usr/bin/env python3
"""Call-rate benchmark (INVITE to BYE, no media): the PBX and Kamailio side by side, in one run.

Usage (normally through bench/call-bench.sh):
  callbench.py [--servers kamailio,pbx] [--reps 3] [--duration 20] [--hold-ms 500]
               [--start-rate 200] [--fixed-rate 300] [--json OUT.json] [--keep] [--trunk]

What one run does (the method of ../shared/bench/RESULTS.md, test 2, and of regbench.py):
  * A fresh server for every SIPp run, pinned to core 1 (`taskset -c 1`); SIPp UAC and UAS pinned
    to core 0. Both servers get the same pinning.
  * PBX (`pbx serve`, SQLite): extensions 1000-1999 (password pw<user>); the SIPp UAS registers
    as extension 1000 from its own address and port (bench/sipp/register.xml), then answers on
    that port (bench/sipp/call_uas.xml). Callers 1001-1999 call 1000 with
    bench/sipp/call_uac_auth.xml: INVITE -> 407 -> ACK -> INVITE with MD5 digest -> 100/180/200
    -> ACK, hold, BYE -> 200.
  * Kamailio (bench/peers/kamailio.cfg): the same UAC scenario (Kamailio does not challenge
    INVITEs; the scenario's challenge branch is optional) through its stateful proxy to the same
    SIPp UAS (the config's 127.0.0.1:5070 rewritten to --uas-port).
  * --trunk: calls out through a trunk instead, as a phone calls a provider. The callers are the
    same extensions with the same digest step; they dial TRUNK_NUMBER (0301234567), which the
    PBX's dialplan (context staff, rule `_0.`) sends to `trunk:bench/${number}`, a trunk added
    with `pbx trunk add bench --host 127.0.0.1:UAS_PORT` (no credentials, no --allow: the SIPp
    UAS only answers). The SIPp UAS is the provider: started before the PBX's run and given
    `-aa`, so it answers the trunk's OPTIONS pings (a trunk that misses them is marked down and
    skipped); the run starts once `pbx trunk list` shows the trunk up. Kamailio is started with
    `-A WITH_INVITE_AUTH`: it challenges the INVITEs (407, MD5 digest against the same
    subscriber table) before relaying them statefully (record_route, t_relay) to the same UAS,
    so both servers do the same authentication and the same route. The same UAC and UAS
    scenarios and options (`-aa` included) for both servers.
  * R calls/s for DURATION s (M = R x DURATION calls), each held --hold-ms. A run passes when all
    M calls succeed at the UAC with 0 failed calls (as the kit's max-rate.sh judges; the UAS's
    failed calls are recorded beside), within DURATION + hold + 5 s of
    arrivals. Retransmissions are counted and reported, not a failure (RESULTS.md test 2).
  * Search: as regbench.py (repetition 1 grows x1.5 from --start-rate, then bisects to <= 8 %;
    repetitions 2.. re-run at repetition 1's maximum and step down 8 %); servers alternate.
  * Fixed rate (--fixed-rate, default 300/s, held --fixed-hold-ms, default 3000 ms: 900
    concurrent calls; --fixed-reps times each, alternating): server CPU
    (utime+stime over the run, % of one core), memory 5 s after start (idle) and the peak during
    the run (PBX: VmRSS; Kamailio: PSS summed over its processes, RSS sum beside it), and the
    memory per concurrent call = (peak - idle) / (rate x hold).
  * Other load: as regbench.py (runs with more than --foreign-max % of a core used by other
    processes are void and repeated).
Why the hold is short (500 ms, not RESULTS.md's 10 s): the PBX anchors media for every call,
even without RTP: 4 UDP sockets per call (RTP + RTCP per leg). With this sandbox's 20,000 file
descriptors and the RTP port range given to this benchmark (46020-49999: ~995 calls), a 10 s hold
would cap the rate near 100 calls/s by ports (500 by descriptors). Kamailio gets the same hold.
Stops only the processes it started, by PID.
"""
import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time

import regbench
from regbench import (Bench, Kamailio, Pbx, last_stats, log, machine_busy_ticks, mem_of,
                      proc_ticks, udp_port_free, wait_quiet)

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
UAC = os.path.join(HERE, "sipp", "call_uac_auth.xml")
UAS = os.path.join(HERE, "sipp", "call_uas.xml")
REGISTER = os.path.join(HERE, "sipp", "register.xml")
TICK = os.sysconf("SC_CLK_TCK")
SIPP_CPU = ["taskset", "-c", "0"]
SERVER_CPU = ["taskset", "-c", "1"]
CALLEE = "1000"
# the SIPp processes started, stopped (by PID) when the harness is stopped mid-run
SIPPS = []
TRUNK = "bench"
TRUNK_NUMBER = "0301234567"
# --trunk: the extensions' context sends numbers starting with 0 to the trunk (docs/dialplan.md)
TRUNK_DIALPLAN = f"""[defaults]
context = "staff"

[context.staff]
may_call = ["any"]
[[context.staff.rule]]
pattern = "_0."
steps = [{{ dial = "trunk:{TRUNK}/${{number}}" }}]

[context.from-trunk]
may_call = []
"""


class PinnedKamailio(Kamailio):
    def __init__(self, work, port, uas_port, trunk=False):
        super().__init__(work, port)
        self.uas_port = uas_port
        self.defines = ["-A", "WITH_INVITE_AUTH"] if trunk else []

    def setup(self, users):
        super().setup(users)
        with open(self.cfg) as f:
            cfg = f.read()
        with open(self.cfg, "w") as f:
            f.write(cfg.replace("sip:127.0.0.1:5070", f"sip:127.0.0.1:{self.uas_port}"))
        if self.defines:
            subprocess.run(["kamailio", "-c", "-f", self.cfg] + self.defines, check=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def argv(self):
        return SERVER_CPU + super().argv() + self.defines

    def pids(self):
        # taskset execs the server: same PID
        return super().pids()

    def after_start(self, a, work):
        return True


class PinnedPbx(Pbx):
    def __init__(self, work, port, binary, rtp_ports, trunk_port=None):
        super().__init__(work, port, binary)
        self.rtp_ports = rtp_ports
        self.trunk_port = trunk_port

    def setup(self, users):
        super().setup(users)
        with open(self.cfg, "a") as f:
            f.write(f'\n[rtp]\nports = "{self.rtp_ports}"\n')
        if self.trunk_port is None:
            return
        with open(os.path.join(self.work, "dialplan.toml"), "w") as f:
            f.write(TRUNK_DIALPLAN)
        with open(self.cfg, "a") as f:
            f.write('\n[dialplan]\nfile = "dialplan.toml"\n')
        r = subprocess.run([self.bin, "trunk", "add", TRUNK, "--host",
                            f"127.0.0.1:{self.trunk_port}", "--config", self.cfg],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60)
        if r.returncode != 0:
            raise RuntimeError("pbx trunk add failed: " + r.stdout.decode(errors="replace")[-2000:])
        # every run starts from the database with the extensions and the trunk
        shutil.rmtree(self.pristine)
        shutil.copytree(self.data, self.pristine)

    def argv(self):
        return SERVER_CPU + super().argv()

    def after_start(self, a, work):
        if self.trunk_port is not None:
            return self.trunk_up(work)
        return self.register_callee(a, work)

    def trunk_up(self, work, limit=40):
        """Waits until the trunk answered an OPTIONS ping (the UAS runs already): a trunk found
        down would be skipped by the calls."""
        end, out = time.time() + limit, ""
        while time.time() < end:
            r = subprocess.run([self.bin, "trunk", "list", "--config", self.cfg],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=30)
            out = r.stdout.decode(errors="replace")
            if any(line.split()[:1] == [TRUNK] and " up " in f" {line} "
                   for line in out.splitlines()):
                return True
            time.sleep(0.5)
        with open(os.path.join(work, "register.errors.log"), "w") as f:
            f.write(f"trunk {TRUNK} not up within {limit} s:\n{out}")
        return False

    def register_callee(self, a, work):
        """Registers the SIPp UAS as extension 1000 from its own address and port."""
        csv_path = os.path.join(work, "callee.csv")
        with open(csv_path, "w") as f:
            f.write(f"SEQUENTIAL\n{CALLEE};127.0.0.1;[authentication username={CALLEE} "
                    f"password=pw{CALLEE}]\n")
        r = subprocess.run(SIPP_CPU + ["sipp", f"127.0.0.1:{self.port}", "-sf", REGISTER,
                                       "-inf", csv_path, "-key", "expires", "3600",
                                       "-i", "127.0.0.1", "-p", str(a.uas_port), "-m", "1",
                                       "-timeout", "15s", "-nostdin", "-trace_err",
                                       "-error_file", os.path.join(work, "register.errors.log")],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=work,
                           timeout=30)
        return r.returncode == 0


class Sampler(threading.Thread):
    """Peak memory of the server's processes, sampled every 0.25 s."""

    def __init__(self, server):
        super().__init__(daemon=True)
        self.server, self.stop_flag = server, threading.Event()
        self.peak_pss = self.peak_rss = 0

    def run(self):
        while not self.stop_flag.is_set():
            pss, rss = mem_of(self.server.pids())
            self.peak_pss, self.peak_rss = max(self.peak_pss, pss), max(self.peak_rss, rss)
            self.stop_flag.wait(0.25)


def wait_rusage(proc, limit):
    """Waits (bounded) for proc; returns (exit code, CPU seconds). Kills it (by PID) past limit."""
    end = time.time() + limit
    while time.time() < end:
        pid, status, ru = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            proc.returncode = os.waitstatus_to_exitcode(status)
            return proc.returncode, ru.ru_utime + ru.ru_stime
        time.sleep(0.05)
    proc.kill()
    _, status, ru = os.wait4(proc.pid, 0)
    proc.returncode = -9
    return -9, ru.ru_utime + ru.ru_stime


def call_run(server, a, rate, callers_csv, work, scenario):
    total = rate * a.duration
    tag = f"{server.name}-{rate}-{time.time_ns()}"
    for p in (a.uac_port, a.uas_port):
        if not udp_port_free(p):
            raise RuntimeError(f"UDP 127.0.0.1:{p} is taken by another process")
    hold_s = a.hold_ms / 1000
    limit = a.duration * 2 + hold_s + 30
    uas_stf, uac_stf = (os.path.join(work, f"{k}-{tag}.csv") for k in ("uas", "uac"))

    # --trunk: the trunk's OPTIONS pings open one SIPp call (its Call-ID) that never ends and
    # counts against -m: room for it, and the UAS is stopped (by PID) shortly after the UAC
    uas_max = total + 10 if a.trunk else total

    def start_uas():
        # -aa: the provider answers the trunk's OPTIONS pings (200) outside the scenario
        return subprocess.Popen(
            SIPP_CPU + ["sipp", "-sf", UAS, "-i", "127.0.0.1", "-p", str(a.uas_port), "-mi",
                        "127.0.0.1", "-mp", str(a.uas_mp), "-m", str(uas_max), "-timeout",
                        f"{int(limit)}s", "-trace_stat", "-stf", uas_stf, "-fd", "1",
                        "-trace_err", "-error_file", os.path.join(work, f"uas-{tag}.errors.log"),
                        "-nostdin"] + (["-aa"] if a.trunk else []),
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
            cwd=work)

    # extensions: the UAS registers from its port first; trunk: the trunk pings the UAS
    uas = start_uas() if a.trunk else None
    SIPPS.append(uas)
    if not server.after_start(a, work):
        if uas:
            uas.kill()
            uas.wait()
        what = f"trunk {TRUNK} was not up" if a.trunk else f"the SIPp UAS could not register as {CALLEE}"
        raise RuntimeError(f"{server.name}: {what}; see {work}/register.errors.log")
    if uas is None:
        uas = start_uas()
        SIPPS.append(uas)
    time.sleep(1)
    own = server.pids()
    if not own:
        uas.kill()
        raise RuntimeError(f"{server.name} is not running")
    idle = mem_of(own)
    sampler = Sampler(server)
    sampler.start()
    b0, s0 = machine_busy_ticks(), sum(proc_ticks(p) for p in own)
    t0 = time.time()
    uac = subprocess.Popen(
        SIPP_CPU + ["sipp", f"127.0.0.1:{server.port}", "-sf", scenario, "-inf", callers_csv,
                    "-s", TRUNK_NUMBER if a.trunk else CALLEE, "-i", "127.0.0.1", "-p", str(a.uac_port), "-mi", "127.0.0.1",
                    "-mp", str(a.uac_mp), "-r", str(rate), "-rp", "1000", "-m", str(total),
                    "-l", "60000", "-timeout", f"{int(limit)}s", "-trace_stat", "-stf", uac_stf,
                    "-fd", "1", "-trace_err", "-error_file",
                    os.path.join(work, f"uac-{tag}.errors.log"), "-nostdin"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL, cwd=work)
    SIPPS.append(uac)
    rc, uac_cpu = wait_rusage(uac, limit + 10)
    elapsed = time.time() - t0
    b1, s1 = machine_busy_ticks(), sum(proc_ticks(p) for p in own)
    sampler.stop_flag.set()
    sampler.join()
    # the UAS keeps each call 2 s after its BYE (call_uas.xml)
    uas_rc, uas_cpu = wait_rusage(uas, 3 if a.trunk else 10)
    busy = (b1 - b0) / TICK
    srv_cpu = (s1 - s0) / TICK
    if not server.pids():
        raise RuntimeError(f"{server.name} died during the run")
    st, su = last_stats(uac_stf), last_stats(uas_stf)
    if not st:
        raise RuntimeError(f"sipp wrote no statistics (rc={rc}); see {work}")
    ok = st.get("SuccessfulCall(C)", -1)
    failed = st.get("FailedCall(C)", -1)
    uas_failed = su.get("FailedCall(C)", -1)
    conc = rate * hold_s
    pss_kb, rss_kb = (sampler.peak_pss - idle[0], sampler.peak_rss - idle[1])
    per_call_kb = (pss_kb if server.name == "kamailio" else rss_kb) / conc if conc else 0
    res = dict(server=server.name, rate=rate, calls=total, hold_ms=a.hold_ms, sipp_rc=rc,
               uas_rc=uas_rc, ok=ok, failed=failed, uas_failed=uas_failed,
               retrans=st.get("Retransmissions(C)", -1), uas_retrans=su.get("Retransmissions(C)", -1),
               elapsed=round(elapsed, 1),
               server_cpu=round(100 * srv_cpu / elapsed, 1),
               sipp_cpu=round(100 * (uac_cpu + uas_cpu) / elapsed, 1),
               foreign_cpu=round(100 * max(0.0, busy - srv_cpu - uac_cpu - uas_cpu) / elapsed, 1),
               idle_pss_kb=idle[0], idle_rss_kb=idle[1],
               peak_pss_kb=sampler.peak_pss, peak_rss_kb=sampler.peak_rss,
               concurrent=round(conc), mem_per_call_kb=round(per_call_kb, 1))
    # judged at the UAC, as the kit's max-rate.sh does; the UAS's failures are recorded (with
    # Kamailio they are ACKs its parallel workers forward after the BYE: see RESULTS.md)
    res["passed"] = (rc == 0 and ok == total and failed == 0
                     and elapsed <= a.duration + hold_s + 5 + 2)
    return res


class CallBench(Bench):
    def __init__(self, a, servers, work, callers_csv, scenario):
        super().__init__(a, servers, work)
        self.callers_csv, self.scenario = callers_csv, scenario

    def measure(self, server, rate, kind="search"):
        for attempt in range(1, self.a.tries + 1):
            server.start()
            try:
                pre = wait_quiet(self.a.foreign_max, server.pids() + [os.getpid()],
                                 max_wait=60 * attempt)
                r = call_run(server, self.a, rate, self.callers_csv, server.work, self.scenario)
            finally:
                server.stop()
            r["attempt"], r["foreign_before"], r["kind"] = attempt, round(pre, 1), kind
            void = r["foreign_cpu"] > self.a.foreign_max
            r["void"] = void
            self.runs.append(r)
            log("  {server:8} rate={rate:5} calls={calls:6} ok={ok} failed={failed} uas_failed={uas_failed} "
                "retrans={retrans}/{uas_retrans} rc={sipp_rc} t={elapsed}s server_cpu={server_cpu}% "
                "sipp_cpu={sipp_cpu}% foreign_cpu={foreign_cpu}% mem/call={mem_per_call_kb}kB {v}"
                .format(**r, v="VOID" if void else ("PASS" if r["passed"] else "FAIL")))
            if not void:
                return r["passed"]
        log(f"  {server.name}: still under foreign load after {self.a.tries} tries; counting the last run")
        return r["passed"]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--servers", default="kamailio,pbx")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--duration", type=int, default=20)
    ap.add_argument("--hold-ms", type=int, default=500)
    ap.add_argument("--port", type=int, default=45060, help="the server's UDP port")
    ap.add_argument("--uac-port", type=int, default=45061)
    ap.add_argument("--uas-port", type=int, default=45070)
    ap.add_argument("--uac-mp", type=int, default=46000, help="SIPp UAC media port (+0..3 bound)")
    ap.add_argument("--uas-mp", type=int, default=46010, help="SIPp UAS media port (+0..3 bound)")
    ap.add_argument("--rtp-ports", default="46020-49999", help="the PBX's [rtp] ports")
    ap.add_argument("--pbx-bin", default=os.environ.get("PBX_BIN", os.path.join(ROOT, "target/release/pbx")))
    ap.add_argument("--start-rate", type=int, default=200)
    ap.add_argument("--max-rate", type=int, default=20000)
    ap.add_argument("--fixed-rate", type=int, default=300)
    ap.add_argument("--fixed-reps", type=int, default=2)
    ap.add_argument("--fixed-hold-ms", type=int, default=3000,
                    help="hold of the fixed-rate runs: 300/s x 3 s = 900 concurrent calls")
    ap.add_argument("--foreign-max", type=float, default=25.0,
                    help="%% of one core other processes may use during a valid run")
    ap.add_argument("--tries", type=int, default=6, help="runs at one rate while void")
    ap.add_argument("--json")
    ap.add_argument("--no-rate", action="store_true")
    ap.add_argument("--no-fixed", action="store_true")
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--trunk", action="store_true",
                    help="calls out through a trunk to the SIPp UAS (see above) instead of to an "
                         "extension")
    a = ap.parse_args()
    # SIGTERM (e.g. `kill PID` of this script) still stops the servers and SIPp it started
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    for tool in ("sipp", "sqlite3", "kamailio", "taskset"):
        if not shutil.which(tool):
            sys.exit(f"callbench: {tool} not found (apt-get install sip-tester sqlite3 kamailio "
                     "kamailio-sqlite-modules util-linux)")
    if os.cpu_count() < 2:
        sys.exit("callbench: needs 2 cores (SIPp on core 0, the server on core 1)")
    work = tempfile.mkdtemp(prefix="callbench.")
    users = [(str(u), f"pw{u}") for u in range(1000, 2000)]
    callers_csv = os.path.join(work, "callers.csv")
    with open(callers_csv, "w") as f:
        f.write("SEQUENTIAL\n")
        f.writelines(f"{u};127.0.0.1;[authentication username={u} password={p}]\n"
                     for u, p in users if u != CALLEE)
    def scenario_for(hold_ms):
        if hold_ms == 1000:
            return UAC
        path = os.path.join(work, f"call_uac_auth-{hold_ms}.xml")
        with open(UAC) as f:
            xml = f.read()
        with open(path, "w") as f:
            f.write(xml.replace('timeout="1000"', f'timeout="{hold_ms}"'))
        return path
    scenario = scenario_for(a.hold_ms)
    search_hold = a.hold_ms

    servers = []
    for name in a.servers.split(","):
        d = os.path.join(work, name)
        os.makedirs(d)
        if name == "kamailio":
            s = PinnedKamailio(d, a.port, a.uas_port, a.trunk)
        elif name == "pbx":
            if not os.access(a.pbx_bin, os.X_OK):
                sys.exit(f"callbench: no PBX binary at {a.pbx_bin} (cargo build --release -p pbx)")
            s = PinnedPbx(d, a.port, os.path.abspath(a.pbx_bin), a.rtp_ports,
                          a.uas_port if a.trunk else None)
        else:
            sys.exit(f"callbench: unknown server {name}")
        s.setup(users)
        servers.append(s)
    log(f"callbench: mode={'trunk' if a.trunk else 'extension'} work={work} port={a.port} duration={a.duration}s hold={a.hold_ms}ms reps={a.reps} "
        f"servers={','.join(s.name for s in servers)} cores={os.cpu_count()} (SIPp core 0, server core 1)")

    bench = CallBench(a, servers, work, callers_csv, scenario)
    best = {s.name: [] for s in servers}
    try:
        if not a.no_rate:
            for rep in range(1, a.reps + 1):
                for s in servers:
                    log(f"rep {rep} {s.name}:")
                    top = bench.rep_first(s) if rep == 1 else bench.rep_again(s, best[s.name][0])
                    best[s.name].append(top)
                    log(f"rep {rep} {s.name}: max_rate={top}")
        if not a.no_fixed:
            bench.scenario, a.hold_ms = scenario_for(a.fixed_hold_ms), a.fixed_hold_ms
            for rep in range(1, a.fixed_reps + 1):
                for s in servers:
                    log(f"fixed rate {a.fixed_rate}/s, rep {rep} {s.name}:")
                    bench.measure(s, a.fixed_rate, kind="fixed")
    finally:
        for s in servers:
            s.stop()
        for p in SIPPS:
            if p is not None and p.returncode is None:
                p.kill()

    fixed = {}
    for s in servers:
        rs = [r for r in bench.runs if r["server"] == s.name and r["kind"] == "fixed" and not r["void"]]
        if rs:
            fixed[s.name] = {k: statistics.median(r[k] for r in rs)
                             for k in ("server_cpu", "sipp_cpu", "idle_pss_kb", "idle_rss_kb",
                                       "peak_pss_kb", "peak_rss_kb", "mem_per_call_kb")}
            fixed[s.name]["passed"] = [r["passed"] for r in rs]
    summary = {"machine": regbench.machine(), "mode": "trunk" if a.trunk else "extension",
               "duration": a.duration,
               "hold_ms": search_hold, "fixed_hold_ms": a.fixed_hold_ms,
               "reps": a.reps, "max_rates": best,
               "median": {k: statistics.median(v) for k, v in best.items() if v},
               "fixed_rate": a.fixed_rate, "fixed": fixed, "runs": bench.runs}
    log("")
    for k, v in best.items():
        if v:
            log(f"result: {k:8} max_rate median={statistics.median(v):g} calls/s reps={v}")
    for k, f in fixed.items():
        log(f"fixed {a.fixed_rate}/s: {k:8} server_cpu={f['server_cpu']}% sipp_cpu={f['sipp_cpu']}% "
            f"idle PSS={f['idle_pss_kb'] / 1024:.1f} MB RSS={f['idle_rss_kb'] / 1024:.1f} MB "
            f"peak PSS={f['peak_pss_kb'] / 1024:.1f} MB RSS={f['peak_rss_kb'] / 1024:.1f} MB "
            f"per concurrent call={f['mem_per_call_kb']} kB passed={f['passed']}")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(summary, f, indent=1)
    if not a.keep:
        shutil.rmtree(work, ignore_errors=True)
    else:
        log(f"kept {work}")


if __name__ == "__main__":
    main()
