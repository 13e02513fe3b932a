"""SRTP with SDES (RFC 4568) on a trunk's leg, plain RTP on the phone's (issue 15, part 7):
the real release binary, real sockets, the trunk's far end a python UA that encrypts and
decrypts with libsrtp (pylibsrtp).

The trunk `sec` has `--media-encryption required` (`[rtp] sdes_over_insecure = true`: it
is reached over UDP on this trusted loopback).

- Out: extension 1000 (plain RTP/AVP offer) dials 9555; the trunk is offered RTP/SAVP with
  `a=crypto` AES_CM_128_HMAC_SHA1_80 and answers with its own key; the phone's answer is
  plain RTP/AVP without keys. The trunk's SRTP packets reach the phone as plain RTP with the
  same payload, SSRC and sequence number; the phone's plain packets reach the trunk as SRTP
  that the PBX's offered key decrypts to the phone's payload (and the wire bytes are not the
  plain payload).
- In: the trunk offers RTP/SAVP with SDES on a call to 1001 (`--media-encryption off`), which
  is offered plain RTP;
  the trunk's 200 is RTP/SAVP with one `a=crypto` of the offered suite; media flows both
  ways, SRTP on the trunk's leg.
- Best effort: the trunk `opt` (`--media-encryption optional`, a python UA that takes no
  SRTP, 127.0.43.5) is offered SRTP when 1000 calls with an SDES offer (`8` + number); it
  refuses with 488 and gets one more INVITE (same Call-ID, From and To, CSeq one higher)
  with a plain RTP/AVP offer, answers it, and media flows: SRTP on the phone's leg, plain on
  the trunk's. Answering the SRTP offer at once with a plain RTP/AVP 200 is taken as plain
  (no BYE, media flows).

Addresses: the PBX 127.0.0.1; phones 127.0.43.2 and 127.0.43.4; the trunks 127.0.43.3 and
127.0.43.5.
"""

import base64
import os
import time

import pytest
from pylibsrtp import Policy, Session

from callclient import Sdp, sdp_offer
from callhelpers import wait_incoming
from media import RtpPacket, RtpPeer
from trunkplan import far_end, trunk_plan

# Protocol and media behaviour, not the store: run on SQLite only (scripts/test.sh).
pytestmark = pytest.mark.store_independent

PHONE_IP, FAR_IP, PHONE2_IP = "127.0.43.2", "127.0.43.3", "127.0.43.4"
PLAIN_FAR_IP = "127.0.43.5"
SUITE = "AES_CM_128_HMAC_SHA1_80"

# `9` + number goes out through `sec`, `8` + number through `opt`.
PLAN = trunk_plan("test_trunk_srtp.py", "sec", "from-sec").replace(
    '"_9."]', '"_9.", "_8."]').replace("\n[context.from-sec]", """
[[context.staff.rule]]
pattern = "_8."
steps = [{ dial = "trunk:opt/${number:1}" }]

[context.from-sec]""", 1)


@pytest.fixture(scope="module")
def far():
    with far_end("sec", FAR_IP) as ua:
        yield ua


@pytest.fixture(scope="module")
def plain_far():
    with far_end("opt", PLAIN_FAR_IP) as ua:
        yield ua


@pytest.fixture(scope="module")
def srtp_pbx(pbx_factory, far, plain_far):
    p = pbx_factory("trunk-srtp", dialplan=PLAN, extra_toml="[rtp]\nsdes_over_insecure = true\n")
    p.import_extensions([(1000, "pw1000")])
    # 1001 takes no SRTP (`optional` would mirror the trunk's SRTP offer to it).
    p.add_extension(1001, "pw1001", media_encryption="off")
    p.cli("trunk", "add", "sec", "--host", f"{FAR_IP}:{far.local[1]}",
          "--media-encryption", "required", "--allow", f"{FAR_IP}/32", "--context", "from-sec")
    p.cli("trunk", "add", "opt", "--host", f"{PLAIN_FAR_IP}:{plain_far.local[1]}",
          "--media-encryption", "optional")
    p.start()
    far.pbx = tuple(p.server("udp"))
    plain_far.pbx = tuple(p.server("udp"))
    return p


def key_of(crypto_value):
    """(tag, suite, key+salt bytes) of an `a=crypto` value."""
    tag, suite, params = crypto_value.split()[:3]
    inline = params.split("inline:", 1)[1].split("|")[0]
    return int(tag), suite, base64.b64decode(inline)


def session(key, outbound):
    kind = Policy.SSRC_ANY_OUTBOUND if outbound else Policy.SSRC_ANY_INBOUND
    return Session(policy=Policy(key=key, ssrc_type=kind,
                                 srtp_profile=Policy.SRTP_PROFILE_AES128_CM_SHA1_80))


def savp_offer(ip, port, key, tag=1):
    return sdp_offer(ip, port, pts=(0, 101), proto="RTP/SAVP",
                     crypto=[f"{tag} {SUITE} inline:{base64.b64encode(key).decode()}"])


def exchange(srtp_rtp, srtp_to_pbx, srtp_tx, srtp_rx, plain_rtp, plain_to_pbx):
    """The SRTP side sends 20 packets, the plain side 20; checks what arrived each way. The
    first goes the moment the call is answered (test_calls_first_packet.py says why that works)."""
    sent = []
    for i in range(20):
        p = RtpPacket(0, 3000 + i, 160 * i, 0x5EC, os.urandom(160), marker=(i == 0))
        sent.append(p)
        srtp_rtp.sock.sendto(srtp_tx.protect(p.encode()), srtp_to_pbx)
        time.sleep(0.02)
    plain_rtp.wait_packets(20, 3, ssrc=0x5EC)
    got = {p.seq: p for p in plain_rtp.rtp(ssrc=0x5EC)}
    assert len(got) == 20, f"plain side got {len(got)} of 20 packets from the SRTP side"
    for p in sent:
        assert got[p.seq].payload == p.payload, f"seq {p.seq}: payload changed"

    plain_sent = plain_rtp.stream(plain_to_pbx, 20, pt=0, ssrc=0x1A1)
    srtp_rtp.wait_packets(20, 3, ssrc=0x1A1)
    raw = [d for _, _, d in srtp_rtp.snapshot()
           if len(d) >= 12 and int.from_bytes(d[8:12], "big") == 0x1A1]
    assert len(raw) >= 20, f"SRTP side got {len(raw)} packets"
    by_seq = {p.seq: p for p in plain_sent}
    for d in raw:
        assert len(d) == 12 + 160 + 10, f"not SRTP (no 80-bit tag): {len(d)} bytes"
        clear = RtpPacket.parse(srtp_rx.unprotect(d))
        assert clear.payload == by_seq[clear.seq].payload, f"seq {clear.seq}: payload changed"
        assert d[12:172] != clear.payload, "the payload went in the clear"


def test_outbound_call_is_srtp_on_the_trunk_and_plain_on_the_phone(srtp_pbx, phones, far):
    pbx = srtp_pbx
    phone = phones(pbx, 1000, PHONE_IP)
    with RtpPeer.even(PHONE_IP) as phone_rtp, RtpPeer.even(FAR_IP) as far_rtp:
        out = phone.call("9555", sdp_offer(*phone_rtp.addr, pts=(0, 101)))
        inc = far.wait_call(5)
        assert inc is not None, f"the trunk got no INVITE: {out.responses}\n{pbx.log_tail()}"
        offer = inc.offer
        assert offer.proto == "RTP/SAVP", f"the trunk was offered:\n{offer.text}"
        ours = [key_of(c) for c in offer.crypto]
        tag, suite, pbx_key = next(k for k in ours if k[1] == SUITE)
        far_key = os.urandom(30)
        inc.answer(sdp_offer(*far_rtp.addr, pts=(0, 101), proto="RTP/SAVP",
                             crypto=[f"{tag} {SUITE} inline:{base64.b64encode(far_key).decode()}"]))
        final = out.wait_final(5)
        assert final is not None and final.status == 200, f"{final}\n{pbx.log_tail()}"
        answer = out.answer_sdp
        assert answer.proto == "RTP/AVP" and not answer.crypto, f"the phone got:\n{answer.text}"
        exchange(far_rtp, offer.addr, session(far_key, True), session(pbx_key, False),
                 phone_rtp, answer.addr)
        assert out.bye().status == 200


def test_inbound_sdes_offer_from_the_trunk_gets_srtp_back(srtp_pbx, phones, far):
    pbx = srtp_pbx
    callee = phones(pbx, 1001, PHONE2_IP)
    far_key = os.urandom(30)
    with RtpPeer.even(PHONE2_IP) as callee_rtp, RtpPeer.even(FAR_IP) as far_rtp:
        out = far.call("1001", savp_offer(*far_rtp.addr, far_key))
        inc = wait_incoming(pbx, callee, out)
        assert inc.offer.proto == "RTP/AVP" and not inc.offer.crypto, \
            f"the UDP phone was offered:\n{inc.offer.text}"
        inc.answer(sdp_offer(*callee_rtp.addr, pts=(0, 101)))
        final = out.wait_final(5)
        assert final is not None and final.status == 200, f"{final}\n{pbx.log_tail()}"
        answer = out.answer_sdp
        assert answer.proto == "RTP/SAVP", f"the trunk got:\n{answer.text}"
        assert len(answer.crypto) == 1, answer.text
        tag, suite, pbx_key = key_of(answer.crypto[0])
        assert (tag, suite) == (1, SUITE), answer.crypto
        exchange(far_rtp, answer.addr, session(far_key, True), session(pbx_key, False),
                 callee_rtp, inc.offer.addr)
        assert out.bye().status == 200


def srtp_call_to_opt(pbx, phone, phone_rtp, phone_key):
    """1000 calls 8556 (out through `opt`) with an SDES offer."""
    return phone.call("8556", savp_offer(*phone_rtp.addr, phone_key))


def test_optional_trunk_refusing_srtp_gets_a_plain_offer(srtp_pbx, phones, plain_far):
    pbx = srtp_pbx
    phone = phones(pbx, 1000, PHONE_IP)
    phone_key = os.urandom(30)
    mark = len(pbx.log_text())
    with RtpPeer.even(PHONE_IP) as phone_rtp, RtpPeer.even(PLAIN_FAR_IP) as far_rtp:
        out = srtp_call_to_opt(pbx, phone, phone_rtp, phone_key)
        first = plain_far.wait_call(5)
        assert first is not None, f"the trunk got no INVITE: {out.responses}\n{pbx.log_tail()}"
        assert first.offer.proto == "RTP/SAVP" and first.offer.crypto, first.offer.text
        # (The client's transaction layer takes the ACK of the 488.)
        first.reject(488, "Not Acceptable Here")

        second = plain_far.wait_call(5)
        assert second is not None, f"no plain re-offer after the 488\n{pbx.log_tail()}"
        assert pbx.wait_log(r"a trunk refused SRTP: offering it plain RTP", mark, timeout=1), \
            pbx.log_tail()
        offer = second.offer
        assert offer.proto == "RTP/AVP" and not offer.crypto, f"the re-offer:\n{offer.text}"
        # RFC 3261 §8.1.3.5: the same Call-ID, From and To; the CSeq one higher.
        inv1, inv2 = first.invite, second.invite
        assert inv2.call_id == inv1.call_id
        assert inv2.get("from") == inv1.get("from") and inv2.get("to") == inv1.get("to")
        assert inv2.cseq[0] == inv1.cseq[0] + 1, (inv1.cseq, inv2.cseq)
        assert inv2.branch != inv1.branch
        second.answer(sdp_offer(*far_rtp.addr, pts=(0, 101)))
        final = out.wait_final(5)
        assert final is not None and final.status == 200, f"{final}\n{pbx.log_tail()}"
        answer = out.answer_sdp
        assert answer.proto == "RTP/SAVP" and len(answer.crypto) == 1, answer.text
        _, _, pbx_key = key_of(answer.crypto[0])
        exchange(phone_rtp, answer.addr, session(phone_key, True), session(pbx_key, False),
                 far_rtp, offer.addr)
        assert out.bye().status == 200


def test_optional_trunk_answering_plain_rtp_at_once_is_taken_as_plain(srtp_pbx, phones,
                                                                      plain_far):
    pbx = srtp_pbx
    phone = phones(pbx, 1000, PHONE_IP)
    phone_key = os.urandom(30)
    with RtpPeer.even(PHONE_IP) as phone_rtp, RtpPeer.even(PLAIN_FAR_IP) as far_rtp:
        out = srtp_call_to_opt(pbx, phone, phone_rtp, phone_key)
        inc = plain_far.wait_call(5)
        assert inc is not None, f"the trunk got no INVITE: {out.responses}\n{pbx.log_tail()}"
        offer = inc.offer
        assert offer.proto == "RTP/SAVP" and offer.crypto, offer.text
        # RTP/AVP and no key: this end does no SRTP.
        inc.answer(sdp_offer(*far_rtp.addr, pts=(0, 101)))
        final = out.wait_final(5)
        assert final is not None and final.status == 200, f"{final}\n{pbx.log_tail()}"
        assert inc.wait_ack(5) is not None, "no ACK for the 200"
        answer = out.answer_sdp
        assert answer.proto == "RTP/SAVP" and len(answer.crypto) == 1, answer.text
        _, _, pbx_key = key_of(answer.crypto[0])
        exchange(phone_rtp, answer.addr, session(phone_key, True), session(pbx_key, False),
                 far_rtp, offer.addr)
        assert plain_far.wait_request("BYE", 0.5, call_id=inc.call_id) is None, "the PBX ended it"
        assert out.bye().status == 200
