"""Two baresip phones call each other through the PBX (plain RTP over UDP): A plays a 1 kHz
tone, B plays 640 Hz, each records what it receives; each recording must hold the other's tone
(dominant frequency within 20 Hz, loud, mostly tone). The media goes through the PBX's relay
only, and the relay passes the G.711 payload through byte for byte.
"""

import pytest

from callhelpers import (assert_media_via_pbx, assert_tones, baresip_call, relay_pairs,
                         start_call_pbx, wait_cdr)


@pytest.fixture(scope="module")
def call_pbx(pbx_factory):
    return start_call_pbx(pbx_factory, [3601, 3602], name="calls-baresip")


def test_baresip_calls_baresip_tone_both_ways_through_relay(call_pbx, tmp_path):
    pbx = call_pbx
    res = baresip_call(pbx, tmp_path, 3601, 3602)
    assert_tones(res, pbx)
    assert_media_via_pbx(res, pbx)
    for sender, receiver in ((res.a, res.b), (res.b, res.a)):
        pairs, same, lin, lout = relay_pairs(res, pbx, sender, receiver)
        assert pairs >= 100 and same == pairs, \
            (f"{sender.user} -> {receiver.user}: {same} of {pairs} packets relayed with the same "
             f"payload bytes (lengths in {lin}, out {lout})\n{res.sniffer.describe()}")
    assert res.a.menc() == [] and res.b.menc() == []
    row = wait_cdr(pbx, 3601, 3602)
    assert row["disposition"] == "answered", row
    assert row["encrypted"] == "no/no", row
    assert row["hangup"].split()[0] == "caller", row
