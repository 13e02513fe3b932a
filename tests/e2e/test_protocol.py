"""Precise registrar and parser behaviour, with the stdlib client (tests/e2e/sipclient.py)."""

import os
import re
import socket

import pytest

from conftest import DOMAIN
from sipclient import SipClient, parse_challenge

# Protocol and media behaviour, not the store: run on SQLite only (scripts/test.sh).
pytestmark = pytest.mark.store_independent


def client(pbx, transport="udp", ip="127.0.0.1"):
    return SipClient(transport, pbx.server(transport), local_ip=ip)


def challenge_shape(r):
    """What an attacker may compare between two 401s: everything except the nonce."""
    chs = [parse_challenge(v) for v in r.all("www-authenticate")]
    return r.status, r.reason, sorted(tuple(sorted((k, v) for k, v in c.items()
                                                   if k not in ("nonce", "opaque"))) for c in chs)


def test_unknown_extension_and_wrong_password_look_the_same(pbx):
    aor = lambda u: f"sip:{u}@{DOMAIN}"  # noqa: E731
    with client(pbx, ip="127.0.0.5") as c:
        first_known = c.request("REGISTER", f"sip:{DOMAIN}", aor(1001), aor(1001),
                                [f"Contact: {c.contact('1001')}", "Expires: 60"])
    with client(pbx, ip="127.0.0.5") as c:
        first_unknown = c.request("REGISTER", f"sip:{DOMAIN}", aor(9999), aor(9999),
                                  [f"Contact: {c.contact('9999')}", "Expires: 60"])
    assert first_known.status == 401, first_known
    assert challenge_shape(first_known) == challenge_shape(first_unknown)
    algs = {parse_challenge(v).get("algorithm", "MD5").upper() for v in first_known.all("www-authenticate")}
    assert {"MD5", "SHA-256"} <= algs, f"expected MD5 and SHA-256 challenges, got {algs}"
    with client(pbx, ip="127.0.0.5") as c:
        wrong = c.register("1001", "wrong-password", DOMAIN, expires=60)
    with client(pbx, ip="127.0.0.5") as c:
        unknown = c.register("9999", "wrong-password", DOMAIN, expires=60)
    assert wrong is not None and unknown is not None
    assert wrong.status in (401, 403)
    assert (wrong.status, wrong.reason) == (unknown.status, unknown.reason)
    assert challenge_shape(wrong) == challenge_shape(unknown)


def test_sha256_digest_registers(pbx):
    with client(pbx, "tcp") as c:
        r = c.register("1007", "secret1007", DOMAIN, algorithm="SHA-256")
        assert r is not None and r.status == 200, r


def test_contact_star_removes_all_bindings(pbx):
    a, b = client(pbx), client(pbx)
    try:
        for c in (a, b):
            r = c.register("1008", "secret1008", DOMAIN, expires=600)
            assert r is not None and r.status == 200, r
        two = pbx.wait_bindings([1008], lambda b: len(b.get("1008", [])) == 2)
        assert len(two.get("1008", [])) == 2, pbx.registration_lines()
        # RFC 3261 §10.2.2: Contact: * only with Expires: 0
        r = a.register("1008", "secret1008", DOMAIN, expires=0, contact="*")
        assert r is not None and r.status == 200, r
        assert "1008" not in pbx.wait_bindings([1008], lambda b: not b), pbx.registration_lines()
    finally:
        a.close()
        b.close()


def test_contact_star_with_nonzero_expires_is_400(pbx):
    with client(pbx) as c:
        r = c.register("1008", "secret1008", DOMAIN, expires=60, contact="*")
        assert r is not None and r.status == 400, r


def test_too_short_expires_gets_423_with_min_expires(pbx):
    with client(pbx) as c:
        r = c.register("1009", "secret1009", DOMAIN, expires=1)
        assert r is not None and r.status == 423, r
        m = r.get("min-expires")
        assert m is not None and m.strip().isdigit() and int(m) > 1, r.headers
        r = c.register("1009", "secret1009", DOMAIN, expires=int(m))
        assert r is not None and r.status == 200, r
    assert "1009" in pbx.wait_bindings([1009], lambda b: bool(b))


def test_register_200_lists_contacts_with_expires(pbx):
    with client(pbx) as c:
        r = c.register("1004", "secret1004", DOMAIN, expires=300)
        assert r is not None and r.status == 200, r
        contacts = ",".join(r.all("contact"))
        assert f"{c.local[0]}:{c.local[1]}" in contacts and "expires=" in contacts.lower(), contacts


@pytest.mark.parametrize("transport", ["udp", "tcp", "tls"])
def test_options_gets_200(pbx, transport):
    with client(pbx, transport) as c:
        r = c.request("OPTIONS", f"sip:{DOMAIN}", f"sip:probe@{DOMAIN}", f"sip:{DOMAIN}")
        assert r is not None and r.status == 200, r


MALFORMED = {
    "non-numeric CSeq": ("OPTIONS sip:{d} SIP/2.0\r\nVia: SIP/2.0/UDP {l};branch=z9hG4bKbad1;rport\r\n"
                         "From: <sip:a@{d}>;tag=1\r\nTo: <sip:{d}>\r\nCall-ID: bad1@x\r\n"
                         "CSeq: abc OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"),
    "CSeq method mismatch": ("OPTIONS sip:{d} SIP/2.0\r\nVia: SIP/2.0/UDP {l};branch=z9hG4bKbad2;rport\r\n"
                             "From: <sip:a@{d}>;tag=1\r\nTo: <sip:{d}>\r\nCall-ID: bad2@x\r\n"
                             "CSeq: 1 INVITE\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"),
    "missing Call-ID": ("OPTIONS sip:{d} SIP/2.0\r\nVia: SIP/2.0/UDP {l};branch=z9hG4bKbad3;rport\r\n"
                        "From: <sip:a@{d}>;tag=1\r\nTo: <sip:{d}>\r\n"
                        "CSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"),
}


@pytest.mark.parametrize("name", sorted(MALFORMED))
def test_malformed_request_gets_400(pbx, name):
    with client(pbx) as c:
        c.send_raw(MALFORMED[name].format(d=DOMAIN, l=f"{c.local[0]}:{c.local[1]}").encode())
        r = c.recv(3)
        assert r is not None, f"{name}: no answer"
        assert r.status == 400 and r.reason.strip(), f"{name}: {r.status} {r.reason}"


def test_garbage_does_not_crash_the_server(pbx):
    blobs = [os.urandom(1200), b"\x00" * 64, b"\xff\xfe" * 300, b"SIP/2.0 200\r\n\r\n",
             b"INVITE\r\n\r\n", b"REGISTER sip:x SIP/2.0\r\nContent-Length: 99999\r\n\r\nshort",
             b"OPTIONS sip:" + b"a" * 70000, b"\r\n\r\n", "ÿ€ SIP/2.0\r\n\r\n".encode()]
    with client(pbx, ip="127.0.0.8") as c:
        for b in blobs:
            c.send_raw(b[:65000])
    for b in blobs:
        s = socket.create_connection(pbx.server("tcp"), timeout=2)
        try:
            s.sendall(b)
        except OSError:
            pass
        s.close()
    assert pbx.alive(), pbx.log_tail()
    for transport in ("udp", "tcp"):
        with client(pbx, transport) as c:
            r = c.request("OPTIONS", f"sip:{DOMAIN}", f"sip:probe@{DOMAIN}", f"sip:{DOMAIN}")
            assert r is not None and r.status == 200, f"{transport} after garbage: {r}"
    assert pbx.http_status("/healthz") == 200
    assert not re.search(r"panick", pbx.log_tail(10000)), pbx.log_tail()
