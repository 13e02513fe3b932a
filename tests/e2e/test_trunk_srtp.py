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

Addresses: the PBX 127.0.0.1; phones 127.0.43.2 and 127.0.43.4; the trunk 127.0.43.3.
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

PHONE_IP, FAR_IP, PHONE2_IP = "127.0.43.2", "127.0.43.3", "127.0.43.4"
SUITE = "AES_CM_128_HMAC_SHA1_80"

PLAN = trunk_plan("test_trunk_srtp.py", "sec", "from-sec")


@pytest.fixture(scope="module")
def far():
    with far_end("sec", FAR_IP) as ua:
        yield ua


@pytest.fixture(scope="module")
def srtp_pbx(pbx_factory, far):
    p = pbx_factory("trunk-srtp", dialplan=PLAN, extra_toml="[rtp]\nsdes_over_insecure = true\n")
    p.import_extensions([(1000, "pw1000")])
    # 1001 takes no SRTP (`optional` would mirror the trunk's SRTP offer to it).
    p.add_extension(1001, "pw1001", media_encryption="off")
    p.cli("trunk", "add", "sec", "--host", f"{FAR_IP}:{far.local[1]}",
          "--media-encryption", "required", "--allow", f"{FAR_IP}/32", "--context", "from-sec")
    p.start()
    far.pbx = tuple(p.server("udp"))
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
