#!/usr/bin/env python3
"""The web admin with 10,000 extensions and 1,000,000 call records (docs/performance.md): a
benchmark, not a test. It makes a throw-away config (SQLite, or the PostgreSQL database given
with --postgres), imports 10,000 extensions with `pbx extension import`, fills the CDR table
with --cdrs rows (the last 100 days, generated inside the database), starts `pbx serve`, logs
in, then times sequential requests of the extension list, the dashboard, the CDR search pages
and the API's lists, and prints p50/p99 per case and the server's resident memory.

    cargo build --release -p pbx
    python3 bench/web-admin-bench.py [--pbx target/release/pbx] [--n 10000] [--cdrs 1000000]
        [--requests 300] [--postgres postgres://user@host/db]
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
    ap.add_argument("--cdrs", type=int, default=1_000_000)
    ap.add_argument("--postgres", help="an empty PostgreSQL database to use instead of SQLite")
    args = ap.parse_args()
    db_url = args.postgres or "sqlite://data/pbx.db"

    tmp = tempfile.mkdtemp(prefix="pbx-web-bench-")
    web, sip = free_port(), free_port()
    config = os.path.join(tmp, "pbx.toml")
    with open(config, "w") as f:
        f.write(f"""[sip]
listen = ["udp:127.0.0.1:{sip}"]
domain = "pbx.test"
[database]
url = "{db_url}"
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
    t = time.time()
    fill_cdrs(args, os.path.join(tmp, "data", "pbx.db"))
    print(f"inserted {args.cdrs} call records in {time.time() - t:.1f} s")
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
            ("page: / (dashboard, calls per hour)", "/", {"Cookie": session}),
            ("page: /cdrs (newest)", "/cdrs", {"Cookie": session}),
            ("page: /cdrs?disposition=failed", "/cdrs?disposition=failed", {"Cookie": session}),
            ("page: /cdrs?extension=10042", "/cdrs?extension=10042", {"Cookie": session}),
            ("api: /api/v1/cdrs", "/api/v1/cdrs", {"Authorization": f"Bearer {token}"}),
        ]
        print(f"{'case':48} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}")
        for label, path, headers in cases:
            times = []
            for i in range(args.requests + 20):
                t = time.perf_counter()
                conn.request("GET", path, headers=headers)
                r = conn.getresponse()
                body = r.read()
                if r.status != 200:
                    sys.exit(f"{path}: {r.status}")
                if i == 0 and b'name="password"' in body:
                    sys.exit(f"{path}: the login page, not the page asked for")
                if i == 0 and path == "/" and b"Database up" not in body:
                    sys.exit("/: the dashboard says the database is down")
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


def fill_cdrs(args, sqlite_path):
    """CDRs over the last 100 days among the extensions, one call in five busy, one in 997
    failed: made by the database itself (a recursive CTE, or generate_series)."""
    now = int(time.time())
    span = 100 * 86400
    step = max(1, span // max(1, args.cdrs))
    select = (
        "SELECT 'c' || i, CAST(10000 + (i * 7919) % {n} AS TEXT),"
        " CAST(10000 + (i * 104729) % {n} AS TEXT),"
        " {start} + i * {step}, {start} + i * {step} + 3, {start} + i * {step} + 60, 57,"
        " CASE WHEN i % 5 = 0 THEN 'busy' WHEN i % 997 = 0 THEN 'failed' ELSE 'answered' END,"
        " 'BYE', 'caller', 'PCMU/8000'"
    ).format(n=args.n, start=now - span, step=step)
    columns = ("call_id, caller, called, started_at, answered_at, ended_at, duration_secs,"
               " disposition, hangup_cause, hangup_side, codec")
    if args.postgres:
        sql = (f"INSERT INTO cdrs ({columns}) {select} FROM generate_series(0::bigint, {args.cdrs - 1})"
               " AS i")
        subprocess.run(["psql", "-q", "-v", "ON_ERROR_STOP=1", args.postgres, "-c", sql,
                        "-c", "VACUUM ANALYZE cdrs"], check=True)
    else:
        sql = (f"WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n"
               f" WHERE i < {args.cdrs - 1}) INSERT INTO cdrs ({columns}) {select} FROM n;")
        subprocess.run(["sqlite3", sqlite_path, sql], check=True)


if __name__ == "__main__":
    main()
