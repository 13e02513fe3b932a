"""A python caller and a python callee through the PBX: the B2BUA's SIP (407 challenge, 180,
200, ACK, BYE either way), the media relay's exactness (G.711 payload byte for byte, PT, SSRC,
sequence numbers and timestamps preserved, symmetric RTP), latching to where a device really
sends from, and packets from an unexpected source not relayed.

Addresses: the PBX is 127.0.0.1; the caller 127.0.0.2; the callee 127.0.0.3 (127.0.0.5 for
the device behind "NAT"); an intruder 127.0.0.6.
"""

import socket
import struct
import time

import pytest

from callhelpers import (compare_streams, establish, start_call_pbx,
                         wait_cdr, wait_incoming)
from callclient import sdp_offer
from media import RtpPacket, RtpPeer

# Protocol and media behaviour, not the store: run on SQLite only (scripts/test.sh).
pytestmark = pytest.mark.store_independent

CALLER_IP, CALLEE_IP, NATTED_IP, INTRUDER_IP = "127.0.0.2", "127.0.0.3", "127.0.0.5", "127.0.0.6"


@pytest.fixture(scope="module")
def call_pbx(pbx_factory):
    return start_call_pbx(pbx_factory, range(3101, 3113), name="calls-rtp")


def test_invite_is_challenged_with_407_and_credentials_stay_with_the_pbx(call_pbx, phones):
    caller = phones(call_pbx, 3101, CALLER_IP)
    callee = phones(call_pbx, 3102, CALLEE_IP)
    with RtpPeer.even(CALLER_IP) as rtp:
        out = caller.call("3102", sdp_offer(*rtp.addr))
        inc = wait_incoming(call_pbx, callee, out)
        # the phone answered the challenge itself: the first final response is in `challenged`
        assert out.challenged, f"the INVITE was not challenged: {out.responses}\n{call_pbx.log_tail()}"
        ch = out.challenged[0]
        assert ch.status == 407 and ch.get("proxy-authenticate"), ch.text()
        assert 'realm="pbx.test"' in ch.get("proxy-authenticate"), ch.get("proxy-authenticate")
        # a B2BUA's own INVITE: the caller's credentials and Call-ID are not passed on
        assert inc.invite.get("proxy-authorization") is None, inc.invite.text()
        assert inc.invite.call_id != out.call_id, "the B2BUA reused the caller's Call-ID"
        assert out.cancel() is not None
        assert out.wait_final(3).status == 487


def test_relay_is_exact_both_ways_and_bye_from_callee_reaches_caller(call_pbx, phones):
    pbx = call_pbx
    caller = phones(pbx, 3103, CALLER_IP)
    callee = phones(pbx, 3104, CALLEE_IP)
    call = establish(pbx, caller, callee)
    try:
        assert 180 in [r.status for r in call.out.provisional], \
            f"180 Ringing was not passed back: {call.out.responses}"
        # each leg has its own port pair on the PBX
        assert call.to_callee != call.to_caller, (call.to_callee, call.to_caller)
        # the callee's SDP offered PCMU (the codec both sides have)
        assert 0 in call.inc.offer.pts, call.inc.offer.text
        # caller -> callee, then callee -> caller: 100 packets (2 s) each, 20 ms apart
        sent = call.caller_rtp.stream(call.to_caller, 100, pt=0, seed="caller")
        n = call.callee_rtp.wait_packets(100, 2)
        got = call.callee_rtp.rtp()
        assert n == 100, f"the callee received {n} of 100 packets (sources {call.callee_rtp.sources()})"
        assert compare_streams(sent, got) == [], compare_streams(sent, got)[:10]
        assert [p.seq for p in got] == [p.seq for p in sent], "packets reordered"
        # symmetric RTP (RFC 4961): the PBX sends from the port it told the callee to send to
        assert call.callee_rtp.sources() == [call.to_callee], call.callee_rtp.sources()

        sent_back = call.callee_rtp.stream(call.to_callee, 100, pt=0, seed="callee")
        n = call.caller_rtp.wait_packets(100, 2)
        got_back = call.caller_rtp.rtp()
        assert n == 100, f"the caller received {n} of 100 packets"
        assert compare_streams(sent_back, got_back) == [], compare_streams(sent_back, got_back)[:10]
        assert call.caller_rtp.sources() == [call.to_caller], call.caller_rtp.sources()

        # BYE from the callee: 200 to the callee, BYE to the caller
        r = call.inc.bye()
        assert r is not None and r.status == 200, f"callee's BYE: {r}\n{pbx.log_tail()}"
        bye = call.out.wait_bye(5)
        assert bye is not None, f"the caller got no BYE: {caller.describe_inbox()}\n{pbx.log_tail()}"
    finally:
        call.close()
    row = wait_cdr(pbx, 3103, 3104)
    assert row["disposition"] == "answered", row
    assert "pcmu" in row["codec"].lower(), row
    assert row["encrypted"] == "no/no", row
    assert row["hangup"].split()[0] == "callee", row


def test_bye_from_caller_reaches_callee_and_ports_are_released(call_pbx, phones):
    pbx = call_pbx
    caller = phones(pbx, 3105, CALLER_IP)
    callee = phones(pbx, 3106, CALLEE_IP)
    call = establish(pbx, caller, callee)
    try:
        call.caller_rtp.stream(call.to_caller, 10)
        assert call.callee_rtp.wait_packets(10, 2) == 10
        r = call.out.bye()
        assert r is not None and r.status == 200, f"caller's BYE: {r}\n{pbx.log_tail()}"
        assert call.inc.wait_bye(5) is not None, \
            f"the callee got no BYE: {callee.describe_inbox()}\n{pbx.log_tail()}"
        # after the hang-up the relay stops: nothing more reaches the callee
        time.sleep(0.3)
        call.callee_rtp.clear()
        call.caller_rtp.stream(call.to_caller, 10)
        time.sleep(0.3)
        assert call.callee_rtp.rtp() == [], "media still relayed after BYE"
    finally:
        call.close()
    row = wait_cdr(pbx, 3105, 3106)
    assert row["disposition"] == "answered", row
    assert row["hangup"].split()[0] == "caller", row


def test_latching_sends_to_where_the_device_really_sends_from(call_pbx, phones):
    """The callee (SIP from 127.0.0.5) says in its SDP that it receives RTP at 127.0.0.1:X but
    sends from, and listens on, 127.0.0.5:Y (as a phone behind NAT does): the PBX must latch
    onto 127.0.0.5:Y and the caller's audio must reach it there. Then a third party sending
    to the callee's relay port is not relayed to the caller."""
    pbx = call_pbx
    caller = phones(pbx, 3107, CALLER_IP)
    callee = phones(pbx, 3108, NATTED_IP)
    decoy = RtpPeer.even("127.0.0.1")                   # X: advertised, never used to send
    real = RtpPeer.even(NATTED_IP)                      # Y: where the device really is
    call = establish(pbx, caller, callee, callee_rtp=real, callee_sdp_addr=decoy.addr)
    try:
        # the device sends first (as phones do), the caller meanwhile
        t_dev, sent_dev = real.stream_in_background(call.to_callee, 100, seed="device")
        time.sleep(0.1)
        sent = call.caller_rtp.stream(call.to_caller, 100, seed="caller")
        t_dev.join(5)
        time.sleep(0.2)
        got_real = real.rtp(ssrc=sent[0].ssrc)
        got_decoy = decoy.rtp(ssrc=sent[0].ssrc)
        tail = {p.seq for p in sent[-50:]}
        assert tail <= {p.seq for p in got_real}, (
            f"after latching, the caller's audio must go to the device's real address "
            f"{real.addr}: it got {len(got_real)} of 100 (last 50: "
            f"{len(tail & {p.seq for p in got_real})}), the advertised {decoy.addr} got "
            f"{len(got_decoy)}\n{pbx.log_tail()}")
        assert not tail & {p.seq for p in got_decoy}, "packets still sent to the SDP address after latching"
        assert compare_streams([p for p in sent if p.seq in tail], got_real) == []
        # the device's audio reached the caller, unchanged
        got_caller = call.caller_rtp.rtp(ssrc=sent_dev[0].ssrc)
        assert compare_streams(sent_dev[-50:], got_caller) == [], \
            compare_streams(sent_dev[-50:], got_caller)[:5]
        assert all(p.payload == sent_dev[(p.seq - sent_dev[0].seq) % 65536].payload for p in got_caller)

        # an intruder sends to the callee's relay port: dropped, the caller gets none of it
        with RtpPeer(INTRUDER_IP) as intruder:
            forged = intruder.stream(call.to_callee, 25, ssrc=0x0BADC0DE, seed="intruder")
        t_dev, sent2 = real.stream_in_background(call.to_callee, 10, seed="device2")
        t_dev.join(3)
        time.sleep(0.3)
        leaked = call.caller_rtp.rtp(ssrc=forged[0].ssrc)
        assert leaked == [], f"{len(leaked)} packets from an unexpected source were relayed"
        # and the latched device still gets through
        assert len(call.caller_rtp.rtp(ssrc=sent2[0].ssrc)) == 10, "the latched device was cut off"
        assert call.out.bye().status == 200
    finally:
        call.close()
        decoy.close()


def test_rtp_packets_of_other_payload_types_keep_their_numbering(call_pbx, phones):
    """telephone-event packets (RFC 4733; PT 96 on the caller's leg, whatever the PBX offered
    on the callee's) and PCMU are relayed with the same SSRC, seq, timestamp and payload, the
    payload type mapped per leg."""
    pbx = call_pbx
    caller = phones(pbx, 3109, CALLER_IP)
    callee = phones(pbx, 3110, CALLEE_IP)
    # the caller numbers telephone-event 96, the PBX may number it otherwise towards the callee
    call = establish(pbx, caller, callee, caller_pts=(0, 96), caller_rtpmap={96: "telephone-event/8000"})
    try:
        def event_pt(sdp):
            return next((pt for pt, enc in sdp.rtpmap().items()
                         if enc.lower().startswith("telephone-event")), None)

        ev_pt_caller = event_pt(call.out.answer_sdp)
        ev_pt_callee = event_pt(call.inc.offer)
        assert ev_pt_caller == 96, \
            f"telephone-event not answered as offered (96):\n{call.out.answer_sdp.text}"
        assert ev_pt_callee is not None, \
            f"telephone-event not offered to the callee:\n{call.inc.offer.text}"
        ssrc, seq, ts = 0x1234ABCD, 1000, 50000
        pkts = [RtpPacket(0, seq + i, ts + 160 * i, ssrc, bytes([i]) * 160) for i in range(5)]
        # a DTMF event "5", 3 packets with the same timestamp, end bit on the last
        pkts += [RtpPacket(ev_pt_caller, seq + 5 + i, ts + 800, ssrc,
                           struct.pack("!BBH", 5, 0x0A | (0x80 if i == 2 else 0), 160 * (i + 1)),
                           marker=(i == 0)) for i in range(3)]
        for p in pkts:
            call.caller_rtp.send(p, call.to_caller)
            time.sleep(0.02)
        assert call.callee_rtp.wait_packets(len(pkts), 2) == len(pkts)
        got = call.callee_rtp.rtp()
        assert [(p.seq, p.ts, p.ssrc, p.payload) for p in got] == \
            [(p.seq, p.ts, p.ssrc, p.payload) for p in pkts]
        assert [p.pt for p in got] == [0] * 5 + [ev_pt_callee] * 3, [p.pt for p in got]
        assert call.out.bye().status == 200
    finally:
        call.close()


def udp_bound(ports):
    """{port: {local IPs}} of the UDP sockets bound on `ports`, from /proc/net/udp (IPv4)."""
    out = {}
    with open("/proc/net/udp") as f:
        next(f)                                              # the header line
        for line in f:
            hexip, hexport = line.split()[1].split(":")
            port = int(hexport, 16)
            if port in ports:
                ip = socket.inet_ntoa(struct.pack("<I", int(hexip, 16)))
                out.setdefault(port, set()).add(ip)
    return out


def test_media_sockets_are_bound_where_sip_listens(call_pbx, phones):
    """SIP listens on 127.0.0.1 only (conftest), and `[rtp] bind` is not set: the relay's RTP
    and RTCP sockets are bound to 127.0.0.1 too, never to 0.0.0.0 (issue 10, part 4)."""
    pbx = call_pbx
    caller = phones(pbx, 3111, CALLER_IP)
    callee = phones(pbx, 3112, CALLEE_IP)
    call = establish(pbx, caller, callee)
    try:
        rtp = {call.to_caller[1], call.to_callee[1]}
        ports = rtp | {p + 1 for p in rtp}
        bound = udp_bound(ports)
        assert set(bound) == ports, f"relay ports {sorted(ports)}, bound: {bound}"
        for port, ips in sorted(bound.items()):
            assert "0.0.0.0" not in ips, f"media port {port} listens on every interface"
            assert "127.0.0.1" in ips, f"media port {port} is bound to {ips}"
        r = call.out.bye()
        assert r is not None and r.status == 200, f"caller's BYE: {r}\n{pbx.log_tail()}"
    finally:
        call.close()
