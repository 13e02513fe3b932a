#!/usr/bin/env python3
"""Fixed-rate REGISTER diagnosis: why does a server fail a rate?

Usage: regdiag.py pbx|kamailio RATE[,RATE...] [--duration S] [--pin] [--pbx-bin BIN]

For each rate, a fresh server (set up as bench/regbench.py does) and one SIPp run of the
benchmark scenario; prints SIPp's retransmissions, the kernel's UDP receive-buffer drops
(/proc/net/snmp RcvbufErrors: which socket overflowed is in the queue maxima), and the
largest receive queue seen on the server's socket and on any other (SIPp's), sampled every
0.5 ms from /proc/net/udp. A server queue in the hundreds of KB means the server stalled;
a full client queue with a short server queue means the answers came in bursts.
--pin runs SIPp on core 0 and the server on core 1.
"""
import argparse
import os
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import regbench as rb  # noqa: E402


def rcvbuf_errors():
    with open("/proc/net/snmp") as f:
        rows = [line.split() for line in f if line.startswith("Udp:")]
    return int(dict(zip(rows[0][1:], rows[1][1:]))["RcvbufErrors"])


def watch_queues(port, stop, out):
    """Largest rx queue (bytes) of the server's socket and of any other, until stop is set."""
    server = other = 0
    while not stop.is_set():
        with open("/proc/net/udp") as f:
            next(f)
            for line in f:
                p = line.split()
                rx = int(p[4].split(":")[1], 16)
                if int(p[1].split(":")[1], 16) == port:
                    server = max(server, rx)
                else:
                    other = max(other, rx)
        time.sleep(0.0005)
    out.update(server=server, other=other)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("server", choices=["pbx", "kamailio"])
    ap.add_argument("rates")
    ap.add_argument("--duration", type=int, default=20)
    ap.add_argument("--port", type=int, default=25060)
    ap.add_argument("--pin", action="store_true")
    ap.add_argument("--pbx-bin", default=os.environ.get("PBX_BIN", os.path.join(rb.ROOT, "target/release/pbx")))
    a = ap.parse_args()
    work = tempfile.mkdtemp(prefix="regdiag.")
    users = [(str(u), f"pw{u}") for u in range(1000, 2000)]
    d = os.path.join(work, a.server)
    os.makedirs(d)
    s = rb.Pbx(d, a.port, os.path.abspath(a.pbx_bin)) if a.server == "pbx" else rb.Kamailio(d, a.port)
    s.setup(users)
    users_csv = os.path.join(work, "users.csv")
    with open(users_csv, "w") as f:
        f.write("SEQUENTIAL\n")
        f.writelines(f"{u};[authentication username={u} password={p}]\n" for u, p in users)
    if a.pin:
        server_argv = s.argv
        s.argv = lambda: ["taskset", "-c", "1"] + server_argv()
        popen = rb.subprocess.Popen

        def pinned(argv, *args, **kw):
            if argv and argv[0] == "sipp":
                argv = ["taskset", "-c", "0"] + argv
            return popen(argv, *args, **kw)
        rb.subprocess.Popen = pinned
    for rate in (int(r) for r in a.rates.split(",")):
        s.start()
        try:
            stop, queues = threading.Event(), {}
            t = threading.Thread(target=watch_queues, args=(a.port, stop, queues))
            e0 = rcvbuf_errors()
            t.start()
            r = rb.sipp_run(s, rate, a.duration, users_csv, work)
            stop.set()
            t.join()
            print(f"{s.name} rate={rate} ok={r['ok']} failed={r['failed']} retrans={r['retrans']} "
                  f"server_cpu={r['server_cpu']}% sipp_cpu={r['sipp_cpu']}% "
                  f"rcvbuf_errors={rcvbuf_errors() - e0} max_queue_server={queues['server']}B "
                  f"max_queue_other={queues['other']}B", flush=True)
        finally:
            s.stop()
    print(f"work dir (server logs): {work}")


if __name__ == "__main__":
    main()
