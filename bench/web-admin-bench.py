#!/usr/bin/env python3
"""The web admin's extension list with 10,000 extensions (docs/performance.md): a benchmark,
not a test. It makes a throw-away config (SQLite), imports 10,000 extensions with
`pbx extension import`, starts `pbx serve`, logs in, then times sequential requests of the
extension list page (first page, a deep page, a search) and of the API's list, and prints
p50/p99 per case and the server's resident memory.

    cargo build --release -p pbx
    python3 bench/web-admin-bench.py [--pbx target/release/pbx] [--n 10000] [--requests 300]
"""

import argparse
import http.client
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ADMIN, ADMIN_PW = "bench", "Bench-admin-pass1"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def percentile(sorted_ms, p):
    return sorted_ms[min(len(sorted_ms) - 1, int(round(p / 100 * (len(sorted_ms) - 1))))]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--pbx", default=os.path.join(ROOT, "target", "release", "pbx"))
    ap.add_argument("--n", type=int, default=10_000)
    ap.add_argument("--requests", type=int, default=300)
    args = ap.parse_args()

    tmp = tempfile.mkdtemp(prefix="pbx-web-bench-")
    web, sip = free_port(), free_port()
    config = os.path.join(tmp, "pbx.toml")
    with open(config, "w") as f:
        f.write(f"""[sip]
listen = ["udp:127.0.0.1:{sip}"]
domain = "pbx.test"
[database]
url = "sqlite://data/pbx.db"
[web]
listen = "127.0.0.1:{web}"
""")
    csv = os.path.join(tmp, "ext.csv")
    with open(csv, "w") as f:
        f.write("number,password,name,email,pin\n")
        for i in range(args.n):
            name = f"Person {i}" + (" Martin" if i % 100 == 0 else "")
            f.write(f"{10000 + i},pw-{i}-secret,{name},p{i}@example.com,\n")

    def cli(*a):
        subprocess.run([args.pbx, *a, "--config", config], check=True, capture_output=True)

    t = time.time()
    cli("extension", "import", csv)
    print(f"imported {args.n} extensions in {time.time() - t:.1f} s")
    cli("admin", "create", ADMIN, "--password", ADMIN_PW)
    token = subprocess.run([args.pbx, "admin", "token", ADMIN, "--config", config], check=True,
                           capture_output=True, text=True).stdout.strip()
    server = subprocess.Popen([args.pbx, "serve", "--config", config],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        conn = None
        for _ in range(100):
            try:
                conn = http.client.HTTPConnection("127.0.0.1", web, timeout=10)
                conn.request("GET", "/healthz")
                r = conn.getresponse()
                r.read()
                if r.status == 200:
                    break
            except OSError:
                pass
            time.sleep(0.1)
        conn.request("GET", "/")
        r = conn.getresponse()
        body = r.read().decode()
        login_cookie = r.getheader("Set-Cookie").split(";")[0]
        csrf = re.search(r'name="csrf" value="([0-9a-f]{64})"', body).group(1)
        form = urllib.parse.urlencode({"user": ADMIN, "password": ADMIN_PW, "csrf": csrf})
        conn.request("POST", "/login", body=form, headers={
            "Cookie": login_cookie, "Content-Type": "application/x-www-form-urlencoded"})
        r = conn.getresponse()
        r.read()
        session = [c.split(";")[0] for c in r.headers.get_all("Set-Cookie")
                   if c.startswith("pbx_session=")][0]

        last_page = (args.n + 24) // 25
        cases = [
            ("page: /extensions (first page)", "/extensions", {"Cookie": session}),
            (f"page: /extensions?page={last_page} (last page)", f"/extensions?page={last_page}",
             {"Cookie": session}),
            ("page: /extensions?q=martin (100 matches)", "/extensions?q=martin",
             {"Cookie": session}),
            ("page: /extensions?q=zzz (none)", "/extensions?q=zzz", {"Cookie": session}),
            ("api: /api/v1/extensions?per_page=50", "/api/v1/extensions?per_page=50",
             {"Authorization": f"Bearer {token}"}),
            ("api: deep page", f"/api/v1/extensions?per_page=50&page={args.n // 50}",
             {"Authorization": f"Bearer {token}"}),
        ]
        print(f"{'case':48} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}")
        for label, path, headers in cases:
            times = []
            for i in range(args.requests + 20):
                t = time.perf_counter()
                conn.request("GET", path, headers=headers)
                r = conn.getresponse()
                r.read()
                if r.status != 200:
                    sys.exit(f"{path}: {r.status}")
                if i >= 20:  # warm-up
                    times.append((time.perf_counter() - t) * 1000)
            times.sort()
            print(f"{label:48} {percentile(times, 50):8.2f} {percentile(times, 99):8.2f} "
                  f"{times[-1]:8.2f}")
        with open(f"/proc/{server.pid}/status") as f:
            rss = next(line for line in f if line.startswith("VmRSS"))
        print("server", rss.strip())
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(15)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
