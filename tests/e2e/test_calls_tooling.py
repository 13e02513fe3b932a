"""The call tests' own tooling, proven without the PBX: the same clients, helpers and checks
that test_calls_*.py use against the PBX, here talking directly to each other. When a call
test fails against the PBX and these pass, the PBX is what failed.

- python phone -> python phone: INVITE answered after a 407 challenge (the digest the
  phone computes is checked), 180/200/ACK, RTP both ways compared byte for byte, hold by
  re-INVITE, BYE from the callee; CANCEL -> 487; 486.
- SIPp uac-call.xml -> SIPp uas-answer.xml (-rtp_echo): RTP counted both ways by the loopback
  sniffer.
- baresip -> baresip: each plays a tone, each recording holds the other's tone (plain RTP over
  UDP, and SRTP over TLS); the tone analysis agrees with the kit's check-tone.py.
- the tone analysis rejects silence, noise and the wrong frequency.
"""

import hashlib
import socket
import os
import random
import struct
import subprocess
import time
import wave

from callclient import Phone, sdp_offer
from callhelpers import (TONE_A, TONE_B, SIPP_DIR, assert_tones, baresip_call, compare_streams,
                         even_free_port, menc_suite, sipp_call, sipp_received_sdp)
from conftest import CLIENTS, free_port, require
from media import LoopbackSniffer, RtpPeer, analyse_tone, write_tone_wav
from sipclient import parse_challenge

A_IP, B_IP = "127.0.0.2", "127.0.0.3"


class Direct:
    """Stands in for the PBX in sipp_call(): its `hostport` is the SIPp UAS itself."""

    def __init__(self, hostport):
        self._hp = hostport

    def hostport(self, transport="udp"):
        return self._hp


def direct_pair():
    a = Phone("1001", "secret-a", ("127.0.0.1", 9), local_ip=A_IP)
    b = Phone("1002", "secret-b", a.local, local_ip=B_IP)
    a.pbx = b.local                     # each one's requests go straight to the other
    return a, b


def test_python_phones_call_directly_with_challenge_rtp_hold_and_bye():
    a, b = direct_pair()
    ra, rb = RtpPeer.even(A_IP), RtpPeer.even(B_IP)
    try:
        out = a.call(f"sip:1002@{B_IP}:{b.local[1]}", sdp_offer(*ra.addr))
        # b plays the PBX's part first: challenge the INVITE with 407
        first = b.wait_call(3)
        assert first is not None
        nonce = os.urandom(8).hex()
        b.respond(first.invite, 407, "Proxy Authentication Required",
                  headers=[f'Proxy-Authenticate: Digest realm="pbx.test", nonce="{nonce}", '
                           'qop="auth", algorithm=MD5'])
        inc = b.wait_call(3)
        assert inc is not None, f"no INVITE after the 407: {b.describe_inbox()}"
        assert inc.invite.cseq[0] == first.invite.cseq[0] + 1
        assert inc.invite.call_id == first.invite.call_id
        ch = parse_challenge(inc.invite.get("proxy-authorization"))
        md5 = lambda s: hashlib.md5(s.encode()).hexdigest()  # noqa: E731
        ha1, ha2 = md5("1001:pbx.test:secret-a"), md5(f"INVITE:{ch['uri']}")
        want = md5(f"{ha1}:{nonce}:{ch['nc']}:{ch['cnonce']}:auth:{ha2}")
        assert ch["response"] == want and ch["username"] == "1001"
        # answered
        assert inc.offer.addr == ra.addr
        inc.ring()
        inc.answer(sdp_offer(*rb.addr))
        final = out.wait_final(3)
        assert final.status == 200 and [r.status for r in out.challenged] == [407]
        assert 180 in [r.status for r in out.provisional]
        assert inc.wait_ack(2) is not None
        assert out.answer_sdp.addr == rb.addr
        # RTP both ways, byte for byte
        sent_ab = ra.stream(out.answer_sdp.addr, 50, pt=0)
        sent_ba = rb.stream(inc.offer.addr, 50, pt=8)
        assert rb.wait_packets(50, 2) == 50 and ra.wait_packets(50, 2) == 50
        assert compare_streams(sent_ab, rb.rtp()) == []
        assert compare_streams(sent_ba, ra.rtp()) == []
        # hold and resume
        for mine, theirs in (("sendonly", "recvonly"), ("sendrecv", "sendrecv")):
            branch = out.start_reinvite(sdp_offer(*ra.addr, direction=mine, version=3))
            req = inc.wait_reinvite(3)
            assert req is not None and req.sdp().direction == mine
            inc.accept_reinvite(req, sdp_offer(*rb.addr, direction=theirs, version=3))
            r = out.finish_reinvite(branch, 3)
            assert r.status == 200 and r.sdp().direction == theirs
            assert b.wait_request("ACK", 2, call_id=out.call_id) is not None
        # BYE from the callee
        r = inc.bye()
        assert r is not None and r.status == 200
        assert out.wait_bye(2) is not None
    finally:
        ra.close()
        rb.close()
        a.close()
        b.close()


def test_python_phones_cancel_and_busy_directly():
    a, b = direct_pair()
    try:
        out = a.call(f"sip:1002@{B_IP}:{b.local[1]}", sdp_offer(A_IP, 40000))
        inc = b.wait_call(3)
        inc.ring()
        assert out.wait_provisional(180, 3).status == 180
        r = out.cancel()
        assert r is not None and r.status == 200
        assert out.wait_final(3).status == 487
        assert inc.wait_cancel(2) is not None
        out = a.call(f"sip:1002@{B_IP}:{b.local[1]}", sdp_offer(A_IP, 40000))
        b.wait_call(3).reject(486, "Busy Here")
        assert out.wait_final(3).status == 486
    finally:
        a.close()
        b.close()


def test_sipp_caller_and_sipp_echo_callee_directly(tmp_path):
    """The SIPp recipes talk RTP to each other, and the sniffer counts it both ways."""
    require("sipp", "sox")
    sip_port = free_port(socket.SOCK_DGRAM, B_IP)
    rtp_b = even_free_port(B_IP)
    logs = os.path.join(str(tmp_path), "uas")
    os.makedirs(logs)
    with LoopbackSniffer(keep=lambda s, d: {s[0], d[0]} == {A_IP, B_IP}) as sn:
        uas = subprocess.Popen(
            ["sipp", "-sf", os.path.join(SIPP_DIR, "uas-answer.xml"), "-t", "u1", "-i", B_IP,
             "-p", str(sip_port), "-mi", B_IP, "-mp", str(rtp_b), "-rtp_echo", "-m", "1",
             "-nostdin", "-timeout", "20s", "-timeout_error", "-trace_err", "-error_file",
             os.path.join(logs, "errors.log"), "-trace_msg", "-message_file",
             os.path.join(logs, "messages.log")],
            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        try:
            time.sleep(0.5)
            rc, out, rtp_a = sipp_call(Direct(f"{B_IP}:{sip_port}"), 1001, 1002, A_IP, tmp_path,
                                       seconds=2)
            assert rc == 0, out
            assert uas.wait(15) == 0
        finally:
            if uas.poll() is None:
                uas.kill()
                uas.wait(5)
        to_b = sn.matching(src=A_IP, dst=(B_IP, rtp_b))
        echoed = sn.matching(src=(B_IP, rtp_b), dst=(A_IP, rtp_a))
    assert len(to_b) >= 80 and len(echoed) >= 80, sn.describe()
    # the trace parser used on the PBX's INVITE finds the caller's SDP here
    with open(os.path.join(logs, "messages.log"), errors="replace") as f:
        offer = sipp_received_sdp(f.read())
    assert offer is not None and offer.addr == (A_IP, rtp_a), offer


def test_baresip_tone_both_ways_directly(tmp_path):
    res = baresip_call(None, tmp_path, 1001, 1002, A_IP, B_IP, direct=True)
    assert_tones(res)
    # the kit's own checker agrees with analyse_tone
    for rec, freq in ((res.b.recording(), TONE_A), (res.a.recording(), TONE_B)):
        r = subprocess.run(["python3", os.path.join(CLIENTS, "baresip", "check-tone.py"), rec,
                            str(freq)], stdout=subprocess.PIPE, text=True, timeout=30)
        assert r.returncode == 0, r.stdout
    # RTP went directly between the phones (the PBX tests assert the opposite); baresip sends
    # from a socket bound to any address, so its packets leave from 127.0.0.1: match its ports
    assert len(res.sniffer.matching(src=res.a.owns, dst=res.b.owns)) >= 100, res.sniffer.describe()
    assert len(res.sniffer.matching(src=res.b.owns, dst=res.a.owns)) >= 100, res.sniffer.describe()


def test_baresip_srtp_over_tls_tone_both_ways_directly(tmp_path):
    res = baresip_call(None, tmp_path, 1001, 1002, A_IP, B_IP, a_transport="tls",
                       b_transport="tls", a_mediaenc="srtp-mand", b_mediaenc="srtp-mand",
                       direct=True)
    assert_tones(res)
    assert menc_suite(res.a.menc()) == ["AES_CM_128_HMAC_SHA1_80"], res.a.menc()
    assert menc_suite(res.b.menc()) == ["AES_CM_128_HMAC_SHA1_80"], res.b.menc()


def test_tone_analysis_rejects_silence_noise_and_wrong_tone(tmp_path):
    d = str(tmp_path)
    assert analyse_tone(write_tone_wav(os.path.join(d, "a.wav"), TONE_A, 2)).has_tone(TONE_A)
    assert not analyse_tone(write_tone_wav(os.path.join(d, "b.wav"), TONE_B, 2)).has_tone(TONE_A)
    assert not analyse_tone(write_tone_wav(os.path.join(d, "q.wav"), TONE_A, 2,
                                           amplitude=0.005)).has_tone(TONE_A)
    rnd = random.Random(1)
    for name, samples in (("silence", [0] * 16000),
                          ("noise", [rnd.randint(-9000, 9000) for _ in range(16000)])):
        path = os.path.join(d, f"{name}.wav")
        with wave.open(path, "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(8000)
            w.writeframes(struct.pack(f"<{len(samples)}h", *samples))
        assert not analyse_tone(path).has_tone(TONE_A), name
