"""DTMF converted between a trunk in `info` mode and an extension that uses RFC 4733
(issue 15, part 7): the real release binary, real sockets.

Extension 1000 (a python phone with an RtpPeer) dials 9555; the plan sends it to
`trunk:gw/555`. The trunk's far end (a python UA, `pbx trunk add --dtmf info`) answers PCMU
without telephone-event; the PBX still answers the phone with its telephone-event (so the
phone keeps sending RFC 4733 events, which the PBX reads).

- The phone presses 5 and # as RFC 4733 events (start, updates, three end packets each): the
  far end gets one INFO per key, `application/dtmf-relay` with `Signal=5` then `Signal=#`,
  and none of the event packets.
- The far end streams audio and sends an INFO with `Signal=7`: the PBX answers 200 and the
  phone receives RFC 4733 event 7 at its telephone-event payload type, in the far end's
  stream (its SSRC, sequence numbers without gap or repeat), marker on the first packet, the
  end bit on the last three.

- In: the trunk calls 1000 offering PCMU alone; the PBX offers the phone its own
  telephone-event; the trunk's INFO `Signal=3` reaches the phone as event 3, and the phone's
  RFC 4733 key 8 reaches the trunk as INFO `Signal=8`.

Addresses: the PBX 127.0.0.1; the phone 127.0.42.2; the trunk's far end 127.0.42.3.
"""

import struct
import time

import pytest

from callclient import sdp_offer
from media import RtpPeer
from prompts import press
from trunkplan import far_end, trunk_plan

# Protocol and media behaviour, not the store: run on SQLite only (scripts/test.sh).
pytestmark = pytest.mark.store_independent

PHONE_IP, FAR_IP = "127.0.42.2", "127.0.42.3"

PLAN = trunk_plan("test_trunk_dtmf.py", "gw", "from-gw")


@pytest.fixture(scope="module")
def far():
    with far_end("gw", FAR_IP) as ua:
        yield ua


@pytest.fixture(scope="module")
def dtmf_pbx(pbx_factory, far):
    p = pbx_factory("trunk-dtmf", dialplan=PLAN)
    p.import_extensions([(1000, "pw1000")])
    p.cli("trunk", "add", "gw", "--host", f"{FAR_IP}:{far.local[1]}", "--dtmf", "info",
          "--allow", f"{FAR_IP}/32", "--context", "from-gw")
    p.start()
    far.pbx = tuple(p.server("udp"))     # its in-dialog requests go to the PBX
    return p


def test_bad_dtmf_mode_is_refused(dtmf_pbx):
    r = dtmf_pbx.cli("trunk", "add", "bad", "--host", "127.0.42.9", "--dtmf", "inband",
                     check=False)
    assert r.returncode != 0, r.stdout
    assert "bad DTMF mode `inband`: expected rfc4733, info or auto" in r.stderr, r.stderr


def infos(far, n, timeout):
    """The first `n` INFO requests the far end gets (each answered 200)."""
    got, end = [], time.time() + timeout
    while len(got) < n and time.time() < end:
        req = far.wait_request("INFO", max(0.0, end - time.time()))
        if req is None:
            break
        far.respond(req, 200, "OK")
        got.append(req)
    return got


def events(rtp, pt):
    """(seq, ts, ssrc, marker, event, end, duration) of the telephone-events received."""
    out = []
    for p in rtp.in_order():
        if p.pt == pt and len(p.payload) >= 4:
            event, flags, duration = struct.unpack("!BBH", p.payload[:4])
            out.append((p.seq, p.ts, p.ssrc, p.marker, event, bool(flags & 0x80), duration))
    return out


def test_dtmf_is_converted_both_ways_with_an_info_trunk(dtmf_pbx, phones, far):
    pbx = dtmf_pbx
    phone = phones(pbx, 1000, PHONE_IP)
    with RtpPeer.even(PHONE_IP) as phone_rtp, RtpPeer.even(FAR_IP) as far_rtp:
        out = phone.call("9555", sdp_offer(*phone_rtp.addr, pts=(0, 101)))
        inc = far.wait_call(5)
        assert inc is not None, f"the trunk got no INVITE: {out.responses}\n{pbx.log_tail()}"
        inc.answer(sdp_offer(*far_rtp.addr, pts=(0,)))
        final = out.wait_final(5)
        assert final is not None and final.status == 200, f"{final}\n{pbx.log_tail()}"
        assert inc.wait_ack(3) is not None, "the far end got no ACK"
        answer = out.answer_sdp
        assert "telephone-event" in (answer.rtpmap().get(101) or ""), \
            f"the phone's answer lost its telephone-event:\n{answer.text}"
        to_phone_leg = answer.addr          # where the phone sends (the PBX)
        to_far_leg = inc.offer.addr         # where the far end sends (the PBX)

        # Both sides talk (the PBX latches), then the phone presses 5 and #.
        phone_rtp.stream(to_phone_leg, 5, pt=0, ssrc=0x1000)
        far_rtp.stream(to_far_leg, 5, pt=0, ssrc=0x2000)
        press(phone_rtp, to_phone_leg, 5, 80000)
        press(phone_rtp, to_phone_leg, 11, 88000)
        got = infos(far, 2, 5)
        bodies = [r.body.decode() for r in got]
        assert len(got) == 2, f"INFOs at the far end: {bodies}\n{pbx.log_tail()}"
        for r in got:
            assert r.get("content-type") == "application/dtmf-relay", r.text()
        assert [b.split("\r\n")[0] for b in bodies] == ["Signal=5", "Signal=#"], bodies
        assert all("Duration=" in b for b in bodies), bodies
        # The events themselves are not relayed too (the trunk would get each key twice).
        assert not [p for p in far_rtp.rtp() if p.pt == 101], "events relayed to the trunk"

        # The far end streams audio and sends a 7 as INFO: the phone gets RFC 4733 events.
        phone_rtp.clear()
        thread, _ = far_rtp.stream_in_background(to_far_leg, 75, pt=0, ssrc=0x2000,
                                                  first_seq=5000, first_ts=400000)
        time.sleep(0.3)
        branch = inc.request("INFO", b"Signal=7\r\nDuration=160\r\n",
                             content_type="application/dtmf-relay")
        r = inc.final_response(branch, 5)
        assert r is not None and r.status == 200, f"INFO answered {r}\n{pbx.log_tail()}"
        thread.join(5)
        ev = events(phone_rtp, 101)
        assert ev, f"no telephone-event reached the phone: {phone_rtp.in_order()[:5]}\n" \
                   f"{pbx.log_tail()}"
        assert {e[4] for e in ev} == {7}, ev
        assert ev[0][3] and not any(e[3] for e in ev[1:]), f"marker on the first only: {ev}"
        assert [e[5] for e in ev[-3:]] == [True, True, True], f"three end packets: {ev}"
        assert not any(e[5] for e in ev[:-3]), ev
        assert ev[-1][6] == 1280, f"160 ms at 8 kHz: {ev}"
        assert len({e[1] for e in ev}) == 1, f"one timestamp for the event: {ev}"
        # In the far end's own stream: its SSRC, and with the audio around them the
        # sequence numbers run on without a gap or a repeat.
        stream = [p for p in phone_rtp.in_order() if p.ssrc == 0x2000]
        assert {e[2] for e in ev} == {0x2000}, ev
        seqs = [p.seq for p in stream]
        assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), \
            f"gaps or repeats: {seqs}"
        assert out.bye().status == 200


def test_an_inbound_call_from_an_info_trunk_gets_events_on_the_phone(dtmf_pbx, phones, far):
    pbx = dtmf_pbx
    phone = phones(pbx, 1000, PHONE_IP)
    with RtpPeer.even(PHONE_IP) as phone_rtp, RtpPeer.even(FAR_IP) as far_rtp:
        out = far.call("1000", sdp_offer(*far_rtp.addr, pts=(0,)))
        inc = phone.wait_call(5)
        assert inc is not None, f"1000 got no INVITE: {out.responses}\n{pbx.log_tail()}"
        pt = next((p for p, enc in inc.offer.rtpmap().items()
                   if enc.lower() == "telephone-event/8000"), None)
        assert pt is not None, f"the phone was offered no telephone-event:\n{inc.offer.text}"
        inc.answer(sdp_offer(*phone_rtp.addr, pts=(0, 101)))
        final = out.wait_final(5)
        assert final is not None and final.status == 200, f"{final}\n{pbx.log_tail()}"
        assert "telephone-event" not in final.sdp().text, final.sdp().text
        to_far_leg = final.sdp().addr       # where the trunk sends (the PBX)
        to_phone_leg = inc.offer.addr       # where the phone sends (the PBX)
        phone_rtp.stream(to_phone_leg, 5, pt=0, ssrc=0x3000)
        far_rtp.stream(to_far_leg, 5, pt=0, ssrc=0x4000)

        phone_rtp.clear()
        thread, _ = far_rtp.stream_in_background(to_far_leg, 50, pt=0, ssrc=0x4000)
        time.sleep(0.2)
        branch = out.request("INFO", b"Signal=3\r\nDuration=100\r\n",
                             content_type="application/dtmf-relay")
        r = out.final_response(branch, 5)
        assert r is not None and r.status == 200, f"INFO answered {r}\n{pbx.log_tail()}"
        thread.join(5)
        ev = events(phone_rtp, pt)
        assert ev and {e[4] for e in ev} == {3}, f"events at the phone: {ev}\n{pbx.log_tail()}"
        assert [e[5] for e in ev[-3:]] == [True, True, True], ev

        press(phone_rtp, to_phone_leg, 8, 200000)
        got = infos(far, 1, 5)
        assert [r.body.decode().split("\r\n")[0] for r in got] == ["Signal=8"], \
            f"{[r.body for r in got]}\n{pbx.log_tail()}"
        assert out.bye().status == 200
