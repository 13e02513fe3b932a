"""Strict RTP latching (`[rtp] strict_rtp = "sequence"`, the default) against the "RTP bleed"
attack class (CVE-2017-14099 in Asterisk): a stranger who sends RTP to a call's relay port
before the phone does must not get the other party's audio, and must not cut the phone off.
A phone behind "NAT" (sending from another address than its SDP names) still gets two-way
audio once it has sent `rtp_probation` packets in sequence (6 here, to see the key carried;
the default is 4). With `strict_rtp = "off"` the first packet latches, and the stranger does
take the call's audio: that is the hole strict RTP closes.

Addresses: the PBX is 127.0.0.1; the caller 127.0.73.2; the callee 127.0.73.3 (127.0.73.5 for
the device behind "NAT"); the stranger 127.0.73.6.
"""

import re
import time

import pytest

from callhelpers import compare_streams, establish, start_call_pbx
from media import RtpPacket, RtpPeer

# Protocol and media behaviour, not the store: run on SQLite only (scripts/test.sh).
pytestmark = pytest.mark.store_independent

CALLER_IP, CALLEE_IP, NATTED_IP, STRANGER_IP = "127.0.73.2", "127.0.73.3", "127.0.73.5", "127.0.73.6"
PROBATION = 6


@pytest.fixture(scope="module")
def call_pbx(pbx_factory):
    return start_call_pbx(pbx_factory, range(3731, 3737), name="calls-strict-rtp",
                          extra_toml=f'[rtp]\nstrict_rtp = "sequence"\nrtp_probation = {PROBATION}\n')


def dropped(pbx, reason):
    """`pbx_media_dropped_total{reason=...}` from /metrics (0 when absent)."""
    status, text = pbx.http_get("/metrics")
    assert status == 200, status
    m = re.search(r'^pbx_media_dropped_total\{reason="%s"\} (\d+)' % reason, text, re.M)
    return int(m.group(1)) if m else 0


def wait_dropped(pbx, reason, at_least, timeout=5.0):
    """The counter once it reached `at_least` (the relay publishes it about once a second)."""
    end = time.time() + timeout
    while True:
        n = dropped(pbx, reason)
        if n >= at_least or time.time() >= end:
            return n
        time.sleep(0.2)


def spray(stranger, dest, ssrc, seqs):
    """What an RTP bleed scanner sends: a few well-formed RTP packets to a relay port."""
    for seq in seqs:
        stranger.send(RtpPacket(0, seq, seq * 160, ssrc, b"\xff" * 160), dest)
        time.sleep(0.005)


def test_a_stranger_sending_first_gets_none_of_the_call(call_pbx, phones):
    """The stranger sprays the caller-side relay port (from the caller's 200) right after the
    answer, before the caller's phone has sent anything: short runs, as a scanner sweeping a
    port range does. The callee's audio still goes to the caller's SDP address only, the
    caller's own first packet is relayed at once, and the sprays are counted as probation."""
    pbx = call_pbx
    caller = phones(pbx, 3731, CALLER_IP)
    callee = phones(pbx, 3732, CALLEE_IP)
    before = dropped(pbx, "probation")
    call = establish(pbx, caller, callee)
    stranger = RtpPeer(STRANGER_IP)
    try:
        # Runs of 3 (short of probation) with gaps, and single packets of other streams.
        spray(stranger, call.to_caller, 0x0BAD0001, [10, 11, 12, 20, 21, 22, 40])
        spray(stranger, call.to_caller, 0x0BAD0002, [7])
        spray(stranger, call.to_caller, 0x0BAD0003, [900, 901, 902])
        time.sleep(0.2)
        sent = call.callee_rtp.stream(call.to_callee, 50, seed="callee")
        got = call.caller_rtp.wait_packets(50, 3, ssrc=sent[0].ssrc)
        time.sleep(0.2)
        assert stranger.rtp() == [], (
            f"the stranger received {len(stranger.rtp())} packets of the call\n{pbx.log_tail()}")
        assert got == 50, f"the caller received {got} of the callee's 50 packets\n{pbx.log_tail()}"
        assert compare_streams(sent, call.caller_rtp.rtp(ssrc=sent[0].ssrc)) == []
        # none of the sprays reached the callee; the caller's first packet does, at once
        assert all(p.ssrc == sent[0].ssrc for p in call.caller_rtp.rtp()), \
            "the caller received packets other than the callee's"
        assert [p for p in call.callee_rtp.rtp() if p.ssrc >> 16 == 0x0BAD] == [], \
            "a stranger's packets were relayed to the callee"
        back = call.caller_rtp.stream(call.to_caller, 20, seed="caller")
        assert call.callee_rtp.wait_packets(20, 3, ssrc=back[0].ssrc) == 20, \
            "the caller's audio did not reach the callee in full"
        assert compare_streams(back, call.callee_rtp.rtp(ssrc=back[0].ssrc)) == []
        assert wait_dropped(pbx, "probation", before + 11) >= before + 11, \
            f"sprays not counted as probation drops: {dropped(pbx, 'probation') - before}"
        assert call.out.bye().status == 200
    finally:
        stranger.close()
        call.close()


def test_a_stranger_that_wins_the_latch_loses_it_when_the_phone_speaks(call_pbx, phones):
    """A stranger that does send a full run in sequence before the phone speaks is latched
    (the phone's SDP address has not spoken yet), but the phone's first packet from its SDP
    address takes the latch back: from then on the callee's audio goes to the phone and
    nothing more to the stranger, whose packets are no longer relayed."""
    pbx = call_pbx
    caller = phones(pbx, 3733, CALLER_IP)
    callee = phones(pbx, 3734, CALLEE_IP)
    call = establish(pbx, caller, callee)
    stranger = RtpPeer(STRANGER_IP)
    try:
        spray(stranger, call.to_caller, 0x0BAD0010, range(100, 100 + 2 * PROBATION))
        time.sleep(0.2)
        first = RtpPacket(0, 5000, 0, 0x00C0FFEE, b"\x55" * 160, marker=True)
        call.caller_rtp.send(first, call.to_caller)
        assert call.callee_rtp.wait_packets(1, 3, ssrc=first.ssrc) == 1, \
            "the phone's first packet from its SDP address was not relayed"
        time.sleep(0.1)
        sent = call.callee_rtp.stream(call.to_callee, 50, seed="callee")
        assert call.caller_rtp.wait_packets(50, 3, ssrc=sent[0].ssrc) == 50, \
            f"the phone did not get the callee's audio back\n{pbx.log_tail()}"
        assert stranger.rtp(ssrc=sent[0].ssrc) == [], "the stranger kept the callee's audio"
        call.callee_rtp.clear()
        spray(stranger, call.to_caller, 0x0BAD0010, range(200, 210))
        time.sleep(0.3)
        assert call.callee_rtp.rtp(ssrc=0x0BAD0010) == [], \
            "the stranger's packets were relayed after the phone took the latch back"
        assert call.out.bye().status == 200
    finally:
        stranger.close()
        call.close()


def test_a_phone_behind_nat_gets_two_way_audio(call_pbx, phones):
    """The callee's SDP names 127.0.0.1:X but it sends from, and listens on, 127.0.73.5:Y (a
    phone behind NAT): its first `PROBATION - 1` packets are dropped while it is on
    probation, every one after reaches the caller unchanged, and the caller's audio reaches
    it at its real address once latched."""
    pbx = call_pbx
    caller = phones(pbx, 3735, CALLER_IP)
    callee = phones(pbx, 3736, NATTED_IP)
    decoy = RtpPeer.even("127.0.0.1")                   # X: advertised, never sends
    real = RtpPeer.even(NATTED_IP)                      # Y: where the device is
    call = establish(pbx, caller, callee, callee_rtp=real, callee_sdp_addr=decoy.addr)
    try:
        t_dev, sent_dev = real.stream_in_background(call.to_callee, 60, seed="device")
        time.sleep(0.2)
        sent = call.caller_rtp.stream(call.to_caller, 50, seed="caller")
        t_dev.join(5)
        time.sleep(0.3)
        got_caller = call.caller_rtp.rtp(ssrc=sent_dev[0].ssrc)
        lost = {p.seq for p in sent_dev} - {p.seq for p in got_caller}
        assert lost == {p.seq for p in sent_dev[:PROBATION - 1]}, (
            f"expected only the first {PROBATION - 1} packets lost to probation, lost "
            f"{len(lost)}\n{pbx.log_tail()}")
        assert compare_streams(sent_dev[PROBATION - 1:], got_caller) == []
        # the caller's audio goes to the device's real address, none to the SDP address
        got_real = real.rtp(ssrc=sent[0].ssrc)
        assert compare_streams(sent, got_real) == [], compare_streams(sent, got_real)[:5]
        assert decoy.rtp(ssrc=sent[0].ssrc) == [], "audio sent to the SDP address after latching"
        assert call.out.bye().status == 200
    finally:
        call.close()
        decoy.close()


def test_with_strict_rtp_off_the_first_packet_latches(pbx_factory, phones):
    """`strict_rtp = "off"`: the stranger's first packet latches the caller's leg, so the
    callee's audio goes to the stranger and not to the phone (RTP bleed)."""
    pbx = start_call_pbx(pbx_factory, [3737, 3738], name="calls-rtp-first-packet",
                         extra_toml='[rtp]\nstrict_rtp = "off"\n')
    caller = phones(pbx, 3737, CALLER_IP)
    callee = phones(pbx, 3738, CALLEE_IP)
    call = establish(pbx, caller, callee)
    stranger = RtpPeer(STRANGER_IP)
    try:
        spray(stranger, call.to_caller, 0x0BAD0020, [1])
        time.sleep(0.2)
        sent = call.callee_rtp.stream(call.to_callee, 20, seed="callee")
        assert stranger.wait_packets(20, 3, ssrc=sent[0].ssrc) == 20, \
            f"with strict_rtp off the stranger should have latched\n{pbx.log_tail()}"
        assert call.caller_rtp.rtp(ssrc=sent[0].ssrc) == []
        assert call.out.bye().status == 200
    finally:
        stranger.close()
        call.close()
