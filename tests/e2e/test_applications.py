"""Calls the PBX answers itself (the application seam of the call machine), end to end with
python phones: the echo test and an IVR menu with prompts and DTMF.

- `600` (echo): the PBX answers with its own SDP on its RTP range; every packet the caller
  sends comes back, payload byte for byte, under the PBX's own SSRC; the caller's BYE ends the
  call; the CDR says answered, hung up by the caller.
- a real softphone (baresip) calls `600` with a 1 kHz tone as its voice and hears the tone back
  (the dominant frequency of what it recorded), over UDP and over TLS with SRTP.
- `700` (a menu like the demo's): the prompt arrives as RTP, paced at 20 ms, and its payload is
  the committed prompt file byte for byte; `2` as RFC 4733 events plays `demo-goodbye`, then
  the PBX hangs up with a BYE; `2` as SIP INFO (application/dtmf-relay) does the same, and so
  does `2` as tones in the G.711 audio from a phone that offers no telephone-event (and `1` as
  tones reaches the reception, who answers and hears the caller); `1` rings
  an extension, the caller hears the ringing tone meanwhile, and once the extension answers
  the caller's media is relayed to it (without a new offer to the caller); no key
  replays the menu `retries` times, then `on_failure` hangs up.

Addresses: the PBX 127.0.0.1; the callers 127.0.0.7; baresip 127.0.0.8; the reception
127.0.0.9.
"""

import time

import pytest

from baresip_phone import BaresipPhone, wait_file_stable
from callclient import sdp_offer
from callhelpers import (answer_pts, assert_pbx_sdp, compare_streams, password, wait_cdr,
                         wait_incoming)
from media import RtpPacket, RtpPeer, analyse_tone, sequence_gaps, write_tone_wav
from prompts import press, prompt_bytes, prompt_received, tone_packets

# Protocol and media behaviour, not the store: run on SQLite only (scripts/test.sh).
pytestmark = pytest.mark.store_independent

CALLER_IP = "127.0.0.7"
NUMBERS = [3301, 3302, 3303, 3304, 3305, 3306, 3307, 3308, 3309]
RECEPTION = 3308            # the menu's option 1 rings it
TONE = 1000
MENU_TIMEOUT = 1            # seconds of silence after the prompt that count as no choice
RETRIES = 2

PLAN = f"""\
# written by tests/e2e/test_applications.py
[defaults]
context = "staff"

[context.staff]
may_call = ["any"]

[[context.staff.rule]]
pattern = "600"
steps = ["answer", "echo"]

[[context.staff.rule]]
pattern = "700"
steps = [
    "answer",
    {{ menu = {{ prompt = "demo-menu", digits = 1, timeout = "{MENU_TIMEOUT}s",
                retries = {RETRIES},
                options = {{ "1" = [{{ dial = {{ targets = ["{RECEPTION}"], timeout = "10s" }} }}],
                             "2" = [{{ playback = "demo-goodbye" }}, "hangup"] }},
                on_failure = ["hangup"] }} }},
]
"""


@pytest.fixture(scope="module")
def app_pbx(pbx_factory):
    p = pbx_factory("applications", dialplan=PLAN)
    p.import_extensions([(n, password(n)) for n in NUMBERS])
    return p.start()


def answered_call(pbx, phones, number, target):
    """`number` calls `target`; returns (phone, call, rtp peer, where to send RTP)."""
    phone = phones(pbx, number, CALLER_IP)
    rtp = RtpPeer.even(CALLER_IP)
    try:
        out = phone.call(target, sdp_offer(*rtp.addr, pts=(0, 8, 101)))
        final = out.wait_final(5)
        assert final is not None and final.status == 200, \
            f"{target}: expected 200 from the PBX, got {final}\n{pbx.log_tail()}"
        assert_pbx_sdp(pbx, out.answer_sdp, f"caller of {target}")
        assert 0 in out.answer_sdp.pts, f"PCMU not chosen: {out.answer_sdp.text}"
    except BaseException:
        rtp.close()
        raise
    return phone, out, rtp, out.answer_sdp.addr


def test_echo_sends_every_packet_back_under_the_pbx_ssrc(app_pbx, phones):
    phone, out, rtp, to_pbx = answered_call(app_pbx, phones, 3301, "600")
    try:
        sent = rtp.stream(to_pbx, 50, pt=0, ssrc=0x1234, seed="echo")
        assert rtp.wait_packets(50, 3) >= 50, \
            f"{len(rtp.rtp())} of 50 packets came back\n{app_pbx.log_tail()}"
        back = rtp.rtp()
        assert {p.ssrc for p in back} != {0x1234}, "the PBX echoed the caller's own SSRC"
        assert len({p.ssrc for p in back}) == 1, "one stream back"
        by_seq = {p.seq: p for p in back}
        for p in sent:
            assert p.seq in by_seq, f"packet {p.seq} not echoed"
            assert by_seq[p.seq].payload == p.payload, f"payload of {p.seq} changed"
        assert rtp.sources() == [to_pbx], "echoed from the port the PBX advertised"
        r = out.bye()
        assert r is not None and r.status == 200, f"BYE: {r}"
    finally:
        rtp.close()
    row = wait_cdr(app_pbx, 3301, 600)
    assert row["disposition"] == "answered", row
    assert row["hangup"].split()[0] == "caller", row


@pytest.mark.parametrize("transport,mediaenc,number", [("udp", "", 3305), ("tls", "srtp", 3306)])
def test_a_softphone_hears_its_own_tone_from_the_echo(app_pbx, tmp_path, transport, mediaenc,
                                                      number):
    tone = write_tone_wav(str(tmp_path / "tone.wav"), TONE, 25)
    phone = BaresipPhone(tmp_path, number, password(number), app_pbx.hostport(transport),
                         transport, mediaenc, "127.0.0.8", play=tone, answer="manual")
    try:
        phone.start()
        assert phone.wait_registered(), f"baresip did not register\n{phone.log()}"
        phone.dial("600")
        event = phone.wait_event({"CALL_ESTABLISHED", "CALL_CLOSED"}, 10)
        assert event is not None and event["type"] == "CALL_ESTABLISHED", \
            f"600 not answered: {event}\n{phone.log()}\n{app_pbx.log_tail()}"
        time.sleep(3)
        phone.hangup()
        assert phone.wait_event("CALL_CLOSED", 5) is not None, phone.log()
        if mediaenc:
            assert phone.menc(), f"no SRTP on the echo call\n{phone.log()}"
    finally:
        phone.stop()
    recording = phone.recording()
    assert recording is not None, phone.log()
    wait_file_stable(recording)
    report = analyse_tone(recording)
    assert report.has_tone(TONE, min_seconds=1.5), f"the echo did not bring the tone back: {report}"
    row = wait_cdr(app_pbx, number, 600)
    assert row["disposition"] == "answered", row
    assert row["encrypted"].split("/")[0] == ("yes" if mediaenc else "no"), row


def test_menu_plays_its_prompt_and_a_key_by_rfc4733_chooses(app_pbx, phones):
    phone, out, rtp, to_pbx = answered_call(app_pbx, phones, 3302, "700")
    try:
        # The first second of the prompt, as sent: µ-law of the committed file, 20 ms apart.
        time.sleep(1.0)
        first = rtp.in_order()
        assert 30 <= len(first) <= 70, f"{len(first)} packets in the first second"
        assert all(p.pt == 0 and len(p.payload) == 160 for p in first), first[:3]
        prompt = prompt_bytes("demo-menu")
        head = b"".join(p.payload for p in first)
        assert prompt.startswith(head[:1600]), "the prompt's first packets differ from the file"
        rtp.clear()
        press(rtp, to_pbx, 2, ts=8000)
        prompt_received(rtp, "demo-goodbye", timeout=8)
        bye = out.wait_bye(5)
        assert bye is not None, f"the PBX did not hang up\n{app_pbx.log_tail()}"
    finally:
        rtp.close()
    row = wait_cdr(app_pbx, 3302, 700)
    assert row["disposition"] == "answered", row
    assert row["hangup"].split()[0] == "pbx", row


def test_a_key_sent_as_sip_info_chooses_too(app_pbx, phones):
    phone, out, rtp, to_pbx = answered_call(app_pbx, phones, 3303, "700")
    try:
        time.sleep(0.5)
        rtp.clear()
        branch = out.request("INFO", b"Signal=2\r\nDuration=160\r\n",
                             content_type="application/dtmf-relay")
        r = out.final_response(branch, 3)
        assert r is not None and r.status == 200, f"INFO: {r}"
        prompt_received(rtp, "demo-goodbye", timeout=8)
        assert out.wait_bye(5) is not None, f"no BYE\n{app_pbx.log_tail()}"
    finally:
        rtp.close()


def test_no_choice_replays_the_menu_then_hangs_up(app_pbx, phones):
    phone, out, rtp, to_pbx = answered_call(app_pbx, phones, 3304, "700")
    try:
        prompt = prompt_bytes("demo-menu")
        seconds = len(prompt) / 8000
        bye = out.wait_bye((seconds + MENU_TIMEOUT) * (RETRIES + 1) + 5)
        assert bye is not None, f"no BYE after the retries\n{app_pbx.log_tail()}"
        packets = rtp.in_order()
        got = b"".join(p.payload for p in packets)
        plays = got.count(prompt[:800])
        assert plays == RETRIES + 1, (
            f"the menu was played {plays} times: {len(packets)} packets, "
            f"{len(got)} bytes for a {len(prompt)}-byte prompt, starts at "
            f"{[i for i in range(0, len(got), 160) if got[i:i + 800] == prompt[:800]]}, "
            f"sequence gaps {sequence_gaps(packets)}")
    finally:
        rtp.close()


def test_a_key_sent_as_tones_in_the_audio_chooses_too(app_pbx, phones):
    """A phone without telephone-event (an old analogue adapter): its key tones are found in
    the G.711 audio itself."""
    phone = phones(app_pbx, 3307, CALLER_IP)
    rtp = RtpPeer.even(CALLER_IP)
    try:
        out = phone.call("700", sdp_offer(*rtp.addr, pts=(0,)))
        final = out.wait_final(5)
        assert final is not None and final.status == 200, f"{final}\n{app_pbx.log_tail()}"
        assert "telephone-event" not in out.answer_sdp.text
        to_pbx = out.answer_sdp.addr
        silence = bytes([0xFF]) * 160
        seq, ts = 1, 0
        # 0.5 s of silence, the key `2` (697 + 1336 Hz) for 120 ms, silence again.
        frames = [silence] * 25 + tone_packets(697, 1336, 120) + [silence] * 25
        time.sleep(0.3)
        rtp.clear()
        for frame in frames:
            rtp.send(RtpPacket(0, seq, ts, 0x7777, frame), to_pbx)
            seq, ts = seq + 1, ts + 160
            time.sleep(0.02)
        prompt_received(rtp, "demo-goodbye", timeout=8)
        assert out.wait_bye(5) is not None, f"no BYE\n{app_pbx.log_tail()}"
    finally:
        rtp.close()


def test_a_menu_choice_rings_an_extension_which_takes_the_call_over(app_pbx, phones):
    reception = phones(app_pbx, RECEPTION, "127.0.0.9")
    phone, out, rtp, to_pbx = answered_call(app_pbx, phones, 3309, "700")
    callee_rtp = RtpPeer.even("127.0.0.9")
    try:
        time.sleep(0.5)
        press(rtp, to_pbx, 1, ts=8000)
        inc = wait_incoming(app_pbx, reception, out)
        offered = inc.offer
        assert offered is not None and offered.pts in ([0, 101], [0]), \
            f"the reception is offered only the codec agreed with the caller: {offered}"
        inc.ring()
        rtp.clear()
        time.sleep(1.5)
        ringing = [p for p in rtp.rtp() if any(b not in (0xFF, 0x7F) for b in p.payload)]
        assert len(ringing) >= 20, f"no ringing tone while the reception rings ({len(ringing)})"
        pts, rtpmap = answer_pts(offered)
        inc.answer(sdp_offer(*callee_rtp.addr, pts=pts, rtpmap=rtpmap))
        assert inc.wait_ack(3) is not None, "the reception got no ACK"
        time.sleep(0.3)
        sent = rtp.stream(to_pbx, 50, pt=0, seed="to-reception")
        assert callee_rtp.wait_packets(50, 3) >= 50, \
            f"{len(callee_rtp.rtp())} of 50 packets reached the reception\n{app_pbx.log_tail()}"
        assert compare_streams(sent, callee_rtp.rtp()) == [], compare_streams(sent, callee_rtp.rtp())[:5]
        rtp.clear()
        back = callee_rtp.stream(offered.addr, 50, pt=0, seed="to-caller")
        assert rtp.wait_packets(50, 3) >= 50, f"{len(rtp.rtp())} of 50 packets reached the caller"
        assert compare_streams(back, rtp.rtp()) == [], compare_streams(back, rtp.rtp())[:5]
        r = out.bye()
        assert r is not None and r.status == 200, f"BYE: {r}"
        assert inc.wait_bye(5) is not None, "the caller's BYE did not reach the reception"
    finally:
        rtp.close()
        callee_rtp.close()
    row = wait_cdr(app_pbx, 3309, 700)
    assert row["disposition"] == "answered", row


def test_option_1_as_tones_in_the_audio_reaches_the_extension(app_pbx, phones):
    """The demo's `700` from a phone without telephone-event: `1` as tones in its G.711 audio
    rings the reception, which answers and talks with the caller."""
    reception = phones(app_pbx, RECEPTION, "127.0.0.9")
    phone = phones(app_pbx, 3303, CALLER_IP)
    rtp = RtpPeer.even(CALLER_IP)
    callee_rtp = RtpPeer.even("127.0.0.9")
    try:
        out = phone.call("700", sdp_offer(*rtp.addr, pts=(0,)))
        final = out.wait_final(5)
        assert final is not None and final.status == 200, f"{final}\n{app_pbx.log_tail()}"
        to_pbx = out.answer_sdp.addr
        silence = bytes([0xFF]) * 160
        # 0.5 s of silence, `1` (697 + 1209 Hz) for 120 ms, silence again.
        frames = [silence] * 25 + tone_packets(697, 1209, 120) + [silence] * 25
        time.sleep(0.3)
        for seq, frame in enumerate(frames, start=1):
            rtp.send(RtpPacket(0, seq, seq * 160, 0x7778, frame), to_pbx)
            time.sleep(0.02)
        inc = wait_incoming(app_pbx, reception, out)
        pts, rtpmap = answer_pts(inc.offer)
        inc.answer(sdp_offer(*callee_rtp.addr, pts=pts, rtpmap=rtpmap))
        assert inc.wait_ack(3) is not None, "the reception got no ACK"
        time.sleep(0.3)
        sent = rtp.stream(to_pbx, 30, pt=0, seed="tones-to-reception")
        assert callee_rtp.wait_packets(30, 3) >= 30, \
            f"{len(callee_rtp.rtp())} of 30 packets reached the reception\n{app_pbx.log_tail()}"
        assert compare_streams(sent, callee_rtp.rtp()) == []
        r = out.bye()
        assert r is not None and r.status == 200, f"BYE: {r}"
        assert inc.wait_bye(5) is not None, "the caller's BYE did not reach the reception"
    finally:
        rtp.close()
        callee_rtp.close()
