"""No call record is lost while the database is down: the PBX keeps them in its spool file and
writes them when PostgreSQL is back, also across a restart of the PBX itself.

The test runs its own PostgreSQL (initdb in a temp dir, as scripts/test.sh does), so it can
stop and start it; calls are refused ones (480, nobody registered), which are recorded like
any other call."""

import glob
import os
import shutil
import subprocess
import tempfile
import time

import pytest

from conftest import DOMAIN, Pbx, free_port, run
from sipclient import SipClient, digest_response, parse_challenge

CALLER_IP = "127.0.13.1"


class Postgres:
    def __init__(self):
        bins = sorted(glob.glob("/usr/lib/postgresql/*/bin"))
        if not bins or not os.access(os.path.join(bins[-1], "initdb"), os.X_OK):
            pytest.fail("no PostgreSQL server binaries (run scripts/install-test-deps.sh)")
        self.bin = bins[-1]
        # not under pytest's temp dirs: those are private to root, and postgres runs as its
        # own user
        self.dir = tempfile.mkdtemp(prefix="pbx-pg-spool-")
        os.chmod(self.dir, 0o755)
        self.user = "postgres" if os.getuid() == 0 else None
        if self.user:
            shutil.chown(self.dir, self.user)
        self.port = free_port()
        self.as_user("initdb", "-D", f"{self.dir}/data", "-U", "postgres", "--auth=trust",
                     "-E", "UTF8", "--locale=C.UTF-8", "--no-sync")
        self.url = f"postgres://postgres@127.0.0.1:{self.port}/postgres"

    def as_user(self, tool, *args):
        argv = [os.path.join(self.bin, tool), *args]
        if self.user:
            argv = ["runuser", "-u", self.user, "--", *argv]
        r = run(argv, timeout=60)
        if r.returncode != 0:
            pytest.fail(f"{tool} failed: {r.stdout}\n{r.stderr}")

    def start(self):
        self.as_user("pg_ctl", "-D", f"{self.dir}/data", "-l", f"{self.dir}/server.log", "-w",
                     "-t", "60", "-o", f"-c listen_addresses=127.0.0.1 -p {self.port} "
                     f"-k {self.dir} -c fsync=off", "start")

    def stop(self):
        self.as_user("pg_ctl", "-D", f"{self.dir}/data", "-m", "fast", "-w", "stop")


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    base = tmp_path_factory.mktemp("spool")
    pg = Postgres()
    pg.start()
    pbx = Pbx(base, "pbx")
    pbx.db_url = pg.url
    with open(pbx.config, "w") as f:
        f.write(pbx.toml())
    pbx.start()
    pbx.add_extension(1001, "secret1001")
    pbx.add_extension(1002, "secret1002")
    yield pg, pbx
    try:
        if pbx.alive():
            pbx.stop()
    finally:
        argv = [os.path.join(pg.bin, "pg_ctl"), "-D", f"{pg.dir}/data", "-m", "immediate", "stop"]
        if pg.user:
            argv = ["runuser", "-u", pg.user, "--", *argv]
        subprocess.run(argv, capture_output=True)
        shutil.rmtree(pg.dir, ignore_errors=True)


def refused_call(pbx, n):
    """An INVITE from 1001 to 1002 (not registered): 407, then 480. Returns its Call-ID."""
    with SipClient("udp", pbx.server("udp"), local_ip=CALLER_IP) as c:
        c.call_id = f"spool-{n}-{os.urandom(4).hex()}"
        uri = f"sip:1002@{DOMAIN}"
        sdp = (f"v=0\r\no=- 1 1 IN IP4 {CALLER_IP}\r\ns=-\r\nc=IN IP4 {CALLER_IP}\r\nt=0 0\r\n"
               f"m=audio 40000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n").encode()
        headers = [f"Contact: {c.contact('1001')}", "Content-Type: application/sdp"]
        c.send_raw(c.build("INVITE", uri, f"sip:1001@{DOMAIN}", uri, headers, body=sdp))
        r = final(c)
        assert r is not None and r.status == 407, r
        c.send_raw(ack_for(c, r, uri))
        ch = next(parse_challenge(v) for v in r.all("proxy-authenticate")
                  if parse_challenge(v).get("algorithm", "MD5").upper() == "MD5")
        auth = digest_response(ch, "INVITE", uri, "1001", "secret1001", os.urandom(6).hex())
        c.send_raw(c.build("INVITE", uri, f"sip:1001@{DOMAIN}", uri,
                           headers + [f"Proxy-Authorization: {auth}"], body=sdp))
        r = final(c)
        assert r is not None and r.status == 480, r
        c.send_raw(ack_for(c, r, uri))
        return c.call_id


def final(c):
    while True:
        r = c.recv(5)
        if r is None or r.status >= 200:
            return r


def ack_for(c, response, uri):
    """The ACK of a non-2xx final answer (RFC 3261 §17.1.1.3): same branch, To with the tag."""
    via = response.get("via")
    to = response.get("to")
    cseq = response.get("cseq").split()[0]
    lines = [f"ACK {uri} SIP/2.0", f"Via: {via}", "Max-Forwards: 70",
             f"From: <sip:1001@{DOMAIN}>;tag={c.tag}", f"To: {to}", f"Call-ID: {c.call_id}",
             f"CSeq: {cseq} ACK", "Content-Length: 0"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def recorded_call_ids(pbx):
    r = run(["psql", pbx.db_url, "-At", "-c", "SELECT call_id FROM cdrs"])
    assert r.returncode == 0, r.stderr
    return set(r.stdout.split())


def wait_for(check, timeout=20.0):
    end = time.time() + timeout
    while time.time() < end:
        if check():
            return True
        time.sleep(0.25)
    return check()


def spool_path(pbx):
    return os.path.join(pbx.dir, "data", "cdr-spool.jsonl")


def test_records_wait_in_the_spool_while_the_database_is_down(setup):
    pg, pbx = setup
    before = refused_call(pbx, 0)
    assert wait_for(lambda: before in recorded_call_ids(pbx))

    pg.stop()
    during = [refused_call(pbx, n) for n in (1, 2)]
    assert wait_for(lambda: os.path.exists(spool_path(pbx))), "no spool file while the database is down"
    with open(spool_path(pbx)) as f:
        spooled = f.read()
    assert all(call_id in spooled for call_id in during), spooled

    pg.start()
    assert wait_for(lambda: set(during) <= recorded_call_ids(pbx)), \
        f"records not written after the database came back\n{pbx.log_tail()}"
    assert wait_for(lambda: not os.path.exists(spool_path(pbx))), "the spool was not emptied"
    assert pbx.wait_log(r"the database takes call records again", timeout=5) is not None


def test_records_survive_a_restart_of_the_pbx_during_the_outage(setup):
    pg, pbx = setup
    pg.stop()
    during = refused_call(pbx, 3)
    assert wait_for(lambda: os.path.exists(spool_path(pbx)))
    pbx.stop()                               # exits 0 although the records are not written
    with open(spool_path(pbx)) as f:
        assert during in f.read()
    pg.start()
    pbx.start()
    assert wait_for(lambda: during in recorded_call_ids(pbx)), pbx.log_tail()
    assert wait_for(lambda: not os.path.exists(spool_path(pbx)))
    rows = [r for r in pbx.cdrs() if r.get("disposition")]
    assert len(rows) >= 4, rows
