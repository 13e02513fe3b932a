"""Media helpers for the call tests (Python stdlib only).

- RTP packets (RFC 3550 fixed header): build, parse; `RtpPeer`, a UDP socket that sends paced
  streams and records every packet it receives (with its source address) in a background thread.
- Known G.711 payloads: `known_payload(seed, seq)` gives 160 deterministic bytes per packet
  (any byte is a valid G.711 sample), so a receiver can compare payloads byte for byte and
  tell packets apart.
- Tones: `write_tone_wav` makes an 8 kHz mono 16-bit sine WAV; `analyse_tone` finds the
  dominant frequency of a recording (Goertzel filter bank) and its level, so a test can assert
  "this recording holds A's 1 kHz tone, well above silence".
- `LoopbackSniffer`: counts the UDP packets that cross the loopback interface (AF_PACKET raw
  socket, needs root or CAP_NET_RAW), to see where media really flows (e.g. SIPp, which does not
  count what it receives, or "no packet went from phone A to phone B directly").
"""

import hashlib
import math
import os
import socket
import struct
import threading
import time
import wave

# ---------------------------------------------------------------------------------------- RTP


class RtpPacket:
    """One RTP packet (fixed header, no CSRC/extension written; parse skips them)."""

    __slots__ = ("pt", "marker", "seq", "ts", "ssrc", "payload")

    def __init__(self, pt, seq, ts, ssrc, payload, marker=False):
        self.pt, self.seq, self.ts, self.ssrc = pt, seq & 0xFFFF, ts & 0xFFFFFFFF, ssrc & 0xFFFFFFFF
        self.payload, self.marker = payload, marker

    def encode(self) -> bytes:
        return struct.pack("!BBHII", 0x80, (0x80 if self.marker else 0) | (self.pt & 0x7F),
                           self.seq, self.ts, self.ssrc) + self.payload

    @classmethod
    def parse(cls, data: bytes):
        """The packet, or None when `data` is not RTP version 2 (or is RTCP, PT 72-76)."""
        if len(data) < 12 or data[0] >> 6 != 2:
            return None
        b0, b1, seq, ts, ssrc = struct.unpack_from("!BBHII", data)
        if 72 <= (b1 & 0x7F) <= 76:
            return None
        off = 12 + 4 * (b0 & 0x0F)
        if b0 & 0x10:                                   # header extension
            if len(data) < off + 4:
                return None
            off += 4 + 4 * struct.unpack_from("!H", data, off + 2)[0]
        end = len(data)
        if b0 & 0x20 and end > off:                     # padding
            end -= data[-1]
        return cls(b1 & 0x7F, seq, ts, ssrc, data[off:end], bool(b1 & 0x80))

    def __repr__(self):
        return f"<RTP pt={self.pt} seq={self.seq} ts={self.ts} ssrc={self.ssrc:#x} {len(self.payload)}B>"


def known_payload(seed: str, seq: int, size: int = 160) -> bytes:
    """`size` deterministic bytes for packet `seq` of stream `seed` (20 ms of G.711)."""
    out = b""
    block = 0
    while len(out) < size:
        out += hashlib.sha256(f"{seed}/{seq}/{block}".encode()).digest()
        block += 1
    return out[:size]


def sequence_gaps(packets):
    """(sequence number before, how many missing) for each hole in packets in order."""
    gaps = []
    for a, b in zip(packets, packets[1:]):
        step = (b.seq - a.seq) % 0x10000
        if step != 1:
            gaps.append((a.seq, step - 1))
    return gaps


class RtpPeer:
    """A UDP socket used as an RTP endpoint: send packets, record what arrives.

    Every datagram received is kept as (arrival time, source address, raw bytes) in
    `received`, by a background thread, until `close()`."""

    def __init__(self, ip="127.0.0.1", port=0):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        self.sock.bind((ip, port))
        self.addr = self.sock.getsockname()
        self.received = []
        self.lock = threading.Lock()
        self._stop = False
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    @classmethod
    def even(cls, ip="127.0.0.1"):
        """A peer on an even port whose odd neighbour (RTCP) is free too."""
        for _ in range(100):
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.bind((ip, 0))
            port = s.getsockname()[1]
            s.close()
            if port % 2 == 0 and port < 65534:
                try:
                    return cls(ip, port)
                except OSError:
                    continue
        raise RuntimeError("no free even UDP port")

    def _loop(self):
        self.sock.settimeout(0.1)
        while not self._stop:
            try:
                data, src = self.sock.recvfrom(65535)
            except (socket.timeout, TimeoutError):
                continue
            except OSError:
                if self._stop:
                    return
                continue                      # ICMP errors surface here on some kernels
            with self.lock:
                self.received.append((time.time(), src, data))

    def close(self):
        self._stop = True
        self._thread.join(2)
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # ------------------------------------------------------------------ send

    def send(self, packet: RtpPacket, dest):
        self.sock.sendto(packet.encode(), dest)

    def stream(self, dest, count, pt=0, ssrc=None, first_seq=None, first_ts=None, seed=None,
               interval=0.02, payload_size=160):
        """Send `count` packets of `known_payload(seed, i)` paced every `interval` s (blocking).
        Returns the list of packets sent."""
        ssrc = int.from_bytes(os.urandom(4), "big") if ssrc is None else ssrc
        seq = int.from_bytes(os.urandom(2), "big") if first_seq is None else first_seq
        ts = int.from_bytes(os.urandom(4), "big") if first_ts is None else first_ts
        seed = seed or os.urandom(4).hex()
        sent = []
        start = time.monotonic()
        for i in range(count):
            p = RtpPacket(pt, seq + i, ts + i * payload_size, ssrc, known_payload(seed, i, payload_size),
                          marker=(i == 0))
            self.send(p, dest)
            sent.append(p)
            wake = start + (i + 1) * interval
            delay = wake - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        return sent

    def stream_in_background(self, dest, count, **kw):
        """`stream` in a thread; returns (thread, list that receives the sent packets)."""
        box = []

        def run():
            box.extend(self.stream(dest, count, **kw))

        t = threading.Thread(target=run, daemon=True)
        t.start()
        return t, box

    # ------------------------------------------------------------------ receive

    def in_order(self, ssrc=None, source=None):
        """`rtp()` in sequence order. The 16-bit sequence number starts at random and wraps
        (RFC 3550 §5.1), so it is extended across the wrap from the arrival order rather than
        sorted raw: a raw sort puts the packets after a wrap first."""
        packets = self.rtp(ssrc, source)
        keyed, last, ext = [], None, 0
        for p in packets:
            if last is not None:
                ext += (p.seq - last + 0x8000) % 0x10000 - 0x8000
            last = p.seq
            keyed.append((ext, p))
        keyed.sort(key=lambda k: k[0])
        return [p for _, p in keyed]

    def snapshot(self):
        with self.lock:
            return list(self.received)

    def rtp(self, ssrc=None, source=None):
        """The RTP packets received so far (optionally only one SSRC / one source address)."""
        out = []
        for _, src, data in self.snapshot():
            p = RtpPacket.parse(data)
            if p is None or (ssrc is not None and p.ssrc != ssrc):
                continue
            if source is not None and tuple(src) != tuple(source):
                continue
            out.append(p)
        return out

    def sources(self):
        return sorted({tuple(src) for _, src, _ in self.snapshot()})

    def wait_packets(self, n, timeout, ssrc=None):
        """Wait until `n` RTP packets (of `ssrc`) arrived; returns how many did."""
        end = time.time() + timeout
        while True:
            got = len(self.rtp(ssrc))
            if got >= n or time.time() >= end:
                return got
            time.sleep(0.02)

    def clear(self):
        with self.lock:
            self.received.clear()


# ---------------------------------------------------------------------------------------- tones


def write_tone_wav(path, freq, seconds, rate=8000, amplitude=0.5):
    """An 8 kHz (by default) mono 16-bit PCM WAV holding a sine of `freq` Hz."""
    n = int(seconds * rate)
    frames = struct.pack(f"<{n}h", *(int(amplitude * 32767 * math.sin(2 * math.pi * freq * i / rate))
                                     for i in range(n)))
    with wave.open(path, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(frames)
    return path


def read_wav(path):
    """(rate, samples in -1..1 of the first channel) of a 16-bit PCM WAV."""
    with wave.open(path, "rb") as w:
        rate, ch, width, n = w.getframerate(), w.getnchannels(), w.getsampwidth(), w.getnframes()
        raw = w.readframes(n)
    if width != 2:
        raise ValueError(f"{path}: {8 * width}-bit samples, expected 16-bit PCM")
    n = len(raw) // (2 * ch)
    return rate, [v / 32768.0 for v in struct.unpack_from(f"<{n * ch}h", raw)[::ch]]


def goertzel_power(x, rate, freq):
    w = 2.0 * math.pi * freq / rate
    c = 2.0 * math.cos(w)
    s1 = s2 = 0.0
    for v in x:
        s0 = v + c * s1 - s2
        s2, s1 = s1, s0
    return s1 * s1 + s2 * s2 - c * s1 * s2


def dbfs(rms):
    return 20 * math.log10(rms) if rms > 0 else -200.0


class ToneReport:
    """What `analyse_tone` found; `str()` gives one line for assertion messages."""

    def __init__(self, path, rate, duration, active_fraction, level_dbfs, dominant, purity):
        self.path, self.rate, self.duration = path, rate, duration
        self.active_fraction = active_fraction      # share of 20 ms frames above -40 dBFS
        self.level_dbfs = level_dbfs                 # RMS level of the analysed stretch
        self.dominant = dominant                     # Hz, None when silent
        self.purity = purity                         # share of the energy at the dominant freq

    def __str__(self):
        dom = "none" if self.dominant is None else f"{self.dominant:.1f}Hz"
        return (f"{os.path.basename(self.path)}: {self.duration:.2f}s at {self.rate} Hz, "
                f"active {100 * self.active_fraction:.0f}%, level {self.level_dbfs:.1f} dBFS, "
                f"dominant {dom}, purity {100 * self.purity:.0f}%")

    def has_tone(self, freq, tol=20.0, min_dbfs=-30.0, min_active=0.3, min_seconds=1.0,
                 min_purity=0.5):
        """The recording holds `freq` +- `tol` Hz as its dominant frequency (at least
        `min_purity` of the energy: a tone, not noise), at least `min_seconds` of sound over at
        least `min_active` of the file, louder than `min_dbfs`."""
        return (self.dominant is not None and abs(self.dominant - freq) <= tol
                and self.purity >= min_purity and self.level_dbfs >= min_dbfs
                and self.active_fraction >= min_active
                and self.active_fraction * self.duration >= min_seconds)


def analyse_tone(path, silence_dbfs=-40.0):
    """Dominant frequency and level of the longest non-silent stretch of a WAV (<= 1 s of it,
    skipping its first 100 ms), via a Goertzel filter bank: 10 Hz grid then 0.5 Hz around the
    peak."""
    rate, x = read_wav(path)
    dur = len(x) / rate if rate else 0.0
    fl = max(1, rate // 50)
    frames = [x[i:i + fl] for i in range(0, len(x) - fl + 1, fl)]
    if not frames:
        return ToneReport(path, rate, dur, 0.0, -200.0, None, 0.0)
    active = [dbfs(math.sqrt(sum(v * v for v in f) / len(f))) > silence_dbfs for f in frames]
    frac = sum(active) / len(active)
    best = cur = best_start = cur_start = 0
    for i, on in enumerate(active + [False]):
        if on:
            if cur == 0:
                cur_start = i
            cur += 1
        elif cur:
            if cur > best:
                best, best_start = cur, cur_start
            cur = 0
    if best == 0:
        return ToneReport(path, rate, dur, frac, -200.0, None, 0.0)
    skip = 5 if best > 15 else 0
    seg = x[(best_start + skip) * fl:(best_start + best) * fl][:rate]
    mean = sum(seg) / len(seg)
    seg = [v - mean for v in seg]
    level = dbfs(math.sqrt(sum(v * v for v in seg) / len(seg)))
    n = len(seg)
    win = ([v * (0.5 - 0.5 * math.cos(2 * math.pi * i / (n - 1))) for i, v in enumerate(seg)]
           if n > 1 else seg)
    coarse = win[:min(n, rate // 4)]
    nyq = rate / 2.0
    _, peak = max((goertzel_power(coarse, rate, f), f) for f in range(50, int(nyq) - 10, 10))
    fine = [(goertzel_power(win, rate, f), f)
            for f in (peak + d * 0.5 for d in range(-24, 25)) if 0 < f < nyq]
    pmax, dominant = max(fine)
    # a pure Hann-windowed sine of amplitude A gives Goertzel power (A N / 4)^2 at its frequency
    # and a windowed energy of 3 A^2 N / 16: their ratio, times 3 N, is 1 for a pure tone
    energy = sum(v * v for v in win)
    purity = min(1.0, 3.0 * pmax / (n * energy)) if energy > 0 else 0.0
    return ToneReport(path, rate, dur, frac, level, dominant, purity)


# ---------------------------------------------------------------------------------------- sniffer


class LoopbackSniffer:
    """Records the UDP datagrams seen on the loopback interface (IPv4), one entry per datagram
    delivered: (time, (src_ip, src_port), (dst_ip, dst_port), udp payload). `keep(src, dst)`
    selects what is kept. Needs root or CAP_NET_RAW (AF_PACKET)."""

    PACKET_OUTGOING = 4

    def __init__(self, keep=None, iface="lo"):
        try:
            self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0800))
        except PermissionError as e:
            raise PermissionError("sniffing the loopback interface needs root or CAP_NET_RAW") from e
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
        self.sock.bind((iface, 0))
        self.keep = keep or (lambda src, dst: True)
        self.packets = []
        self.lock = threading.Lock()
        self._stop = False
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _loop(self):
        self.sock.settimeout(0.1)
        while not self._stop:
            try:
                frame, addr = self.sock.recvfrom(65535)
            except (socket.timeout, TimeoutError):
                continue
            except OSError:
                return
            if addr[2] == self.PACKET_OUTGOING:          # loopback shows each packet twice
                continue
            ip = frame[14:]
            if len(ip) < 20 or ip[0] >> 4 != 4 or ip[9] != 17:
                continue
            ihl = (ip[0] & 0x0F) * 4
            udp = ip[ihl:]
            if len(udp) < 8:
                continue
            sport, dport, ulen = struct.unpack_from("!HHH", udp)
            src = (socket.inet_ntoa(ip[12:16]), sport)
            dst = (socket.inet_ntoa(ip[16:20]), dport)
            if self.keep(src, dst):
                with self.lock:
                    self.packets.append((time.time(), src, dst, bytes(udp[8:ulen])))

    def close(self):
        self._stop = True
        self._thread.join(2)
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def snapshot(self):
        with self.lock:
            return list(self.packets)

    def matching(self, src=None, dst=None, rtp_only=True):
        """Packets whose source / destination match: each of `src`, `dst` is a predicate on an
        (ip, port) tuple, or an ip string, or an (ip, port) tuple, or None (any)."""

        def pred(spec):
            if spec is None:
                return lambda a: True
            if callable(spec):
                return spec
            if isinstance(spec, str):
                return lambda a: a[0] == spec
            return lambda a: tuple(a) == tuple(spec)

        ps, pd = pred(src), pred(dst)
        out = []
        for t, s, d, payload in self.snapshot():
            if ps(s) and pd(d) and (not rtp_only or RtpPacket.parse(payload) is not None):
                out.append((t, s, d, payload))
        return out

    def describe(self, limit=12):
        """Flows seen ("src -> dst: N packets"), for assertion messages."""
        flows = {}
        for _, s, d, _ in self.snapshot():
            flows[(s, d)] = flows.get((s, d), 0) + 1
        rows = sorted(flows.items(), key=lambda kv: -kv[1])[:limit]
        return "\n".join(f"  {s[0]}:{s[1]} -> {d[0]}:{d[1]}: {n}" for (s, d), n in rows) or "  (nothing)"
