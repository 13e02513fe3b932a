"""[security] deny networks, an extension's own allowed networks, and the per-source rate
limit: each keeps out what it should and nothing else."""

import pytest

from conftest import DOMAIN
from sipclient import SipClient

OFFICE, DENIED, FLOODER, OTHER = "127.0.0.5", "127.0.0.4", "127.0.0.6", "127.0.0.7"
RATE = 20


@pytest.fixture(scope="module")
def guarded(pbx_factory):
    p = pbx_factory("guarded")
    extra = f'deny = ["{DENIED}/32"]\nrate_limit = {RATE}\nrate_burst = {RATE}\n'
    with open(p.config, "w") as f:
        f.write(p.toml(security={"extra": extra}))
    p.cli("extension", "add", "1001", "--password", "secret1001", "--allow", f"{OFFICE}/32")
    p.add_extension(1002, "secret1002")
    return p.start()


def options(pbx, local_ip, timeout=1.5):
    with SipClient("udp", pbx.server("udp"), local_ip=local_ip, timeout=timeout) as c:
        return c.request("OPTIONS", f"sip:{DOMAIN}", f"sip:probe@{DOMAIN}", f"sip:{DOMAIN}")


def test_denied_network_gets_no_answer_others_do(guarded):
    assert options(guarded, DENIED) is None, "a source in [security] deny got an answer"
    r = options(guarded, OTHER)
    assert r is not None and r.status == 200, r


def test_extension_registers_only_from_its_own_networks(guarded):
    with SipClient("udp", guarded.server("udp"), local_ip=OFFICE) as c:
        r = c.register("1001", "secret1001", DOMAIN)
        assert r is not None and r.status == 200, r
    with SipClient("udp", guarded.server("udp"), local_ip=OTHER) as c:
        r = c.register("1001", "secret1001", DOMAIN)
        assert r is not None and r.status == 403, f"1001 registered from outside its network: {r}"
        r = c.register("1002", "secret1002", DOMAIN)
        assert r is not None and r.status == 200, r
    lines = guarded.wait_bindings(["1001"], lambda found: "1001" in found).get("1001", [])
    assert lines and all(OFFICE in line for line in lines), lines


def test_flooding_source_is_limited_and_others_are_not(guarded):
    sent = 10 * RATE
    with SipClient("udp", guarded.server("udp"), local_ip=FLOODER, timeout=0.5) as c:
        for _ in range(sent):
            c.send_raw(c.build("OPTIONS", f"sip:{DOMAIN}", f"sip:flood@{DOMAIN}", f"sip:{DOMAIN}"))
        # while the flooder is over its budget, another source is answered at once
        r = options(guarded, OTHER)
        assert r is not None and r.status == 200, "another source was starved by the flood"
        answered = 0
        while c.recv(0.5) is not None:
            answered += 1
    # the burst, plus what the bucket refilled while the flood and the reads went on
    assert RATE // 2 <= answered <= 3 * RATE, f"{answered} of {sent} flood requests answered"
    status, metrics = guarded.http_get("/metrics")
    assert status == 200
    dropped = {line.split("reason=\"")[1].split("\"")[0]: float(line.rsplit(" ", 1)[1])
               for line in metrics.splitlines() if line.startswith("pbx_sip_dropped_total{")}
    assert dropped.get("rate_limit", 0) >= sent - 3 * RATE, dropped
    assert dropped.get("acl", 0) >= 1, dropped
