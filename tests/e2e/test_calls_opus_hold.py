"""Hold and resume on a transcoded call (RFC 3264 §8, §8.4): an Opus-only caller (Opus and
`telephone-event/48000` only, as in test_calls_opus.py) and a PCMU phone, the PBX
transcoding between them. A re-offer keeps each leg's own formats:

- The phone holds (re-INVITE `a=sendonly` in PCMU): the Opus caller gets a re-INVITE with
  its own Opus and 48 kHz events only, `a=sendonly`, answers `a=recvonly`; the phone gets
  `a=recvonly` back in PCMU. While held, the phone's tone still reaches the caller
  (transcoded) and nothing of the caller's reaches the phone. The phone resumes
  (`a=sendrecv`): both tones flow again, and the caller's key still reaches the phone on
  its 8 kHz events.
- The Opus caller holds and resumes: the phone gets offers with PCMU and its 8 kHz events
  in the same payload types as at the start, `a=sendonly` then `a=sendrecv`; the caller is
  answered in Opus. After resume both tones flow, the caller's key 5 arrives converted to
  8 kHz durations and the phone's key 7 to 48 kHz ones.

Addresses: the PBX 127.0.0.1; callers 127.0.62.2; the PCMU phone (extension 1000)
127.0.62.3.
"""

import os
import time

import pytest

from callclient import sdp_offer
from callhelpers import assert_pbx_sdp, password, wait_cdr, wait_incoming
from conftest import ROOT
from media import RtpPeer
from opus_audio import OPUS_RATE, decode_opus, events, press, rms, strongest
from test_calls_opus import (FREQS, OPUS_EVENT_PT, OPUS_PT, PHONE_TONE, Talk,
                             answer_as_pcmu_phone, assert_each_hears_the_other,
                             assert_opus_only_answer)

# Protocol and media behaviour, not the store: run on SQLite only (scripts/test.sh).
pytestmark = pytest.mark.store_independent

CALLER_IP = "127.0.62.2"
PHONE_IP = "127.0.62.3"
PHONE = 1000
CALLERS = [3621, 3622]
OPUS_RTPMAP = {OPUS_PT: "opus/48000/2", OPUS_EVENT_PT: "telephone-event/48000"}


@pytest.fixture(scope="module")
def hold_pbx(pbx_factory):
    with open(os.path.join(ROOT, "config", "dialplan.toml")) as f:
        demo = f.read()
    p = pbx_factory("calls-opus-hold", dialplan=demo)
    p.import_extensions([(n, password(n)) for n in [PHONE, *CALLERS]])
    return p.start()


class OpusCall:
    """An Opus-only caller's call to the PCMU phone, established and transcoded."""

    def __init__(self, pbx, caller, phone):
        self.pbx = pbx
        self.caller_rtp, self.phone_rtp = RtpPeer.even(CALLER_IP), RtpPeer.even(PHONE_IP)
        self.caller_sid, self.phone_sid = 0x0620_0001, 0x0620_0002
        try:
            self.out = caller.call(str(PHONE), sdp_offer(
                *self.caller_rtp.addr, pts=(OPUS_PT, OPUS_EVENT_PT), rtpmap=OPUS_RTPMAP,
                session_id=self.caller_sid))
            self.inc = wait_incoming(pbx, phone, self.out)
            assert_pbx_sdp(pbx, self.inc.offer, "the PCMU phone")
            self.te8 = answer_as_pcmu_phone(self.inc, self.phone_rtp)
            final = self.out.wait_final(5)
            assert final is not None and final.status == 200, f"{final}\n{pbx.log_tail()}"
            assert_opus_only_answer(pbx, self.out.answer_sdp)
        except BaseException:
            self.close()
            raise
        self.to_caller_side = self.out.answer_sdp.addr
        self.to_phone_side = self.inc.offer.addr
        self.talk = Talk(self.caller_rtp, self.to_caller_side, self.phone_rtp,
                         self.to_phone_side)

    def caller_sdp(self, direction, version):
        return sdp_offer(*self.caller_rtp.addr, pts=(OPUS_PT, OPUS_EVENT_PT),
                         rtpmap=OPUS_RTPMAP, direction=direction, version=version,
                         session_id=self.caller_sid)

    def phone_sdp(self, direction, version):
        return sdp_offer(*self.phone_rtp.addr, pts=(0, self.te8),
                         rtpmap={self.te8: "telephone-event/8000"}, direction=direction,
                         version=version, session_id=self.phone_sid)

    def close(self):
        self.caller_rtp.close()
        self.phone_rtp.close()


def reoffer(pbx, holder, holder_sdp, other, answer_for):
    """`holder` re-INVITEs with `holder_sdp`; `other` gets it and answers `answer_for(seen)`.
    Returns (SDP `other` got, SDP `holder` got back in the 200)."""
    branch = holder.start_reinvite(holder_sdp)
    req = other.wait_reinvite(5)
    assert req is not None, \
        f"re-INVITE not relayed: {other.phone.describe_inbox()}\n{pbx.log_tail()}"
    seen = req.sdp()
    assert seen is not None, f"the relayed re-INVITE has no SDP:\n{req.text()}"
    other.accept_reinvite(req, answer_for(seen))
    r = holder.finish_reinvite(branch, 5)
    assert r is not None and r.status == 200, f"re-INVITE: {r}\n{pbx.log_tail()}"
    assert other.phone.wait_for(lambda m: m.is_request and m.method == "ACK"
                                and m.call_id == other.call_id, 3) is not None, \
        "the re-INVITE's 200 was not ACKed to the other leg"
    return seen, r.sdp()


def assert_opus_offer(pbx, seen, direction, to_caller_side):
    """What the Opus caller is re-offered: its own formats, the holder's direction, the
    PBX's same address."""
    assert_pbx_sdp(pbx, seen, "the Opus caller (re-INVITE)")
    assert seen.pts == [OPUS_PT, OPUS_EVENT_PT], f"not the caller's Opus:\n{seen.text}"
    rtpmap = {pt: enc.lower() for pt, enc in seen.rtpmap().items()}
    assert rtpmap == OPUS_RTPMAP, seen.text
    assert seen.direction == direction, seen.text
    assert seen.addr == to_caller_side, f"the PBX's address for the caller moved:\n{seen.text}"


def assert_phone_offer(pbx, seen, te8, direction, to_phone_side):
    """What the phone is re-offered: PCMU and its 8 kHz events under the same numbers."""
    assert_pbx_sdp(pbx, seen, "the PCMU phone (re-INVITE)")
    assert 0 in seen.pts, f"the phone is not re-offered PCMU:\n{seen.text}"
    rtpmap = {pt: enc.lower() for pt, enc in seen.rtpmap().items()}
    assert rtpmap.get(te8) == "telephone-event/8000" and te8 in seen.pts, \
        f"the phone's events moved from {te8}:\n{seen.text}"
    assert seen.direction == direction, seen.text
    assert seen.addr == to_phone_side, f"the PBX's address for the phone moved:\n{seen.text}"


def assert_phone_answer(back, te8, direction):
    """The phone is answered in its own codec and events, none of the caller's."""
    assert back is not None, "no SDP in the 200 to the phone"
    assert back.pts == [0, te8], f"the phone is not answered in PCMU:\n{back.text}"
    assert "opus" not in back.text.lower(), back.text
    assert back.direction == direction, back.text


def assert_caller_key_reaches_phone(call, digit):
    """A key pressed on the 48 kHz clock arrives on the phone's 8 kHz one."""
    call.phone_rtp.clear()
    call.talk.caller_seq = press(call.caller_rtp, call.to_caller_side, OPUS_EVENT_PT, digit,
                                 call.talk.caller_seq, call.talk.caller_ts,
                                 call.talk.caller_ssrc, scale=6)
    call.talk.caller_ts += 6 * 960
    time.sleep(0.3)
    got = events(call.phone_rtp.in_order(), call.te8)
    assert [(d, end, dur) for d, end, dur, _, _ in got] == [
        (digit, False, 160), (digit, False, 480), (digit, False, 800),
        (digit, True, 960), (digit, True, 960), (digit, True, 960)], \
        f"the phone got {got}\n{call.pbx.log_tail()}"


def test_the_pcmu_phone_holds_and_resumes_an_opus_caller(hold_pbx, phones):
    pbx = hold_pbx
    phone = phones(pbx, PHONE, PHONE_IP)
    caller = phones(pbx, CALLERS[0], CALLER_IP)
    call = OpusCall(pbx, caller, phone)
    try:
        # Hold from the phone.
        seen, back = reoffer(pbx, call.inc, call.phone_sdp("sendonly", 2), call.out,
                             lambda _: call.caller_sdp("recvonly", 2))
        assert_opus_offer(pbx, seen, "sendonly", call.to_caller_side)
        assert_phone_answer(back, call.te8, "recvonly")
        # On hold the phone's audio (music on hold) still reaches the caller, transcoded;
        # nothing of the caller's reaches the phone.
        call.caller_rtp.clear()
        call.phone_rtp.clear()
        call.talk.run(1.5)
        time.sleep(0.3)
        at_caller = [p for p in call.caller_rtp.in_order() if p.pt == OPUS_PT]
        assert len(at_caller) >= 50, \
            f"{len(at_caller)} Opus packets reached the held caller\n{pbx.log_tail()}"
        heard = decode_opus([p.payload for p in at_caller])[OPUS_RATE // 5:]
        assert strongest(heard, OPUS_RATE, FREQS) == PHONE_TONE, \
            "the held caller does not hear the phone"
        assert rms(heard) > 0.03, f"the phone's tone is too quiet: {rms(heard)}"
        assert call.phone_rtp.rtp() == [], "the held caller's audio reached the phone"

        # Resume: both ways again, still transcoded, keys still converted.
        seen, back = reoffer(pbx, call.inc, call.phone_sdp("sendrecv", 3), call.out,
                             lambda _: call.caller_sdp("sendrecv", 3))
        assert_opus_offer(pbx, seen, "sendrecv", call.to_caller_side)
        assert_phone_answer(back, call.te8, "sendrecv")
        call.caller_rtp.clear()
        call.phone_rtp.clear()
        call.talk.run(1.5)
        time.sleep(0.3)
        assert_each_hears_the_other(pbx, call.caller_rtp, call.phone_rtp)
        assert_caller_key_reaches_phone(call, 5)

        r = call.out.bye()
        assert r is not None and r.status == 200, f"BYE: {r}"
        assert call.inc.wait_bye(5) is not None, "the caller's BYE did not reach the phone"
    finally:
        call.close()
    row = wait_cdr(pbx, CALLERS[0], PHONE)
    assert row["disposition"] == "answered", row


def test_the_opus_caller_holds_and_resumes_a_pcmu_phone(hold_pbx, phones):
    pbx = hold_pbx
    phone = phones(pbx, PHONE, PHONE_IP)
    caller = phones(pbx, CALLERS[1], CALLER_IP)
    call = OpusCall(pbx, caller, phone)
    try:
        # Hold from the Opus caller.
        seen, back = reoffer(pbx, call.out, call.caller_sdp("sendonly", 2), call.inc,
                             lambda _: call.phone_sdp("recvonly", 2))
        assert_phone_offer(pbx, seen, call.te8, "sendonly", call.to_phone_side)
        assert back is not None and back.pts == [OPUS_PT, OPUS_EVENT_PT], \
            f"the caller is not answered in Opus:\n{back and back.text}"
        assert back.direction == "recvonly", back.text
        # On hold the caller's audio reaches the phone in PCMU; the phone's goes nowhere.
        call.caller_rtp.clear()
        call.phone_rtp.clear()
        call.talk.run(1.5)
        time.sleep(0.3)
        at_phone = [p for p in call.phone_rtp.in_order() if p.pt == 0]
        assert len(at_phone) >= 50, \
            f"{len(at_phone)} PCMU packets reached the held phone\n{pbx.log_tail()}"
        assert call.caller_rtp.rtp() == [], "the held phone's audio reached the caller"

        # Resume.
        seen, back = reoffer(pbx, call.out, call.caller_sdp("sendrecv", 3), call.inc,
                             lambda _: call.phone_sdp("sendrecv", 3))
        assert_phone_offer(pbx, seen, call.te8, "sendrecv", call.to_phone_side)
        assert back is not None and back.pts == [OPUS_PT, OPUS_EVENT_PT], back and back.text
        assert back.direction == "sendrecv", back.text
        call.caller_rtp.clear()
        call.phone_rtp.clear()
        call.talk.run(1.5)
        time.sleep(0.3)
        assert_each_hears_the_other(pbx, call.caller_rtp, call.phone_rtp)
        assert_caller_key_reaches_phone(call, 5)
        # The phone's key 7 on 8 kHz reaches the caller on 48 kHz.
        call.caller_rtp.clear()
        press(call.phone_rtp, call.to_phone_side, call.te8, 7, call.talk.phone_seq,
              call.talk.phone_ts, call.talk.phone_ssrc)
        time.sleep(0.3)
        got = events(call.caller_rtp.in_order(), OPUS_EVENT_PT)
        assert [(d, end, dur) for d, end, dur, _, _ in got] == [
            (7, False, 960), (7, False, 2880), (7, False, 4800),
            (7, True, 5760), (7, True, 5760), (7, True, 5760)], \
            f"the caller got {got}\n{pbx.log_tail()}"

        r = call.out.bye()
        assert r is not None and r.status == 200, f"BYE: {r}"
        assert call.inc.wait_bye(5) is not None, "the caller's BYE did not reach the phone"
    finally:
        call.close()
    row = wait_cdr(pbx, CALLERS[1], PHONE)
    assert row["disposition"] == "answered", row
