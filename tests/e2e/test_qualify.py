"""OPTIONS qualify (`[sip] qualify_interval`): a device that answers over the connection it
registered from is listed reachable; one whose connection is gone is listed unreachable."""

import pytest

from conftest import DOMAIN
from helpers import BaresipRegistration
from sipclient import SipClient


@pytest.fixture(scope="module")
def qualifying(pbx_factory):
    p = pbx_factory("qualify")
    text = p.toml().replace(f'domain = "{DOMAIN}"', f'domain = "{DOMAIN}"\nqualify_interval = "1s"', 1)
    with open(p.config, "w") as f:
        f.write(text)
    p.add_extension(1001, "secret1001")
    p.add_extension(1002, "secret1002")
    return p.start()


def status_of(found, number):
    lines = found.get(str(number), [])
    return lines[0].split() if lines else []


def test_device_answering_over_its_tcp_connection_is_reachable(qualifying, tmp_path):
    # baresip keeps its TCP connection and answers the PBX's OPTIONS on it: the PBX must send
    # them over that connection (baresip's Contact port is not where it listens for TCP)
    phone = BaresipRegistration(qualifying, 1001, "secret1001", "tcp", stay=8, tmp_path=str(tmp_path))
    try:
        assert phone.wait_registered(), phone.output()
        found = qualifying.wait_bindings([1001], lambda b: "reachable" in status_of(b, 1001), timeout=6)
        assert "reachable" in status_of(found, 1001), qualifying.registration_lines()
    finally:
        phone.wait()


def test_device_whose_connection_closed_is_unreachable(qualifying):
    with SipClient("tcp", qualifying.server("tcp")) as c:
        r = c.register("1002", "secret1002", DOMAIN)
        assert r is not None and r.status == 200, r
    # the connection is closed now: the next OPTIONS cannot be sent
    found = qualifying.wait_bindings([1002], lambda b: "unreachable" in status_of(b, 1002), timeout=8)
    assert "unreachable" in status_of(found, 1002), qualifying.registration_lines()
