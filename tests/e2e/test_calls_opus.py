"""A caller that offers only Opus (`opus/48000/2`) and only `telephone-event/48000`, as a SIP
softphone set to Opus or a browser may, calling a G.711 phone: the PBX transcodes the audio
and converts the keys between the two clocks (RFC 4733 §2.3: an event counts in its audio's
clock; RFC 7587 §4.1: Opus's is 48 kHz).

- Direct call to an extension (a python phone answering PCMU): the phone is offered PCMU and
  a `telephone-event/8000`; the caller is answered with Opus and its `telephone-event/48000`
  only. Tones flow both ways (1 kHz from the caller, 640 Hz from the phone, each the dominant
  frequency of what the other decodes). The caller's keys 5 and # reach the phone on its
  8 kHz payload type with 8 kHz durations (160 ... 960, the end three times, the marker on
  the first) at the timestamp of the caller's audio of that moment on the phone's timeline;
  the phone's key 7 reaches the caller on its 48 kHz payload type with 48 kHz durations
  (960 ... 5760) on the caller's Opus timeline.
- The demo dialplan's `700` IVR (config/dialplan.toml): the PBX answers the caller in Opus,
  `1` pressed as `telephone-event/48000` rings extension 1000, a PCMU phone; once it answers,
  each hears the other's tone through the transcoder, and the caller's key 4 reaches the
  phone on its 8 kHz payload type.

Addresses: the PBX 127.0.0.1; callers 127.0.61.2; the PCMU phone (extension 1000) 127.0.61.3.
"""

import os
import threading
import time

import pytest

from callclient import sdp_offer
from callhelpers import assert_pbx_sdp, password, wait_cdr, wait_incoming
from conftest import ROOT
from media import RtpPacket, RtpPeer
from opus_audio import (OPUS_FRAME, OPUS_RATE, decode_opus, decode_pcmu, encode_tone, events,
                        press, rms, strongest)
from prompts import tone_packets

# Protocol and media behaviour, not the store: run on SQLite only (scripts/test.sh).
pytestmark = pytest.mark.store_independent

CALLER_IP = "127.0.61.2"
PHONE_IP = "127.0.61.3"
PHONE = 1000                       # the demo plan's 700 option 1 rings it
CALLERS = [3461, 3462]
OPUS_PT, OPUS_EVENT_PT = 111, 110
CALLER_TONE, PHONE_TONE = 1000, 640
FREQS = [400, 640, 1000, 1300, 1700]


@pytest.fixture(scope="module")
def opus_pbx(pbx_factory):
    with open(os.path.join(ROOT, "config", "dialplan.toml")) as f:
        demo = f.read()
    p = pbx_factory("calls-opus", dialplan=demo)
    p.import_extensions([(n, password(n)) for n in [PHONE, *CALLERS]])
    return p.start()


def opus_offer(ip, port):
    """Opus and telephone-event on Opus's clock, nothing else."""
    return sdp_offer(ip, port, pts=(OPUS_PT, OPUS_EVENT_PT),
                     rtpmap={OPUS_PT: "opus/48000/2", OPUS_EVENT_PT: "telephone-event/48000"})


def assert_opus_only_answer(pbx, answer):
    assert_pbx_sdp(pbx, answer, "the Opus caller")
    assert answer.pts == [OPUS_PT, OPUS_EVENT_PT], answer.text
    rtpmap = {pt: enc.lower() for pt, enc in answer.rtpmap().items()}
    assert rtpmap == {OPUS_PT: "opus/48000/2", OPUS_EVENT_PT: "telephone-event/48000"}, \
        answer.text


def answer_as_pcmu_phone(inc, phone_rtp):
    """The phone answers PCMU and the offered telephone-event/8000; returns that event's
    payload type."""
    offered = inc.offer
    assert offered is not None, inc.invite.text()
    rtpmap = {pt: enc.lower() for pt, enc in offered.rtpmap().items()}
    assert 0 in offered.pts, f"the phone is not offered PCMU: {offered.text}"
    te8 = [pt for pt, enc in rtpmap.items() if enc == "telephone-event/8000"]
    assert len(te8) == 1 and te8[0] in offered.pts, \
        f"the phone is not offered telephone-event/8000: {offered.text}"
    inc.ring()
    inc.answer(sdp_offer(*phone_rtp.addr, pts=(0, te8[0]),
                         rtpmap={te8[0]: "telephone-event/8000"}))
    assert inc.wait_ack(3) is not None, "the phone got no ACK"
    return te8[0]


class Talk:
    """Both sides send their tone at once for `seconds`, in real time; returns the packets
    each sent (the caller's Opus, the phone's PCMU)."""

    def __init__(self, caller_rtp, to_caller_side, phone_rtp, to_phone_side):
        self.caller_rtp, self.to_caller_side = caller_rtp, to_caller_side
        self.phone_rtp, self.to_phone_side = phone_rtp, to_phone_side
        self.caller_seq, self.caller_ts, self.caller_ssrc = 4000, 96000, 0x0905_0001
        self.phone_seq, self.phone_ts, self.phone_ssrc = 200, 16000, 0x0640_0001

    def run(self, seconds):
        opus = encode_tone(CALLER_TONE, seconds)
        pcmu = tone_packets(PHONE_TONE, PHONE_TONE, int(seconds * 1000), amplitude=5000)
        sent = {"caller": [], "phone": []}

        def caller():
            for i, payload in enumerate(opus):
                p = RtpPacket(OPUS_PT, self.caller_seq, self.caller_ts, self.caller_ssrc,
                              payload, marker=i == 0)
                self.caller_rtp.send(p, self.to_caller_side)
                sent["caller"].append(p)
                self.caller_seq, self.caller_ts = self.caller_seq + 1, self.caller_ts + OPUS_FRAME
                time.sleep(0.02)

        t = threading.Thread(target=caller, daemon=True)
        t.start()
        for i, payload in enumerate(pcmu):
            p = RtpPacket(0, self.phone_seq, self.phone_ts, self.phone_ssrc, payload,
                          marker=i == 0)
            self.phone_rtp.send(p, self.to_phone_side)
            sent["phone"].append(p)
            self.phone_seq, self.phone_ts = self.phone_seq + 1, self.phone_ts + 160
            time.sleep(0.02)
        t.join(5)
        return sent


def assert_each_hears_the_other(pbx, caller_rtp, phone_rtp):
    """The phone decodes the caller's tone from PCMU, the caller the phone's from Opus."""
    at_phone = [p for p in phone_rtp.in_order() if p.pt == 0]
    assert len(at_phone) >= 50, \
        f"{len(at_phone)} PCMU packets reached the phone\n{pbx.log_tail()}"
    heard = decode_pcmu(p.payload for p in at_phone)[1600:]
    assert strongest(heard, 8000, FREQS) == CALLER_TONE, "the phone does not hear the caller"
    assert rms(heard) > 0.03, f"the caller's tone is too quiet at the phone: {rms(heard)}"
    at_caller = [p for p in caller_rtp.in_order() if p.pt == OPUS_PT]
    assert len(at_caller) >= 50, \
        f"{len(at_caller)} Opus packets reached the caller\n{pbx.log_tail()}"
    assert all(len(p.payload) < 160 for p in at_caller), "Opus packets, not G.711 frames"
    heard = decode_opus([p.payload for p in at_caller])[OPUS_RATE // 5:]
    assert strongest(heard, OPUS_RATE, FREQS) == PHONE_TONE, "the caller does not hear the phone"
    assert rms(heard) > 0.03, f"the phone's tone is too quiet at the caller: {rms(heard)}"


def audio_ts_by_seq(packets, pt):
    return {p.seq: p.ts for p in packets if p.pt == pt}


def test_an_opus_only_caller_and_a_pcmu_phone_exchange_tones_and_keys(opus_pbx, phones):
    phone = phones(opus_pbx, PHONE, PHONE_IP)
    caller = phones(opus_pbx, CALLERS[0], CALLER_IP)
    caller_rtp, phone_rtp = RtpPeer.even(CALLER_IP), RtpPeer.even(PHONE_IP)
    try:
        out = caller.call(str(PHONE), opus_offer(*caller_rtp.addr))
        inc = wait_incoming(opus_pbx, phone, out)
        assert_pbx_sdp(opus_pbx, inc.offer, "the PCMU phone")
        te8 = answer_as_pcmu_phone(inc, phone_rtp)
        final = out.wait_final(5)
        assert final is not None and final.status == 200, f"{final}\n{opus_pbx.log_tail()}"
        assert_opus_only_answer(opus_pbx, out.answer_sdp)
        talk = Talk(caller_rtp, out.answer_sdp.addr, phone_rtp, inc.offer.addr)
        sent = talk.run(1.5)
        time.sleep(0.3)
        assert_each_hears_the_other(opus_pbx, caller_rtp, phone_rtp)

        # The caller's keys: 5, then # (event 11), on the 48 kHz clock, each at the
        # timestamp of the caller's next audio packet, as a softphone stamps them.
        opus_at_phone = audio_ts_by_seq(phone_rtp.rtp(), 0)
        last = sent["caller"][-1]
        assert last.seq in opus_at_phone, "the caller's last audio packet did not arrive"
        phone_rtp.clear()
        keys_ts = []
        for digit in (5, 11):
            ts = talk.caller_ts
            keys_ts.append(ts)
            talk.caller_seq = press(caller_rtp, out.answer_sdp.addr, OPUS_EVENT_PT, digit,
                                    talk.caller_seq, ts, talk.caller_ssrc, scale=6)
            talk.caller_ts += 6 * OPUS_FRAME
            time.sleep(0.1)
        time.sleep(0.3)
        got = events(phone_rtp.in_order(), te8)
        assert len(got) == 12, f"the phone got {got}\n{opus_pbx.log_tail()}"
        assert {p.pt for p in phone_rtp.rtp()} == {te8}, "the 48 kHz events went on unconverted"
        for n, (digit, ts48) in enumerate(zip((5, 11), keys_ts)):
            key = got[6 * n:6 * n + 6]
            # The caller's audio timeline on the phone's side, 6 times slower.
            want_ts = (opus_at_phone[last.seq] + (ts48 - last.ts) // 6) & 0xFFFFFFFF
            assert key == [
                (digit, False, 160, want_ts, True),
                (digit, False, 480, want_ts, False),
                (digit, False, 800, want_ts, False),
                (digit, True, 960, want_ts, False),
                (digit, True, 960, want_ts, False),
                (digit, True, 960, want_ts, False),
            ], f"key {digit} at the phone: {key}"

        # The phone's key 7 on its 8 kHz clock reaches the caller on 48 kHz.
        pcmu_at_caller = audio_ts_by_seq(caller_rtp.rtp(), OPUS_PT)
        last = sent["phone"][-1]
        assert last.seq in pcmu_at_caller, "the phone's last audio packet did not arrive"
        caller_rtp.clear()
        ts8 = talk.phone_ts
        press(phone_rtp, inc.offer.addr, te8, 7, talk.phone_seq, ts8, talk.phone_ssrc)
        time.sleep(0.3)
        got = events(caller_rtp.in_order(), OPUS_EVENT_PT)
        want_ts = (pcmu_at_caller[last.seq] + (ts8 - last.ts) * 6) & 0xFFFFFFFF
        assert got == [
            (7, False, 960, want_ts, True),
            (7, False, 2880, want_ts, False),
            (7, False, 4800, want_ts, False),
            (7, True, 5760, want_ts, False),
            (7, True, 5760, want_ts, False),
            (7, True, 5760, want_ts, False),
        ], f"the caller got {got} ({[p for p in caller_rtp.rtp()]})\n{opus_pbx.log_tail()}"

        r = out.bye()
        assert r is not None and r.status == 200, f"BYE: {r}"
        assert inc.wait_bye(5) is not None, "the caller's BYE did not reach the phone"
    finally:
        caller_rtp.close()
        phone_rtp.close()
    row = wait_cdr(opus_pbx, CALLERS[0], PHONE)
    assert row["disposition"] == "answered", row
    assert "opus" in row["codec"].lower() and "pcmu" in row["codec"].lower(), row


def test_an_opus_only_caller_goes_through_the_demo_ivr_to_a_pcmu_phone(opus_pbx, phones):
    phone = phones(opus_pbx, PHONE, PHONE_IP)
    caller = phones(opus_pbx, CALLERS[1], CALLER_IP)
    caller_rtp, phone_rtp = RtpPeer.even(CALLER_IP), RtpPeer.even(PHONE_IP)
    try:
        out = caller.call("700", opus_offer(*caller_rtp.addr))
        final = out.wait_final(5)
        assert final is not None and final.status == 200, f"{final}\n{opus_pbx.log_tail()}"
        assert_opus_only_answer(opus_pbx, out.answer_sdp)
        to_pbx = out.answer_sdp.addr
        time.sleep(1.0)
        menu = [p for p in caller_rtp.in_order() if p.pt == OPUS_PT]
        assert len(menu) >= 30, f"{len(menu)} Opus packets of the menu\n{opus_pbx.log_tail()}"
        # `1`: ring extension 1000.
        press(caller_rtp, to_pbx, OPUS_EVENT_PT, 1, 3000, 48000, 0x0905_0002, scale=6)
        inc = wait_incoming(opus_pbx, phone, out)
        assert_pbx_sdp(opus_pbx, inc.offer, "the PCMU phone")
        te8 = answer_as_pcmu_phone(inc, phone_rtp)
        time.sleep(0.3)
        caller_rtp.clear()
        phone_rtp.clear()
        talk = Talk(caller_rtp, to_pbx, phone_rtp, inc.offer.addr)
        talk.caller_seq, talk.caller_ts = 3100, 48000 * 20
        talk.run(1.5)
        time.sleep(0.3)
        assert_each_hears_the_other(opus_pbx, caller_rtp, phone_rtp)
        # The bridged call converts keys too: 4 from the caller reaches the phone on 8 kHz.
        phone_rtp.clear()
        press(caller_rtp, to_pbx, OPUS_EVENT_PT, 4, talk.caller_seq, talk.caller_ts,
              talk.caller_ssrc, scale=6)
        time.sleep(0.3)
        got = events(phone_rtp.in_order(), te8)
        assert [(d, end, dur) for d, end, dur, _, _ in got] == [
            (4, False, 160), (4, False, 480), (4, False, 800),
            (4, True, 960), (4, True, 960), (4, True, 960)], \
            f"the phone got {got}\n{opus_pbx.log_tail()}"
        r = out.bye()
        assert r is not None and r.status == 200, f"BYE: {r}"
        assert inc.wait_bye(5) is not None, "the caller's BYE did not reach the phone"
    finally:
        caller_rtp.close()
        phone_rtp.close()
    row = wait_cdr(opus_pbx, CALLERS[1], 700)
    assert row["disposition"] == "answered", row
