#!/usr/bin/env python3
"""REGISTER-with-digest benchmark: the PBX and Kamailio side by side, in one run.

Usage (normally through bench/register-bench.sh):
  regbench.py [--servers kamailio,pbx] [--reps 3] [--duration 20] [--port 25060]
              [--pbx-bin target/release/pbx] [--start-rate 2000] [--json OUT.json] [--no-mem]

What one run does (the method of ../shared/bench/RESULTS.md, adapted from its max-rate.sh):
  * A fresh server for every SIPp run (started, probed with OPTIONS until it answers, 2 s settle);
    the PBX also gets its database back as it was after the import (no bindings), as Kamailio's
    in-memory location table starts empty.
  * SIPp `bench/sipp/reg_uac.xml` (REGISTER -> 401 -> REGISTER with MD5 digest -> 200) over UDP,
    users 1000-1999 from `bench/sipp/users.csv`, at R/s for DURATION s: M = R x DURATION
    registrations. A run passes when all M succeed with 0 failed and 0 retransmissions (SIPp T1 =
    500 ms, so any answer later than 500 ms fails the run) within DURATION + 3 s of arrivals.
  * Search: repetition 1 grows the rate x1.5 until a run fails, then bisects to a gap <= 8 %.
    Repetitions 2.. re-run at repetition 1's maximum and step down 8 % while the run fails (at most
    6 runs). Servers alternate: rep 1 kamailio, rep 1 pbx, rep 2 kamailio, ... Reported: median.
  * Other load: /proc/stat CPU used by processes other than the server and SIPp is measured for
    every run; a run with more than --foreign-max % (of one core) of it is void and retried (up to
    6 tries), after waiting (at most 120 s x the try number) for the machine to quieten.
  * Memory: each server fresh, 5 s after start (idle), then after registering 10,000 distinct
    users (10000-19999, 1000/s): the PBX's VmRSS (one process); Kamailio's PSS summed over its
    processes (smaps_rollup), with the RSS sum beside it.
Prints one line per run and a summary; --json writes everything machine-readable.
Stops only the processes it started, by PID.
"""
import argparse
import csv
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
SCENARIO = os.path.join(HERE, "sipp", "reg_uac.xml")
USERS = os.path.join(HERE, "sipp", "users.csv")
KAM_CFG = os.path.join(HERE, "peers", "kamailio.cfg")
TICK = os.sysconf("SC_CLK_TCK")


def log(msg):
    print(msg, flush=True)


def free_udp_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def udp_port_free(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.bind(("127.0.0.1", port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def free_tcp_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


# ---------------------------------------------------------------- /proc accounting

def proc_ticks(pid):
    """utime+stime (+ reaped children) of one process, in clock ticks; 0 when gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            parts = f.read().rsplit(")", 1)[1].split()
        # fields after ')' start at 3 (state): utime=14 stime=15 cutime=16 cstime=17
        return sum(int(parts[i - 3]) for i in (14, 15, 16, 17))
    except (OSError, IndexError, ValueError):
        return 0


def descendants(pid):
    """pid and every live descendant (Kamailio forks workers)."""
    kids = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        kids.setdefault(ppid, []).append(int(d))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(kids.get(p, []))
    return out


def machine_busy_ticks():
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    # user nice system idle iowait irq softirq steal: busy = all but idle and iowait
    return sum(v) - v[3] - v[4]


def foreign_load(seconds, own_pids):
    """% of one core used by everything but own_pids during `seconds`."""
    b0, o0 = machine_busy_ticks(), sum(proc_ticks(p) for p in own_pids)
    time.sleep(seconds)
    b1, o1 = machine_busy_ticks(), sum(proc_ticks(p) for p in own_pids)
    return 100.0 * ((b1 - b0) - (o1 - o0)) / TICK / seconds


def wait_quiet(limit, own_pids, max_wait=120):
    """Wait (bounded) until other processes use less than `limit` % of a core."""
    t_end = time.time() + max_wait
    while True:
        load = foreign_load(2, own_pids)
        if load <= limit or time.time() >= t_end:
            return load


def mem_of(pids):
    """(sum of PSS kB, sum of RSS kB) over pids."""
    pss = rss = 0
    for p in pids:
        try:
            with open(f"/proc/{p}/smaps_rollup") as f:
                for line in f:
                    if line.startswith("Pss:"):
                        pss += int(line.split()[1])
            with open(f"/proc/{p}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        rss += int(line.split()[1])
        except (OSError, ValueError, IndexError):
            pass
    return pss, rss


# ---------------------------------------------------------------- servers

def sip_probe(port, timeout=20.0):
    """True once something answers an OPTIONS on 127.0.0.1:port (UDP)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    lp = s.getsockname()[1]
    s.settimeout(0.3)
    end = time.time() + timeout
    n = 0
    try:
        while time.time() < end:
            n += 1
            msg = (f"OPTIONS sip:127.0.0.1:{port} SIP/2.0\r\n"
                   f"Via: SIP/2.0/UDP 127.0.0.1:{lp};branch=z9hG4bKprobe{n}{os.getpid()};rport\r\n"
                   f"Max-Forwards: 70\r\nFrom: <sip:probe@127.0.0.1>;tag=p{n}\r\n"
                   f"To: <sip:127.0.0.1:{port}>\r\nCall-ID: probe{n}-{os.getpid()}@127.0.0.1\r\n"
                   f"CSeq: {n} OPTIONS\r\nContent-Length: 0\r\n\r\n").encode()
            s.sendto(msg, ("127.0.0.1", port))
            try:
                data, _ = s.recvfrom(65535)
                if data.startswith(b"SIP/2.0 "):
                    return True
            except socket.timeout:
                pass
        return False
    finally:
        s.close()


class Server:
    name = "?"

    def __init__(self, work, port):
        self.work, self.port, self.proc = work, port, None

    def pids(self):
        return descendants(self.proc.pid) if self.proc and self.proc.poll() is None else []

    def start(self):
        if not udp_port_free(self.port):
            raise RuntimeError(f"UDP 127.0.0.1:{self.port} is taken by another process; pick --port")
        self.logf = open(os.path.join(self.work, f"{self.name}.log"), "ab")
        self.proc = subprocess.Popen(self.argv(), stdout=self.logf, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, cwd=self.work)
        if not sip_probe(self.port) or self.proc.poll() is not None:
            self.stop()
            raise RuntimeError(f"{self.name} did not answer OPTIONS on port {self.port}; "
                               f"see {self.logf.name}")
        time.sleep(2)
        if self.proc.poll() is not None:
            raise RuntimeError(f"{self.name} exited during start-up; see {self.logf.name}")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None
        if getattr(self, "logf", None):
            self.logf.close()
            self.logf = None


class Kamailio(Server):
    """../shared/bench/peers/kamailio.cfg, with its /tmp/kam paths and port 5060 rewritten."""
    name = "kamailio"

    def setup(self, users):
        self.db = os.path.join(self.work, "kamailio.sqlite")
        sql = ["CREATE TABLE version (id INTEGER PRIMARY KEY NOT NULL, table_name VARCHAR(32) NOT NULL,"
               " table_version INTEGER DEFAULT 0 NOT NULL, CONSTRAINT version_table_name_idx UNIQUE (table_name));",
               "INSERT INTO version (table_name, table_version) values ('version','1');",
               "CREATE TABLE subscriber (id INTEGER PRIMARY KEY NOT NULL, username VARCHAR(64) DEFAULT '' NOT NULL,"
               " domain VARCHAR(64) DEFAULT '' NOT NULL, password VARCHAR(64) DEFAULT '' NOT NULL,"
               " ha1 VARCHAR(128) DEFAULT '' NOT NULL, ha1b VARCHAR(128) DEFAULT '' NOT NULL,"
               " CONSTRAINT subscriber_account_idx UNIQUE (username, domain));",
               "CREATE INDEX subscriber_username_idx ON subscriber (username);",
               "INSERT INTO version (table_name, table_version) values ('subscriber','7');",
               "BEGIN;"]
        sql += [f"INSERT INTO subscriber (username, domain, password) VALUES ('{u}', '127.0.0.1', '{p}');"
                for u, p in users]
        sql.append("COMMIT;")
        subprocess.run(["sqlite3", self.db], input="\n".join(sql).encode(), check=True)
        with open(KAM_CFG) as f:
            cfg = f.read()
        cfg = (cfg.replace("/tmp/kam/", self.work + "/")
               .replace("127.0.0.1:5060", f"127.0.0.1:{self.port}"))
        self.cfg = os.path.join(self.work, "kamailio.cfg")
        with open(self.cfg, "w") as f:
            f.write(cfg)
        subprocess.run(["kamailio", "-c", "-f", self.cfg], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def argv(self):
        # -DD: stay in the foreground (our child) but still fork the workers
        return ["kamailio", "-f", self.cfg, "-m", "256", "-M", "16", "-E", "-DD",
                "-P", os.path.join(self.work, "kamailio.pid")]

    def memory(self):
        return mem_of(self.pids())


class Pbx(Server):
    """target/release/pbx serve, UDP on 127.0.0.1:port, SQLite, users imported by the CLI."""
    name = "pbx"

    def __init__(self, work, port, binary):
        super().__init__(work, port)
        self.bin = binary

    def setup(self, users):
        self.cfg = os.path.join(self.work, "pbx.toml")
        web = free_tcp_port()
        with open(self.cfg, "w") as f:
            f.write(f"""[sip]
listen = ["udp:127.0.0.1:{self.port}"]
domain = "127.0.0.1"

[database]
url = "sqlite://data/pbx.db"

[security]
# the load comes from one address: no ban can trigger (every password is right)
max_auth_failures = 1000000
failure_window = "60s"
ban_for = "1s"
# all the load comes from one address: lift the per-source request-rate limit
rate_limit = 10000000
rate_burst = 10000000

[web]
listen = "127.0.0.1:{web}"
""")
        extra = os.environ.get("PBX_BENCH_EXTRA_TOML")
        if extra:
            with open(self.cfg, "a") as f:
                f.write("\n" + extra + "\n")
        imp = os.path.join(self.work, "extensions.csv")
        with open(imp, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["number", "password", "name", "email", "pin"])
            for u, p in users:
                w.writerow([u, p, f"Bench {u}", "", ""])
        r = subprocess.run([self.bin, "extension", "import", imp, "--config", self.cfg],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=600)
        if r.returncode != 0:
            raise RuntimeError("pbx extension import failed: " + r.stdout.decode(errors="replace")[-2000:])
        # Kamailio starts every run with an empty (in-memory) location table; so does the PBX:
        # its database is put back to this just-imported copy before every start
        self.data = os.path.join(self.work, "data")
        self.pristine = os.path.join(self.work, "data.pristine")
        shutil.copytree(self.data, self.pristine)

    def start(self):
        shutil.rmtree(self.data, ignore_errors=True)
        shutil.copytree(self.pristine, self.data)
        super().start()

    def argv(self):
        return [self.bin, "serve", "--config", self.cfg]

    def memory(self):
        return mem_of(self.pids())

    def bindings(self):
        r = subprocess.run([self.bin, "registration", "list", "--config", self.cfg],
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, timeout=120)
        return sum(1 for line in r.stdout.decode(errors="replace").splitlines() if "sip:" in line)


# ---------------------------------------------------------------- one SIPp run

def sipp_run(server, rate, duration, users_csv, work, extra_timeout=20):
    total = rate * duration
    lport = free_udp_port()
    stf = os.path.join(work, f"stat-{server.name}-{rate}-{time.time_ns()}.csv")
    argv = ["sipp", f"127.0.0.1:{server.port}", "-sf", SCENARIO, "-inf", users_csv,
            "-i", "127.0.0.1", "-p", str(lport), "-r", str(rate), "-rp", "1000", "-m", str(total),
            "-l", "20000", "-timeout", f"{duration * 2 + extra_timeout}s", "-trace_stat", "-stf", stf,
            "-fd", "1", "-nostdin"]
    own = server.pids()
    if not own:
        raise RuntimeError(f"{server.name} is not running")
    b0, s0 = machine_busy_ticks(), sum(proc_ticks(p) for p in own)
    t0 = time.time()
    p = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                         stdin=subprocess.DEVNULL, cwd=work)
    try:
        _, status, ru = os.wait4(p.pid, 0)
    finally:
        p.returncode = 0
    elapsed = time.time() - t0
    rc = os.waitstatus_to_exitcode(status)
    sipp_cpu = ru.ru_utime + ru.ru_stime
    b1, s1 = machine_busy_ticks(), sum(proc_ticks(p) for p in own)
    busy = (b1 - b0) / TICK
    srv_cpu = (s1 - s0) / TICK
    if not server.pids():
        raise RuntimeError(f"{server.name} died during the run")
    stats = last_stats(stf)
    if not stats:
        raise RuntimeError(f"sipp wrote no statistics (rc={rc}): {' '.join(argv)}")
    ok_calls = stats.get("SuccessfulCall(C)", -1)
    failed = stats.get("FailedCall(C)", -1)
    retrans = stats.get("Retransmissions(C)", -1)
    res = dict(server=server.name, rate=rate, calls=total, sipp_rc=rc, ok=ok_calls, failed=failed,
               retrans=retrans, elapsed=round(elapsed, 1),
               server_cpu=round(100 * srv_cpu / elapsed, 1), sipp_cpu=round(100 * sipp_cpu / elapsed, 1),
               foreign_cpu=round(100 * max(0.0, busy - srv_cpu - sipp_cpu) / elapsed, 1))
    res["passed"] = (rc == 0 and ok_calls == total and failed == 0 and retrans == 0
                     and elapsed <= duration + 3 + 2)
    return res


def last_stats(path):
    """The cumulative counters of the last line of SIPp's -trace_stat CSV."""
    try:
        with open(path) as f:
            rows = [r for r in csv.reader(f, delimiter=";") if r]
    except OSError:
        return {}
    if len(rows) < 2:
        return {}
    out = {}
    for k, v in zip(rows[0], rows[-1]):
        try:
            out[k] = int(v)
        except ValueError:
            pass
    return out


# ---------------------------------------------------------------- search

class Bench:
    def __init__(self, a, servers, work):
        self.a, self.servers, self.work, self.runs = a, servers, work, []

    def measure(self, server, rate):
        """One valid run at `rate` (fresh server; void and retried under foreign load)."""
        for attempt in range(1, 7):
            server.start()
            try:
                pre = wait_quiet(self.a.foreign_max, server.pids() + [os.getpid()],
                                 max_wait=120 * attempt)
                r = sipp_run(server, rate, self.a.duration, USERS, self.work)
            finally:
                server.stop()
            r["attempt"], r["foreign_before"] = attempt, round(pre, 1)
            void = r["foreign_cpu"] > self.a.foreign_max
            r["void"] = void
            self.runs.append(r)
            log("  {server:8} rate={rate:5} calls={calls:6} ok={ok} failed={failed} retrans={retrans} "
                "rc={sipp_rc} t={elapsed}s server_cpu={server_cpu}% sipp_cpu={sipp_cpu}% "
                "foreign_cpu={foreign_cpu}% {v}".format(**r, v="VOID" if void else
                                                        ("PASS" if r["passed"] else "FAIL")))
            if not void:
                return r["passed"]
        log(f"  {server.name}: still under foreign load after 6 tries; counting the last run")
        return r["passed"]

    def rep_first(self, server):
        lo, hi, rate = 0, None, self.a.start_rate
        while hi is None:
            if self.measure(server, rate):
                lo, rate = rate, int(rate * 1.5)
                if rate > self.a.max_rate:
                    return lo
            else:
                hi = rate
        while lo and hi / lo > 1.08:
            mid = int((lo + hi) / 2)
            if self.measure(server, mid):
                lo = mid
            else:
                hi = mid
        if lo == 0:   # even the start rate failed: walk down
            rate = self.a.start_rate
            for _ in range(8):
                rate = int(rate / 1.5)
                if rate < 10:
                    break
                if self.measure(server, rate):
                    return rate
        return lo

    def rep_again(self, server, top):
        rate = top
        for _ in range(6):
            if rate < 10:
                break
            if self.measure(server, rate):
                return rate
            rate = int(rate * 0.92)
        return 0


def memory_run(server, users10k_csv, work):
    server.start()
    try:
        time.sleep(3)            # 5 s after start, with start()'s 2 s settle
        idle = server.memory()
        r = sipp_run(server, 1000, 10, users10k_csv, work, extra_timeout=60)
        time.sleep(2)
        loaded = server.memory()
        n = server.bindings() if isinstance(server, Pbx) else None
    finally:
        server.stop()
    return dict(server=server.name, idle_pss_kb=idle[0], idle_rss_kb=idle[1],
                loaded_pss_kb=loaded[0], loaded_rss_kb=loaded[1], registered_ok=r["ok"],
                failed=r["failed"], retrans=r["retrans"], bindings_listed=n)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--servers", default="kamailio,pbx")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--duration", type=int, default=20)
    ap.add_argument("--port", type=int, default=25060)
    ap.add_argument("--pbx-bin", default=os.environ.get("PBX_BIN", os.path.join(ROOT, "target/release/pbx")))
    ap.add_argument("--start-rate", type=int, default=2000)
    ap.add_argument("--max-rate", type=int, default=40000)
    ap.add_argument("--foreign-max", type=float, default=25.0,
                    help="%% of one core other processes may use during a valid run")
    ap.add_argument("--json")
    ap.add_argument("--no-mem", action="store_true")
    ap.add_argument("--no-rate", action="store_true")
    ap.add_argument("--keep", action="store_true")
    a = ap.parse_args()

    for tool in ("sipp", "sqlite3", "kamailio"):
        if not shutil.which(tool):
            sys.exit(f"regbench: {tool} not found (apt-get install sip-tester sqlite3 kamailio "
                     "kamailio-sqlite-modules)")
    work = tempfile.mkdtemp(prefix="regbench.")
    users = [(str(u), f"pw{u}") for u in range(1000, 2000)]
    users10k = [(str(u), f"pw{u}") for u in range(10000, 20000)]
    csv10k = os.path.join(work, "users10k.csv")
    with open(csv10k, "w") as f:
        f.write("SEQUENTIAL\n")
        f.writelines(f"{u};[authentication username={u} password={p}]\n" for u, p in users10k)

    servers = []
    for name in a.servers.split(","):
        d = os.path.join(work, name)
        os.makedirs(d)
        if name == "kamailio":
            s = Kamailio(d, a.port)
        elif name == "pbx":
            if not os.access(a.pbx_bin, os.X_OK):
                sys.exit(f"regbench: no PBX binary at {a.pbx_bin} (cargo build --release -p pbx)")
            s = Pbx(d, a.port, os.path.abspath(a.pbx_bin))
        else:
            sys.exit(f"regbench: unknown server {name}")
        s.setup(users + users10k)
        servers.append(s)
    log(f"regbench: work={work} port={a.port} duration={a.duration}s reps={a.reps} "
        f"servers={','.join(s.name for s in servers)} cores={os.cpu_count()}")

    bench = Bench(a, servers, work)
    best = {s.name: [] for s in servers}
    try:
        if not a.no_rate:
            for rep in range(1, a.reps + 1):
                for s in servers:
                    log(f"rep {rep} {s.name}:")
                    top = bench.rep_first(s) if rep == 1 else bench.rep_again(s, best[s.name][0])
                    best[s.name].append(top)
                    log(f"rep {rep} {s.name}: max_rate={top}")
        mem = [] if a.no_mem else [memory_run(s, csv10k, s.work) for s in servers]
    finally:
        for s in servers:
            s.stop()

    summary = {"machine": machine(), "duration": a.duration, "reps": a.reps,
               "max_rates": best, "median": {k: statistics.median(v) for k, v in best.items() if v},
               "memory": mem, "runs": bench.runs}
    log("")
    for k, v in best.items():
        if v:
            log(f"result: {k:8} max_rate median={statistics.median(v):g}/s reps={v}")
    for m in mem:
        log("memory: {server:8} idle PSS={ip:.1f} MB RSS={ir:.1f} MB | 10k users: PSS={lp:.1f} MB "
            "RSS={lr:.1f} MB registered={registered_ok} failed={failed} bindings_listed={bindings_listed}"
            .format(**m, ip=m["idle_pss_kb"] / 1024, ir=m["idle_rss_kb"] / 1024,
                    lp=m["loaded_pss_kb"] / 1024, lr=m["loaded_rss_kb"] / 1024))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(summary, f, indent=1)
    if not a.keep:
        shutil.rmtree(work, ignore_errors=True)
    else:
        log(f"kept {work}")


def machine():
    cpu = ""
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), "")
        with open("/proc/meminfo") as f:
            mem = f.readline().split()[1]
    except (OSError, StopIteration, IndexError):
        mem = "?"
    sipp = subprocess.run(["sipp", "-v"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT).stdout.decode()
    kam = subprocess.run(["kamailio", "-v"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT).stdout.decode()
    return {"cpu": cpu, "cores": os.cpu_count(), "mem_kb": mem, "kernel": os.uname().release,
            "sipp": next((ln.strip() for ln in sipp.splitlines() if "SIPp" in ln), "?"),
            "kamailio": kam.splitlines()[0] if kam else "?"}


if __name__ == "__main__":
    main()
