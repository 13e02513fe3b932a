"""Shared pieces of the call tests (tests/e2e/test_calls_*.py).

- `start_call_pbx`: a PBX for call tests: its own `[rtp] ports` block (conftest gives every
  instance one), extensions with password `pw<N>`, optional extra config (`[calls]`...).
- `establish`: a python caller calls a python callee through the PBX (407 answered, 180, 200,
  ACK), both with an `RtpPeer`; returns a `Call` with both sides' SIP and media.
- `assert_pbx_sdp`: the SDP a phone sees is anchored at the PBX (c=127.0.0.1, an even port of
  the PBX's `[rtp] ports`).
- SIPp recipe drivers (`SippAnswer`, `sipp_call`) and `baresip_call` (two BaresipPhones, each
  plays its own tone and records the other's).
"""

import os
import re
import signal
import socket
import subprocess
import time

import pytest

from baresip_phone import BaresipPhone, wait_file_stable
from callclient import Sdp, sdp_offer
from conftest import CLIENTS, DOMAIN, free_port, require
from media import LoopbackSniffer, RtpPacket, RtpPeer, analyse_tone, write_tone_wav

PBX_IP = "127.0.0.1"
SIPP_DIR = os.path.join(CLIENTS, "sipp")

# the tones of the baresip tests: not harmonics of each other
TONE_A, TONE_B = 1000, 640


def password(number):
    return f"pw{number}"


def start_call_pbx(pbx_factory, numbers, name="calls", extra_toml="", encryption=None):
    """Make and start a PBX with extensions `numbers` (password pw<N>); `encryption` maps a
    number to its `--media-encryption` policy (those are added one by one with the flag)."""
    p = pbx_factory(name, extra_toml)
    encryption = encryption or {}
    plain = [n for n in numbers if n not in encryption]
    if plain:
        p.import_extensions([(n, password(n)) for n in plain])
    for n, policy in encryption.items():
        p.add_extension(n, password(n), media_encryption=policy)
    return p.start()


def assert_pbx_sdp(pbx, sdp, who):
    """`sdp` (seen by `who`) has the PBX's address and an even port of its RTP range."""
    assert sdp is not None, f"{who}: no SDP"
    assert sdp.ip == PBX_IP, f"{who}: media not anchored at the PBX: c={sdp.ip}\n{sdp.text}"
    assert pbx.in_rtp_range(sdp.port), \
        f"{who}: port {sdp.port} not in [rtp] ports {pbx.rtp_ports}\n{sdp.text}"
    assert sdp.port % 2 == 0, f"{who}: odd RTP port {sdp.port}"


class Call:
    """An established python-to-python call through the PBX."""

    def __init__(self, caller, callee, out, inc, caller_rtp, callee_rtp):
        self.caller, self.callee = caller, callee          # Phones
        self.out, self.inc = out, inc                      # OutgoingCall, IncomingCall
        self.caller_rtp, self.callee_rtp = caller_rtp, callee_rtp
        self.to_callee = inc.offer.addr                    # where the callee sends (PBX)
        self.to_caller = out.answer_sdp.addr               # where the caller sends (PBX)

    def close(self):
        self.caller_rtp.close()
        self.callee_rtp.close()


def wait_incoming(pbx, callee, out, timeout=5.0):
    """The callee's IncomingCall for `out`; fails at once, with the caller's final response,
    when the call ends before reaching the callee (e.g. 501, 404)."""
    end = time.time() + timeout
    while True:
        inc = callee.wait_call(0.1)
        if inc is not None:
            return inc
        early = out.peek_final()
        if early is not None or time.time() >= end:
            pytest.fail(f"{callee.name} got no INVITE; the caller got "
                        f"{early if early is not None else out.responses} "
                        f"(callee saw: {callee.describe_inbox()})\n{pbx.log_tail()}")


def answer_pts(offer):
    """What a PCMU phone answers: PCMU, plus telephone-event at the offer's payload type."""
    events = [pt for pt, enc in offer.rtpmap().items() if enc.lower().startswith("telephone-event")]
    return [0] + events[:1], {pt: "telephone-event/8000" for pt in events[:1]}


def establish(pbx, caller, callee, caller_pts=(0, 8, 101), caller_rtpmap=None,
              caller_rtp=None, callee_rtp=None, callee_sdp_addr=None):
    """caller -> callee through the PBX; returns a `Call`. The callee answers PCMU (+ the
    offered telephone-event) at `callee_sdp_addr` (default: its RtpPeer's address)."""
    caller_rtp = caller_rtp or RtpPeer.even(caller.local[0])
    callee_rtp = callee_rtp or RtpPeer.even(callee.local[0])
    try:
        out = caller.call(callee.user, sdp_offer(*caller_rtp.addr, pts=caller_pts,
                                                 rtpmap=caller_rtpmap))
        inc = wait_incoming(pbx, callee, out)
        assert inc.offer is not None, f"the callee's INVITE has no SDP:\n{inc.invite.text()}"
        inc.ring()
        pts, rtpmap = answer_pts(inc.offer)
        inc.answer(sdp_offer(*(callee_sdp_addr or callee_rtp.addr), pts=pts, rtpmap=rtpmap))
        final = out.wait_final(5)
        assert final is not None and final.status == 200, \
            f"caller: expected 200, got {final}; all: {out.responses}\n{pbx.log_tail()}"
        assert inc.wait_ack(3) is not None, "the callee got no ACK for its 200"
        assert_pbx_sdp(pbx, inc.offer, "callee (INVITE from the PBX)")
        assert_pbx_sdp(pbx, out.answer_sdp, "caller (200 from the PBX)")
    except BaseException:
        caller_rtp.close()
        callee_rtp.close()
        raise
    return Call(caller, callee, out, inc, caller_rtp, callee_rtp)


def compare_streams(sent, received):
    """Problems (a list of strings, empty when none) between packets sent and received:
    each sent packet arrived once, same PT, SSRC, sequence number, timestamp, payload bytes."""
    by_seq = {}
    for p in received:
        by_seq.setdefault(p.seq, []).append(p)
    problems = []
    for s in sent:
        got = by_seq.get(s.seq, [])
        if not got:
            problems.append(f"seq {s.seq} missing")
            continue
        if len(got) > 1:
            problems.append(f"seq {s.seq} received {len(got)} times")
        r = got[0]
        for field in ("pt", "ssrc", "ts", "payload"):
            if getattr(r, field) != getattr(s, field):
                problems.append(f"seq {s.seq}: {field} {getattr(r, field)!r:.40} != sent "
                                f"{getattr(s, field)!r:.40}")
    return problems


def wait_cdr(pbx, caller, called, timeout=5.0):
    row = pbx.wait_cdr(caller, called, timeout)
    assert row is not None, (f"no CDR row {caller} -> {called} in `pbx cdr list`:\n"
                             f"{pbx.cli('cdr', 'list').stdout}")
    return row


# ------------------------------------------------------------------------------------ SIPp


def even_free_port(ip):
    for _ in range(100):
        p = free_port(socket.SOCK_DGRAM, ip)
        if p % 2 == 0 and p < 65000:
            try:
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                s.bind((ip, p + 1))
                s.close()
                return p
            except OSError:
                continue
    raise RuntimeError("no even free port")


class SippAnswer:
    """tests/clients/sipp/answer.sh in the background: registers USER from LOCAL_IP:SIP_PORT,
    answers one call with SDP for LOCAL_IP:RTP_PORT and echoes its RTP (-rtp_echo), waits
    for BYE, un-registers."""

    def __init__(self, pbx, user, local_ip, tmp_path, timeout=30):
        require("sipp")
        self.rtp_port = even_free_port(local_ip)
        self.local_ip = local_ip
        self.logs = os.path.join(str(tmp_path), f"sipp-answer-{user}")
        self.out = self.logs + ".out"
        env = dict(os.environ, LOCAL_IP=local_ip, RTP_PORT=str(self.rtp_port), DOMAIN=DOMAIN,
                   TIMEOUT=str(timeout), LOG_DIR=self.logs, TRANSPORT="u1")
        self.f = open(self.out, "w")
        # its own process group: answer.sh runs sipp as a child, stop() ends both
        self.proc = subprocess.Popen([os.path.join(SIPP_DIR, "answer.sh"), pbx.hostport("udp"),
                                      str(user), password(user)], stdout=self.f,
                                     stderr=subprocess.STDOUT, env=env, text=True,
                                     start_new_session=True)
        self.timeout = timeout

    def output(self):
        with open(self.out, errors="replace") as f:
            return f.read()

    def wait_ready(self, timeout=20):
        end = time.time() + timeout
        while time.time() < end:
            if "sipp-answer: READY" in self.output():
                return True
            if self.proc.poll() is not None:
                return False
            time.sleep(0.1)
        return False

    def wait(self, timeout=None):
        """Its exit code; after `timeout` s it is stopped (and the code is that of the stop)."""
        try:
            rc = self.proc.wait(timeout or self.timeout + 40)
        except subprocess.TimeoutExpired:
            rc = self.stop()
        if not self.f.closed:
            self.f.close()
        return rc

    def stop(self):
        """SIGTERM to its process group (the script and its sipp), SIGKILL if need be."""
        if self.proc.poll() is None:
            for sig, wait in ((signal.SIGTERM, 3), (signal.SIGKILL, 3)):
                try:
                    os.killpg(self.proc.pid, sig)
                except ProcessLookupError:
                    break
                try:
                    self.proc.wait(wait)
                    break
                except subprocess.TimeoutExpired:
                    continue
        return self.proc.wait(5)

    def messages(self):
        """SIPp's message trace of the answering run (what it received and sent)."""
        try:
            with open(os.path.join(self.logs, "answer.messages.log"), errors="replace") as f:
                return f.read()
        except OSError:
            return ""


def sipp_received_sdp(messages, method="INVITE"):
    """The SDP of the first `method` request in a SIPp -trace_msg log, as an Sdp (or None)."""
    text = messages.replace("\r\n", "\n")
    m = re.search(rf"^{method} sip:.*?\n\n(.*?)(?:\n-{{10,}}|\Z)", text, re.M | re.S)
    return Sdp(m.group(1)) if m and "m=audio" in m.group(1) else None


def sipp_call(pbx, user, callee, local_ip, tmp_path, seconds=3, timeout=25):
    """tests/clients/sipp/call.sh: INVITE (407 answered), streams a 1 kHz u-law tone with
    rtp_stream from LOCAL_IP:RTP_PORT for `seconds`, BYE. Returns (rc, output, rtp_port)."""
    require("sipp", "sox")
    rtp_port = even_free_port(local_ip)
    logs = os.path.join(str(tmp_path), f"sipp-call-{user}")
    env = dict(os.environ, LOCAL_IP=local_ip, RTP_PORT=str(rtp_port), DOMAIN=DOMAIN,
               TIMEOUT=str(timeout), LOG_DIR=logs, TRANSPORT="u1")
    r = subprocess.run([os.path.join(SIPP_DIR, "call.sh"), pbx.hostport("udp"), str(user),
                        password(user), str(callee), str(seconds)], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, text=True, env=env, timeout=timeout + 40)
    out = r.stdout
    for name in ("call.errors.log", "call.messages.log"):
        try:
            with open(os.path.join(logs, name), errors="replace") as f:
                out += f"\n--- {name} (tail):\n" + f.read()[-4000:]
        except OSError:
            pass
    return r.returncode, out, rtp_port


# ------------------------------------------------------------------------------------ baresip


class BaresipCallResult:
    def __init__(self):
        self.a = self.b = None               # the BaresipPhones (stopped)
        self.a_report = self.b_report = None  # ToneReports of what each one received
        self.sniffer = None


def baresip_call(pbx, tmp_path, a_user, b_user, a_ip="127.0.0.2", b_ip="127.0.0.3",
                 a_transport="udp", b_transport="udp", a_mediaenc="", b_mediaenc="",
                 seconds=3.0, direct=False, b_refuses=0):
    """A (a_user) calls B (b_user): A plays TONE_A, B auto-answers and plays TONE_B; both
    record; A hangs up after `seconds`. Through the PBX (registered, A dials B's number) or,
    with `direct`, A dials B's own address (no PBX, no registration). Loopback UDP is
    sniffed meanwhile. Asserts the call was established and closed on both sides; returns a
    BaresipCallResult (tone reports of both recordings, menc events, the sniffer).
    `b_refuses`: B refuses that many INVITEs first (CALL_CLOSED, e.g. "No audio codecs" for
    an offer it cannot take) before one establishes the call."""
    tmp = str(tmp_path)
    tone_a = write_tone_wav(os.path.join(tmp, f"tone-{TONE_A}.wav"), TONE_A, seconds + 20)
    tone_b = write_tone_wav(os.path.join(tmp, f"tone-{TONE_B}.wav"), TONE_B, seconds + 20)
    res = BaresipCallResult()
    server_a = None if direct else pbx.hostport(a_transport)
    server_b = None if direct else pbx.hostport(b_transport)
    b = BaresipPhone(tmp, b_user, password(b_user), server_b, b_transport, b_mediaenc, b_ip,
                     play=tone_b, answer="auto")
    a = BaresipPhone(tmp, a_user, password(a_user), server_a, a_transport, a_mediaenc, a_ip,
                     play=tone_a, answer="manual")
    res.a, res.b = a, b
    # everything to or from the phones' RTP ports (baresip sends from 127.0.0.1, see
    # BaresipPhone.owns), and what reaches B's SIP port over UDP (its INVITE)
    res.sniffer = LoopbackSniffer(keep=lambda s, d: a.owns(s) or a.owns(d) or b.owns(s)
                                  or b.owns(d) or d == (b_ip, getattr(b, "sip_port", None)))
    where = "" if direct else f"\n{pbx.log_tail()}"
    try:
        b.start()
        a.start()
        if not direct:
            assert b.wait_registered(), f"B {b_user} did not register\n{b.log()}{where}"
            assert a.wait_registered(), f"A {a_user} did not register\n{a.log()}{where}"
        target = b.direct_uri if direct else str(b_user)
        a.dial(target)
        ea = a.wait_event({"CALL_ESTABLISHED", "CALL_CLOSED"}, 10)
        assert ea is not None and ea["type"] == "CALL_ESTABLISHED", \
            f"A -> {target}: not established: {ea}\n{a.log()}\n{b.log()}{where}"
        for n in range(b_refuses):
            eb = b.wait_event({"CALL_ESTABLISHED", "CALL_CLOSED"}, 5)
            assert eb is not None and eb["type"] == "CALL_CLOSED", \
                f"B: expected to refuse INVITE {n + 1} of the call: {eb}\n{b.log()}{where}"
        eb = b.wait_event({"CALL_ESTABLISHED", "CALL_CLOSED"}, 5)
        assert eb is not None and eb["type"] == "CALL_ESTABLISHED", \
            f"B: not established: {eb}\n{b.log()}{where}"
        time.sleep(seconds)
        a.hangup()
        ca = a.wait_event("CALL_CLOSED", 5)
        cb = b.wait_event("CALL_CLOSED", 5)
        assert ca is not None, f"A: no CALL_CLOSED after hangup\n{a.log()}{where}"
        assert cb is not None, f"B: the hang-up did not reach B (no CALL_CLOSED)\n{b.log()}{where}"
    finally:
        a.stop()
        b.stop()
        res.sniffer.close()
    for phone, attr in ((a, "a_report"), (b, "b_report")):
        rec = phone.recording()
        assert rec is not None, f"{phone.user}: no recording\n{phone.log()}"
        wait_file_stable(rec)
        setattr(res, attr, analyse_tone(rec))
    return res


def assert_tones(res, pbx=None):
    """B heard A's tone and A heard B's tone."""
    tail = f"\n{pbx.log_tail()}" if pbx else ""
    assert res.b_report.has_tone(TONE_A), \
        f"B did not receive A's {TONE_A} Hz tone: {res.b_report}{tail}"
    assert res.a_report.has_tone(TONE_B), \
        f"A did not receive B's {TONE_B} Hz tone: {res.a_report}{tail}"


def assert_media_via_pbx(res, pbx, min_packets=100):
    """Every RTP packet each phone received came from the PBX (127.0.0.1, a port of its RTP
    range), at least `min_packets` each: none went directly between the phones. (baresip
    sends RTP from a socket bound to any address, i.e. from 127.0.0.1: its source address
    says nothing, its source port does.)"""
    sn = res.sniffer
    for phone in (res.a, res.b):
        got = sn.matching(dst=phone.owns)
        from_pbx = [p for p in got if p[1][0] == PBX_IP and pbx.in_rtp_range(p[1][1])]
        assert len(from_pbx) >= min_packets and len(from_pbx) == len(got), \
            (f"{phone.user}: {len(from_pbx)} of {len(got)} RTP packets it received came from "
             f"the PBX's relay ports {pbx.rtp_ports}:\n{sn.describe()}")
        sent = sn.matching(src=phone.owns)
        to_pbx = [p for p in sent if p[2][0] == PBX_IP and pbx.in_rtp_range(p[2][1])]
        assert len(to_pbx) >= min_packets and len(to_pbx) == len(sent), \
            (f"{phone.user}: {len(to_pbx)} of {len(sent)} RTP packets it sent went to the "
             f"PBX's relay ports {pbx.rtp_ports}:\n{sn.describe()}")


def leg_packets(sn, src, dst):
    """{(ssrc, seq): payload} of the RTP packets from src to dst (`LoopbackSniffer.matching`
    specs)."""
    out = {}
    for _, _, _, data in sn.matching(src=src, dst=dst):
        p = RtpPacket.parse(data)
        out[(p.ssrc, p.seq)] = p.payload
    return out


def relay_pairs(res, pbx, sender, receiver):
    """The packets `sender` sent to the PBX and the PBX sent on to `receiver`, paired by
    (SSRC, seq) (the relay preserves both): returns (pairs, identical payloads, payload
    lengths in, payload lengths out)."""
    from_pbx = lambda a: a[0] == PBX_IP and pbx.in_rtp_range(a[1])  # noqa: E731
    inbound = leg_packets(res.sniffer, sender.owns, from_pbx)
    outbound = leg_packets(res.sniffer, from_pbx, receiver.owns)
    common = set(inbound) & set(outbound)
    same = sum(1 for k in common if inbound[k] == outbound[k])
    lin = sorted({len(inbound[k]) for k in common})
    lout = sorted({len(outbound[k]) for k in common})
    return len(common), same, lin, lout


def sip_received_udp(res, phone):
    """The SIP requests (texts) the sniffer saw arriving at `phone`'s UDP SIP port."""
    out = []
    for _, _, _, data in res.sniffer.matching(dst=(phone.local_ip, phone.sip_port), rtp_only=False):
        text = data.decode("utf-8", "replace")
        if re.match(r"^[A-Z]+ sips?:", text):
            out.append(text)
    return out


def menc_suite(events):
    """'AES_CM_128_HMAC_SHA1_80' from CALL_MENC params like '0,audio,AES_CM_128_HMAC_SHA1_80'."""
    return [re.split(r"[,\s]+", e.strip())[-1] for e in events if e.strip()]
