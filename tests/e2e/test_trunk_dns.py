"""A trunk named by a DNS name (RFC 3263): the real PBX release binary asks a real DNS server
(dnslib, on a loopback port, named in `[dns] nameservers`) for the trunk's NAPTR, SRV and A
records, and fails over across the SRV targets (two SIPp UASes).

The zone `pbx-test.example`:
- NAPTR 10 10 "S" "SIP+D2U" -> `_sip._udp.pbx-test.example`; NAPTR 10 5 "S" "SIP+D2T" ->
  `_sip._tcp.pbx-test.example` (better preference, but the trunk is UDP: never asked);
- SRV `_sip._udp`: priority 10 -> `busy.pbx-test.example` (a SIPp UAS that answers every
  INVITE 503), priority 20 -> `ok.pbx-test.example` (a SIPp UAS that answers 200);
- A records of both, on their own loopback addresses.

The trunk is added as `--host pbx-test.example` (no port): a call out goes to the priority-10
UAS first, gets 503 and completes on the priority-20 UAS (RFC 3263 §4.3). A second trunk
names `ok.pbx-test.example:PORT` (a name with a port): A only, no NAPTR or SRV asked (§4.2).

Addresses: the PBX 127.0.0.1; the DNS server 127.0.41.53; the 503 UAS 127.0.41.2; the 200
UAS 127.0.41.3; the calling phone 127.0.41.4; a silent trunk 127.0.41.5.

Beside it, a trunk's own setup time (`pbx trunk add --setup-timeout 1`) against a global
`[calls] trunk_setup_timeout` of 60 s: a trunk that sends nothing at all is given up after its
own second and the call completes on the next trunk; `pbx trunk list` shows each trunk's.
"""

import re
import socket
import threading
from datetime import datetime

import pytest
from dnslib import NAPTR, QTYPE, RR, SRV, A, DNSLabel
from dnslib.server import BaseResolver, DNSServer

from callclient import Phone, sdp_offer
from conftest import free_port
from sippuas import FIRST_XML, SippTrunk, uas_scenario
from trunkplan import trunk_rows

# Protocol and media behaviour, not the store: run on SQLite only (scripts/test.sh).
pytestmark = pytest.mark.store_independent

DNS_IP, BUSY_IP, OK_IP, PHONE_IP = "127.0.41.53", "127.0.41.2", "127.0.41.3", "127.0.41.4"
SILENT_IP = "127.0.41.5"
ZONE = "pbx-test.example"

PLAN = """\
# written by tests/e2e/test_trunk_dns.py
[defaults]
context = "staff"

[context.staff]
may_call = ["extensions", "_0.", "_9.", "_7."]
[[context.staff.rule]]
pattern = "_0."
steps = [{ dial = "trunk:provider/${number:1}" }]
[[context.staff.rule]]
pattern = "_9."
steps = [{ dial = "trunk:direct/${number:1}" }]
[[context.staff.rule]]
pattern = "_7."
steps = [{ dial = { targets = ["trunk:silent/${number:1}", "trunk:direct/${number:1}"],
                    strategy = "in_order", timeout = "30s" } }]
"""

# Every INVITE gets 503; OPTIONS pings 200 (the trunk stays up).
BUSY_XML = uas_scenario("503 UAS", """  <recv request="INVITE"/>
  <send><![CDATA[

SIP/2.0 503 Service Unavailable
[last_Via:]
[last_From:]
[last_To:];tag=busy[pid]x[call_number]
[last_Call-ID:]
[last_CSeq:]
Content-Length: 0

]]></send>
  <recv request="ACK" next="done"/>
""")

SDP = """v=0
o=uas 1 1 IN IP[local_ip_type] [local_ip]
s=-
c=IN IP[local_ip_type] [local_ip]
t=0 0
m=audio 40300 RTP/AVP 0
a=rtpmap:0 PCMU/8000
"""

# Every INVITE is answered 200; then ACK and BYE.
OK_XML = uas_scenario("200 UAS", """  <recv request="INVITE"/>
  <send retrans="500"><![CDATA[

SIP/2.0 200 OK
[last_Via:]
[last_From:]
[last_To:];tag=ok[pid]x[call_number]
[last_Call-ID:]
[last_CSeq:]
Contact: <sip:uas@[local_ip]:[local_port]>
Content-Type: application/sdp
Content-Length: [len]

""" + SDP + """
]]></send>
  <recv request="ACK"/>
  <recv request="BYE"/>
  <send next="done"><![CDATA[

SIP/2.0 200 OK
[last_Via:]
[last_From:]
[last_To:]
[last_Call-ID:]
[last_CSeq:]
Content-Length: 0

]]></send>
""")


class Zone(BaseResolver):
    """The test zone; remembers every question (name, type) in order."""

    def __init__(self, records):
        self.records = records
        self.asked = []
        self.lock = threading.Lock()

    def resolve(self, request, handler):
        reply = request.reply()
        q = request.q
        name, qtype = str(q.qname).rstrip(".").lower(), QTYPE[q.qtype]
        with self.lock:
            self.asked.append((name, qtype))
        for rname, rtype, rdata in self.records:
            if rname == name and rtype == qtype:
                reply.add_answer(RR(DNSLabel(rname + "."), getattr(QTYPE, rtype), rdata=rdata,
                                    ttl=60))
        return reply

    def questions(self):
        with self.lock:
            return list(self.asked)


def sipp_times(trunk, number):
    """When SIPp received each INVITE to `number` (its message log's separator lines)."""
    out = []
    for m in re.finditer(r"-{10,} (\d{4}-\d\d-\d\d\s+\d\d:\d\d:\d\d\.\d+)\n"
                         r"UDP message received[^\n]*\n\nINVITE sip:(\S+)@", trunk.text()):
        if m.group(2) == str(number):
            out.append(datetime.strptime(m.group(1).replace("  ", " "), "%Y-%m-%d %H:%M:%S.%f"))
    return out


@pytest.fixture(scope="module")
def setup(pbx_factory, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("dns")
    busy_port, ok_port = free_port(ip=BUSY_IP), free_port(ip=OK_IP)
    silent_port = free_port(ip=SILENT_IP)
    zone = Zone([
        (ZONE, "NAPTR", NAPTR(10, 10, b"S", b"SIP+D2U", b"", DNSLabel(f"_sip._udp.{ZONE}."))),
        (ZONE, "NAPTR", NAPTR(10, 5, b"S", b"SIP+D2T", b"", DNSLabel(f"_sip._tcp.{ZONE}."))),
        (f"_sip._udp.{ZONE}", "SRV", SRV(10, 0, busy_port, f"busy.{ZONE}.")),
        (f"_sip._udp.{ZONE}", "SRV", SRV(20, 0, ok_port, f"ok.{ZONE}.")),
        (f"_sip._tcp.{ZONE}", "SRV", SRV(10, 0, ok_port, f"ok.{ZONE}.")),
        (f"busy.{ZONE}", "A", A(BUSY_IP)),
        (f"ok.{ZONE}", "A", A(OK_IP)),
    ])
    dns_port = free_port(socket.SOCK_DGRAM, ip=DNS_IP)
    servers = [DNSServer(zone, address=DNS_IP, port=dns_port),
               DNSServer(zone, address=DNS_IP, port=dns_port, tcp=True)]
    for s in servers:
        s.start_thread()
    busy = SippTrunk(tmp, "busy", BUSY_IP, busy_port, BUSY_XML)
    ok = SippTrunk(tmp, "ok", OK_IP, ok_port, OK_XML)
    # Answers OPTIONS (the trunk stays up), never an INVITE to 302...
    silent = SippTrunk(tmp, "silent", SILENT_IP, silent_port, FIRST_XML)
    try:
        p = pbx_factory("trunk-dns", dialplan=PLAN,
                        extra_toml=f'[dns]\nnameservers = ["{DNS_IP}:{dns_port}"]\n'
                                   '[calls]\ntrunk_setup_timeout = "60s"\n')
        p.import_extensions([(1000, "pw1000")])
        p.cli("trunk", "add", "provider", "--host", ZONE)
        p.cli("trunk", "add", "direct", "--host", f"ok.{ZONE}:{ok_port}")
        p.cli("trunk", "add", "silent", "--host", f"{SILENT_IP}:{silent_port}",
              "--setup-timeout", "1")
        p.start()
        yield p, zone, busy, ok, silent
    finally:
        silent.stop()
        busy.stop()
        ok.stop()
        for s in servers:
            s.stop()


def call(pbx, number):
    with Phone(1000, "pw1000", pbx.server("udp"), local_ip=PHONE_IP) as phone:
        out = phone.call(number, sdp=sdp_offer(PHONE_IP, 40310))
        final = out.wait_final(15)
        if final is not None and final.status == 200:
            bye = out.bye()
            assert bye is not None and bye.status == 200, bye
        return final


def test_srv_priority_10_answers_503_and_the_call_completes_on_priority_20(setup):
    pbx, zone, busy, ok, _ = setup
    final = call(pbx, "0555")
    assert final is not None and final.status == 200, (final, pbx.log_tail())
    tried_busy, tried_ok = sipp_times(busy, 555), sipp_times(ok, 555)
    assert tried_busy, f"the priority-10 target got no INVITE\n{busy.text()[-2000:]}"
    assert tried_ok, f"the priority-20 target got no INVITE\n{ok.text()[-2000:]}"
    assert tried_busy[0] < tried_ok[0], (tried_busy, tried_ok)
    # The Request-URI keeps the trunk's name (RFC 3263 resolves where to send, not what).
    assert re.search(rf"^INVITE sip:555@{ZONE}[ ;>]", ok.text(), re.M), ok.text()[-2000:]
    asked = zone.questions()
    assert (ZONE, "NAPTR") in asked, asked
    assert (f"_sip._udp.{ZONE}", "SRV") in asked, asked
    assert (f"busy.{ZONE}", "A") in asked and (f"ok.{ZONE}", "A") in asked, asked
    # A UDP trunk takes no TCP record, even of a better preference.
    assert (f"_sip._tcp.{ZONE}", "SRV") not in asked, asked
    cdr = pbx.wait_cdr(1000, 555)
    assert cdr is not None and cdr.get("trunk") == "provider", cdr
    assert cdr.get("disposition") == "answered", cdr


def test_a_name_with_a_port_is_resolved_by_a_records_only(setup):
    pbx, zone, busy, ok, _ = setup
    final = call(pbx, "9777")
    assert final is not None and final.status == 200, (final, pbx.log_tail())
    assert sipp_times(ok, 777), ok.text()[-2000:]
    assert sipp_times(busy, 777) == [], "a name with a port went through SRV"
    asked = zone.questions()
    assert (f"ok.{ZONE}", "A") in asked, asked
    assert (f"ok.{ZONE}", "NAPTR") not in asked, asked
    assert (f"_sip._udp.ok.{ZONE}", "SRV") not in asked, asked


def test_a_trunks_own_setup_time_fails_over_before_the_global_one(setup):
    pbx, _, _, ok, silent = setup
    rows = trunk_rows(pbx)
    assert rows["silent"]["setup"] == "1s", rows
    assert rows["direct"]["setup"].endswith("(global)"), rows
    # The global 60 s would outlast the caller's wait: only the trunk's own 1 s completes it.
    final = call(pbx, "7302555")
    assert final is not None and final.status == 200, (final, pbx.log_tail())
    assert silent.invites(302555), "the silent trunk got no INVITE"
    assert sipp_times(ok, 302555), "the next trunk was not tried"
    assert pbx.wait_log(r"no answer from the trunk within its setup time", timeout=2), \
        pbx.log_tail()
    cdr = pbx.wait_cdr(1000, 302555)
    assert cdr is not None and cdr.get("trunk") == "direct", cdr
