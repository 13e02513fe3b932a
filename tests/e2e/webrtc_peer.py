"""A third-party WebRTC stack for the end-to-end tests: aiortc (PyPI, pinned in
scripts/install-test-deps.sh), its own ICE (aioice), DTLS (OpenSSL) and SRTP (libsrtp).

`WebRtcPeer` runs aiortc's asyncio loop on a thread of its own so that the synchronous tests
can drive it: make an offer (an audio track playing a sine), take the PBX's answer, and
collect what comes back as 16-bit PCM for `media.analyse_tone`.
"""

import asyncio
import fractions
import math
import struct
import threading
import time
import wave

import aioice.ice
import av
from aiortc import (MediaStreamTrack, RTCConfiguration, RTCPeerConnection, RTCRtpSender,
                    RTCSessionDescription)

RATE = 8000
FRAME = 160                    # 20 ms at 8 kHz


def use_host_address(ip):
    """aioice gathers every interface's address but loopback; the tests run on loopback
    addresses of their own, so the peer's one host candidate is `ip`."""
    aioice.ice.get_host_addresses = lambda use_ipv4, use_ipv6: [ip]


class ToneTrack(MediaStreamTrack):
    """An audio track: a sine of `freq` Hz at 8 kHz, 20 ms per frame, paced in real time."""

    kind = "audio"

    def __init__(self, freq, amplitude=0.5):
        super().__init__()
        self.freq, self.amplitude = freq, amplitude
        self.n = 0
        self.start = None

    async def recv(self):
        if self.start is None:
            self.start = time.monotonic()
        due = self.start + self.n * FRAME / RATE
        delay = due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        samples = [int(self.amplitude * 32767 * math.sin(2 * math.pi * self.freq * (self.n * FRAME + i) / RATE))
                   for i in range(FRAME)]
        frame = av.AudioFrame(format="s16", layout="mono", samples=FRAME)
        frame.planes[0].update(struct.pack(f"<{FRAME}h", *samples))
        frame.sample_rate = RATE
        frame.pts = self.n * FRAME
        frame.time_base = fractions.Fraction(1, RATE)
        self.n += 1
        return frame


class WebRtcPeer:
    """One RTCPeerConnection with a tone as its microphone."""

    def __init__(self, host_ip, tone_hz, codecs=None):
        """`codecs`: the only codec names the peer offers and answers (e.g. `("opus",)`),
        by setCodecPreferences; all of aiortc's when None."""
        use_host_address(host_ip)
        self.codecs = codecs
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True,
                                       name=f"aiortc-{host_ip}")
        self.thread.start()
        self.tone_hz = tone_hz
        self.received = []             # (sample rate, bytes of s16 mono) per frame
        self.states = []               # connectionState changes, in order
        self.pc = self._run(self._make())

    def _run(self, coro, timeout=15):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    async def _make(self):
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        pc.addTrack(ToneTrack(self.tone_hz))
        if self.codecs:
            wanted = {f"audio/{name.lower()}" for name in self.codecs}
            prefs = [c for c in RTCRtpSender.getCapabilities("audio").codecs
                     if c.mimeType.lower() in wanted]
            for transceiver in pc.getTransceivers():
                transceiver.setCodecPreferences(prefs)

        @pc.on("track")
        def on_track(track):
            asyncio.ensure_future(self._collect(track))

        @pc.on("connectionstatechange")
        def on_state():
            self.states.append(pc.connectionState)

        return pc

    async def _collect(self, track):
        while True:
            try:
                frame = await track.recv()
            except Exception:  # noqa: BLE001 - the track ended
                return
            data = bytes(frame.planes[0])[: frame.samples * 2 * len(frame.layout.channels)]
            if len(frame.layout.channels) > 1:        # keep the first channel
                n = frame.samples
                vals = struct.unpack(f"<{n * 2}h", data)[::2]
                data = struct.pack(f"<{n}h", *vals)
            self.received.append((frame.sample_rate, data))

    def offer(self):
        """The SDP offer, after ICE gathering (aiortc gathers before returning)."""
        async def go():
            await self.pc.setLocalDescription(await self.pc.createOffer())
            return self.pc.localDescription.sdp
        return self._run(go()).encode()

    def answer(self, offer: bytes):
        """The SDP answer to `offer` (the peer is the callee)."""
        async def go():
            await self.pc.setRemoteDescription(RTCSessionDescription(offer.decode(), "offer"))
            await self.pc.setLocalDescription(await self.pc.createAnswer())
            return self.pc.localDescription.sdp
        return self._run(go()).encode()

    def accept(self, answer: bytes):
        async def go():
            await self.pc.setRemoteDescription(RTCSessionDescription(answer.decode(), "answer"))
        self._run(go())

    def connection_state(self):
        return self.pc.connectionState

    def wait_state(self, wanted, timeout=10):
        end = time.time() + timeout
        while time.time() < end:
            if self.pc.connectionState in wanted:
                return self.pc.connectionState
            time.sleep(0.05)
        return self.pc.connectionState

    def audio_seconds(self):
        return sum(len(d) // 2 / r for r, d in self.received if r)

    def write_wav(self, path, skip_seconds=0.5):
        """What the peer received, as an 8 kHz (or the decoder's rate) mono WAV."""
        rate = self.received[0][0] if self.received else RATE
        pcm = b"".join(d for r, d in self.received if r == rate)
        pcm = pcm[int(skip_seconds * rate) * 2:]
        with wave.open(str(path), "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(rate)
            w.writeframes(pcm)
        return str(path)

    def close(self):
        try:
            self._run(self.pc.close(), timeout=5)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(5)
