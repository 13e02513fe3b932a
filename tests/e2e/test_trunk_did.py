"""An extension's own DID as its caller ID on trunks (issue 15, part 1): the real PBX release
binary, real sockets.

- `pbx extension add 1000 --did +15551230001`; `pbx extension list` shows it; a bad DID is
  refused by `add` and `set` with a clear message and nothing changes.
- 1000 dials out through a trunk whose caller-ID mode is `extension`: the far end (a python
  UA standing for the provider) sees the DID in `From` and in `P-Asserted-Identity`.
- 1001 has no DID: the far end sees its extension number in `From` and no
  `P-Asserted-Identity`, as before DIDs existed.
- `pbx extension set 1001 --did ...` gives it one (the running PBX picks it up with the
  credentials); `--did ""` takes it away again.

Addresses: the PBX 127.0.0.1; 1000's phone 127.0.44.2; 1001's phone 127.0.44.3; the
provider's far end 127.0.44.4.
"""

import re
import time

import pytest

from callclient import Phone, sdp_offer
from trunkplan import far_end, trunk_plan

PHONE_IP, OTHER_IP, PROVIDER_IP = "127.0.44.2", "127.0.44.3", "127.0.44.4"
DID = "+15551230001"

PLAN = trunk_plan("test_trunk_did.py", "provider")


@pytest.fixture(scope="module")
def provider():
    with far_end("provider", PROVIDER_IP) as ua:
        yield ua


@pytest.fixture(scope="module")
def pbx(pbx_factory, provider):
    p = pbx_factory("trunk-did", dialplan=PLAN)
    p.cli("extension", "add", "1000", "--password", "pw1000", "--name", "Alice",
          "--did", DID)
    p.cli("extension", "add", "1001", "--password", "pw1001")
    p.cli("trunk", "add", "provider", "--host", f"{PROVIDER_IP}:{provider.local[1]}",
          "--caller-id-mode", "extension")
    return p.start()


def call_out(pbx, provider, number, password, ip, dialled):
    """`number` dials `9` + `dialled`; returns the INVITE the provider received (the call is
    answered and hung up)."""
    with Phone(number, password, pbx.server("udp"), local_ip=ip) as phone:
        out = phone.call(f"9{dialled}", sdp=sdp_offer(ip, 40440))
        inc = provider.wait_call(10)
        assert inc is not None, f"the trunk was not called\n{pbx.log_tail()}"
        inc.answer(sdp_offer(PROVIDER_IP, 40442))
        final = out.wait_final(10)
        assert final is not None and final.status == 200, (final, pbx.log_tail())
        bye = out.bye()
        assert bye is not None and bye.status == 200, bye
        return inc.invite


def test_the_cli_keeps_and_checks_the_did(pbx):
    listing = pbx.cli("extension", "list").stdout
    assert re.search(rf"^1000\s.*\s{re.escape(DID)}\s*$", listing, re.M), listing
    assert re.search(r"^1001\s.*\s-\s*$", listing, re.M), listing
    for bad in ("555-1234", "+1 555", "12ab"):
        r = pbx.cli("extension", "add", "1002", "--password", "pw", "--did", bad, check=False)
        assert r.returncode != 0 and f"bad DID `{bad}`" in r.stdout + r.stderr, (r.stdout, r.stderr)
        r = pbx.cli("extension", "set", "1000", "--did", bad, check=False)
        assert r.returncode != 0 and f"bad DID `{bad}`" in r.stdout + r.stderr, (r.stdout, r.stderr)
    listing = pbx.cli("extension", "list").stdout
    assert "1002" not in listing and DID in listing, listing


def test_the_did_is_presented_in_from_and_p_asserted_identity(pbx, provider):
    invite = call_out(pbx, provider, 1000, "pw1000", PHONE_IP, "4930123456")
    assert invite.uri.startswith("sip:4930123456@"), invite.uri
    frm = invite.get("from")
    assert re.search(rf"<sip:{re.escape(DID)}@", frm), frm
    assert '"Alice"' in frm, frm
    pai = invite.get("p-asserted-identity")
    assert pai is not None and re.search(rf"<sip:{re.escape(DID)}@", pai), invite.text()
    assert "1000@" not in frm, frm


def test_without_a_did_the_extension_number_as_before(pbx, provider):
    invite = call_out(pbx, provider, 1001, "pw1001", OTHER_IP, "4930123457")
    frm = invite.get("from")
    assert re.search(r"<sip:1001@", frm), frm
    assert invite.get("p-asserted-identity") is None, invite.text()


def test_a_did_set_later_is_used_and_can_be_cleared(pbx, provider):
    pbx.cli("extension", "set", "1001", "--did", "4930999001")
    # The running PBX reloads the credentials when the revision moves (within seconds).
    deadline = time.time() + 15
    while True:
        invite = call_out(pbx, provider, 1001, "pw1001", OTHER_IP, "4930123458")
        if "4930999001@" in invite.get("from") or time.time() > deadline:
            break
        time.sleep(1)
    assert re.search(r"<sip:4930999001@", invite.get("from")), invite.get("from")
    pai = invite.get("p-asserted-identity")
    assert pai is not None and "<sip:4930999001@" in pai, invite.text()

    pbx.cli("extension", "set", "1001", "--did", "")
    assert re.search(r"^1001\s.*\s-\s*$", pbx.cli("extension", "list").stdout, re.M)
    deadline = time.time() + 15
    while True:
        invite = call_out(pbx, provider, 1001, "pw1001", OTHER_IP, "4930123459")
        if "<sip:1001@" in invite.get("from") or time.time() > deadline:
            break
        time.sleep(1)
    assert re.search(r"<sip:1001@", invite.get("from")), invite.get("from")
    assert invite.get("p-asserted-identity") is None, invite.text()
