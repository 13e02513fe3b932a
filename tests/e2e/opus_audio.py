"""Opus and G.711 audio as the Opus call tests send and check it: tones encoded as Opus by
libopus (through PyAV), Opus packets decoded back, µ-law decoded, the strongest of a few
frequencies (Goertzel), and RFC 4733 keys on either clock.

Shared by test_calls_opus.py, test_voicemail_opus.py and test_applications_opus.py.
"""

import array
import fractions
import math
import struct
import time

import av

from media import RtpPacket, goertzel_power

OPUS_RATE = 48000
OPUS_FRAME = 960                      # 20 ms at 48 kHz


def encode_tone(freq, seconds, amplitude=8000):
    """Opus packets (bytes), 20 ms each, of a `freq` Hz tone."""
    enc = av.CodecContext.create("libopus", "w")
    enc.sample_rate, enc.layout, enc.format = OPUS_RATE, "mono", "s16"
    enc.bit_rate = 32000
    enc.time_base = fractions.Fraction(1, OPUS_RATE)
    n = int(OPUS_RATE * seconds)
    pcm = array.array("h", (int(amplitude * math.sin(2 * math.pi * freq * i / OPUS_RATE))
                            for i in range(n)))
    out = []
    for i in range(n // OPUS_FRAME):
        f = av.AudioFrame(format="s16", layout="mono", samples=OPUS_FRAME)
        f.planes[0].update(pcm[i * OPUS_FRAME:(i + 1) * OPUS_FRAME].tobytes())
        f.sample_rate, f.pts = OPUS_RATE, i * OPUS_FRAME
        f.time_base = fractions.Fraction(1, OPUS_RATE)
        out.extend(bytes(p) for p in enc.encode(f))
    return out


def decode_opus(payloads):
    """48 kHz mono samples (floats in [-1, 1]) of Opus packets, in order."""
    dec = av.CodecContext.create("libopus", "r")
    dec.sample_rate, dec.layout = OPUS_RATE, "mono"
    out = []
    for p in payloads:
        for fr in dec.decode(av.Packet(p)):
            raw = bytes(fr.planes[0])[:fr.samples * fr.format.bytes]
            if fr.format.name.startswith("flt"):
                out.extend(array.array("f", raw))
            else:
                out.extend(v / 32768.0 for v in array.array("h", raw))
    return out


def ulaw_decode(byte):
    """ITU-T G.711 µ-law to a linear sample in [-1, 1]."""
    u = ~byte & 0xFF
    magnitude = (((u & 0x0F) << 3) + 0x84) << ((u >> 4) & 0x07)
    return (0x84 - magnitude if u & 0x80 else magnitude - 0x84) / 32768.0


def decode_pcmu(payloads):
    return [ulaw_decode(b) for p in payloads for b in p]


def strongest(samples, rate, freqs):
    return max(freqs, key=lambda f: goertzel_power(samples, rate, f))


def rms(samples):
    return math.sqrt(sum(v * v for v in samples) / max(1, len(samples)))


KEY_DURATIONS_8K = [160, 480, 800, 960, 960, 960]     # 120 ms: updates, then the end x3


def press(rtp, dest, pt, digit, seq, ts, ssrc, scale=1):
    """RFC 4733 §2.5: one key held 120 ms, all packets at the key's start timestamp `ts`,
    the marker on the first, the E bit on the last three (the redundant ends, §2.5.1.4).
    `scale` is the clock over 8 kHz (6 on Opus's 48 kHz). Returns the next sequence number."""
    for i, d in enumerate(KEY_DURATIONS_8K):
        end = i >= 3
        payload = bytes([digit, (0x80 if end else 0) | 10]) + struct.pack("!H", d * scale)
        rtp.send(RtpPacket(pt, seq + i, ts, ssrc, payload, marker=(i == 0)), dest)
        time.sleep(0.02)
    return seq + len(KEY_DURATIONS_8K)


def events(packets, pt):
    """(digit, end, duration, ts, marker) of the RFC 4733 packets of payload type `pt`."""
    out = []
    for p in packets:
        if p.pt == pt and len(p.payload) >= 4:
            digit, flags, duration = struct.unpack("!BBH", p.payload[:4])
            out.append((digit, bool(flags & 0x80), duration, p.ts, p.marker))
    return out
