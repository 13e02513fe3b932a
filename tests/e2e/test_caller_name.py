"""The caller's name on calls between extensions (issue 14, "incoming call with caller name"):
the INVITE the PBX sends to the callee carries the calling extension's configured name as
From's display name (RFC 3261 §20.20), quoted and escaped, whatever the caller's phone put in
its own From; an extension with no configured name keeps what its phone presented.

Addresses: the PBX 127.0.0.1; callers 127.0.41.2, callee 127.0.41.3.
"""

import pytest

from callhelpers import password, wait_incoming
from callclient import sdp_offer

# Protocol and media behaviour, not the store: run on SQLite only (scripts/test.sh).
pytestmark = pytest.mark.store_independent

CALLER_IP, CALLEE_IP = "127.0.41.2", "127.0.41.3"
NAMED, CALLEE, UNNAMED = 3401, 3402, 3403
# A double quote and a backslash: both must arrive escaped inside the quoted-string.
NAME = 'Alice "Al" Smith \\ Sales'
QUOTED = '"Alice \\"Al\\" Smith \\\\ Sales"'


@pytest.fixture(scope="module")
def name_pbx(pbx_factory):
    p = pbx_factory("caller-name")
    p.add_extension(NAMED, password(NAMED), name=NAME)
    p.add_extension(UNNAMED, password(UNNAMED))
    p.import_extensions([(CALLEE, password(CALLEE))])
    return p.start()


def from_seen_by_callee(pbx, caller, callee):
    """caller calls callee; the From of the INVITE the callee got (the callee refuses it)."""
    out = caller.call(str(callee.user), sdp_offer(caller.local[0], 40000))
    inc = wait_incoming(pbx, callee, out)
    shown = inc.invite.get("from")
    inc.reject(486, "Busy Here")
    final = out.wait_final(5)
    assert final is not None and final.status == 486, f"{final}\n{pbx.log_tail()}"
    return shown


@pytest.mark.parametrize("presented", [None, "Mallory"])
def test_extension_name_is_the_callee_display_name(name_pbx, phones, presented):
    """No display name in the caller's From, or another one: the callee sees the configured
    name, quoted with its quote and backslash escaped."""
    caller = phones(name_pbx, NAMED, CALLER_IP, display_name=presented)
    callee = phones(name_pbx, CALLEE, CALLEE_IP)
    shown = from_seen_by_callee(name_pbx, caller, callee)
    assert shown.startswith(QUOTED + " <sip:3401@"), f"the callee's INVITE has From: {shown}"
    assert "Mallory" not in shown, shown


def test_unnamed_extension_keeps_its_phone_display_name(name_pbx, phones):
    caller = phones(name_pbx, UNNAMED, CALLER_IP, display_name="Carol Desk")
    callee = phones(name_pbx, CALLEE, CALLEE_IP)
    shown = from_seen_by_callee(name_pbx, caller, callee)
    assert shown.startswith('"Carol Desk" <sip:3403@'), f"the callee's INVITE has From: {shown}"
