"""Forking: an extension registered from two devices; a call rings both in parallel, the first
200 wins, the other device gets CANCEL with `Reason: SIP;cause=200;text="Call completed
elsewhere"` (RFC 3326); audio goes to the device that answered; one CDR row. And busy on every
device gives the caller 486.
"""

import re

import pytest

from callclient import sdp_offer
from callhelpers import (answer_pts, assert_pbx_sdp, compare_streams,
                         start_call_pbx, wait_cdr, wait_incoming)
from conftest import same_party
from media import RtpPeer

CALLER_IP, DEV1_IP, DEV2_IP = "127.0.0.2", "127.0.0.3", "127.0.0.4"


@pytest.fixture(scope="module")
def call_pbx(pbx_factory):
    return start_call_pbx(pbx_factory, range(3401, 3405), name="calls-forking")


def reason_params(value):
    """`SIP;cause=200;text="Call completed elsewhere"` -> ("SIP", {"cause": "200", "text": ...})."""
    proto, _, rest = value.partition(";")
    params = {m.group(1).lower(): m.group(3) if m.group(3) is not None else m.group(2)
              for m in re.finditer(r'\s*([A-Za-z-]+)\s*=\s*("([^"]*)"|[^;]+)', rest)}
    return proto.strip(), params


def test_both_devices_ring_first_answer_wins_other_cancelled(call_pbx, phones):
    pbx = call_pbx
    caller = phones(pbx, 3401, CALLER_IP)
    dev1 = phones(pbx, 3402, DEV1_IP)
    dev2 = phones(pbx, 3402, DEV2_IP)
    found = pbx.wait_bindings([3402], lambda b: len(b.get("3402", [])) == 2)
    assert len(found.get("3402", [])) == 2, pbx.registration_lines()
    with RtpPeer.even(CALLER_IP) as c_rtp, RtpPeer.even(DEV1_IP) as d1_rtp:
        out = caller.call("3402", sdp_offer(*c_rtp.addr))
        inc1, inc2 = wait_incoming(pbx, dev1, out), wait_incoming(pbx, dev2, out)
        assert_pbx_sdp(pbx, inc1.offer, "device 1")
        assert_pbx_sdp(pbx, inc2.offer, "device 2")
        inc1.ring()
        inc2.ring()
        ringing = out.wait_provisional(180, 5)
        assert ringing is not None and ringing.status == 180, f"no 180 to the caller: {out.responses}"

        pts, rtpmap = answer_pts(inc1.offer)
        inc1.answer(sdp_offer(*d1_rtp.addr, pts=pts, rtpmap=rtpmap))
        final = out.wait_final(5)
        assert final is not None and final.status == 200, f"{final}\n{pbx.log_tail()}"
        assert inc1.wait_ack(3) is not None

        cancel = inc2.wait_cancel(5)
        assert cancel is not None, \
            f"device 2 was not cancelled: {dev2.describe_inbox()}\n{pbx.log_tail()}"
        reason = cancel.get("reason")
        assert reason is not None, f"CANCEL without Reason:\n{cancel.text()}"
        proto, params = reason_params(reason)
        assert (proto.upper(), params.get("cause"), params.get("text")) == \
            ("SIP", "200", "Call completed elsewhere"), f"Reason: {reason}"
        assert inc1.wait_cancel(0.5) is None, "the device that answered got a CANCEL"
        # only one 200 reached the caller
        assert [r.status for r in out.responses if r.status >= 200 and r.status != 407] == [200], \
            out.responses

        # audio goes to the device that answered
        sent = c_rtp.stream(out.answer_sdp.addr, 25, seed="to-dev1")
        assert d1_rtp.wait_packets(25, 2) == 25
        assert compare_streams(sent, d1_rtp.rtp()) == []

        assert out.bye().status == 200
        assert inc1.wait_bye(5) is not None
        assert inc2.wait_bye(0.5) is None, "the cancelled device got a BYE"
    row = wait_cdr(pbx, 3401, 3402)
    assert row["disposition"] == "answered", row
    rows = [r for r in pbx.cdrs() if same_party(r["called"], 3402)]
    assert len(rows) == 1, f"one call, one CDR row: {rows}"


def test_busy_on_every_device_gives_486(call_pbx, phones):
    pbx = call_pbx
    caller = phones(pbx, 3403, CALLER_IP)
    dev1 = phones(pbx, 3404, DEV1_IP)
    dev2 = phones(pbx, 3404, DEV2_IP)
    assert len(pbx.wait_bindings([3404], lambda b: len(b.get("3404", [])) == 2).get("3404", [])) == 2
    out = caller.call("3404", sdp_offer(CALLER_IP, 40000))
    for dev in (dev1, dev2):
        wait_incoming(pbx, dev, out).reject(486, "Busy Here")
    final = out.wait_final(5)
    assert final is not None and final.status == 486, f"{final}\n{pbx.log_tail()}"
    row = wait_cdr(pbx, 3403, 3404)
    assert row["disposition"] == "busy", row
