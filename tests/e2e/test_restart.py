"""Registrations and bans survive a restart (SIGTERM, exit 0, start again)."""

import socket

from conftest import DOMAIN, MAX_AUTH_FAILURES, free_port
from helpers import sipp_register_one
from sipclient import SipClient


def test_registrations_and_bans_survive_restart(pbx):
    port = free_port(socket.SOCK_DGRAM)
    rc, out = sipp_register_one(pbx, 1005, "secret1005", sip_port=port)
    assert rc == 0, out
    with SipClient("tcp", pbx.server("tcp")) as c:
        r = c.register("1006", "secret1006", DOMAIN)
        assert r is not None and r.status == 200, r
    before = pbx.wait_bindings([1005, 1006], lambda b: len(b) == 2)
    assert len(before.get("1005", [])) == 1 and "1006" in before, pbx.registration_lines()

    attacker = "127.0.0.4"
    with SipClient("udp", pbx.server("udp"), local_ip=attacker, timeout=2) as c:
        for i in range(MAX_AUTH_FAILURES):
            c.register("1005", f"guess{i}", DOMAIN)
        assert c.register("1005", "secret1005", DOMAIN) is None, "attacker not banned"
    assert attacker in pbx.ban_list()

    pbx.stop()           # asserts exit 0 within 10 s of SIGTERM
    pbx.start()

    after = pbx.bindings([1005, 1006])
    assert len(after.get("1005", [])) == 1, f"binding lost in restart: {pbx.registration_lines()}"
    assert str(port) in after["1005"][0]
    assert "1006" in after, "the TCP binding was lost in the restart"
    assert attacker in pbx.ban_list(), "ban lost in restart"
    with SipClient("udp", pbx.server("udp"), local_ip=attacker, timeout=2) as c:
        r = c.request("OPTIONS", f"sip:{DOMAIN}", f"sip:x@{DOMAIN}", f"sip:{DOMAIN}")
        assert r is None, "a banned address got an answer after the restart"

    # re-REGISTER from the same Contact refreshes the binding (still one, not two)
    rc, out = sipp_register_one(pbx, 1005, "secret1005", sip_port=port)
    assert rc == 0 and "result=OK" in out, out
    assert len(pbx.bindings([1005])["1005"]) == 1, pbx.registration_lines()
