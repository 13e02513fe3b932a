"""SIP over WebSocket (RFC 7118) against the real PBX, with a python client on PyPI
`websockets` that behaves like a browser's SIP stack (a `.invalid` host in Via and Contact):
REGISTER with digest over `ws:` and `wss:` listeners and over `/ws` on the web listener, the
`sip` subprotocol required, the binding gone when the socket closes, a frame that is not one
SIP message dropped and counted, a wrong password banning the source (which then cannot even
upgrade), a call from a UDP phone arriving over the socket, and MWI NOTIFYs over it."""

import os
import re
import time

import pytest
from websockets.exceptions import InvalidStatus

from callclient import Phone, sdp_offer
from conftest import DB, MAX_AUTH_FAILURES, require, run
from wsclient import WsPhone, open_socket

# This module's phones and attackers: 127.0.77.x.
IP_CLIENT = "127.0.77.1"
IP_REFUSED = "127.0.77.2"
IP_CALLEE = "127.0.77.3"
IP_CALLER = "127.0.77.4"
IP_MWI = "127.0.77.5"
IP_FRAMES = "127.0.77.6"
IP_CAPPED = "127.0.77.7"
IP_HUGE = "127.0.77.8"
IP_ATTACKER = "127.0.77.9"


@pytest.fixture(scope="module")
def ws_pbx(pbx_factory):
    # A small per-source cap, so that the cap test needs few sockets (the others open one
    # at a time per address).
    p = pbx_factory("ws", extra_toml="[security]\nmax_connections_per_source = 2\n",
                    websocket=True)
    for n in range(1001, 1010):
        p.add_extension(n, f"pw{n}", name=f"Browser {n}")
    return p.start()


def url(pbx, where):
    return {"ws": f"ws://127.0.0.1:{pbx.ws}/", "wss": f"wss://127.0.0.1:{pbx.wss}/",
            "web": f"ws://127.0.0.1:{pbx.web}/ws"}[where]


def metric(pbx, name, labels):
    """The value of one sample of /metrics, or None."""
    _, text = pbx.http_get("/metrics")
    m = re.search(rf"^{name}\{{{re.escape(labels)}\}} (\S+)$", text, re.M)
    return float(m.group(1)) if m else None


@pytest.mark.parametrize("where,number,transport", [
    ("ws", 1001, "ws"), ("wss", 1002, "wss"), ("web", 1003, "ws")])
def test_register_with_digest_and_the_binding_lives_as_long_as_the_socket(
        ws_pbx, where, number, transport):
    try:
        phone = WsPhone(url(ws_pbx, where), number, f"pw{number}", local_ip=IP_CLIENT)
    except TimeoutError as e:
        # Seen once in a full run (wss, no answer to the upgrade within 10 s): the PBX's
        # side of it, for whoever meets it next.
        raise AssertionError(f"no answer to the upgrade: {e}\n{ws_pbx.log_tail()}") from e
    try:
        assert phone.ws.subprotocol == "sip", "RFC 7118 §4.1: the server agrees on sip"
        r = phone.register()
        assert r is not None and r.status == 200, f"{r}\n{ws_pbx.log_tail()}"
        assert phone.host in (r.get("contact") or ""), r.text()
        # The answer came back over the socket, to a client whose Via host does not resolve.
        assert f"SIP/2.0/{transport.upper()} {phone.host}" in r.get("via"), r.get("via")
        found = ws_pbx.wait_bindings([number], lambda b: str(number) in b)
        lines = found.get(str(number), [])
        assert len(lines) == 1, found
        assert re.search(rf"\s{transport}\s+{re.escape(IP_CLIENT)}:\d+", lines[0]), lines[0]
        open_now = metric(ws_pbx, "pbx_sip_connections", f'transport="{transport}"')
        assert open_now is not None and open_now >= 1
    finally:
        phone.close()
    # RFC 7118 §5: nothing else reaches the client, so its binding goes with the socket.
    gone = ws_pbx.wait_bindings([number], lambda b: str(number) not in b)
    assert str(number) not in gone, gone


@pytest.mark.parametrize("where", ["ws", "wss", "web"])
@pytest.mark.parametrize("offered", [(), ("chat",)], ids=["none", "chat"])
def test_an_upgrade_without_the_sip_subprotocol_is_refused(ws_pbx, where, offered):
    before = metric(ws_pbx, "pbx_sip_dropped_total", 'reason="ws_subprotocol"') or 0
    with pytest.raises(InvalidStatus) as refused:
        open_socket(url(ws_pbx, where), IP_REFUSED, subprotocols=offered)
    assert refused.value.response.status_code == 400
    assert b"sip" in refused.value.response.body
    after = metric(ws_pbx, "pbx_sip_dropped_total", 'reason="ws_subprotocol"')
    assert after == before + 1


def test_a_frame_that_is_not_one_sip_message_is_dropped_and_counted(ws_pbx):
    phone = WsPhone(url(ws_pbx, "ws"), 1004, "pw1004", local_ip=IP_FRAMES)
    try:
        before = metric(ws_pbx, "pbx_sip_dropped_total", 'reason="ws_frame"') or 0
        data, _ = phone.build("OPTIONS", "sip:pbx.test", "sip:pbx.test")
        phone.send(data + data)                             # two messages in one frame
        phone.send(data[:len(data) // 2])                   # half of one
        phone.send("\x01\x02 not SIP at all")
        assert phone.wait_for(lambda m: True, timeout=1.0) is None, "nothing is answered"
        after = metric(ws_pbx, "pbx_sip_dropped_total", 'reason="ws_frame"')
        assert after == before + 3
        # The connection is still good for whole messages.
        r = phone.register()
        assert r is not None and r.status == 200, r
    finally:
        phone.close()


def test_a_message_over_the_size_limit_closes_the_socket(ws_pbx):
    phone = WsPhone(url(ws_pbx, "ws"), 1004, "pw1004", local_ip=IP_HUGE)
    try:
        before = metric(ws_pbx, "pbx_sip_dropped_total", 'reason="oversized"') or 0
        data, _ = phone.build("OPTIONS", "sip:pbx.test", "sip:pbx.test",
                              headers=["X-Padding: " + "a" * 70000])
        phone.send(data)                                   # [sip] max_message_size 65535
        assert phone.wait_for(lambda m: True, timeout=3.0) is None
        assert phone.closed, "the PBX closes the connection, as over TCP"
        assert metric(ws_pbx, "pbx_sip_dropped_total", 'reason="oversized"') == before + 1
    finally:
        phone.close()


@pytest.mark.parametrize("where", ["ws", "web"])
def test_connections_per_source_are_capped(ws_pbx, where):
    first = open_socket(url(ws_pbx, where), IP_CAPPED)
    second = open_socket(url(ws_pbx, where), IP_CAPPED)
    try:
        if where == "web":
            with pytest.raises(InvalidStatus) as refused:
                open_socket(url(ws_pbx, where), IP_CAPPED)
            assert refused.value.response.status_code == 503
        else:
            with pytest.raises(Exception):  # noqa: B017 - closed before the upgrade
                open_socket(url(ws_pbx, where), IP_CAPPED, timeout=2).close()
        # Another address is not affected, and a closed socket frees its place.
        open_socket(url(ws_pbx, where), IP_CLIENT).close()
        first.close()
        end = time.time() + 5
        while True:
            try:
                open_socket(url(ws_pbx, where), IP_CAPPED).close()
                break
            except Exception:  # noqa: BLE001 - the server may not have seen the close yet
                if time.time() > end:
                    raise
                time.sleep(0.2)
    finally:
        first.close()
        second.close()


def test_a_wrong_password_bans_the_source_which_then_cannot_upgrade(ws_pbx):
    phone = WsPhone(url(ws_pbx, "web"), 1005, "pw1005", local_ip=IP_ATTACKER)
    try:
        for _ in range(MAX_AUTH_FAILURES):
            r = phone.register(password="not-the-password")
            if r is None:
                break           # banned: the PBX drops what the source sends
            assert r.status in (401, 403), r
    finally:
        phone.close()
    # The ban is saved just behind the answer: wait for the store to have it.
    end = time.time() + 5
    while IP_ATTACKER not in ws_pbx.ban_list() and time.time() < end:
        time.sleep(0.2)
    assert IP_ATTACKER in ws_pbx.ban_list(), ws_pbx.ban_list()
    # Banned: no upgrade on the web listener (403), the ws: listener drops the connection...
    with pytest.raises(InvalidStatus) as refused:
        open_socket(url(ws_pbx, "web"), IP_ATTACKER)
    assert refused.value.response.status_code == 403
    with pytest.raises(Exception):      # noqa: B017 - any failure: closed before the upgrade
        open_socket(url(ws_pbx, "ws"), IP_ATTACKER, timeout=2).close()
    # ...while another address registers as usual.
    other = WsPhone(url(ws_pbx, "web"), 1005, "pw1005", local_ip=IP_CLIENT)
    try:
        r = other.register()
        assert r is not None and r.status == 200, r
    finally:
        other.close()
    ws_pbx.cli("ban", "remove", IP_ATTACKER)


def webrtc_answer(ip, port):
    """A browser's answer as SDP: ICE credentials, a certificate fingerprint, DTLS client."""
    fingerprint = ":".join(f"{b:02X}" for b in os.urandom(32))
    return (
        "v=0\r\n"
        f"o=- 1 1 IN IP4 {ip}\r\n"
        "s=-\r\n"
        "t=0 0\r\n"
        "a=group:BUNDLE 0\r\n"
        f"m=audio {port} UDP/TLS/RTP/SAVPF 0 101\r\n"
        f"c=IN IP4 {ip}\r\n"
        "a=mid:0\r\n"
        "a=ice-ufrag:wsTe\r\n"
        "a=ice-pwd:websockettestpassword22\r\n"
        f"a=fingerprint:sha-256 {fingerprint}\r\n"
        "a=setup:active\r\n"
        "a=rtcp-mux\r\n"
        "a=rtpmap:0 PCMU/8000\r\n"
        "a=rtpmap:101 telephone-event/8000\r\n"
        "a=sendrecv\r\n"
    ).encode()


def test_a_call_from_a_udp_phone_reaches_the_browser_over_its_socket(ws_pbx):
    callee = WsPhone(url(ws_pbx, "ws"), 1006, "pw1006", local_ip=IP_CALLEE)
    caller = Phone(1007, "pw1007", ws_pbx.server("udp"), local_ip=IP_CALLER)
    try:
        r = callee.register()
        assert r is not None and r.status == 200, r
        r = caller.register()
        assert r is not None and r.status == 200, r
        call = caller.call("1006", sdp=sdp_offer(IP_CALLER, 40100))
        invite = callee.wait_request("INVITE", timeout=10)
        assert invite is not None, ws_pbx.log_tail()
        # Sent to the registered contact, over the socket, with the PBX's Via saying WS.
        assert invite.uri == callee.contact_uri, invite.uri
        assert invite.get("via").startswith("SIP/2.0/WS "), invite.get("via")
        # A device on a WebSocket is offered WebRTC media (test_webrtc_media.py runs it).
        offer = invite.body.decode()
        assert "m=audio" in offer and "UDP/TLS/RTP/SAVPF" in offer, offer
        assert "a=fingerprint:sha-256 " in offer and "a=ice-lite" in offer, offer
        tag = os.urandom(4).hex()
        callee.respond(invite, 180, "Ringing", to_tag=tag)
        # The SIP path is what this test is about: a WebRTC-shaped answer, no DTLS after it.
        callee.respond(invite, 200, "OK", body=webrtc_answer(IP_CALLEE, 40200), to_tag=tag)
        assert callee.wait_request("ACK", timeout=5) is not None, ws_pbx.log_tail()
        final = call.wait_final(timeout=10)
        assert final is not None and final.status == 200, final
        # The caller hangs up: the BYE reaches the browser over the socket too.
        assert call.bye().status == 200
        bye = callee.wait_request("BYE", timeout=5)
        assert bye is not None, ws_pbx.log_tail()
        callee.respond(bye, 200, "OK")
        cdr = ws_pbx.wait_cdr(1007, 1006)
        assert cdr is not None and cdr["disposition"] == "answered", cdr
    finally:
        caller.register(expires=0, timeout=1)
        caller.close()
        callee.close()


def sql(pbx, statement):
    if DB == "sqlite":
        require("sqlite3")
        argv = ["sqlite3", "-cmd", ".timeout 5000", os.path.join(pbx.dir, "data", "pbx.db"),
                statement]
    else:
        argv = ["psql", pbx.db_url, "-v", "ON_ERROR_STOP=1", "-qc", statement]
    r = run(argv)
    assert r.returncode == 0, f"{argv}: {r.stderr}"


def test_message_waiting_notify_arrives_over_the_socket(ws_pbx):
    phone = WsPhone(url(ws_pbx, "wss"), 1008, "pw1008", local_ip=IP_MWI)
    try:
        assert phone.register().status == 200
        r = phone.subscribe_mwi()
        assert r is not None and r.status == 200, r
        notify = phone.wait_request("NOTIFY", timeout=5)
        assert notify is not None, ws_pbx.log_tail()
        assert notify.get("event") == "message-summary"
        assert "Messages-Waiting: no" in notify.body.decode()
        phone.respond(notify, 200, "OK")
        sql(ws_pbx, "INSERT INTO voicemail_messages (mailbox, folder, caller_number, "
                    "received_at, duration_ms, path) VALUES ('1008', 'new', '2000', 1, 3000, "
                    "'m.wav')")
        end = time.time() + 10
        waiting = None
        while time.time() < end and waiting is None:
            n = phone.wait_request("NOTIFY", timeout=max(0.1, end - time.time()))
            if n is None:
                break
            phone.respond(n, 200, "OK")
            if "Messages-Waiting: yes" in n.body.decode():
                waiting = n
        assert waiting is not None, ws_pbx.log_tail()
        assert "Voice-Message: 1/0" in waiting.body.decode(), waiting.body
    finally:
        phone.close()


def test_websocket_bindings_do_not_outlive_a_restart(ws_pbx):
    """Last in the module: it restarts the PBX."""
    phone = WsPhone(url(ws_pbx, "ws"), 1009, "pw1009", local_ip=IP_CLIENT)
    try:
        assert phone.register().status == 200
        assert "1009" in ws_pbx.wait_bindings([1009], lambda b: "1009" in b)
        ws_pbx.stop()
        # Saved while its socket was still open...
        assert "1009" in ws_pbx.bindings([1009]), ws_pbx.registration_lines()
    finally:
        phone.close()
    ws_pbx.start()
    # ...and gone after the restart: no connection survives one (RFC 7118 §5).
    gone = ws_pbx.wait_bindings([1009], lambda b: "1009" not in b)
    assert "1009" not in gone, gone
