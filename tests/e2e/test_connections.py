"""TCP and TLS connections that do not do their job are closed: bytes that cannot start a SIP
message (NUL bytes, random binary, over TCP and inside TLS), a message that does not complete
in time (slow-loris), a connection idle without having authenticated a request, and
connections over the per-source cap. Each leaves its counter in /metrics.

Addresses: 127.0.40.x (each test its own), so no other test module's source is affected.
"""

import os
import socket
import ssl
import time

import pytest

from conftest import DOMAIN
from sipclient import SipClient
from test_metrics import dropped

# Protocol and media behaviour, not the store: run on SQLite only (scripts/test.sh).
pytestmark = pytest.mark.store_independent

MESSAGE_TIMEOUT = 2
UNAUTHENTICATED_IDLE = 3
CAP = 4


@pytest.fixture(scope="module")
def strict(pbx_factory):
    """Short limits, so that the tests see them act."""
    p = pbx_factory("strict")
    extra = (f'message_timeout = "{MESSAGE_TIMEOUT}s"\n'
             f'unauthenticated_idle = "{UNAUTHENTICATED_IDLE}s"\n')
    with open(p.config, "w") as f:
        f.write(p.toml(security={"extra": extra}))
    p.add_extension(1001, "secret1001")
    p.add_extension(1002, "secret1002")
    return p.start()


@pytest.fixture(scope="module")
def capped(pbx_factory):
    """A per-source cap of CAP connections (and the default idle limits)."""
    p = pbx_factory("capped")
    with open(p.config, "w") as f:
        f.write(p.toml(security={"extra": f"max_connections_per_source = {CAP}\n"}))
    return p.start()


def connect(pbx, local_ip, transport="tcp"):
    raw = socket.create_connection(pbx.server(transport), timeout=5, source_address=(local_ip, 0))
    if transport == "tls":
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        return ctx.wrap_socket(raw, server_hostname="127.0.0.1")
    return raw


def closed_by_pbx(sock, within):
    """True once the PBX has closed `sock` (EOF or reset), False if it is still open after
    `within` seconds. Anything it sends meanwhile (a pong, an answer) is read and ignored."""
    end = time.time() + within
    while True:
        left = end - time.time()
        if left <= 0:
            return False
        sock.settimeout(left)
        try:
            if sock.recv(65535) == b"":
                return True
        except (socket.timeout, TimeoutError):
            return False
        except (ConnectionResetError, BrokenPipeError, ssl.SSLEOFError, ssl.SSLZeroReturnError):
            return True


def options(transport_client):
    return transport_client.request("OPTIONS", f"sip:{DOMAIN}", f"sip:probe@{DOMAIN}",
                                    f"sip:{DOMAIN}")


def test_nul_bytes_close_a_tcp_connection_at_once(strict):
    before = dropped(strict, "garbage")
    with connect(strict, "127.0.40.2") as s:
        s.sendall(b"\0" * 2048)
        assert closed_by_pbx(s, 5), "2 KB of NUL bytes: the connection stayed open"
    assert dropped(strict, "garbage") == before + 1
    assert strict.wait_log(r"closing connection.*127\.0\.40\.2"), strict.log_tail()


def test_random_binary_closes_a_tcp_connection(strict):
    before = dropped(strict, "garbage")
    junk = bytes([0x80 | os.urandom(1)[0]]) + os.urandom(4095)   # binary from its first byte
    with connect(strict, "127.0.40.3") as s:
        s.sendall(junk)
        assert closed_by_pbx(s, 5), "4 KB of random binary: the connection stayed open"
    assert dropped(strict, "garbage") == before + 1


@pytest.mark.parametrize("junk", [b"\0" * 2048, b"\xff" + os.urandom(4095)], ids=["nul", "random"])
def test_garbage_inside_tls_closes_the_connection(strict, junk):
    before = dropped(strict, "garbage")
    with connect(strict, "127.0.40.4", "tls") as s:
        s.sendall(junk)
        assert closed_by_pbx(s, 5), "garbage after the TLS handshake: the connection stayed open"
    assert dropped(strict, "garbage") == before + 1


def test_crlf_keep_alives_are_not_garbage(strict):
    """RFC 5626 §3.5.1: a double-CRLF ping gets its pong, and a request may follow."""
    with SipClient("tcp", strict.server("tcp"), local_ip="127.0.40.5") as c:
        c.sock.sendall(b"\r\n\r\n")
        c.sock.settimeout(3)
        assert c.sock.recv(2) == b"\r\n", "no pong"
        r = options(c)
        assert r is not None and r.status == 200, r


def test_slow_loris_is_cut_off_while_others_register(strict):
    before = dropped(strict, "message_timeout")
    slow = SipClient("tcp", strict.server("tcp"), local_ip="127.0.40.6")
    aor = f"sip:1001@{DOMAIN}"
    message = slow.build("REGISTER", f"sip:{DOMAIN}", aor, aor,
                         [f"Contact: {slow.contact('1001')}", "Expires: 60"])
    sent, closed = 0, False
    try:
        for byte in message:
            try:
                slow.sock.sendall(bytes([byte]))
            except (BrokenPipeError, ConnectionResetError):
                closed = True
                break
            sent += 1
            if sent == 2:
                # meanwhile a phone from another address registers normally, over TCP
                with SipClient("tcp", strict.server("tcp"), local_ip="127.0.40.7") as ok:
                    r = ok.register("1002", "secret1002", DOMAIN, expires=60)
                    assert r is not None and r.status == 200, r
            if closed_by_pbx(slow.sock, 1.0):      # one byte per second
                closed = True
                break
        assert closed, "a REGISTER sent one byte per second was read to its end"
        assert sent < len(message), f"closed only after all {len(message)} bytes"
    finally:
        slow.close()
    assert dropped(strict, "message_timeout") == before + 1
    assert strict.wait_log(r"message not complete in time.*127\.0\.40\.6|127\.0\.40\.6.*message not complete in time"), \
        strict.log_tail()


def test_an_idle_stranger_is_closed_an_authenticated_phone_is_not(strict):
    stranger = SipClient("tcp", strict.server("tcp"), local_ip="127.0.40.8")
    phone = SipClient("tcp", strict.server("tcp"), local_ip="127.0.40.9")
    try:
        r = options(stranger)                  # answered, but nothing authenticated
        assert r is not None and r.status == 200, r
        r = phone.register("1001", "secret1001", DOMAIN, expires=60)
        assert r is not None and r.status == 200, r
        assert closed_by_pbx(stranger.sock, UNAUTHENTICATED_IDLE + 5), \
            f"an unauthenticated connection idle for {UNAUTHENTICATED_IDLE}s stayed open"
        # the phone has been idle past the limit too: its connection still works
        time.sleep(1)
        assert not closed_by_pbx(phone.sock, 0.5), "the authenticated connection was closed"
        r = options(phone)
        assert r is not None and r.status == 200, r
        r = phone.register("1001", "secret1001", DOMAIN, expires=0)
        assert r is not None and r.status == 200, r
    finally:
        stranger.close()
        phone.close()


def test_connections_over_the_per_source_cap_are_closed(capped):
    before = dropped(capped, "connection_limit")
    held = [SipClient("tcp", capped.server("tcp"), local_ip="127.0.40.10") for _ in range(CAP)]
    try:
        for c in held:
            r = options(c)
            assert r is not None and r.status == 200, r
        with connect(capped, "127.0.40.10") as extra:
            assert closed_by_pbx(extra, 5), f"connection {CAP + 1} from one address stayed open"
        assert dropped(capped, "connection_limit") == before + 1
        with SipClient("tcp", capped.server("tcp"), local_ip="127.0.40.11") as other:
            r = options(other)
            assert r is not None and r.status == 200, f"another address was refused: {r}"
        # a closed connection gives its place back
        held.pop().close()
        end, r = time.time() + 5, None
        while time.time() < end:
            again = SipClient("tcp", capped.server("tcp"), local_ip="127.0.40.10")
            try:
                r = options(again)
            except OSError:
                r = None
            if r is not None:
                held.append(again)
                break
            again.close()
            time.sleep(0.2)
        assert r is not None and r.status == 200, "the freed place was not given back"
    finally:
        for c in held:
            c.close()
