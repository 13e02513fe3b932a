"""Hold and resume by re-INVITE through the PBX (RFC 3264 §8.4), from either side: the holder
offers a=sendonly, the other phone receives a re-INVITE with a=sendonly (media anchored at the
PBX), answers a=recvonly, and the holder gets a=recvonly in the 200; the holder's audio (music
on hold) is still relayed; resuming with a=sendrecv restores audio both ways.
"""

import pytest

from callclient import sdp_offer
from callhelpers import (answer_pts, assert_pbx_sdp, compare_streams, establish,
                         start_call_pbx)

# Protocol and media behaviour, not the store: run on SQLite only (scripts/test.sh).
pytestmark = pytest.mark.store_independent

CALLER_IP, CALLEE_IP = "127.0.0.2", "127.0.0.3"


@pytest.fixture(scope="module")
def call_pbx(pbx_factory):
    return start_call_pbx(pbx_factory, range(3301, 3305), name="calls-hold")


def reoffer(pbx, holder, holder_rtp, other, other_rtp, direction, answer_direction, version):
    """holder re-INVITEs with `direction`; other sees it and answers `answer_direction`.
    Returns (SDP the other phone got, SDP the holder got back)."""
    branch = holder.start_reinvite(sdp_offer(*holder_rtp.addr, direction=direction, version=version))
    req = other.wait_reinvite(5)
    assert req is not None, \
        f"re-INVITE ({direction}) not relayed: {other.phone.describe_inbox()}\n{pbx.log_tail()}"
    seen = req.sdp()
    assert seen is not None, f"the relayed re-INVITE has no SDP:\n{req.text()}"
    pts, rtpmap = answer_pts(seen)
    other.accept_reinvite(req, sdp_offer(*other_rtp.addr, pts=pts, rtpmap=rtpmap,
                                         direction=answer_direction, version=version))
    r = holder.finish_reinvite(branch, 5)
    assert r is not None and r.status == 200, f"re-INVITE ({direction}): {r}\n{pbx.log_tail()}"
    assert other.phone.wait_for(lambda m: m.is_request and m.method == "ACK"
                                and m.call_id == other.call_id, 3) is not None, \
        "the re-INVITE's 200 was not ACKed to the other phone"
    return seen, r.sdp()


@pytest.mark.parametrize("holder_side", ["caller", "callee"])
def test_hold_and_resume(call_pbx, phones, holder_side):
    pbx = call_pbx
    base = 3301 if holder_side == "caller" else 3303
    caller = phones(pbx, base, CALLER_IP)
    callee = phones(pbx, base + 1, CALLEE_IP)
    call = establish(pbx, caller, callee)
    if holder_side == "caller":
        holder, h_rtp, other, o_rtp = call.out, call.caller_rtp, call.inc, call.callee_rtp
    else:
        holder, h_rtp, other, o_rtp = call.inc, call.callee_rtp, call.out, call.caller_rtp
    try:
        # hold
        seen, back = reoffer(pbx, holder, h_rtp, other, o_rtp, "sendonly", "recvonly", 2)
        assert seen.direction == "sendonly", f"the held phone got {seen.direction}:\n{seen.text}"
        assert_pbx_sdp(pbx, seen, f"{holder_side}'s peer (re-INVITE)")
        assert back is not None and back.direction == "recvonly", \
            f"the holder got {back and back.direction} back:\n{back and back.text}"
        assert_pbx_sdp(pbx, back, f"{holder_side} (200 to the re-INVITE)")
        # the holder's audio (music on hold) still reaches the held phone
        o_rtp.clear()
        sent = h_rtp.stream(back.addr, 25, seed="on-hold")
        assert o_rtp.wait_packets(25, 2) == 25, "the holder's audio is not relayed while on hold"
        assert compare_streams(sent, o_rtp.rtp()) == []

        # resume
        seen, back = reoffer(pbx, holder, h_rtp, other, o_rtp, "sendrecv", "sendrecv", 3)
        assert seen.direction == "sendrecv", f"resume: the other phone got {seen.direction}"
        assert back is not None and back.direction == "sendrecv", f"resume: holder got {back}"
        assert_pbx_sdp(pbx, seen, "resume (re-INVITE)")
        h_rtp.clear()
        o_rtp.clear()
        sent_h = h_rtp.stream(back.addr, 25, seed="resumed-h")
        sent_o = o_rtp.stream(seen.addr, 25, seed="resumed-o")
        assert o_rtp.wait_packets(25, 2) == 25 and h_rtp.wait_packets(25, 2) == 25, \
            "audio does not flow both ways after resume"
        assert compare_streams(sent_h, o_rtp.rtp()) == []
        assert compare_streams(sent_o, h_rtp.rtp()) == []
        assert call.out.bye().status == 200
        assert call.inc.wait_bye(5) is not None
    finally:
        call.close()


def test_info_dtmf_relay_and_options_pass_through_the_dialog(call_pbx, phones):
    """In-dialog INFO (`application/dtmf-relay`, as many desk phones send DTMF) and OPTIONS
    are relayed into the other dialog as they are, and their answers come back."""
    pbx = call_pbx
    caller = phones(pbx, 3301, CALLER_IP)
    callee = phones(pbx, 3302, CALLEE_IP)
    call = establish(pbx, caller, callee)
    try:
        body = b"Signal=5\r\nDuration=160\r\n"
        branch = call.out.request("INFO", body, content_type="application/dtmf-relay")
        info = callee.wait_request("INFO", 5, call_id=call.inc.call_id)
        assert info is not None, f"INFO not relayed: {callee.describe_inbox()}\n{pbx.log_tail()}"
        assert info.get("content-type") == "application/dtmf-relay", info.text()
        assert info.body == body, info.text()
        callee.respond(info, 200, "OK")
        answer = call.out.final_response(branch, 5)
        assert answer is not None and answer.status == 200, answer

        branch = call.inc.request("OPTIONS")
        options = caller.wait_request("OPTIONS", 5, call_id=call.out.call_id)
        assert options is not None, f"OPTIONS not relayed: {caller.describe_inbox()}"
        caller.respond(options, 200, "OK")
        answer = call.inc.final_response(branch, 5)
        assert answer is not None and answer.status == 200, answer
        assert call.out.bye().status == 200
        assert call.inc.wait_bye(5) is not None
    finally:
        call.close()
