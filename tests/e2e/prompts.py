"""The PBX's prompts as a caller hears them, and keys as a caller sends them: shared by the
tests of the calls the PBX answers itself (IVR menus, voicemail)."""

import math
import os
import struct
import time

from media import RtpPacket

SOUNDS = os.path.join(os.path.dirname(__file__), "..", "..", "sounds", "en")


def prompt_bytes(name):
    """The µ-law samples of a committed prompt (its WAV `data` chunk)."""
    with open(os.path.join(SOUNDS, f"{name}.wav"), "rb") as f:
        raw = f.read()
    at = 12
    while at + 8 <= len(raw):
        cid, size = raw[at:at + 4], struct.unpack("<I", raw[at + 4:at + 8])[0]
        if cid == b"data":
            return raw[at + 8:at + 8 + size]
        at += 8 + size + (size & 1)
    raise AssertionError(f"{name}.wav has no data chunk")


def press(rtp, to_pbx, digit_event, ts):
    """RFC 4733 §2.5: a key held 120 ms: start with the marker, updates, the end three times."""
    ssrc = 0x5151
    seq = 1000
    for i, (end, duration) in enumerate([(False, 160), (False, 480), (False, 800),
                                         (True, 960), (True, 960), (True, 960)]):
        payload = bytes([digit_event, (0x80 if end else 0) | 10]) + struct.pack("!H", duration)
        rtp.send(RtpPacket(101, seq + i, ts, ssrc, payload, marker=(i == 0)), to_pbx)
        time.sleep(0.04)


def ulaw(sample):
    """ITU-T G.711 µ-law of a 16-bit linear sample."""
    sign = 0x80 if sample < 0 else 0
    magnitude = min(abs(sample), 32635) + 0x84
    exponent = max(0, magnitude.bit_length() - 8)
    mantissa = (magnitude >> (exponent + 3)) & 0x0F
    return ~(sign | (exponent << 4) | mantissa) & 0xFF


def tone_packets(low, high, ms, amplitude=6000):
    """A DTMF key as G.711 µ-law frames of 20 ms (two sines, no twist)."""
    samples = [amplitude * (math.sin(2 * math.pi * low * n / 8000)
                            + math.sin(2 * math.pi * high * n / 8000)) for n in range(ms * 8)]
    data = bytes(ulaw(int(x)) for x in samples)
    return [data[i:i + 160] for i in range(0, len(data), 160)]


def prompt_received(rtp, name, timeout):
    """Waits until the payloads received hold the whole prompt `name`; returns the bytes."""
    want = prompt_bytes(name)
    end = time.time() + timeout
    got = b""
    while time.time() < end:
        got = b"".join(p.payload for p in rtp.in_order())
        if want in got:
            return got
        time.sleep(0.2)
    raise AssertionError(f"prompt {name} ({len(want)} bytes) not received; got {len(got)} bytes")


KEYS = {**{str(d): d for d in range(10)}, "*": 10, "#": 11}


def keys(rtp, to_pbx, text, ts):
    """Presses each key of `text` as RFC 4733 events (`press`), 0.3 s apart; returns the
    timestamp for the next key."""
    for k in text:
        press(rtp, to_pbx, KEYS[k], ts=ts)
        ts += 2400
        time.sleep(0.1)
    return ts
