#!/usr/bin/env python3
"""check-sounds.py - a quick listen to prompt files without a loudspeaker.

    python3 scripts/check-sounds.py sounds/en/vm-login.wav ...     # a table
    python3 scripts/check-sounds.py --speech sounds/en/vm-*.wav      # exit 1 unless all speech

Reads WAV files (16-bit PCM, mu-law or A-law, 8 kHz mono or not) and prints per file: the
duration, the loudest 20 ms frame, the share of pauses (frames 30 dB under the loudest), the
syllabic modulation (mean change of level from frame to frame) and the zero-crossing rate.
Speech has pauses (10-70 % here) and its level moves by 3-7 dB from one frame to the next;
white noise and a steady tone have no pauses and move by under 1 dB, music by 1-2 dB. With --speech, a file that does not look
like speech fails the run. Standard library only.
"""
import math
import struct
import sys


def ulaw(code):
    u = ~code & 0xFF
    t = (((u & 0x0F) << 3) + 0x84) << ((u & 0x70) >> 4)
    return 0x84 - t if u & 0x80 else t - 0x84


def alaw(code):
    a = code ^ 0x55
    seg = (a & 0x70) >> 4
    t = ((a & 0x0F) << 4) + (8 if seg == 0 else 0x108)
    if seg > 1:
        t <<= seg - 1
    return t if a & 0x80 else -t


def read_wav(path):
    """(rate, samples of the first channel) of a PCM16, mu-law or A-law WAV file."""
    data = open(path, "rb").read()
    if data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise ValueError("not a WAV file")
    at, fmt, rate, chans, body = 12, None, 8000, 1, b""
    while at + 8 <= len(data):
        cid, size = data[at:at + 4], int.from_bytes(data[at + 4:at + 8], "little")
        chunk = data[at + 8:at + 8 + size]
        if cid == b"fmt ":
            fmt, chans, rate = struct.unpack("<HHI", chunk[:8])
        elif cid == b"data":
            body = chunk
        at += 8 + size + (size & 1)
    if fmt == 1:
        samples = [s for (s,) in struct.iter_unpack("<h", body[: len(body) // 2 * 2])]
    elif fmt in (6, 7):
        table = [alaw(c) if fmt == 6 else ulaw(c) for c in range(256)]
        samples = [table[c] for c in body]
    else:
        raise ValueError(f"WAV format {fmt} is not PCM, mu-law or A-law")
    return rate, samples[::chans]


def measure(rate, samples):
    n = max(rate // 50, 1)
    frames = [samples[i:i + n] for i in range(0, len(samples) - n + 1, n)]
    if len(frames) < 2:
        return None
    levels = []
    for f in frames:
        rms = math.sqrt(sum(s * s for s in f) / len(f))
        levels.append(20 * math.log10(max(rms, 1) / 32768))
    loudest = max(levels)
    pauses = sum(1 for d in levels if d < loudest - 30) / len(levels)
    modulation = sum(abs(a - b) for a, b in zip(levels, levels[1:])) / (len(levels) - 1)
    crossings = sum(1 for a, b in zip(samples, samples[1:]) if (a < 0) != (b < 0))
    return {
        "seconds": len(samples) / rate,
        "loudest": loudest,
        "pauses": pauses,
        "modulation": modulation,
        "zc": crossings / (len(samples) / rate),
    }


def looks_like_speech(m):
    return m["modulation"] >= 2.5 and m["pauses"] >= 0.05 and m["loudest"] > -35


def main(argv):
    speech = "--speech" in argv
    paths = [a for a in argv if a != "--speech"]
    bad = 0
    for path in paths:
        try:
            m = measure(*read_wav(path))
        except (OSError, ValueError) as e:
            print(f"{path}: {e}")
            bad += 1
            continue
        if m is None:
            print(f"{path}: too short")
            bad += 1
            continue
        verdict = "speech" if looks_like_speech(m) else "not speech"
        if speech and verdict != "speech":
            bad += 1
        print(
            f"{path:44s} {m['seconds']:6.2f}s  loudest {m['loudest']:6.1f} dB  "
            f"pauses {m['pauses']:4.0%}  modulation {m['modulation']:4.1f} dB  "
            f"zero-crossings {m['zc']:5.0f}/s  {verdict}"
        )
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
