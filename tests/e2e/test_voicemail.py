"""Voicemail end to end: a caller who reaches a mailbox leaves a message, the PBX files it
(row, WAV on disk) and mails it to a real SMTP server; the owner listens with `*97`; a
`kill -9` in the middle of a recording keeps what was said.

- An extension with no device registered: the caller is answered by the PBX, hears the
  default greeting ("the person at extension 3 4 0 1 is unavailable ...") and the beep, its
  voice (a 440 Hz tone sent as PCMU) is recorded until it hangs up. `pbx voicemail list`
  shows the message; the WAV's dominant frequency is the caller's tone.
- The mail server is down when the message is filed: the e-mail waits in the spool, and once
  the server is up it arrives with the WAV attached (the same bytes as the file on disk) and
  the caller and length in the text.
- A real softphone (baresip) playing a 1 kHz tone file leaves a message the same way, once
  with G.711 and once preferring G.722 (the PBX answers in G.722: baresip hears the greeting,
  the message decoded from G.722 holds the tone).
- `*97`: the PIN as RFC 4733 events; "you have 3 new messages" arrives as the prompt
  files' audio; `1` plays the first message (its envelope, then the recording), `7` deletes
  it (row and file) and the next plays, three times; `#` says goodbye. The owner's desk
  phone, subscribed to message-summary (RFC 3842), saw the lamp on (3/0) and, with the last
  deletion, off (0/0).
- `kill -9` of the PBX four seconds into a message: at the next start the message is filed,
  with at least three seconds of it.
- A mailbox set `--delete-after-email true` gets the mail with the WAV, and keeps nothing.

Addresses: the PBX 127.0.0.1; callers 127.0.0.31; baresip 127.0.0.32; the desk phone
subscribed to the lamp 127.0.0.34.
"""

import os
import re
import threading
import time

import pytest

from baresip_phone import BaresipPhone, wait_file_stable
from callclient import sdp_offer
from callhelpers import password
from conftest import free_port
from mailsink import SmtpSink
from media import RtpPacket, RtpPeer, analyse_tone, write_tone_wav
from mwiclient import Phone as MwiPhone
from prompts import keys, prompt_bytes, prompt_received, tone_packets

CALLER_IP = "127.0.0.31"
BARESIP_IP = "127.0.0.32"
LAMP_IP = "127.0.0.34"
OWNER, CALLER, SOFTPHONE, MAIL_ONLY = 3401, 3402, 3403, 3404
PIN = "4071"
OWNER_MAIL = "owner@example.com"
VOICE = 440

PLAN = """\
# written by tests/e2e/test_voicemail.py
[defaults]
context = "staff"

[context.staff]
may_call = ["any"]

[[context.staff.rule]]
extension = true
steps = [{ dial = { targets = ["${number}"], timeout = "10s",
                    on_busy = [{ voicemail = "${number}" }],
                    on_no_answer = [{ voicemail = "${number}" }],
                    on_unavailable = [{ voicemail = "${number}" }] } }]

[[context.staff.rule]]
pattern = "*97"
steps = ["answer", { voicemail_menu = { mailbox = "${caller}" } }]
"""



@pytest.fixture(scope="module")
def smtp_port():
    return free_port()


@pytest.fixture(scope="module")
def vm_pbx(pbx_factory, smtp_port):
    # Keys at the head of the extra TOML land in the [voicemail] section conftest writes.
    extra = ('min_message = "1s"\n\n'
             f'[smtp]\nurl = "smtp://127.0.0.1:{smtp_port}"\n')
    p = pbx_factory("voicemail", extra, dialplan=PLAN)
    p.cli("extension", "add", str(OWNER), "--password", password(OWNER), "--name", "Olive Owner",
          "--email", OWNER_MAIL, "--pin", PIN)
    p.cli("extension", "add", str(CALLER), "--password", password(CALLER), "--name", "Carl Caller")
    p.cli("extension", "add", str(SOFTPHONE), "--password", password(SOFTPHONE))
    p.cli("extension", "add", str(MAIL_ONLY), "--password", password(MAIL_ONLY),
          "--email", "mail-only@example.com")
    p.cli("extension", "set", str(MAIL_ONLY), "--delete-after-email", "true")
    return p.start()


def messages(pbx, mailbox):
    """`pbx voicemail list MAILBOX` as dicts (id, folder, caller, time, length, file)."""
    out = pbx.cli("voicemail", "list", str(mailbox)).stdout
    lines = [ln for ln in out.splitlines() if ln.strip()]
    rows = []
    for ln in lines[1:]:
        if set(ln.strip()) <= {"-", " ", "+", "|"}:
            continue
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


def seconds(length):
    m, s = length.split(":")
    return int(m) * 60 + int(s)


def on_disk(pbx, path):
    return path if os.path.isabs(path) else os.path.join(pbx.dir, path)


def voice(rtp, to_pbx, secs, first_seq=1, first_ts=0):
    """`secs` of a 440 Hz tone as PCMU, in real time (20 ms packets)."""
    seq, ts = first_seq, first_ts
    frames = tone_packets(VOICE, VOICE, int(secs * 1000), amplitude=5000)
    for frame in frames:
        rtp.send(RtpPacket(0, seq & 0xFFFF, ts & 0xFFFFFFFF, 0x4401, frame), to_pbx)
        seq, ts = seq + 1, ts + 160
        time.sleep(0.02)
    return seq, ts


def reach_mailbox(pbx, phones, caller, dialed):
    """`caller` dials `dialed` (unregistered): answered by the PBX, hears the greeting and the
    beep. Returns (call, rtp, where to send)."""
    phone = phones(pbx, caller, CALLER_IP)
    rtp = RtpPeer.even(CALLER_IP)
    out = phone.call(str(dialed), sdp_offer(*rtp.addr, pts=(0, 101)))
    final = out.wait_final(5)
    assert final is not None and final.status == 200, f"{final}\n{pbx.log_tail()}"
    to_pbx = out.answer_sdp.addr
    # Let the PBX latch onto the caller's address (symmetric RTP) while the greeting plays.
    rtp.stream(to_pbx, 5, pt=0, seed="latch")
    got = prompt_received(rtp, "vm-intro", timeout=25)
    assert prompt_bytes("vm-isunavail") in got, "the default greeting for an unavailable mailbox"
    prompt_received(rtp, "beep", timeout=5)
    return out, rtp, to_pbx


def test_a_message_is_filed_and_mailed_once_the_mail_server_is_up(vm_pbx, phones, smtp_port,
                                                                  tmp_path):
    out, rtp, to_pbx = reach_mailbox(vm_pbx, phones, CALLER, OWNER)
    try:
        voice(rtp, to_pbx, 3.0)
        r = out.bye()
        assert r is not None and r.status == 200, f"BYE: {r}"
    finally:
        rtp.close()
    rows = wait_messages(vm_pbx, OWNER, 1)
    assert len(rows) == 1, f"{rows}\n{vm_pbx.log_tail()}"
    row = rows[0]
    assert row["folder"] == "new" and str(CALLER) in row["caller"], row
    assert 2 <= seconds(row["length"]) <= 4, row
    wav = on_disk(vm_pbx, row["file"])
    report = analyse_tone(wav)
    assert report.has_tone(VOICE, min_seconds=1.5), f"the caller's voice is not in the file: {report}"

    # The mail server was down: the message waits in the spool; up now, it arrives.
    sink = SmtpSink(tmp_path / "mail", smtp_port)
    try:
        mails = sink.wait(1, 30)
    finally:
        sink.stop()
    assert len(mails) == 1, f"{len(mails)} mails\n{vm_pbx.log_tail()}"
    mail = mails[0]
    assert OWNER_MAIL in mail["To"], mail["To"]
    assert str(CALLER) in mail["Subject"], mail["Subject"]
    text = next(p for p in mail.walk() if p.get_content_type() == "text/plain")
    body = text.get_payload(decode=True).decode()
    assert str(CALLER) in body and "Length:   0:0" in body, body
    wavs = [p for p in mail.walk() if p.get_content_type() == "audio/wav"]
    assert len(wavs) == 1, [p.get_content_type() for p in mail.walk()]
    with open(wav, "rb") as f:
        assert wavs[0].get_payload(decode=True) == f.read(), "the attachment is the file on disk"


@pytest.mark.parametrize("codecs", ["pcmu,pcma", "G722/16000/1,pcmu"])
def test_a_softphone_playing_a_tone_leaves_a_message(vm_pbx, tmp_path, codecs):
    """Also with a phone that prefers G.722: the PBX answers in G.722, its greeting is heard
    and the message decoded from G.722 holds the tone."""
    tone = write_tone_wav(str(tmp_path / "tone.wav"), 1000, 40)
    phone = BaresipPhone(tmp_path, SOFTPHONE, password(SOFTPHONE), vm_pbx.hostport("udp"), "udp",
                         "", BARESIP_IP, play=tone, answer="manual", codecs=codecs)
    before = len(messages(vm_pbx, OWNER))
    try:
        phone.start()
        assert phone.wait_registered(), f"baresip did not register\n{phone.log()}"
        phone.dial(str(OWNER))
        event = phone.wait_event({"CALL_ESTABLISHED", "CALL_CLOSED"}, 10)
        assert event is not None and event["type"] == "CALL_ESTABLISHED", \
            f"not answered: {event}\n{phone.log()}\n{vm_pbx.log_tail()}"
        # The greeting (about 11 s), the beep, then 4 s of the tone.
        time.sleep(16)
        phone.hangup()
        assert phone.wait_event("CALL_CLOSED", 5) is not None, phone.log()
    finally:
        phone.stop()
    rows = wait_messages(vm_pbx, OWNER, before + 1)
    assert len(rows) == before + 1, f"{rows}\n{vm_pbx.log_tail()}"
    row = rows[-1]
    assert str(SOFTPHONE) in row["caller"], row
    report = analyse_tone(on_disk(vm_pbx, row["file"]))
    assert report.has_tone(1000, min_seconds=1.5), f"the softphone's tone is not in it: {report}"
    codec = codecs.split(",")[0].split("/")[0].upper()
    assert re.search(rf"answered by the PBX.*codec=\"?{codec}", vm_pbx.log_text()), \
        f"not answered in {codec}\n{vm_pbx.log_tail()}"
    heard = phone.recording()
    assert heard is not None, phone.log()
    wait_file_stable(heard)
    greeting = analyse_tone(heard)
    assert greeting.level_dbfs > -35 and greeting.duration > 5, \
        f"the greeting was not heard in {codec}: {greeting}"


def lamp(notify):
    """(waiting, "new/old") of a message-summary NOTIFY body."""
    body = notify.text()
    waiting = re.search(r"Messages-Waiting:\s*(\w+)", body)
    counts = re.search(r"Voice-Message:\s*(\d+/\d+)", body)
    return (waiting.group(1) if waiting else None, counts.group(1) if counts else None)


def test_the_owner_hears_the_count_plays_and_deletes_and_the_lamp_follows(vm_pbx, phones):
    rows = messages(vm_pbx, OWNER)
    assert len(rows) == 3, rows
    # The owner's desk phone subscribes to its mailbox: the lamp is on, 3 new.
    desk = MwiPhone(vm_pbx, OWNER, LAMP_IP)
    phone = phones(vm_pbx, OWNER, CALLER_IP)
    rtp = RtpPeer.even(CALLER_IP)
    stop, lamp_thread = threading.Event(), None
    try:
        r = desk.subscribe(password=password(OWNER))
        assert r is not None and r.status == 200, r and r.first
        first = desk.notify()
        assert first is not None, vm_pbx.log_tail()
        desk.answer(first)
        assert lamp(first) == ("yes", "3/0"), first.text()
        # The desk phone answers every NOTIFY while the owner listens from another phone.
        seen, stop = [lamp(first)], threading.Event()

        def keep_answering():
            while not stop.is_set():
                n = desk.notify(timeout=0.5)
                if n is not None:
                    desk.answer(n)
                    seen.append(lamp(n))

        lamp_thread = threading.Thread(target=keep_answering, daemon=True)
        lamp_thread.start()

        out = phone.call("*97", sdp_offer(*rtp.addr, pts=(0, 101)))
        final = out.wait_final(5)
        assert final is not None and final.status == 200, f"{final}\n{vm_pbx.log_tail()}"
        to_pbx = out.answer_sdp.addr
        prompt_received(rtp, "vm-password", timeout=8)
        rtp.clear()
        ts = keys(rtp, to_pbx, PIN + "#", ts=16000)
        # "You have three new messages", then the main menu.
        got = prompt_received(rtp, "vm-messages", timeout=15)
        for part in ("vm-youhave", "digits/3", "vm-INBOX"):
            assert prompt_bytes(part) in got, f"{part} not heard"
        time.sleep(0.5)
        rtp.clear()
        ts = keys(rtp, to_pbx, "1", ts)
        # The first message: "first message", its envelope, then the recording itself.
        prompt_received(rtp, "vm-first", timeout=10)
        # `7` deletes it and the next one plays (Asterisk's nextaftercmd): three times.
        for _ in range(3):
            time.sleep(1.5)
            rtp.clear()
            ts = keys(rtp, to_pbx, "7", ts)
            prompt_received(rtp, "vm-deleted", timeout=10)
        ts = keys(rtp, to_pbx, "#", ts)
        assert out.wait_bye(25) is not None, f"no goodbye\n{vm_pbx.log_tail()}"

        # The lamp went off with the last deletion.
        end = time.time() + 10
        while seen[-1][0] != "no" and time.time() < end:
            time.sleep(0.2)
        assert seen[-1] == ("no", "0/0"), f"{seen}\n{vm_pbx.log_tail()}"
    finally:
        stop.set()
        rtp.close()
        if lamp_thread is not None:
            lamp_thread.join(2)
        desk.close()
    left = messages(vm_pbx, OWNER)
    assert left == [], left
    for row in rows:
        assert not os.path.exists(on_disk(vm_pbx, row["file"])), f"{row['file']} is left"


def test_kill_9_while_recording_keeps_what_was_said(vm_pbx, phones):
    before = len(messages(vm_pbx, OWNER))
    out, rtp, to_pbx = reach_mailbox(vm_pbx, phones, CALLER, OWNER)
    try:
        voice(rtp, to_pbx, 4.0)
        vm_pbx.proc.kill()
        vm_pbx.proc.wait(5)
        vm_pbx.proc = None
        vm_pbx.logf.close()
    finally:
        rtp.close()
    vm_pbx.start()
    rows = wait_messages(vm_pbx, OWNER, before + 1)
    assert len(rows) == before + 1, f"{rows}\n{vm_pbx.log_tail()}"
    row = rows[-1]
    assert seconds(row["length"]) >= 3, f"less than the last second was lost: {row}"
    report = analyse_tone(on_disk(vm_pbx, row["file"]))
    assert report.has_tone(VOICE, min_seconds=1.5), report
    assert re.search(r"filing a recording cut short", vm_pbx.log_text()), vm_pbx.log_tail()


def test_a_mailbox_for_mail_only_keeps_nothing_once_mailed(vm_pbx, phones, smtp_port,
                                                          tmp_path):
    """`--delete-after-email true`: the message is mailed, then deleted (row and file)."""
    sink = SmtpSink(tmp_path / "mail", smtp_port)
    try:
        out, rtp, to_pbx = reach_mailbox(vm_pbx, phones, CALLER, MAIL_ONLY)
        try:
            voice(rtp, to_pbx, 2.0)
            out.bye()
        finally:
            rtp.close()
        end, mine = time.time() + 30, []
        while not mine and time.time() < end:
            mine = [m for m in sink.messages() if "mail-only@example.com" in m["To"]]
            time.sleep(0.2)
    finally:
        sink.stop()
    assert len(mine) == 1, f"{len(mine)} mails\n{vm_pbx.log_tail()}"
    wav = [p for p in mine[0].walk() if p.get_content_type() == "audio/wav"]
    assert len(wav) == 1 and len(wav[0].get_payload(decode=True)) > 16000, "the WAV is attached"
    # The PBX deletes the message once the server has accepted the mail (its 250 to DATA),
    # which is a moment after the sink has the mail: wait for it.
    end, kept = time.time() + 10, messages(vm_pbx, MAIL_ONLY)
    while kept and time.time() < end:
        time.sleep(0.2)
        kept = messages(vm_pbx, MAIL_ONLY)
    assert kept == [], "nothing kept once mailed"
    left = os.listdir(os.path.join(vm_pbx.dir, "data", "voicemail", str(MAIL_ONLY)))
    assert not [f for f in left if f.endswith(".wav")], left
