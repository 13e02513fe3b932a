"""A headless baresip driven from a test: register, dial, auto-answer, play a WAV, record.

It reuses the verified recipe tests/clients/baresip/bsctl.py (its config writer, its ctrl_tcp
client and its WAV preparation) but keeps baresip running while the test drives it, so that
two phones can take part in one call and the test decides when to dial, hang up and stop.

Two modes:
- through a registrar/proxy (the PBX): `BaresipPhone(..., server="127.0.0.1:5060")`, every
  request goes to `server` (`outbound=`), registration with digest (`wait_registered()`);
- direct (no PBX, to prove the tooling): `server=None`, no registration, no outbound proxy;
  dial the other phone's `direct_uri`.

Audio: `play` is a WAV sent as the microphone (aufile; padded with silence so the call does not
end with the file), silence when None. Every call's received audio is recorded by the sndfile
module; `recording()` is the decoded (received) audio of the newest call, 8 kHz mono WAV.
"""

import importlib.util
import os
import random
import re
import socket
import subprocess
import time
import types

from conftest import CLIENTS, DOMAIN, free_port, free_port_pair, require

_spec = importlib.util.spec_from_file_location("bsctl", os.path.join(CLIENTS, "baresip", "bsctl.py"))
bsctl = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bsctl)


def free_udp_block(ip, size, low=20000, high=31000):
    """The first port of `size` consecutive ports (even start) free for UDP on `ip`."""
    for _ in range(200):
        base = random.randrange(low, high - size, 2)
        socks = []
        try:
            for p in range(base, base + size):
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                socks.append(s)
                s.bind((ip, p))
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError(f"no block of {size} free UDP ports on {ip}")


class BaresipPhone:
    """One baresip process. Call `start()` (or use as a context manager), then drive it."""

    def __init__(self, workdir, user, password="", server=None, transport="udp", mediaenc="",
                 local_ip="127.0.0.1", play=None, answer="auto", domain=DOMAIN, call_seconds=60,
                 codecs="pcmu,pcma"):
        require("baresip", "openssl")
        self.workdir = os.path.join(str(workdir), f"baresip-{user}-{local_ip}")
        os.makedirs(self.workdir, exist_ok=True)
        self.user, self.server, self.transport, self.local_ip = str(user), server, transport, local_ip
        self.rtp_base = free_udp_block(local_ip, 20)
        self.a = types.SimpleNamespace(
            server=server or "0.0.0.0", user=str(user), password=password, auth_user="",
            domain=domain, transport=transport, local_ip=local_ip,
            # ports from the run's own block, not port 0 (see helpers.BaresipRegistration)
            sip_port=free_port_pair(local_ip), ctrl_port=free_port(),
            rtp_ports=f"{self.rtp_base}-{self.rtp_base + 19}", mediaenc=mediaenc, codecs=codecs,
            regint=600 if server else 0, cert="", cafile="", workdir=self.workdir,
            mode="answer" if answer == "auto" else "call", baresip="baresip",
            module_path="/usr/lib/baresip/modules", verbose=True)
        self.play = play
        self.call_seconds = call_seconds
        self.bs = bsctl.Baresip(self.a)
        self.ctrl = None
        self.events = []            # every event seen, in order (dicts from ctrl_tcp)

    # ------------------------------------------------------------------ life cycle

    def start(self, timeout=15):
        mic = os.path.join(self.workdir, "mic.wav")
        # baresip's source runs at the rate of the first codec: 16 kHz for G.722
        rate = 16000 if "/16000" in self.a.codecs.split(",")[0] else 8000
        if self.play:
            bsctl.prepare_wav(self.play, mic, self.call_seconds + 30, self.workdir, rate)
        else:
            bsctl.silence_wav(mic, self.call_seconds + 30, rate)
        self.bs.write_config(mic)
        if not self.server:
            # direct mode: no registration, no outbound proxy; requests go to the Request-URI
            path = os.path.join(self.workdir, "accounts")
            with open(path) as f:
                acc = f.read()
            acc = re.sub(r';outbound="[^"]*"', "", acc)
            acc = acc.replace(f"@{self.a.domain};", f"@{self.local_ip};", 1)
            with open(path, "w") as f:
                f.write(acc)
        self.sip_port = self.bs.sip_port
        self.bs.start()
        self.ctrl = bsctl.Ctrl(self.bs.ctrl_port, time.time() + timeout)
        return self

    def stop(self):
        """quit over ctrl_tcp (hangs up, un-registers), then TERM/KILL our own PID."""
        self.bs.stop(self.ctrl)
        if getattr(self.bs, "logfh", None):
            self.bs.logfh.close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def alive(self):
        return self.bs.alive()

    def owns(self, addr):
        """True for an (ip, port) that is one of this phone's RTP/RTCP sockets: baresip binds
        them to any address, so the packets it sends leave from 127.0.0.1, not `local_ip`."""
        return addr[0] in ("127.0.0.1", self.local_ip) and \
            self.rtp_base <= addr[1] < self.rtp_base + 20

    @property
    def direct_uri(self):
        """The URI that reaches this baresip without a proxy."""
        if self.transport == "udp":
            return f"sip:{self.user}@{self.local_ip}:{self.sip_port}"
        # libre listens for TLS on the sip_listen port + 1 (UDP and TCP on the port itself)
        port = self.sip_port + (1 if self.transport == "tls" else 0)
        return f"sip:{self.user}@{self.local_ip}:{port};transport={self.transport}"

    def log(self, tail=60):
        try:
            with open(self.bs.logf, errors="replace") as f:
                lines = re.sub(r"\x1b\[[0-9;]*m", "", f.read()).splitlines()
        except OSError:
            return ""
        return f"--- last {tail} lines of {self.bs.logf}:\n" + "\n".join(lines[-tail:])

    # ------------------------------------------------------------------ events

    def wait_event(self, kinds, timeout):
        """The next event whose type is in `kinds` (a str or a set); None after `timeout` s.
        Events of other types are kept in `events` and skipped."""
        kinds = {kinds} if isinstance(kinds, str) else set(kinds)
        deadline = time.time() + timeout
        while True:
            e = self.ctrl.next_event(deadline)
            if e is None:
                return None
            self.events.append(e)
            if e.get("type") in kinds:
                return e

    def seen(self, kind):
        return [e for e in self.events if e.get("type") == kind]

    def wait_registered(self, timeout=15):
        """True once REGISTER_OK (event or `reginfo` polling: registration can finish before
        ctrl_tcp is connected)."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.seen("REGISTER_OK"):
                return True
            e = self.wait_event({"REGISTER_OK", "REGISTER_FAIL"}, 1)
            if e is not None:
                return e["type"] == "REGISTER_OK"
            if not self.alive():
                return False
            info = re.sub(r"\x1b\[[0-9;]*m", "", self.ctrl.command("reginfo").get("data") or "")
            if re.search(r"\bOK\b", info):
                return True
        return False

    # ------------------------------------------------------------------ calls

    def dial(self, target):
        """Dial a full sip: URI, or a number at the PBX's domain."""
        uri = target if target.startswith("sip") else f"sip:{target}@{self.a.domain}"
        return self.ctrl.command("dial", uri)

    def hangup(self):
        return self.ctrl.command("hangup")

    def command(self, cmd, params=None):
        return self.ctrl.command(cmd, params)

    def recording(self):
        """The newest call's received (decoded) audio, or None."""
        return self.bs.newest("-dec.wav")

    def menc(self):
        """The CALL_MENC event parameters seen (e.g. 'AES_CM_128_HMAC_SHA1_80 ...')."""
        return [e.get("param", "") for e in self.seen("CALL_MENC")]


def wait_file_stable(path, timeout=3.0):
    """Wait until `path` stops growing (sndfile finalises the WAV when the call closes)."""
    end = time.time() + timeout
    last = -1
    while time.time() < end:
        size = os.path.getsize(path) if os.path.exists(path) else -1
        if size == last and size > 44:
            return True
        last = size
        time.sleep(0.2)
    return False


def run_quiet(argv, timeout=30):
    return subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          timeout=timeout)
