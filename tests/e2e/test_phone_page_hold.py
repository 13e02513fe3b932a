"""Hold and resume between the browser phone page (WebRTC: ICE-lite, DTLS-SRTP) and a baresip
desk phone, both ways, with the audio checked after the resume in both directions.

- the page holds and resumes (its re-INVITEs, a=sendonly then a=sendrecv, answered by the
  PBX and re-offered to baresip): after the resume the page hears baresip's tone again (a
  fresh listening window that starts after the resume) and baresip's recording from the
  resume on holds the page's tone;
- baresip holds and resumes the page (the PBX re-offers to the WebRTC leg: ICE and DTLS
  attributes again, `a=setup:actpass`, which Chromium answers keeping its DTLS association,
  RFC 8842 §5, RFC 5763 §5, RFC 8829 §5.3.2): the page shows it is held by the other side,
  the call stays up, and after the resume both sides hear each other again; the PBX logs no
  DTLS failure.

It reuses test_phone_page.py's fixtures (chromium with a fake microphone playing a tone,
baresip phones). Addresses: baresip phones 127.0.84.x.
"""

import re
import struct
import time
import wave

import pytest

from callhelpers import wait_cdr
from media import LoopbackSniffer, RtpPacket, analyse_tone
from opus_audio import decode_pcmu
from test_phone_page import (  # noqa: F401 - fixtures used by name
    DESK, HEARD, PAGE_A, TONE_A, TONE_DESK, browsers, desk, dial, page_pbx, pages, wait_hears,
    recording_tone, wait_idle, wait_in_call, wait_recorded)

HOLD_IP = "127.0.84.1"
HELD_IP = "127.0.84.2"


# The desk phone's tone lasts the whole call (test_phone_page's tests use 2 s of it, then
# silence: too short to be heard again after a hold).
DESK_TONE_SECONDS = 40


def heard_by_desk(sniffer, phone, since, tmp_path):
    """The page's audio as the PBX delivered it to baresip's RTP socket after `since` (PCMU,
    in sequence order), analysed as a tone. Baresip's own recording cannot show it: baresip
    1.0.0 drops its decode filters (the sndfile recorder) on any re-INVITE that is not
    sendrecv and does not set them up again (src/audio.c, audio_decoder_set/aufilt_setup)."""
    packets = []
    for t, _, _, data in sniffer.matching(dst=phone.owns):
        p = RtpPacket.parse(data)
        if t >= since and p is not None and p.pt == 0:
            packets.append(p)
    packets.sort(key=lambda p: p.seq)
    samples = decode_pcmu([p.payload for p in packets])
    out = str(tmp_path / "desk-heard-after-resume.wav")
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(struct.pack(f"<{len(samples)}h",
                                  *(max(-32768, min(32767, int(v * 32768))) for v in samples)))
    return analyse_tone(out)


def not_hearing(page, freq, tol=25.0):
    """The page's received audio is not `freq` over one listening window."""
    h = page.evaluate(HEARD)
    return not (h and abs(h["freq"] - freq) <= tol and h["db"] > -70), h


# Keeps every RTCPeerConnection the page makes, with the states its DTLS transport goes
# through (RTCDtlsTransport.state: a new handshake that fails shows as "failed").
WATCH_PCS = """() => {
  const Orig = window.RTCPeerConnection;
  window.__pcs = [];
  window.__dtls = [];
  window.RTCPeerConnection = function (...args) {
    const pc = new Orig(...args);
    window.__pcs.push(pc);
    pc.addEventListener('connectionstatechange', () => window.__dtls.push(pc.connectionState));
    return pc;
  };
  window.RTCPeerConnection.prototype = Orig.prototype;
}"""

# The one call's DTLS state and what identifies its association: the PBX's ICE ufrag and
# certificate fingerprint in the remote description (a re-offer that changed either would
# restart ICE or DTLS, RFC 8842 §5.3.2 / RFC 8839 §4.4.1.1.1).
PC_STATE = """() => {
  const pc = window.__pcs[window.__pcs.length - 1];
  const sdp = pc.remoteDescription?.sdp || '';
  return {
    pcs: window.__pcs.length,
    history: window.__dtls.slice(),
    dtls: pc.getSenders()[0]?.transport?.state,
    ufrag: sdp.match(/a=ice-ufrag:(\\S+)/)?.[1],
    fingerprint: sdp.match(/a=fingerprint:(.+)/)?.[1]?.trim(),
  };
}"""


def dtls_trouble(pbx):
    return [ln for ln in pbx.log_text().splitlines()
            if re.search(r"dtls", ln, re.I) and re.search(r"fail|error|alert|refus", ln, re.I)]


def assert_same_association(page, before, pbx):
    assert before["ufrag"] and before["fingerprint"], before
    after = page.evaluate(PC_STATE)
    assert after["pcs"] == 1 and after["dtls"] == "connected", after
    assert "failed" not in after["history"] and "closed" not in after["history"], after
    assert (after["ufrag"], after["fingerprint"]) == (before["ufrag"], before["fingerprint"]), \
        (before, after)
    assert not dtls_trouble(pbx), dtls_trouble(pbx)


def test_the_page_holds_and_resumes_and_audio_flows_again(pages, desk, page_pbx, tmp_path):
    phone = desk(page_pbx, DESK, HOLD_IP, seconds=DESK_TONE_SECONDS)
    page = pages(0, PAGE_A)
    page.evaluate(WATCH_PCS)
    dial(page, DESK)
    wait_in_call(page)
    wait_hears(page, TONE_DESK)
    wait_recorded(phone)
    before = page.evaluate(PC_STATE)

    page.click("#hold")
    page.wait_for_function("() => document.getElementById('call-state').textContent === 'On hold'")
    time.sleep(1.0)
    quiet, heard = not_hearing(page, TONE_DESK)
    assert quiet, f"on hold, the page still hears the desk phone: {heard}"

    with LoopbackSniffer(keep=lambda s, d: phone.owns(d)) as sniffer:
        page.click("#hold")
        wait_in_call(page)
        resumed = time.time()
        # a fresh listening window: every HEARD evaluation starts after the resume
        wait_hears(page, TONE_DESK)
        time.sleep(2.5)   # the page's tone reaches baresip after the resume for a while
        tone = heard_by_desk(sniffer, phone, resumed, tmp_path)
    assert tone.has_tone(TONE_A, min_seconds=1.0), f"baresip after the resume: {tone}"
    assert_same_association(page, before, page_pbx)
    page.click("#hangup")
    wait_idle(page)
    row = wait_cdr(page_pbx, PAGE_A, DESK)
    assert row["disposition"] == "answered", row
    # and before the hold, baresip's own recording holds the page's tone
    before_hold = recording_tone(phone)
    assert before_hold.has_tone(TONE_A, min_seconds=1.0), str(before_hold)


@pytest.mark.parametrize("caller", ["page", "desk"])
def test_the_desk_phone_holds_and_resumes_the_page(pages, desk, page_pbx, tmp_path, caller):
    phone = desk(page_pbx, DESK, HELD_IP, answer="auto" if caller == "page" else "manual",
                 seconds=DESK_TONE_SECONDS)
    page = pages(0, PAGE_A)
    page.evaluate(WATCH_PCS)
    if caller == "page":
        dial(page, DESK)
    else:
        phone.dial(str(PAGE_A))
        page.wait_for_selector("#ringing", state="visible", timeout=10000)
        page.click("#answer")
    wait_in_call(page)
    wait_hears(page, TONE_DESK)
    wait_recorded(phone)
    before = page.evaluate(PC_STATE)

    # the PBX re-offers to the page (RFC 3264 §8.4): a=sendonly, then a=sendrecv
    phone.command("hold")
    page.wait_for_function(
        "() => document.getElementById('call-state').textContent === 'Held by the other side'",
        timeout=5000)
    time.sleep(1.0)
    quiet, heard = not_hearing(page, TONE_DESK)
    assert quiet, f"held, the page still hears the desk phone: {heard}"
    assert_same_association(page, before, page_pbx)

    with LoopbackSniffer(keep=lambda s, d: phone.owns(d)) as sniffer:
        phone.command("resume")
        wait_in_call(page)
        resumed = time.time()
        wait_hears(page, TONE_DESK)
        time.sleep(2.5)
        tone = heard_by_desk(sniffer, phone, resumed, tmp_path)
    assert tone.has_tone(TONE_A, min_seconds=1.0), f"baresip after the resume: {tone}"
    assert_same_association(page, before, page_pbx)
    assert page.is_visible("#incall"), "the call dropped"
    page.click("#hangup")
    wait_idle(page)
    caller_n, called_n = (PAGE_A, DESK) if caller == "page" else (DESK, PAGE_A)
    row = wait_cdr(page_pbx, caller_n, called_n)
    assert row["disposition"] == "answered", row
