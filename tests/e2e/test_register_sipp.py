"""SIPp registers 200 extensions with digest over UDP and over TCP (tests/clients/sipp/register.xml).

TLS is in test_register_tls.py: Debian's SIPp 3.6.1 is built without TLS.
"""

import socket

import pytest

from conftest import free_port

from helpers import sipp_register_many, sipp_register_one


@pytest.mark.parametrize("transport,first", [("udp", 2000), ("tcp", 2200)])
def test_sipp_registers_200_extensions(pbx, tmp_path, transport, first):
    users = [(n, f"pw{n}") for n in range(first, first + 200)]
    rc, log = sipp_register_many(pbx, users, transport, str(tmp_path))
    assert rc == 0, f"SIPp: not every REGISTER got 200 (rc={rc})\n{log}\n{pbx.log_tail()}"
    found = pbx.wait_bindings([n for n, _ in users], lambda b: len(b) == 200)
    assert len(found) == 200, f"registration list shows {len(found)} of 200 {transport} extensions"
    for n, lines in found.items():
        assert len(lines) == 1, f"extension {n}: expected one binding, got {lines}"
        assert transport in lines[0].lower(), f"extension {n}: transport {transport} not in {lines[0]!r}"


def test_sipp_recipe_register_and_unregister(pbx):
    """The recipe script itself: register (result=OK), listed; Expires 0 from the same Contact
    removes that binding again."""
    port = free_port(socket.SOCK_DGRAM)
    rc, out = sipp_register_one(pbx, 1003, "secret1003", sip_port=port)
    assert rc == 0 and "result=OK" in out, out
    lines = pbx.wait_bindings([1003], lambda b: "1003" in b).get("1003", [])
    assert len(lines) == 1 and str(port) in lines[0], pbx.registration_lines()
    rc, out = sipp_register_one(pbx, 1003, "secret1003", sip_port=port, expires=0)
    assert rc == 0 and "result=OK" in out, out
    assert "1003" not in pbx.wait_bindings([1003], lambda b: not b), pbx.registration_lines()


def test_sipp_wrong_password_is_refused(pbx):
    rc, out = sipp_register_one(pbx, 1004, "not-the-password", local_ip="127.0.0.6")
    assert rc != 0 and "result=FAIL" in out, out
    assert "1004" not in pbx.bindings([1004])
