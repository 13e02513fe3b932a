"""A third-party SIP-over-WebSocket client against the real PBX: JsSIP (npm, pinned in
tests/clients/jssip) run by node with the `ws` package as its WebSocket, so the server is not
tuned to the project's own client only. JsSIP registers (digest), sends OPTIONS, calls a UDP
phone that answers (JsSIP's INVITE, its answer to the 407 challenge, ACK and BYE; Node has no
WebRTC, so a fake RTCPeerConnection hands JsSIP a canned plain-RTP SDP), and unregisters; over
the `wss:` listener and over `/ws` on the web listener."""

import json
import os
import subprocess
import threading

import pytest

from callclient import Phone, sdp_offer
from conftest import CLIENTS, DOMAIN, require

# Protocol and media behaviour, not the store: run on SQLite only (scripts/test.sh).
pytestmark = pytest.mark.store_independent

JSSIP_DIR = os.path.join(CLIENTS, "jssip")
IP_JSSIP = "127.0.78.1"
IP_CALLEE = "127.0.78.2"


@pytest.fixture(scope="module")
def jssip_pbx(pbx_factory):
    require("node")
    if not os.path.isfile(os.path.join(JSSIP_DIR, "node_modules", "jssip", "package.json")):
        pytest.fail("JsSIP is not installed in tests/clients/jssip (run scripts/install-test-deps.sh)")
    p = pbx_factory("jssip", websocket=True)
    for n in (1001, 1002, 1003, 1004):
        p.add_extension(n, f"pw{n}", name=f"Ext {n}")
    return p.start()


def run_jssip(url, user, password, target="", timeout=40):
    """Runs tests/clients/jssip/jssip-call.js; (exit code, [events], stderr)."""
    env = dict(os.environ, WS_URL=url, SIP_USER=str(user), SIP_PASSWORD=password,
               SIP_DOMAIN=DOMAIN, TARGET=target, LOCAL_IP=IP_JSSIP, RTP_PORT="40300",
               HOLD_MS="1000", NODE_TLS_REJECT_UNAUTHORIZED="0")
    r = subprocess.run(["node", os.path.join(JSSIP_DIR, "jssip-call.js")], env=env,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=timeout)
    events = [json.loads(ln) for ln in r.stdout.splitlines() if ln.startswith("{")]
    return r.returncode, events, r.stderr


def names(events):
    return [e["event"] for e in events]


@pytest.mark.parametrize("where", ["wss", "web"])
def test_jssip_registers_and_calls_a_udp_phone(jssip_pbx, where):
    url = {"wss": f"wss://127.0.0.1:{jssip_pbx.wss}", "web": f"ws://127.0.0.1:{jssip_pbx.web}/ws"}[where]
    callee = Phone(1002, "pw1002", jssip_pbx.server("udp"), local_ip=IP_CALLEE)
    try:
        r = callee.register()
        assert r is not None and r.status == 200, r
        answered = {}

        def answer():
            """The callee rings and answers in a thread of its own while JsSIP runs."""
            incoming = callee.wait_call(timeout=20)
            if incoming is None:
                return
            answered["call"] = incoming
            incoming.ring()
            incoming.answer(sdp_offer(IP_CALLEE, 40400))
            answered["ack"] = incoming.wait_ack()
            answered["bye"] = incoming.wait_bye()

        t = threading.Thread(target=answer, daemon=True)
        t.start()
        rc, events, stderr = run_jssip(url, 1001, "pw1001", target="1002")
        t.join(10)
        assert rc == 0, f"{events}\n{stderr[-2000:]}\n{jssip_pbx.log_tail()}"
        seen = names(events)
        registered = next(e for e in events if e["event"] == "registered")
        assert registered["status"] == 200
        assert ".invalid" in registered["contact"], registered
        assert {"event": "options", "status": 200} in events, events
        assert "confirmed" in seen and "ended" in seen and "unregistered" in seen, seen
        assert "call" in answered, "the UDP phone never saw the call"
        assert answered.get("ack") is not None, "no ACK reached the UDP phone"
        assert answered.get("bye") is not None, "JsSIP's hang-up did not reach the UDP phone"
        cdr = jssip_pbx.wait_cdr(1001, 1002)
        assert cdr is not None and cdr["disposition"] == "answered", cdr
    finally:
        callee.register(expires=0, timeout=1)
        callee.close()
    assert "1001" not in jssip_pbx.wait_bindings([1001], lambda b: "1001" not in b)


def test_jssip_with_a_wrong_password_is_refused(jssip_pbx):
    rc, events, stderr = run_jssip(f"ws://127.0.0.1:{jssip_pbx.ws}", 1003, "wrong")
    assert rc == 1, f"{events}\n{stderr[-2000:]}"
    failed = next((e for e in events if e["event"] == "registration_failed"), None)
    assert failed is not None, events
    assert failed["status"] in (401, 403), failed
    jssip_pbx.cli("ban", "remove", IP_JSSIP, check=False)
