"""SIPp calls SIPp through the PBX, with RTP relayed by the PBX (issue 5, "SIPp caller and SIPp
callee with RTP through the PBX (packets counted at both ends)").

The callee is the recipe tests/clients/sipp/answer.sh: register.xml registers 3002 from
127.0.0.3, then uas-answer.xml answers on the same port and echoes RTP (-rtp_echo). The caller
is call.sh: uac-call.xml from 127.0.0.2 (INVITE, the PBX's 407 answered with
[authentication], ACK), 3 s of a u-law tone with rtp_stream, BYE. SIPp does not count what it
receives, so a loopback sniffer counts the RTP arriving at each SIPp's media port.
"""

import pytest

from callhelpers import (PBX_IP, SippAnswer, sipp_call, sipp_received_sdp, start_call_pbx,
                         wait_cdr)
from media import LoopbackSniffer

CALLER_IP, CALLEE_IP = "127.0.0.2", "127.0.0.3"


@pytest.fixture(scope="module")
def call_pbx(pbx_factory):
    return start_call_pbx(pbx_factory, [3001, 3002], name="calls-sipp")


def test_sipp_call_through_pbx_relays_rtp_both_ways(call_pbx, tmp_path):
    pbx = call_pbx
    ips = {CALLER_IP, CALLEE_IP}
    with LoopbackSniffer(keep=lambda s, d: d[0] in ips or s[0] in ips) as sn:
        callee = SippAnswer(pbx, 3002, CALLEE_IP, tmp_path)
        rc = None
        try:
            assert callee.wait_ready(), f"SIPp callee did not register:\n{callee.output()}\n{pbx.log_tail()}"
            rc, out, caller_rtp = sipp_call(pbx, 3001, 3002, CALLER_IP, tmp_path, seconds=3)
        finally:
            # the callee ends by itself after the BYE; not when the call failed
            callee_rc = callee.wait(20 if rc == 0 else 1)
        assert rc == 0, f"SIPp caller: rc={rc}\n{out}\n{pbx.log_tail()}"
        assert callee_rc == 0, f"SIPp callee: rc={callee_rc}\n{callee.output()}\n{pbx.log_tail()}"

    # the INVITE the callee got carries the PBX's media address, not the caller's
    offer = sipp_received_sdp(callee.messages())
    assert offer is not None, f"no INVITE with SDP in the callee's trace:\n{callee.messages()[-3000:]}"
    assert offer.ip == PBX_IP and pbx.in_rtp_range(offer.port), \
        f"the callee's INVITE SDP is not anchored at the PBX:\n{offer.text}"

    from_relay = lambda a: a[0] == PBX_IP and pbx.in_rtp_range(a[1])  # noqa: E731
    at_callee = sn.matching(src=from_relay, dst=(CALLEE_IP, callee.rtp_port))
    at_caller = sn.matching(src=from_relay, dst=(CALLER_IP, caller_rtp))
    # 3 s at 50 packets/s = 150 each way; leave room for set-up and tear-down
    assert len(at_callee) >= 100, \
        f"{len(at_callee)} RTP packets reached the callee from the relay:\n{sn.describe()}"
    assert len(at_caller) >= 100, \
        f"{len(at_caller)} echoed RTP packets reached the caller from the relay:\n{sn.describe()}"
    direct = sn.matching(src=CALLER_IP, dst=CALLEE_IP) + sn.matching(src=CALLEE_IP, dst=CALLER_IP)
    assert not direct, f"RTP went around the PBX:\n{sn.describe()}"
    # what SIPp sent went to the relay, from its own media port
    sent = sn.matching(src=(CALLER_IP, caller_rtp), dst=from_relay)
    assert len(sent) >= 100, sn.describe()

    row = wait_cdr(pbx, 3001, 3002)
    assert row["disposition"] == "answered", row
    assert "pcmu" in row["codec"].lower(), row


# Issue 4: "SIPp calls routed by patterns". `_8XXXX` strips the 8; a regex maps 7NNNN.
ROUTING_PLAN = r'''
[defaults]
context = "staff"

[context.staff]
may_call = ["any"]

[[context.staff.rule]]
pattern = "_8XXXX"
steps = [{ dial = "${number:1}" }]

[[context.staff.rule]]
regex = '7(\d{4})'
steps = [{ dial = "${1}" }]

[[context.staff.rule]]
extension = true
steps = [{ dial = "${number}" }]
'''


@pytest.fixture(scope="module")
def routed_pbx(pbx_factory):
    p = pbx_factory("calls-sipp-routed", "", dialplan=ROUTING_PLAN)
    p.import_extensions([(3011, "pw3011"), (3012, "pw3012")])
    return p.start()


@pytest.mark.parametrize("dialed", ["83012", "73012"])
def test_sipp_calls_are_routed_by_dialplan_patterns(routed_pbx, tmp_path, dialed):
    pbx = routed_pbx
    callee = SippAnswer(pbx, 3012, CALLEE_IP, tmp_path)
    rc = None
    try:
        assert callee.wait_ready(), f"SIPp callee did not register:\n{callee.output()}"
        rc, out, _ = sipp_call(pbx, 3011, dialed, CALLER_IP, tmp_path, seconds=1)
    finally:
        callee_rc = callee.wait(20 if rc == 0 else 1)
    assert rc == 0, f"SIPp caller dialing {dialed}: rc={rc}\n{out}\n{pbx.log_tail()}"
    assert callee_rc == 0, f"SIPp callee: rc={callee_rc}\n{callee.output()}"
    row = wait_cdr(pbx, 3011, dialed)
    assert row["disposition"] == "answered", row
