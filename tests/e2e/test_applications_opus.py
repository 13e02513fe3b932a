"""A caller that offers only Opus (opus/48000/2, as a WebRTC or SIP softphone may) to the
PBX's own applications: answered in Opus, not refused with 488.

- `600` (echo): the 200 names opus/48000/2 under the caller's payload type; a 1 kHz tone sent
  as Opus (encoded by libopus through PyAV) comes back, and decoded it is still 1 kHz.
- `601` (playback of the ringing tone, 425 Hz): the PBX's player encodes the prompt in Opus:
  20 ms packets on the 48 kHz clock (960 timestamp units apart, RFC 7587 §4.1) that libopus
  decodes to the 425 Hz tone.
- `602` (a menu): `2` pressed as `telephone-event/48000` (RFC 4733 durations on Opus's clock)
  chooses the option that plays the ringing tone, which the caller then hears.

Addresses: the PBX 127.0.0.1; the caller 127.0.58.2.
"""

import time

import pytest

from callclient import sdp_offer
from callhelpers import assert_pbx_sdp, password, wait_cdr
from media import RtpPacket, RtpPeer, goertzel_power
from opus_audio import OPUS_FRAME, OPUS_RATE, decode_opus, encode_tone, rms, strongest

# Protocol and media behaviour, not the store: run on SQLite only (scripts/test.sh).
pytestmark = pytest.mark.store_independent

CALLER_IP = "127.0.58.2"
NUMBERS = [3421, 3422, 3423]
OPUS_PT = 111
RATE = OPUS_RATE
FRAME = OPUS_FRAME                             # 20 ms at 48 kHz

PLAN = """\
# written by tests/e2e/test_applications_opus.py
[defaults]
context = "staff"

[context.staff]
may_call = ["any"]

[[context.staff.rule]]
pattern = "600"
steps = ["answer", "echo"]

[[context.staff.rule]]
pattern = "601"
steps = ["answer", { playback = "tone/ringback" }, "hangup"]

[[context.staff.rule]]
pattern = "602"
steps = [
    "answer",
    { menu = { prompt = "demo-menu", digits = 1, timeout = "10s", retries = 1,
               options = { "2" = [{ playback = "tone/ringback" }, "hangup"] },
               on_failure = ["hangup"] } },
]
"""


@pytest.fixture(scope="module")
def opus_pbx(pbx_factory):
    p = pbx_factory("applications-opus", dialplan=PLAN)
    p.import_extensions([(n, password(n)) for n in NUMBERS])
    return p.start()


def opus_offer(ip, port):
    """An offer with Opus and nothing else (telephone-event on Opus's clock, as browsers)."""
    return sdp_offer(ip, port, pts=(OPUS_PT, 110),
                     rtpmap={OPUS_PT: "opus/48000/2", 110: "telephone-event/48000"})


def purity(samples, freq, others):
    """How much stronger `freq` is than the strongest of `others` (a tone: by far)."""
    return goertzel_power(samples, RATE, freq) / max(
        goertzel_power(samples, RATE, f) for f in others)


def opus_call(pbx, phones, number, target):
    phone = phones(pbx, number, CALLER_IP)
    rtp = RtpPeer.even(CALLER_IP)
    try:
        out = phone.call(target, opus_offer(*rtp.addr))
        final = out.wait_final(5)
        assert final is not None and final.status == 200, \
            f"{target}: an Opus-only caller got {final}\n{pbx.log_tail()}"
        answer = out.answer_sdp
        assert_pbx_sdp(pbx, answer, f"caller of {target}")
        assert answer.pts[0] == OPUS_PT, answer.text
        assert answer.rtpmap().get(OPUS_PT, "").lower() == "opus/48000/2", answer.text
    except BaseException:
        rtp.close()
        raise
    return phone, out, rtp, answer.addr


def test_an_opus_only_caller_hears_its_tone_back_from_the_echo(opus_pbx, phones):
    phone, out, rtp, to_pbx = opus_call(opus_pbx, phones, 3421, "600")
    try:
        payloads = encode_tone(1000, 1.0)
        for i, payload in enumerate(payloads):
            rtp.send(RtpPacket(OPUS_PT, 100 + i, i * FRAME, 0x0905, payload, marker=i == 0),
                     to_pbx)
            time.sleep(0.02)
        assert rtp.wait_packets(len(payloads), 3) >= len(payloads) - 2, \
            f"{len(rtp.rtp())} of {len(payloads)} came back\n{opus_pbx.log_tail()}"
        back = rtp.in_order()
        assert all(p.pt == OPUS_PT for p in back), {p.pt for p in back}
        heard = decode_opus([p.payload for p in back])
        settled = heard[RATE // 5:]
        assert strongest(settled, RATE, [400, 700, 1000, 1300, 2000]) == 1000
        assert rms(settled) > 0.05, f"the tone came back too quiet: {rms(settled)}"
        r = out.bye()
        assert r is not None and r.status == 200, f"BYE: {r}"
    finally:
        rtp.close()
    row = wait_cdr(opus_pbx, 3421, 600)
    assert row["disposition"] == "answered", row
    assert "opus" in row["codec"].lower(), row


def test_an_opus_only_caller_hears_a_prompt_encoded_in_opus(opus_pbx, phones):
    phone, out, rtp, to_pbx = opus_call(opus_pbx, phones, 3422, "601")
    try:
        # The ringing tone: 1 s of 425 Hz first.
        time.sleep(1.2)
        got = rtp.in_order()
        assert len(got) >= 40, f"{len(got)} packets in the first 1.2 s\n{opus_pbx.log_tail()}"
        assert all(p.pt == OPUS_PT for p in got), {p.pt for p in got}
        steps = {(b.ts - a.ts) % 2**32 for a, b in zip(got, got[1:]) if b.seq == (a.seq + 1) % 65536}
        assert steps == {FRAME}, f"timestamp steps {steps}: 20 ms on the 48 kHz clock"
        assert all(len(p.payload) < 160 for p in got), "Opus packets, not G.711 frames"
        heard = decode_opus([p.payload for p in got[:45]])
        tone = heard[RATE // 10:int(RATE * 0.9)]
        assert strongest(tone, RATE, [350, 425, 440, 480, 1000]) == 425
        assert rms(tone) > 0.05, f"the prompt is too quiet: {rms(tone)}"
        out.bye()
    finally:
        rtp.close()


def press_48k(rtp, to_pbx, digit_event, ts):
    """RFC 4733 §2.5 on the 48 kHz clock: a key held 120 ms (5760 units), marker first, the
    end three times."""
    ssrc, seq = 0x5152, 2000
    for i, (end, duration) in enumerate([(False, 960), (False, 2880), (False, 4800),
                                         (True, 5760), (True, 5760), (True, 5760)]):
        payload = bytes([digit_event, (0x80 if end else 0) | 10]) + duration.to_bytes(2, "big")
        rtp.send(RtpPacket(110, seq + i, ts, ssrc, payload, marker=(i == 0)), to_pbx)
        time.sleep(0.04)


def test_an_opus_only_caller_chooses_in_a_menu_with_telephone_event_48000(opus_pbx, phones):
    phone, out, rtp, to_pbx = opus_call(opus_pbx, phones, 3423, "602")
    try:
        time.sleep(0.5)                                 # the menu's prompt is playing
        press_48k(rtp, to_pbx, 2, ts=48000)
        time.sleep(0.5)
        rtp.clear()
        time.sleep(1.0)
        got = rtp.in_order()
        assert len(got) >= 30, f"{len(got)} packets after the key\n{opus_pbx.log_tail()}"
        heard = decode_opus([p.payload for p in got])
        tone = heard[RATE // 10:]
        assert purity(tone, 425, [350, 480, 700, 1000, 1500]) > 10, \
            f"option 2 (the ringing tone) is not what plays\n{opus_pbx.log_tail()}"
        assert rms(tone) > 0.05, f"too quiet: {rms(tone)}"
        out.bye()
    finally:
        rtp.close()
