"""Media timeout (`[rtp] rtp_timeout`, here 2 s): an answered call whose RTP stops is ended by
the PBX with BYE on both sides and a CDR saying so; a call on hold is not (silence is expected
there), and once resumed, silence ends it again.
"""

import time

import pytest

from callclient import sdp_offer
from callhelpers import answer_pts, establish, start_call_pbx, wait_cdr

CALLER_IP, CALLEE_IP = "127.0.0.2", "127.0.0.3"


@pytest.fixture(scope="module")
def call_pbx(pbx_factory):
    return start_call_pbx(pbx_factory, range(3501, 3505), name="calls-timeout",
                          extra_toml='[rtp]\nrtp_timeout = "2s"\n')


def test_silence_ends_the_call_on_both_sides(call_pbx, phones):
    caller = phones(call_pbx, 3501, CALLER_IP)
    callee = phones(call_pbx, 3502, CALLEE_IP)
    call = establish(call_pbx, caller, callee)
    try:
        # Some audio first: the timeout counts from the last packet, not from the answer.
        call.caller_rtp.stream(call.to_caller, 10, seed="before-silence")
        assert call.callee_rtp.wait_packets(10, 2) == 10
        started = time.time()
        assert call.out.wait_bye(6) is not None, \
            f"the caller got no BYE after 2 s of silence\n{call_pbx.log_tail()}"
        assert call.inc.wait_bye(2) is not None, "the callee got no BYE"
        waited = time.time() - started
        assert 1.5 <= waited <= 5.0, f"BYE after {waited:.1f} s, expected about 2 s"
        row = wait_cdr(call_pbx, "3501", "3502")
        assert row["disposition"] == "answered", row
        assert row["hangup"].startswith("pbx"), row
        assert "media timeout" in row["hangup"], row
    finally:
        call.close()


def test_hold_is_not_a_timeout(call_pbx, phones):
    caller = phones(call_pbx, 3503, CALLER_IP)
    callee = phones(call_pbx, 3504, CALLEE_IP)
    call = establish(call_pbx, caller, callee)
    try:
        branch = call.out.start_reinvite(
            sdp_offer(*call.caller_rtp.addr, direction="sendonly", version=2))
        req = call.inc.wait_reinvite(5)
        assert req is not None, "the hold re-INVITE was not relayed"
        pts, rtpmap = answer_pts(req.sdp())
        call.inc.accept_reinvite(req, sdp_offer(*call.callee_rtp.addr, pts=pts, rtpmap=rtpmap,
                                                direction="recvonly", version=2))
        r = call.out.finish_reinvite(branch, 5)
        assert r is not None and r.status == 200, r
        # On hold and silent for twice the timeout: the call stays up.
        assert call.out.wait_bye(4.5) is None, \
            f"a held call was ended for silence\n{call_pbx.log_tail()}"
        # Resumed and still silent: now it is a dead call.
        branch = call.out.start_reinvite(sdp_offer(*call.caller_rtp.addr, version=3))
        req = call.inc.wait_reinvite(5)
        assert req is not None, "the resume re-INVITE was not relayed"
        call.inc.accept_reinvite(req, sdp_offer(*call.callee_rtp.addr, pts=pts, rtpmap=rtpmap,
                                                version=3))
        r = call.out.finish_reinvite(branch, 5)
        assert r is not None and r.status == 200, r
        assert call.out.wait_bye(6) is not None, "a resumed silent call was not ended"
    finally:
        call.close()


def test_stopping_the_pbx_ends_its_calls(pbx_factory, phones):
    """SIGTERM: calls in progress get BYE on both sides and their CDR is written."""
    pbx = start_call_pbx(pbx_factory, range(3511, 3513), name="calls-shutdown")
    caller = phones(pbx, 3511, CALLER_IP)
    callee = phones(pbx, 3512, CALLEE_IP)
    call = establish(pbx, caller, callee)
    try:
        pbx.stop()
        assert call.out.wait_bye(3) is not None, "the caller got no BYE at shutdown"
        assert call.inc.wait_bye(1) is not None, "the callee got no BYE at shutdown"
        row = wait_cdr(pbx, "3511", "3512")
        assert row["disposition"] == "answered", row
        assert row["hangup"].startswith("pbx"), row
    finally:
        call.close()
