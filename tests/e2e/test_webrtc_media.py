"""WebRTC media on a leg, end to end without a browser: aiortc (a third-party WebRTC stack:
aioice, OpenSSL DTLS, libsrtp) puts its own offer (`UDP/TLS/RTP/SAVPF`, ICE, `actpass`) in an
INVITE sent over plain UDP SIP by the python phone, and the PBX answers ICE-lite, DTLS
`passive`, with its certificate's fingerprint.

- `600` (echo): aiortc's 1 kHz tone comes back through ICE, DTLS-SRTP and the echo, and what
  aiortc decodes has 1 kHz as its dominant frequency.
- aiortc calls a plain RTP phone (G.711, no SRTP) through the PBX: the PBX answers aiortc in
  PCMU (no transcoding), aiortc hears the phone's 640 Hz and the phone hears aiortc's 1 kHz.
- aiortc offering Opus only calls a plain RTP phone: the PBX offers the phone G.711 (and
  G.722) beside Opus, answers aiortc in Opus and transcodes; each hears the other's tone.
- two aiortc peers, both Opus only, the callee registered over WebSocket (a browser): the
  PBX offers and answers Opus on both legs (no transcoding) and each hears the other.
- a wrong `a=fingerprint` in aiortc's offer: the PBX refuses the DTLS peer's certificate,
  no media flows, and the PBX ends the call (a BYE to the caller). The call is set up (200,
  ACK) and then ended, because the certificate can only be checked once DTLS has run.

Addresses: the PBX 127.0.0.1; aiortc and its SIP phone 127.0.0.41-43; the RTP phone
127.0.0.44; the Opus tests 127.0.14.1-4.
"""

import audioop
import math
import struct
import threading
import time
import wave

import pytest

from callclient import sdp_offer
from callhelpers import answer_pts, password, wait_cdr, wait_incoming
from media import RtpPacket, RtpPeer, analyse_tone
from webrtc_peer import WebRtcPeer
from wsclient import WsPhone

# Protocol and media behaviour, not the store: run on SQLite only (scripts/test.sh).
pytestmark = pytest.mark.store_independent

NUMBERS = [3401, 3402, 3403, 3404, 3405, 3406, 3407, 3408]
TONE_BROWSER, TONE_PHONE = 1000, 640

PLAN = """\
# written by tests/e2e/test_webrtc_media.py
[defaults]
context = "staff"

[context.staff]
may_call = ["any"]

[[context.staff.rule]]
pattern = "600"
steps = ["answer", "echo"]

[[context.staff.rule]]
extension = true
steps = [{ dial = { targets = ["${number}"], timeout = "20s" } }]
"""


@pytest.fixture(scope="module")
def webrtc_pbx(pbx_factory):
    p = pbx_factory("webrtc", dialplan=PLAN, websocket=True)
    p.import_extensions([(n, password(n)) for n in NUMBERS])
    return p.start()


def assert_webrtc_answer(pbx, text):
    for line in ("UDP/TLS/RTP/SAVPF", "a=ice-lite", "a=setup:passive", "a=fingerprint:sha-256 ",
                 "a=rtcp-mux", "a=ice-ufrag:", "a=ice-pwd:", "typ host"):
        assert line in text, f"{line!r} missing from the PBX's answer:\n{text}"
    assert "a=crypto" not in text, f"SDES keys beside DTLS:\n{text}"


def tone_ulaw(freq, seconds, amplitude=8000):
    n = int(seconds * 8000)
    pcm = struct.pack(f"<{n}h", *(int(amplitude * math.sin(2 * math.pi * freq * i / 8000))
                                  for i in range(n)))
    data = audioop.lin2ulaw(pcm, 2)
    return [data[i:i + 160] for i in range(0, len(data), 160)]


def test_aiortc_hears_its_tone_back_from_the_echo_over_dtls_srtp(webrtc_pbx, phones, tmp_path):
    phone = phones(webrtc_pbx, 3401, "127.0.0.41")
    peer = WebRtcPeer("127.0.0.41", TONE_BROWSER)
    try:
        offer = peer.offer()
        assert b"UDP/TLS/RTP/SAVPF" in offer and b"a=fingerprint" in offer
        out = phone.call("600", offer)
        final = out.wait_final(5)
        assert final is not None and final.status == 200, \
            f"600: expected 200, got {final}\n{webrtc_pbx.log_tail()}"
        answer = out.answer_sdp.text
        assert_webrtc_answer(webrtc_pbx, answer)
        peer.accept(answer.encode())
        state = peer.wait_state({"connected", "failed"}, timeout=10)
        assert state == "connected", \
            f"aiortc did not connect (ICE, DTLS): {peer.states}\n{webrtc_pbx.log_tail()}"
        time.sleep(3)
        report = analyse_tone(peer.write_wav(tmp_path / "echo.wav"))
        assert report.has_tone(TONE_BROWSER, min_seconds=1.5), \
            f"the echo did not bring the tone back over DTLS-SRTP: {report}"
        bye = out.bye()
        assert bye is not None and bye.status == 200, f"BYE: {bye}"
    finally:
        peer.close()
    row = wait_cdr(webrtc_pbx, 3401, 600)
    assert row["disposition"] == "answered", row


def test_aiortc_and_a_plain_rtp_phone_hear_each_other_in_g711(webrtc_pbx, phones, tmp_path):
    caller = phones(webrtc_pbx, 3402, "127.0.0.42")
    callee = phones(webrtc_pbx, 3403, "127.0.0.44")
    rtp = RtpPeer.even("127.0.0.44")
    peer = WebRtcPeer("127.0.0.42", TONE_BROWSER)
    try:
        out = caller.call("3403", peer.offer())
        inc = wait_incoming(webrtc_pbx, callee, out)
        offer_text = inc.offer.text
        assert "RTP/AVP" in offer_text and "fingerprint" not in offer_text, \
            f"the phone must get plain RTP:\n{offer_text}"
        inc.ring()
        pts, rtpmap = answer_pts(inc.offer)
        inc.answer(sdp_offer(*rtp.addr, pts=pts, rtpmap=rtpmap))
        final = out.wait_final(5)
        assert final is not None and final.status == 200, \
            f"expected 200, got {final}\n{webrtc_pbx.log_tail()}"
        answer = out.answer_sdp.text
        assert_webrtc_answer(webrtc_pbx, answer)
        assert "a=rtpmap:0 PCMU/8000" in answer and "opus" not in answer.lower(), \
            f"aiortc must be answered in PCMU (no transcoding):\n{answer}"
        peer.accept(answer.encode())
        assert peer.wait_state({"connected", "failed"}, timeout=10) == "connected", \
            f"aiortc did not connect: {peer.states}\n{webrtc_pbx.log_tail()}"

        # The phone plays 640 Hz for 3 s to where the PBX's offer told it to send.
        to_pbx = inc.offer.addr
        frames = tone_ulaw(TONE_PHONE, 3.0)

        def play():
            start = time.monotonic()
            for i, payload in enumerate(frames):
                rtp.send(RtpPacket(0, 1000 + i, 160 * i, 0x4242, payload, marker=(i == 0)), to_pbx)
                delay = start + (i + 1) * 0.02 - time.monotonic()
                if delay > 0:
                    time.sleep(delay)

        t = threading.Thread(target=play)
        t.start()
        t.join()
        time.sleep(0.5)
        heard = tmp_path / "aiortc-heard.wav"
        report = analyse_tone(peer.write_wav(heard))
        assert report.has_tone(TONE_PHONE, min_seconds=1.5), \
            f"aiortc did not hear the phone's tone: {report}"

        got = [p for p in rtp.in_order() if p.pt == 0]
        assert len(got) > 100, f"the phone got {len(got)} PCMU packets from aiortc"
        pcm = audioop.ulaw2lin(b"".join(p.payload for p in got), 2)
        phone_wav = tmp_path / "phone-heard.wav"
        with wave.open(str(phone_wav), "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(8000)
            w.writeframes(pcm[8000:])
        report = analyse_tone(str(phone_wav))
        assert report.has_tone(TONE_BROWSER, min_seconds=1.5), \
            f"the phone did not hear aiortc's tone: {report}"
        bye = out.bye()
        assert bye is not None and bye.status == 200, f"BYE: {bye}"
    finally:
        peer.close()
        rtp.close()


def test_a_wrong_fingerprint_gets_no_media_and_the_call_is_ended(webrtc_pbx, phones):
    phone = phones(webrtc_pbx, 3404, "127.0.0.43")
    peer = WebRtcPeer("127.0.0.43", TONE_BROWSER)
    try:
        offer = peer.offer().decode()
        lines = offer.split("\r\n")
        # aiortc lists its certificate under sha-256, -384 and -512; any one that matches
        # would do (RFC 8122 §5), so every one is forged.
        for i, line in enumerate(lines):
            if line.startswith("a=fingerprint:"):
                last = line[-1]
                lines[i] = line[:-1] + ("0" if last != "0" else "1")
        forged = "\r\n".join(lines)
        assert forged != offer
        out = phone.call("600", forged.encode())
        final = out.wait_final(5)
        assert final is not None and final.status == 200, \
            f"600: expected 200, got {final}\n{webrtc_pbx.log_tail()}"
        peer.accept(out.answer_sdp.text.encode())
        bye = out.wait_bye(15)
        assert bye is not None, \
            f"the PBX did not end the call after the certificate mismatch\n{webrtc_pbx.log_tail()}"
        assert peer.audio_seconds() == 0, \
            f"{peer.audio_seconds():.2f}s of audio reached a peer whose certificate was refused"
        assert "fingerprint" in webrtc_pbx.log_tail(), webrtc_pbx.log_tail()
    finally:
        peer.close()


def phone_hears(rtp, pt, tmp_path, name):
    """What the RTP phone received of payload type `pt` (G.711 µ-law), as a tone report."""
    got = [p for p in rtp.in_order() if p.pt == pt]
    assert len(got) > 100, f"the phone got {len(got)} packets of payload type {pt}"
    pcm = audioop.ulaw2lin(b"".join(p.payload for p in got), 2)
    wav = tmp_path / name
    with wave.open(str(wav), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(pcm[8000:])
    return analyse_tone(str(wav))


def play_ulaw(rtp, to, freq, seconds):
    start = time.monotonic()
    for i, payload in enumerate(tone_ulaw(freq, seconds)):
        rtp.send(RtpPacket(0, 2000 + i, 160 * i, 0x5151, payload, marker=(i == 0)), to)
        delay = start + (i + 1) * 0.02 - time.monotonic()
        if delay > 0:
            time.sleep(delay)


def test_an_opus_only_peer_and_a_g711_phone_hear_each_other_through_the_transcoder(
        webrtc_pbx, phones, tmp_path):
    caller = phones(webrtc_pbx, 3405, "127.0.14.1")
    callee = phones(webrtc_pbx, 3406, "127.0.14.2")
    rtp = RtpPeer.even("127.0.14.2")
    peer = WebRtcPeer("127.0.14.1", TONE_BROWSER, codecs=("opus",))
    try:
        offer = peer.offer()
        assert b"opus/48000/2" in offer and b"PCMU" not in offer, offer.decode()
        out = caller.call("3406", offer)
        inc = wait_incoming(webrtc_pbx, callee, out)
        offer_text = inc.offer.text
        # The phone is offered what the PBX can transcode Opus to.
        for line in ("RTP/AVP", "a=rtpmap:0 PCMU/8000", "a=rtpmap:8 PCMA/8000"):
            assert line in offer_text, f"{line!r} missing from the phone's offer:\n{offer_text}"
        inc.ring()
        inc.answer(sdp_offer(*rtp.addr, pts=[0]))
        final = out.wait_final(5)
        assert final is not None and final.status == 200, \
            f"expected 200, got {final}\n{webrtc_pbx.log_tail()}"
        answer = out.answer_sdp.text
        assert_webrtc_answer(webrtc_pbx, answer)
        assert "opus/48000/2" in answer and "PCMU" not in answer, \
            f"aiortc must be answered in Opus, what it offered:\n{answer}"
        peer.accept(answer.encode())
        assert peer.wait_state({"connected", "failed"}, timeout=10) == "connected", \
            f"aiortc did not connect: {peer.states}\n{webrtc_pbx.log_tail()}"

        play_ulaw(rtp, inc.offer.addr, TONE_PHONE, 3.0)
        time.sleep(0.5)
        report = analyse_tone(peer.write_wav(tmp_path / "opus-heard.wav"))
        assert report.has_tone(TONE_PHONE, min_seconds=1.5), \
            f"aiortc did not hear the phone's tone through G.711 -> Opus: {report}"
        report = phone_hears(rtp, 0, tmp_path, "phone-heard.wav")
        assert report.has_tone(TONE_BROWSER, min_seconds=1.5), \
            f"the phone did not hear aiortc's tone through Opus -> G.711: {report}"
        bye = out.bye()
        assert bye is not None and bye.status == 200, f"BYE: {bye}"
    finally:
        peer.close()
        rtp.close()
    row = wait_cdr(webrtc_pbx, 3405, 3406)
    assert row["disposition"] == "answered", row


def test_two_opus_peers_keep_opus_end_to_end(webrtc_pbx, phones, tmp_path):
    caller = phones(webrtc_pbx, 3407, "127.0.14.3")
    callee = WsPhone(f"ws://127.0.0.1:{webrtc_pbx.ws}/", 3408, password(3408),
                     local_ip="127.0.14.4")
    caller_peer = WebRtcPeer("127.0.14.3", TONE_BROWSER, codecs=("opus",))
    callee_peer = None
    try:
        r = callee.register()
        assert r is not None and r.status == 200, r
        out = caller.call("3408", caller_peer.offer())
        invite = callee.wait_request("INVITE", timeout=10)
        assert invite is not None, webrtc_pbx.log_tail()
        offer = invite.body
        assert b"UDP/TLS/RTP/SAVPF" in offer and b"opus/48000/2" in offer, offer.decode()
        assert b"PCMU" not in offer, f"nothing added towards a browser:\n{offer.decode()}"
        # The callee's peer is made now: aiortc's host address is one per process.
        callee_peer = WebRtcPeer("127.0.14.4", TONE_PHONE, codecs=("opus",))
        answer = callee_peer.answer(offer)
        assert b"opus/48000/2" in answer, answer.decode()
        tag = "t" + str(3408)
        callee.respond(invite, 180, "Ringing", to_tag=tag)
        callee.respond(invite, 200, "OK", body=answer, to_tag=tag)
        assert callee.wait_request("ACK", timeout=5) is not None, webrtc_pbx.log_tail()
        final = out.wait_final(5)
        assert final is not None and final.status == 200, \
            f"expected 200, got {final}\n{webrtc_pbx.log_tail()}"
        to_caller = out.answer_sdp.text
        assert_webrtc_answer(webrtc_pbx, to_caller)
        assert "opus/48000/2" in to_caller and "PCMU" not in to_caller, to_caller
        caller_peer.accept(to_caller.encode())
        for peer in (caller_peer, callee_peer):
            assert peer.wait_state({"connected", "failed"}, timeout=10) == "connected", \
                f"aiortc did not connect: {peer.states}\n{webrtc_pbx.log_tail()}"
        time.sleep(3.5)
        report = analyse_tone(caller_peer.write_wav(tmp_path / "caller-heard.wav"))
        assert report.has_tone(TONE_PHONE, min_seconds=1.5), \
            f"the caller did not hear the callee: {report}"
        report = analyse_tone(callee_peer.write_wav(tmp_path / "callee-heard.wav"))
        assert report.has_tone(TONE_BROWSER, min_seconds=1.5), \
            f"the callee did not hear the caller: {report}"
        bye = out.bye()
        assert bye is not None and bye.status == 200, f"BYE: {bye}"
    finally:
        caller_peer.close()
        if callee_peer is not None:
            callee_peer.close()
        callee.close()
    row = wait_cdr(webrtc_pbx, 3407, 3408)
    assert row["disposition"] == "answered", row
