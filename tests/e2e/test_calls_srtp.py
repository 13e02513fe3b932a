"""SRTP (SDES, RFC 4568) through the PBX with baresip: the SRTP legs run over TLS (a=crypto
keys are only sent over TLS by default) with baresip `mediaenc=srtp-mand` (RTP/SAVP only).

- SRTP <-> SRTP: both phones hear each other's tone; the PBX decrypts and re-encrypts with its
  own keys per leg, so a packet (same SSRC and seq on both legs) has different bytes on the
  two legs;
- SRTP caller -> plain callee (UDP) and plain caller (UDP) -> SRTP callee: both hear each
  other; the plain leg carries plain RTP (no a=crypto was sent to the UDP phone), the SRTP leg
  encrypted RTP (payload longer by the auth tag);
- an extension with `--media-encryption required` that offers plain RTP gets 488;
- encrypted by default: a callee on TLS with the default `optional` policy is offered SRTP, so
  a baresip with `mediaenc=srtp-mand` (which refuses plain RTP) is reached, and one with the
  README's `mediaenc=srtp` talks SRTP; a callee on TLS that refuses SRTP with 488 gets a
  second, plain offer and the call connects; with `required` its refusal ends the call and
  the CDR names the callee (also through a dialplan); an extension's TLS and UDP devices each
  get the offer their transport allows.

Extensions: 3702, 3706, 3708 and 3713 have `--media-encryption required`; the others the
default (optional).
"""

import pytest

from baresip_phone import BaresipPhone
from callclient import sdp_offer
from callhelpers import (assert_media_via_pbx, assert_tones, baresip_call, menc_suite, password,
                         relay_pairs, sip_received_udp, start_call_pbx, wait_cdr)

# Protocol and media behaviour, not the store: run on SQLite only (scripts/test.sh).
pytestmark = pytest.mark.store_independent

A_IP, B_IP = "127.0.0.2", "127.0.0.3"
# the encrypted-by-default tests, away from the addresses other modules use most
C_IP, D_IP = "127.0.37.10", "127.0.37.11"
REQUIRED = {3702: "required", 3706: "required", 3708: "required", 3713: "required"}


@pytest.fixture(scope="module")
def call_pbx(pbx_factory):
    return start_call_pbx(pbx_factory, range(3701, 3720), name="calls-srtp", encryption=REQUIRED)


# The demo dialplan's shape: a failed dial goes to voicemail, which is not there yet, so the
# caller gets the dial's own answer.
PLAN = """
[defaults]
context = "staff"

[context.staff]
may_call = ["any"]

[[context.staff.rule]]
extension = true
# A failed dial goes on to a step that cannot ring anyone (an outside number, no trunk).
steps = [{ dial = { targets = ["${number}"], timeout = "20s",
                    on_busy = [{ dial = { targets = ["00493012345"] } }],
                    on_no_answer = [{ dial = { targets = ["00493012345"] } }],
                    on_unavailable = [{ dial = { targets = ["00493012345"] } }] } }]
"""


@pytest.fixture(scope="module")
def plan_pbx(pbx_factory):
    p = pbx_factory("calls-srtp-plan", dialplan=PLAN)
    p.import_extensions([(3720, password(3720))])
    p.add_extension(3721, password(3721), media_encryption="required")
    return p.start()


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


def test_optional_tls_callee_requiring_srtp_is_offered_srtp(call_pbx, tmp_path):
    """Issue 10: a plain caller on UDP, a callee on TLS with `mediaenc=srtp-mand` and the
    default policy: the PBX offers the callee RTP/SAVP (it used to offer RTP/AVP: baresip
    refused with "No audio codecs", CDR 488)."""
    pbx = call_pbx
    res = baresip_call(pbx, tmp_path, 3710, 3711, C_IP, D_IP, a_transport="udp",
                       b_transport="tls", a_mediaenc="", b_mediaenc="srtp-mand")
    assert res.a.menc() == [], res.a.menc()
    assert srtp_events_ok(res.b), res.b.menc()
    assert_tones(res, pbx)
    assert_media_via_pbx(res, pbx)
    assert_leg_encrypted(res, pbx, res.a, res.b, False, True)
    assert_leg_encrypted(res, pbx, res.b, res.a, True, False)
    row = wait_cdr(pbx, 3710, 3711)
    assert row["disposition"] == "answered" and row["encrypted"] == "no/yes", row
    assert row["hangup"].split()[0] == "caller", row


def test_readme_softphone_setup_gets_srtp_when_called(call_pbx, tmp_path):
    """The account line README.md and the admin guide give (`;transport=tls`,
    `mediaenc=srtp`, best-effort SRTP) takes the PBX's RTP/SAVP offer at once."""
    pbx = call_pbx
    mark = len(pbx.log_text())
    res = baresip_call(pbx, tmp_path, 3718, 3719, C_IP, D_IP, a_transport="udp",
                       b_transport="tls", a_mediaenc="", b_mediaenc="srtp")
    assert srtp_events_ok(res.b), res.b.menc()
    assert "refused SRTP" not in pbx.log_text()[mark:], "the phone was offered RTP again"
    assert_tones(res, pbx)
    assert_leg_encrypted(res, pbx, res.b, res.a, True, False)
    row = wait_cdr(pbx, 3718, 3719)
    assert row["disposition"] == "answered" and row["encrypted"] == "no/yes", row


def test_tls_callee_refusing_srtp_gets_a_plain_offer(call_pbx, tmp_path):
    """A callee on TLS without SRTP (baresip without `mediaenc`) refuses the PBX's RTP/SAVP
    offer with 488; under the default policy the PBX sends it a second INVITE with RTP/AVP and
    the call connects with plain RTP on both legs."""
    pbx = call_pbx
    mark = len(pbx.log_text())
    res = baresip_call(pbx, tmp_path, 3712, 3714, C_IP, D_IP, a_transport="udp",
                       b_transport="tls", a_mediaenc="", b_mediaenc="", b_refuses=1)
    assert "No audio codecs" in res.b.seen("CALL_CLOSED")[0].get("param", ""), res.b.events
    assert pbx.wait_log(r"a device refused SRTP: offering it plain RTP", mark, timeout=1), \
        pbx.log_tail()
    assert res.a.menc() == [] and res.b.menc() == [], (res.a.menc(), res.b.menc())
    assert_tones(res, pbx)
    assert_media_via_pbx(res, pbx)
    for sender, receiver in ((res.a, res.b), (res.b, res.a)):
        pairs, _, lin, lout = relay_pairs(res, pbx, sender, receiver)
        assert pairs >= 100 and lin == [160] and lout == [160], \
            f"{sender.user} -> {receiver.user}: {pairs} packets, lengths {lin} / {lout}"
    row = wait_cdr(pbx, 3712, 3714)
    assert row["disposition"] == "answered" and row["encrypted"] == "no/no", row


def refuse_srtp_call(pbx, phones, tmp_path, caller, callee, ip):
    """A python caller (UDP) calls `callee`, a baresip on TLS without SRTP whose extension
    is `required`: the PBX offers it only RTP/SAVP, it refuses (488), and that ends the call.
    Returns the caller's final response and the callee's events."""
    b = BaresipPhone(tmp_path, callee, password(callee), pbx.hostport("tls"), "tls", "", ip,
                     answer="auto")
    try:
        b.start()
        assert b.wait_registered(), f"{callee} did not register over TLS\n{b.log()}"
        mark = len(pbx.log_text())
        out = phones(pbx, caller, C_IP).call(str(callee), sdp_offer(C_IP, 40100))
        final = out.wait_final(10)
        closed = b.wait_event("CALL_CLOSED", 5)
    finally:
        b.stop()
    assert closed is not None and "No audio codecs" in closed.get("param", ""), \
        f"{closed}\n{b.log()}"
    assert final is not None and final.status == 488, f"{final}\n{pbx.log_tail()}"
    assert "refused SRTP" not in pbx.log_text()[mark:], "a `required` callee was offered RTP"
    return final


def test_required_tls_callee_refusing_srtp_ends_the_call_and_the_cdr_names_it(
        call_pbx, phones, tmp_path):
    pbx = call_pbx
    refuse_srtp_call(pbx, phones, tmp_path, 3715, 3713, D_IP)
    row = wait_cdr(pbx, 3715, 3713)
    assert row["disposition"] == "failed", row
    assert row["hangup"].split()[:2] == ["callee", "488"], row


def test_through_a_dialplan_the_cdr_still_names_the_refusing_callee(plan_pbx, phones, tmp_path):
    """Issue 10: when a failed dial goes on to a step that cannot ring anyone, the CDR of a
    call a device refused said `pbx`; it names the callee. (With the demo plan the caller now
    reaches the voicemail instead: test_voicemail.py.)"""
    pbx = plan_pbx
    refuse_srtp_call(pbx, phones, tmp_path, 3720, 3721, D_IP)
    row = wait_cdr(pbx, 3720, 3721)
    assert row["disposition"] == "failed", row
    assert row["hangup"].split()[:2] == ["callee", "488"], row


def test_forking_offers_each_device_what_its_transport_allows(call_pbx, phones, tmp_path):
    """Extension 3716 has a baresip on TLS (`srtp-mand`) and a python phone on UDP: the
    baresip is offered RTP/SAVP and answers, the UDP phone rang with RTP/AVP and no key, and
    is cancelled."""
    pbx = call_pbx
    desk = BaresipPhone(tmp_path, 3716, password(3716), pbx.hostport("tls"), "tls", "srtp-mand",
                        D_IP, answer="auto")
    try:
        desk.start()
        assert desk.wait_registered(), f"3716 did not register over TLS\n{desk.log()}"
        soft = phones(pbx, 3716, "127.0.37.12")
        caller = phones(pbx, 3717, C_IP)
        out = caller.call("3716", sdp_offer(C_IP, 40200))
        inc = soft.wait_call(5)
        assert inc is not None, f"the UDP device did not ring\n{pbx.log_tail()}"
        offer = inc.offer
        assert offer is not None and offer.proto == "RTP/AVP" and not offer.crypto, \
            f"the UDP device got SRTP or keys:\n{inc.invite.text()}"
        inc.ring()
        final = out.wait_final(10)
        assert final is not None and final.status == 200, f"{final}\n{pbx.log_tail()}"
        answer = final.sdp()
        assert answer is not None and answer.proto == "RTP/AVP" and not answer.crypto, final.text()
        assert inc.wait_cancel(5) is not None, "the UDP device was not cancelled"
        up = desk.wait_event({"CALL_ESTABLISHED", "CALL_CLOSED"}, 5)
        assert up is not None and up["type"] == "CALL_ESTABLISHED", f"{up}\n{desk.log()}"
        assert srtp_events_ok(desk), desk.menc()
        bye = out.bye()
        assert bye is not None and bye.status == 200, bye
        assert desk.wait_event("CALL_CLOSED", 5) is not None, desk.log()
    finally:
        desk.stop()
    row = wait_cdr(pbx, 3717, 3716)
    assert row["disposition"] == "answered" and row["encrypted"] == "no/yes", row
