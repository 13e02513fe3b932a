"""An Opus-only caller (`opus/48000/2` and `telephone-event/48000`, nothing else) leaves a
voicemail: the PBX answers it in Opus, plays the greeting and the beep as Opus, and records
the caller's voice (a 700 Hz tone encoded by libopus through PyAV) into the message's WAV,
whose dominant frequency is that tone. Touches the store (the message's row): runs on both
SQLite and PostgreSQL, unlike test_calls_opus.py.

Addresses: the PBX 127.0.0.1; the caller 127.0.61.12.
"""

import os
import re
import threading
import time

import pytest

from callclient import sdp_offer
from callhelpers import assert_pbx_sdp, password
from media import RtpPacket, RtpPeer, analyse_tone
from opus_audio import OPUS_FRAME, encode_tone

CALLER_IP = "127.0.61.12"
OWNER, CALLER = 3471, 3472
OPUS_PT, OPUS_EVENT_PT = 111, 110
VOICE = 700

PLAN = """\
# written by tests/e2e/test_voicemail_opus.py
[defaults]
context = "staff"

[context.staff]
may_call = ["any"]

[[context.staff.rule]]
extension = true
steps = [{ dial = { targets = ["${number}"], timeout = "10s",
                    on_no_answer = [{ voicemail = "${number}" }],
                    on_unavailable = [{ voicemail = "${number}" }] } }]
"""


@pytest.fixture(scope="module")
def vm_pbx(pbx_factory):
    p = pbx_factory("voicemail-opus", 'min_message = "1s"\n', dialplan=PLAN)
    p.import_extensions([(n, password(n)) for n in (OWNER, CALLER)])
    return p.start()


def messages(pbx, mailbox):
    """`pbx voicemail list MAILBOX`: the rows' (caller, length, file) cells."""
    out = pbx.cli("voicemail", "list", str(mailbox)).stdout
    rows = []
    for ln in out.splitlines()[1:]:
        cells = re.split(r"\s{2,}", ln.strip())
        if len(cells) >= 6 and cells[0].isdigit():
            rows.append(dict(zip(["id", "folder", "caller", "time", "length", "file"], cells)))
    return rows


def wait_messages(pbx, mailbox, n, timeout=10.0):
    end = time.time() + timeout
    while True:
        rows = messages(pbx, mailbox)
        if len(rows) >= n or time.time() >= end:
            return rows
        time.sleep(0.25)


def test_an_opus_only_caller_leaves_a_message_holding_its_voice(vm_pbx, phones):
    phone = phones(vm_pbx, CALLER, CALLER_IP)
    rtp = RtpPeer.even(CALLER_IP)
    stop = threading.Event()
    try:
        out = phone.call(str(OWNER), sdp_offer(
            *rtp.addr, pts=(OPUS_PT, OPUS_EVENT_PT),
            rtpmap={OPUS_PT: "opus/48000/2", OPUS_EVENT_PT: "telephone-event/48000"}))
        final = out.wait_final(15)
        assert final is not None and final.status == 200, f"{final}\n{vm_pbx.log_tail()}"
        answer = out.answer_sdp
        assert_pbx_sdp(vm_pbx, answer, "the Opus caller")
        assert answer.pts[0] == OPUS_PT, answer.text
        to_pbx = answer.addr

        # The caller talks all along (as baresip in test_voicemail.py): the greeting and the
        # beep are heard meanwhile; only what follows the beep is recorded.
        payloads = encode_tone(VOICE, 30.0, amplitude=6000)

        def talk():
            for i, payload in enumerate(payloads):
                if stop.is_set():
                    return
                rtp.send(RtpPacket(OPUS_PT, 500 + i, 4800 + i * OPUS_FRAME, 0x0700_0001,
                                   payload, marker=i == 0), to_pbx)
                time.sleep(0.02)

        talker = threading.Thread(target=talk, daemon=True)
        talker.start()
        # The greeting and beep arrive as Opus; once they stop, the PBX is recording.
        deadline, recording = time.time() + 25, False
        while not recording and time.time() < deadline:
            time.sleep(0.5)
            got = rtp.snapshot()
            recording = bool(got) and time.time() - got[-1][0] > 1.0
        assert recording, f"the greeting did not end\n{vm_pbx.log_tail()}"
        got = [p for p in rtp.rtp() if p.pt == OPUS_PT]
        assert len(got) >= 100, f"{len(got)} Opus packets of greeting\n{vm_pbx.log_tail()}"
        assert all(len(p.payload) < 160 for p in got), "the greeting came as Opus"
        time.sleep(3.0)
        stop.set()
        talker.join(2)
        r = out.bye()
        assert r is not None and r.status == 200, f"BYE: {r}"
    finally:
        stop.set()
        rtp.close()
    rows = wait_messages(vm_pbx, OWNER, 1)
    assert len(rows) == 1, f"{rows}\n{vm_pbx.log_tail()}"
    assert str(CALLER) in rows[0]["caller"], rows[0]
    minutes, secs = rows[0]["length"].split(":")
    assert 3 <= int(minutes) * 60 + int(secs) <= 6, rows[0]
    path = rows[0]["file"]
    wav = path if os.path.isabs(path) else os.path.join(vm_pbx.dir, path)
    report = analyse_tone(wav)
    assert report.has_tone(VOICE, min_seconds=1.5), f"the caller's voice is not in it: {report}"
