"""Calls out through trunks (issue 15, parts 4-8): the real PBX release binary, real sockets.

- Kamailio as the old PBX, with a baresip phone (2001) registered on it: our extension 1000
  (baresip on the PBX) dials 2001, the dialplan sends it to `trunk:oldpbx/2001`; Kamailio asks
  the PBX for digest (407) and the PBX answers with the trunk's account; 2001 answers and
  each end hears the other's tone (checked by frequency). A python phone on Kamailio calls
  our 1000 back: Kamailio relays it from the trunk's address, the trunk's context (which has
  no `may_call`: the store assigns it) rings 1000. Both CDRs name the trunk.
- A SIPp gateway answers 183 with SDP and streams a 1 kHz tone, then 200 three seconds later:
  the caller gets the 183 with SDP, then the tone before the 200, then the 200.
- Failover with `strategy = "in_order"` over two trunks: the first (SIPp) answers 503 and the
  call completes on the second; the first stays silent and the second is tried after
  `[calls] trunk_setup_timeout` (2 s here); the first answers 486 and the caller gets 486,
  the second is never tried.
- The lobby (may_call = ["1000"]) dialling an external number gets 403; nothing is sent out.
- `pbx check` refuses a dial target naming a trunk the store does not have, at its line and
  column.

Addresses: the PBX 127.0.0.1; extension 1000's phone 127.0.23.2; Kamailio 127.0.23.3 (its
probe 127.0.23.4); baresip 2001 on Kamailio 127.0.23.5; the python caller on Kamailio
127.0.23.6; the SIPp gateway 127.0.23.7; the first trunk (SIPp) 127.0.23.8; the second trunk
(a python UA) 127.0.23.9; the lobby phone 127.0.23.10.
"""

import math
import os
import re
import time
import types

import pytest

from baresip_phone import BaresipPhone
from callclient import Phone, sdp_offer
from conftest import free_port
from media import RtpPeer, analyse_tone, goertzel_power, write_tone_wav
from prompts import ulaw
from sippuas import FIRST_XML, SippTrunk, uas_scenario
from kamailio import Kamailio

PHONE_IP, KAM_IP, KAM_PROBE_IP, KAM_PHONE_IP = "127.0.23.2", "127.0.23.3", "127.0.23.4", "127.0.23.5"
KAM_CALLER_IP, GATEWAY_IP, FIRST_IP, SECOND_IP = "127.0.23.6", "127.0.23.7", "127.0.23.8", "127.0.23.9"
LOBBY_IP = "127.0.23.10"
# The old PBX knows our PBX as its user 1000 (Kamailio wants the From user to be the
# account's, and the trunk presents the calling extension's own number).
TRUNK_USER, TRUNK_PASSWORD = "1000", "trunk-Pw1"
OUR_TONE, THEIR_TONE, GATEWAY_TONE = 1000, 640, 1000

PLAN = """\
# written by tests/e2e/test_trunk_calls.py
[defaults]
context = "staff"

[context.staff]
may_call = ["extensions", "_2XXX", "_0.", "_8."]
[[context.staff.rule]]
extension = true
steps = [{ dial = "${number}" }]
[[context.staff.rule]]
pattern = "_2XXX"
steps = [{ dial = "trunk:oldpbx/${number}" }]
[[context.staff.rule]]
pattern = "_0."
steps = [{ dial = { targets = ["trunk:first/${number:1}", "trunk:second/${number:1}"],
                    strategy = "in_order", timeout = "20s" } }]
[[context.staff.rule]]
pattern = "_8."
steps = [{ dial = "trunk:gateway/${number:1}" }]

[context.lobby]
members = ["1990-1999"]
may_call = ["1000"]
include = ["staff"]

# The old PBX's calls: no may_call (the trunk's --context assigns this context).
[context.from-oldpbx]
[[context.from-oldpbx.rule]]
extension = true
steps = [{ dial = "${number}" }]
"""

SDP = """v=0
o=gw 1 1 IN IP[media_ip_type] [media_ip]
s=-
c=IN IP[media_ip_type] [media_ip]
t=0 0
m=audio [media_port] RTP/AVP 0
a=rtpmap:0 PCMU/8000
"""

# A POTS gateway: 100, 183 with SDP and a tone streamed at once (the network's
# announcement), the 200 three seconds later; then ACK, BYE.
GATEWAY_XML = uas_scenario("gateway with early media", """  <recv request="INVITE"/>
  <send><![CDATA[

SIP/2.0 100 Trying
[last_Via:]
[last_From:]
[last_To:]
[last_Call-ID:]
[last_CSeq:]
Content-Length: 0

]]></send>
  <send><![CDATA[

SIP/2.0 183 Session Progress
[last_Via:]
[last_From:]
[last_To:];tag=gw[pid]x[call_number]
[last_Call-ID:]
[last_CSeq:]
Contact: <sip:gw@[local_ip]:[local_port]>
Content-Type: application/sdp
Content-Length: [len]

{sdp}
]]></send>
  <nop><action><exec rtp_stream="{tone},-1,0"/></action></nop>
  <pause milliseconds="3000"/>
  <send retrans="500"><![CDATA[

SIP/2.0 200 OK
[last_Via:]
[last_From:]
[last_To:];tag=gw[pid]x[call_number]
[last_Call-ID:]
[last_CSeq:]
Contact: <sip:gw@[local_ip]:[local_port]>
Content-Type: application/sdp
Content-Length: [len]

{sdp}
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
""".replace("{sdp}", SDP))


def tone_file(path, freq, seconds=10):
    """Raw 8 kHz u-law of a sine (SIPp's rtp_stream plays it as PT 0)."""
    with open(path, "wb") as f:
        f.write(bytes(ulaw(int(8000 * math.sin(2 * math.pi * freq * n / 8000)))
                      for n in range(seconds * 8000)))
    return path


def ulaw_to_linear(b):
    b = ~b & 0xFF
    sign, exponent, mantissa = b & 0x80, (b >> 4) & 0x07, b & 0x0F
    x = (((mantissa << 3) + 0x84) << exponent) - 0x84
    return -x if sign else x


def strongest(payloads, candidates):
    """Which of `candidates` (Hz) is loudest in the u-law `payloads`."""
    samples = [ulaw_to_linear(b) for p in payloads for b in p]
    return max(candidates, key=lambda f: goertzel_power(samples, 8000, f))


@pytest.fixture(scope="module")
def kamailio(tmp_path_factory):
    kam = Kamailio(tmp_path_factory.mktemp("kam"),
                   {TRUNK_USER: TRUNK_PASSWORD, "2001": "pw2001", "2002": "pw2002"},
                   ip=KAM_IP, probe_ip=KAM_PROBE_IP)
    try:
        assert kam.wait_ready(), kam.log()
        yield kam
    finally:
        kam.stop()


@pytest.fixture(scope="module")
def far_ends(tmp_path_factory):
    """The first trunk and the gateway (SIPp) and the second trunk (a python UA), for the
    whole module: they answer the PBX's OPTIONS pings, so their trunks stay up."""
    tmp = tmp_path_factory.mktemp("far")
    ports = {"gateway": free_port(ip=GATEWAY_IP), "first": free_port(ip=FIRST_IP),
             "second": free_port(ip=SECOND_IP)}
    tone = tone_file(os.path.join(str(tmp), "gateway.ul"), GATEWAY_TONE)
    media_port = RtpPeer.even(GATEWAY_IP)
    media_port.close()
    first = SippTrunk(tmp, "first", FIRST_IP, ports["first"], FIRST_XML)
    gateway = SippTrunk(tmp, "gateway", GATEWAY_IP, ports["gateway"],
                        GATEWAY_XML.replace("{tone}", tone), media_port=media_port.addr[1])
    second = Phone("second", "", ("127.0.0.1", 5060), local_ip=SECOND_IP, port=ports["second"])
    try:
        yield types.SimpleNamespace(ports=ports, first=first, gateway=gateway, second=second)
    finally:
        second.close()
        first.stop()
        gateway.stop()


@pytest.fixture(scope="module")
def pbx(pbx_factory, kamailio, far_ends):
    """One PBX with every trunk of the plan."""
    p = pbx_factory("trunk-calls", dialplan=PLAN,
                    extra_toml='[calls]\ntrunk_setup_timeout = "2s"\n')
    p.import_extensions([(1000, "pw1000"), (1990, "pw1990")])
    p.cli("trunk", "add", "oldpbx", "--host", f"{KAM_IP}:{kamailio.port}",
          "--username", TRUNK_USER, "--password", TRUNK_PASSWORD,
          "--allow", f"{KAM_IP}/32", "--context", "from-oldpbx", "--channels", "4")
    for name, ip in (("gateway", GATEWAY_IP), ("first", FIRST_IP), ("second", SECOND_IP)):
        p.cli("trunk", "add", name, "--host", f"{ip}:{far_ends.ports[name]}")
    # The trunk's context needs no may_call: the store assigns it (check and serve agree).
    r = p.cli("check")
    assert "ok" in r.stdout, r.stdout + r.stderr
    return p.start()


def test_check_refuses_a_trunk_the_store_does_not_have(pbx_factory):
    p = pbx_factory("trunk-check", dialplan=PLAN)
    p.cli("trunk", "add", "oldpbx", "--host", "127.0.23.3:5999", "--context", "from-oldpbx")
    r = p.cli("check", check=False)
    assert r.returncode == 1, r.stdout + r.stderr
    for name, line, col in (("first", 15, 32), ("second", 15, 59), ("gateway", 19, 19)):
        assert re.search(rf"dialplan\.toml:{line}:{col}: dial names the trunk `{name}`, which "
                         "does not exist", r.stderr), r.stderr
    assert "oldpbx" not in r.stderr, r.stderr
    for name in ("first", "second", "gateway"):
        p.cli("trunk", "add", name, "--host", "127.0.23.8:5999")
    assert "ok" in p.cli("check").stdout


def test_our_extension_and_the_old_pbxs_phone_call_each_other(pbx, kamailio, tmp_path):
    kam_domain = f"{KAM_IP}:{kamailio.port}"
    tmp = str(tmp_path)
    ours = write_tone_wav(os.path.join(tmp, f"tone-{OUR_TONE}.wav"), OUR_TONE, 30)
    theirs = write_tone_wav(os.path.join(tmp, f"tone-{THEIR_TONE}.wav"), THEIR_TONE, 30)
    # The old PBX answers the OPTIONS pings: the trunk is up.
    b = BaresipPhone(tmp, 2001, "pw2001", kam_domain, local_ip=KAM_PHONE_IP, play=theirs,
                     answer="auto", domain=kam_domain)
    a = BaresipPhone(tmp, 1000, "pw1000", pbx.hostport("udp"), local_ip=PHONE_IP, play=ours,
                     answer="manual")
    where = lambda: f"\n{pbx.log_tail()}\n{kamailio.log()}"  # noqa: E731
    try:
        b.start()
        a.start()
        assert b.wait_registered(), f"2001 did not register on Kamailio\n{b.log()}{where()}"
        assert a.wait_registered(), f"1000 did not register\n{a.log()}{where()}"
        a.dial("2001")
        ea = a.wait_event({"CALL_ESTABLISHED", "CALL_CLOSED"}, 15)
        assert ea is not None and ea["type"] == "CALL_ESTABLISHED", \
            f"1000 -> 2001 not established: {ea}\n{a.log()}\n{b.log()}{where()}"
        eb = b.wait_event({"CALL_ESTABLISHED", "CALL_CLOSED"}, 5)
        assert eb is not None and eb["type"] == "CALL_ESTABLISHED", f"{eb}\n{b.log()}"
        time.sleep(3)
        a.hangup()
        assert a.wait_event("CALL_CLOSED", 5) is not None, a.log()
        assert b.wait_event("CALL_CLOSED", 5) is not None, f"the BYE did not reach 2001\n{b.log()}"
    finally:
        a.stop()
        b.stop()
    heard_by_them = analyse_tone(b.recording())
    heard_by_us = analyse_tone(a.recording())
    assert heard_by_them.has_tone(OUR_TONE), f"2001 heard {heard_by_them}{where()}"
    assert heard_by_us.has_tone(THEIR_TONE), f"1000 heard {heard_by_us}{where()}"
    # The PBX answered Kamailio's 407 with the trunk's account; the CDR names the trunk.
    assert pbx.wait_log(r"calling out through the trunk.*trunk=oldpbx.*number=2001",
                        timeout=2) is not None, pbx.log_tail()
    cdr = pbx.wait_cdr(1000, 2001)
    assert cdr is not None and cdr.get("trunk") == "oldpbx", cdr
    assert cdr.get("disposition") == "answered", cdr
    assert TRUNK_PASSWORD not in pbx.log_text()

    # The old PBX's phone calls our 1000 through Kamailio: the trunk's call, no challenge.
    with Phone(1000, "pw1000", pbx.server("udp"), local_ip=PHONE_IP) as phone, \
            Phone("2002", "pw2002", (KAM_IP, kamailio.port), local_ip=KAM_CALLER_IP,
                  domain=kam_domain) as caller:
        r = phone.register(expires=120)
        assert r is not None and r.status == 200, r
        out = caller.call(f"sip:1000@{pbx.hostport('udp')}", sdp=sdp_offer(KAM_CALLER_IP, 40210))
        inc = phone.wait_call(10)
        assert inc is not None, f"1000 was not rung{where()}"
        assert "2002" in inc.invite.get("from"), inc.invite.get("from")
        inc.answer(sdp_offer(PHONE_IP, 40212))
        final = out.wait_final(10)
        assert final is not None and final.status == 200, (final, kamailio.log())
        bye = out.bye()
        assert bye is not None and bye.status == 200, bye
        phone.unregister()
    cdr = pbx.wait_cdr(2002, 1000)
    assert cdr is not None and cdr.get("trunk") == "oldpbx", cdr


def test_early_media_from_a_gateway_reaches_the_caller_before_the_200(pbx, far_ends):
    gw = far_ends.gateway
    rtp = RtpPeer.even(PHONE_IP)
    try:
        with Phone(1000, "pw1000", pbx.server("udp"), local_ip=PHONE_IP) as phone:
            out = phone.call("84930777", sdp=sdp_offer(PHONE_IP, rtp.addr[1], pts=(0,)))
            early = out.wait_provisional(183, 10)
            assert early is not None and early.status == 183, \
                (early, gw.text()[-3000:], pbx.log_tail())
            assert early.sdp() is not None, early.text()
            # The announcement arrives while the call is not answered yet.
            assert rtp.wait_packets(25, 2.5) >= 25, (gw.text()[-3000:], pbx.log_tail())
            assert out.peek_final() is None, "the 200 came before the early media"
            payloads = [p.payload for p in rtp.rtp()]
            assert strongest(payloads, [GATEWAY_TONE, 440, 2000]) == GATEWAY_TONE
            final = out.wait_final(10)
            assert final is not None and final.status == 200, final
            # The 200 completes the call with the early answer: no new offer.
            assert final.body and final.body == early.body, final.text()
            bye = out.bye()
            assert bye is not None and bye.status == 200, bye
        invites = gw.invites(4930777)
        assert invites and re.search(
            rf"^INVITE sip:4930777@{GATEWAY_IP}:{far_ends.ports['gateway']} ", invites[0],
            re.M), invites
    finally:
        rtp.close()
    cdr = pbx.wait_cdr(1000, 4930777)
    assert cdr is not None and cdr.get("trunk") == "gateway", cdr


def call_with_failover(pbx, far_ends, number, second_answers):
    """1000 dials 0+`number` (the first trunk's answer depends on it, FIRST_XML); returns
    (the caller's final response, the second trunk's incoming call or None)."""
    second = far_ends.second
    with Phone(1000, "pw1000", pbx.server("udp"), local_ip=PHONE_IP) as phone:
        out = phone.call(f"0{number}", sdp=sdp_offer(PHONE_IP, 40220))
        inc = second.wait_call(8 if second_answers else 4)
        if inc is not None and second_answers:
            inc.answer(sdp_offer(SECOND_IP, 40222))
        final = out.wait_final(10)
        if final is not None and final.status == 200:
            bye = out.bye()
            assert bye is not None and bye.status == 200, bye
        return final, inc


def test_a_503_from_the_first_trunk_completes_the_call_on_the_second(pbx, far_ends):
    final, inc = call_with_failover(pbx, far_ends, "301111", True)
    assert far_ends.first.invites(301111), "the first trunk got no INVITE"
    assert inc is not None, f"the second trunk was not tried\n{pbx.log_tail()}"
    assert inc.invite.uri == f"sip:301111@{SECOND_IP}:{far_ends.ports['second']}", inc.invite
    assert final is not None and final.status == 200, (final, pbx.log_tail())
    cdr = pbx.wait_cdr(1000, 301111)
    assert cdr is not None and cdr.get("trunk") == "second", cdr


def test_a_silent_first_trunk_is_given_up_after_the_setup_time(pbx, far_ends):
    final, inc = call_with_failover(pbx, far_ends, "302222", True)
    assert far_ends.first.invites(302222), "the first trunk got no INVITE"
    assert inc is not None, f"the second trunk was not tried\n{pbx.log_tail()}"
    assert final is not None and final.status == 200, (final, pbx.log_tail())
    assert pbx.wait_log(r"no answer from the trunk within its setup time", timeout=2), \
        pbx.log_tail()


def test_a_486_from_the_first_trunk_ends_the_call_without_failover(pbx, far_ends):
    final, inc = call_with_failover(pbx, far_ends, "303333", False)
    assert far_ends.first.invites(303333), "the first trunk got no INVITE"
    assert inc is None, "the second trunk was tried after a 486"
    assert final is not None and final.status == 486, (final, pbx.log_tail())
    cdr = pbx.wait_cdr(1000, 303333)
    assert cdr is not None and cdr.get("trunk") == "first", cdr
    assert cdr.get("disposition") == "busy", cdr


def test_the_lobby_cannot_call_out(pbx, far_ends):
    with Phone(1990, "pw1990", pbx.server("udp"), local_ip=LOBBY_IP) as lobby:
        out = lobby.call("0304444", sdp=sdp_offer(LOBBY_IP, 40230))
        final = out.wait_final(10)
        assert final is not None and final.status == 403, final
    assert far_ends.first.invites(304444) == [], "the lobby's call went out"
    assert far_ends.second.wait_call(1) is None, "the lobby's call went out"
