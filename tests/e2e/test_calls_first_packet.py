"""The first RTP packet of an answered call is relayed, however soon it is sent.

RFC 3264 §6: the answerer may send media as soon as it has sent its answer; the offerer may
as soon as the answer arrives. Each call here sends its first packet at once both ways: the
callee right after its 200 left (the packet races the 200 through the PBX's SIP engine), the
caller from the phone's receive thread the moment the PBX's 200 arrives (before the phone
has even parsed it). Twenty calls in a row; every first packet must come out at the other
side. Packets are held until the plan, and the worker applies plans before reading sockets.

Addresses: the PBX is 127.0.0.1; the caller 127.0.57.2; the callee 127.0.57.3.
"""

import os
import re
import threading

import pytest

from callclient import sdp_offer
from callhelpers import answer_pts, start_call_pbx, wait_cdr, wait_incoming
from media import RtpPacket, RtpPeer

# Protocol and media behaviour, not the store: run on SQLite only (scripts/test.sh).
pytestmark = pytest.mark.store_independent

CALLER_IP, CALLEE_IP = "127.0.57.2", "127.0.57.3"
CALLS = 20
M_AUDIO = re.compile(rb"\r\nm=audio (\d+) ")
C_LINE = re.compile(rb"\r\nc=IN IP4 ([0-9.]+)")


@pytest.fixture(scope="module")
def call_pbx(pbx_factory):
    return start_call_pbx(pbx_factory, [3411, 3412], name="calls-first-packet")


def first_packet(ssrc):
    return RtpPacket(0, 1, 0, ssrc, os.urandom(160), marker=True)


class SendOnAnswer:
    """The caller's hook: sends `packet` from `rtp` to the address in the first 200 to an
    INVITE with SDP, from the phone's receive thread, before anything else happens to it."""

    def __init__(self, rtp, packet):
        self.rtp, self.packet = rtp, packet
        self.sent = threading.Event()
        self.to = None

    def __call__(self, data):
        if self.sent.is_set() or not data.startswith(b"SIP/2.0 200 "):
            return
        head = data.split(b"\r\n\r\n", 1)[0]
        if not re.search(rb"\r\nCSeq:\s*\d+\s+INVITE", head, re.I):
            return
        port, ip = M_AUDIO.search(data), C_LINE.search(data)
        if port is None or ip is None:
            return
        self.to = (ip.group(1).decode(), int(port.group(1)))
        self.rtp.send(self.packet, self.to)
        self.sent.set()


def test_the_first_packet_each_way_is_relayed_when_sent_the_moment_of_the_200(call_pbx, phones):
    pbx = call_pbx
    caller = phones(pbx, 3411, CALLER_IP)
    callee = phones(pbx, 3412, CALLEE_IP)
    lost = []
    for n in range(CALLS):
        caller_rtp, callee_rtp = RtpPeer.even(CALLER_IP), RtpPeer.even(CALLEE_IP)
        try:
            from_caller = first_packet(0xCA000000 + n)
            from_callee = first_packet(0xCE000000 + n)
            hook = SendOnAnswer(caller_rtp, from_caller)
            caller.on_datagram = hook
            out = caller.call("3412", sdp_offer(*caller_rtp.addr))
            inc = wait_incoming(pbx, callee, out)
            assert inc.offer is not None, inc.invite.text()
            pts, rtpmap = answer_pts(inc.offer)
            inc.answer(sdp_offer(*callee_rtp.addr, pts=pts, rtpmap=rtpmap))
            callee_rtp.send(from_callee, inc.offer.addr)       # at once after the 200
            final = out.wait_final(5)
            assert final is not None and final.status == 200, \
                f"call {n}: caller got {final}; all: {out.responses}\n{pbx.log_tail()}"
            assert hook.sent.wait(2), f"call {n}: the caller's hook saw no 200 with SDP"
            assert hook.to == out.answer_sdp.addr, (hook.to, out.answer_sdp.addr)

            got_callee = callee_rtp.wait_packets(1, 2, ssrc=from_caller.ssrc)
            got_caller = caller_rtp.wait_packets(1, 2, ssrc=from_callee.ssrc)
            if got_callee < 1:
                lost.append(f"call {n}: the caller's first packet")
            else:
                [p] = callee_rtp.rtp(ssrc=from_caller.ssrc)
                assert p.payload == from_caller.payload and p.seq == 1, p
            if got_caller < 1:
                lost.append(f"call {n}: the callee's first packet")
            else:
                [p] = caller_rtp.rtp(ssrc=from_callee.ssrc)
                assert p.payload == from_callee.payload and p.seq == 1, p

            r = out.bye()
            assert r is not None and r.status == 200, f"call {n}: BYE got {r}\n{pbx.log_tail()}"
            assert inc.wait_bye(5) is not None, f"call {n}: the callee got no BYE"
        finally:
            caller.on_datagram = None
            caller_rtp.close()
            callee_rtp.close()
    assert lost == [], f"{len(lost)} first packets of {2 * CALLS} lost: {lost}\n{pbx.log_tail()}"
    row = wait_cdr(pbx, 3411, 3412)
    assert row["disposition"] == "answered", row
