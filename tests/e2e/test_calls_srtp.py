"""SRTP (SDES, RFC 4568) through the PBX with baresip: the SRTP legs run over TLS (a=crypto
keys are only sent over TLS by default) with baresip `mediaenc=srtp-mand` (RTP/SAVP only).

- SRTP <-> SRTP: both phones hear each other's tone; the PBX decrypts and re-encrypts with its
  own keys per leg, so a packet (same SSRC and seq on both legs) has different bytes on the
  two legs;
- SRTP caller -> plain callee (UDP) and plain caller (UDP) -> SRTP callee: both hear each
  other; the plain leg carries plain RTP (no a=crypto was sent to the UDP phone), the SRTP leg
  encrypted RTP (payload longer by the auth tag);
- an extension with `--media-encryption required` that offers plain RTP gets 488.

Extensions: the SRTP callees have `--media-encryption required` (so the PBX must offer them
RTP/SAVP); the others the default (optional).
"""

import pytest

from callclient import sdp_offer
from callhelpers import (assert_media_via_pbx, assert_tones, baresip_call, menc_suite,
                         relay_pairs, sip_received_udp, start_call_pbx, wait_cdr)

A_IP, B_IP = "127.0.0.2", "127.0.0.3"
REQUIRED = {3702: "required", 3706: "required", 3708: "required"}


@pytest.fixture(scope="module")
def call_pbx(pbx_factory):
    return start_call_pbx(pbx_factory, range(3701, 3710), name="calls-srtp", encryption=REQUIRED)


def srtp_events_ok(phone):
    suites = menc_suite(phone.menc())
    return len(suites) == 1 and suites[0].startswith(("AES_CM_128_HMAC_SHA1", "AEAD_AES_128_GCM"))


def assert_leg_encrypted(res, pbx, sender, receiver, sender_srtp, receiver_srtp):
    pairs, same, lin, lout = relay_pairs(res, pbx, sender, receiver)
    where = f"{sender.user} -> PBX -> {receiver.user}"
    assert pairs >= 100, (f"{where}: only {pairs} packets matched by SSRC and seq on both legs "
                          f"(the relay preserves both)\n{res.sniffer.describe()}")
    assert same == 0, f"{where}: {same} of {pairs} packets have the same bytes on both legs"
    for lengths, srtp, leg in ((lin, sender_srtp, "in"), (lout, receiver_srtp, "out")):
        if srtp:
            assert lengths and min(lengths) > 160, f"{where}: leg {leg} not SRTP (lengths {lengths})"
        else:
            assert lengths == [160], f"{where}: leg {leg} not plain G.711 (lengths {lengths})"


def test_srtp_to_srtp_tone_both_ways_reencrypted_per_leg(call_pbx, tmp_path):
    pbx = call_pbx
    res = baresip_call(pbx, tmp_path, 3701, 3702, A_IP, B_IP, a_transport="tls",
                       b_transport="tls", a_mediaenc="srtp-mand", b_mediaenc="srtp-mand")
    assert srtp_events_ok(res.a) and srtp_events_ok(res.b), (res.a.menc(), res.b.menc())
    assert_tones(res, pbx)
    assert_media_via_pbx(res, pbx)
    assert_leg_encrypted(res, pbx, res.a, res.b, True, True)
    assert_leg_encrypted(res, pbx, res.b, res.a, True, True)
    row = wait_cdr(pbx, 3701, 3702)
    assert row["disposition"] == "answered" and row["encrypted"] == "yes/yes", row


def test_srtp_caller_to_plain_callee(call_pbx, tmp_path):
    pbx = call_pbx
    res = baresip_call(pbx, tmp_path, 3703, 3704, A_IP, B_IP, a_transport="tls",
                       b_transport="udp", a_mediaenc="srtp-mand", b_mediaenc="")
    assert srtp_events_ok(res.a), res.a.menc()
    assert res.b.menc() == [], res.b.menc()
    invites = [t for t in sip_received_udp(res, res.b) if t.startswith("INVITE ")]
    assert invites, "the sniffer saw no INVITE to the plain callee"
    assert "a=crypto" not in invites[0] and "RTP/AVP" in invites[0], \
        f"SRTP keys or RTP/SAVP sent to a phone over UDP:\n{invites[0]}"
    assert_tones(res, pbx)
    assert_media_via_pbx(res, pbx)
    assert_leg_encrypted(res, pbx, res.a, res.b, True, False)
    assert_leg_encrypted(res, pbx, res.b, res.a, False, True)
    row = wait_cdr(pbx, 3703, 3704)
    assert row["disposition"] == "answered" and row["encrypted"] == "yes/no", row


def test_plain_caller_to_srtp_callee(call_pbx, tmp_path):
    pbx = call_pbx
    res = baresip_call(pbx, tmp_path, 3705, 3706, A_IP, B_IP, a_transport="udp",
                       b_transport="tls", a_mediaenc="", b_mediaenc="srtp-mand")
    assert res.a.menc() == [], res.a.menc()
    assert srtp_events_ok(res.b), res.b.menc()
    assert_tones(res, pbx)
    assert_media_via_pbx(res, pbx)
    assert_leg_encrypted(res, pbx, res.a, res.b, False, True)
    assert_leg_encrypted(res, pbx, res.b, res.a, True, False)
    row = wait_cdr(pbx, 3705, 3706)
    assert row["disposition"] == "answered" and row["encrypted"] == "no/yes", row


def test_required_extension_offering_plain_rtp_gets_488(call_pbx, phones):
    pbx = call_pbx
    caller = phones(pbx, 3708, A_IP)
    phones(pbx, 3709, B_IP)
    out = caller.call("3709", sdp_offer(A_IP, 40000))
    final = out.wait_final(5)
    assert final is not None and final.status == 488, f"{final}\n{pbx.log_tail()}"
