"""A password-guessing source is banned after max_auth_failures; others keep registering."""

import time

from conftest import DOMAIN, MAX_AUTH_FAILURES
from helpers import sipp_register_one
from sipclient import SipClient

ATTACKER, PHONE = "127.0.0.2", "127.0.0.3"


def options(pbx, local_ip, transport="udp", timeout=2.0):
    """One OPTIONS from local_ip; the final response, or None when nothing came back."""
    try:
        with SipClient(transport, pbx.server(transport), local_ip=local_ip, timeout=timeout) as c:
            return c.request("OPTIONS", f"sip:{DOMAIN}", f"sip:probe@{DOMAIN}", f"sip:{DOMAIN}")
    except (ConnectionError, OSError):
        return None           # TCP: refused or closed without an answer


def test_wrong_password_source_is_banned_and_others_are_not(pbx):
    # the phone works before the attack
    rc, out = sipp_register_one(pbx, 1001, "secret1001", local_ip=PHONE)
    assert rc == 0, out

    with SipClient("udp", pbx.server("udp"), local_ip=ATTACKER) as c:
        for i in range(MAX_AUTH_FAILURES - 1):
            r = c.register("1001", f"guess{i}", DOMAIN)
            assert r is not None and r.status in (401, 403), f"attempt {i + 1}: {r}"
        c.register("1001", "guess-last", DOMAIN, timeout=2)  # the failure that reaches the limit
        # from now on: not a single byte back, whatever is sent
        assert c.register("1001", "secret1001", DOMAIN, timeout=2) is None, \
            "a banned source still got an answer (even with the right password)"
    assert options(pbx, ATTACKER) is None, "a banned source got an answer to OPTIONS"
    assert options(pbx, ATTACKER, "tcp") is None, "a banned source got an answer over TCP"
    assert ATTACKER in pbx.ban_list(), pbx.ban_list()

    # the legitimate phone on another address keeps registering, with SIPp and with sipclient
    rc, out = sipp_register_one(pbx, 1002, "secret1002", local_ip=PHONE)
    assert rc == 0 and "result=OK" in out, out
    with SipClient("udp", pbx.server("udp"), local_ip=PHONE) as c:
        r = c.register("1003", "secret1003", DOMAIN)
        assert r is not None and r.status == 200, r
    assert PHONE not in pbx.ban_list()

    # lifting the ban by the CLI lets the address in again (a running server must notice)
    pbx.cli("ban", "remove", ATTACKER)
    assert ATTACKER not in pbx.ban_list()
    deadline, r = time.time() + 15, None
    while time.time() < deadline:
        r = options(pbx, ATTACKER, timeout=1.0)
        if r is not None:
            break
    assert r is not None and r.status == 200, "the lifted address still gets no answer"
    with SipClient("udp", pbx.server("udp"), local_ip=ATTACKER) as c:
        r = c.register("1004", "secret1004", DOMAIN)
        assert r is not None and r.status == 200, r


def test_ban_remove_malformed_address_is_an_error(pbx):
    r = pbx.cli("ban", "remove", "not-an-address", check=False)
    assert r.returncode != 0, "ban remove accepted a malformed address"
