"""Calls that are not answered, and their CDRs: busy (486), unavailable (480), unknown number
(404), the caller cancels (487, CANCEL to the ringing device), nobody answers (480 after the
ring timeout, CANCEL to the device).

This PBX runs with `[calls] ring_timeout = "3s"` (default 20 s) so the no-answer case is quick.
The test config names no dialplan file, so busy / no answer reach the caller as SIP responses
instead of voicemail.
"""

import time

import pytest

from callclient import sdp_offer
from callhelpers import start_call_pbx, wait_cdr, wait_incoming

CALLER_IP, CALLEE_IP = "127.0.0.2", "127.0.0.3"
RING_TIMEOUT = 3.0
DISPOSITIONS = {"answered", "busy", "no_answer", "failed", "cancelled"}


@pytest.fixture(scope="module")
def call_pbx(pbx_factory):
    return start_call_pbx(pbx_factory, range(3501, 3511), name="calls-failures",
                          extra_toml=f'\n[calls]\nring_timeout = "{RING_TIMEOUT:g}s"\n')


def offer():
    return sdp_offer(CALLER_IP, 40000)


def test_busy_callee_gives_486_and_cdr_busy(call_pbx, phones):
    pbx = call_pbx
    caller = phones(pbx, 3501, CALLER_IP)
    callee = phones(pbx, 3502, CALLEE_IP)
    out = caller.call("3502", offer())
    inc = wait_incoming(pbx, callee, out)
    inc.reject(486, "Busy Here")
    final = out.wait_final(5)
    assert final is not None and final.status == 486, f"{final}\n{pbx.log_tail()}"
    row = wait_cdr(pbx, 3501, 3502)
    assert row["disposition"] == "busy", row
    assert row["duration"] in ("0s", "0"), row


def test_extension_without_registration_gives_480(call_pbx, phones):
    pbx = call_pbx
    caller = phones(pbx, 3503, CALLER_IP)
    assert "3504" not in pbx.bindings([3504])
    out = caller.call("3504", offer())
    final = out.wait_final(5)
    assert final is not None and final.status == 480, f"{final}\n{pbx.log_tail()}"
    # every call leaves a row, answered or not
    row = wait_cdr(pbx, 3503, 3504)
    assert row["disposition"] in DISPOSITIONS - {"answered"}, row


def test_unknown_number_gives_404(call_pbx, phones):
    pbx = call_pbx
    caller = phones(pbx, 3505, CALLER_IP)
    out = caller.call("3999", offer())
    final = out.wait_final(5)
    assert final is not None and final.status == 404, f"{final}\n{pbx.log_tail()}"
    # the 404 comes after authentication: an unauthenticated INVITE learns nothing
    assert out.challenged and out.challenged[0].status == 407, out.responses


def test_caller_cancels_487_and_device_cancelled_cdr_cancelled(call_pbx, phones):
    pbx = call_pbx
    caller = phones(pbx, 3506, CALLER_IP)
    callee = phones(pbx, 3507, CALLEE_IP)
    out = caller.call("3507", offer())
    inc = wait_incoming(pbx, callee, out)
    inc.ring()
    r = out.wait_provisional(180, 5)
    assert r is not None and r.status == 180, f"no 180 before cancelling: {out.responses}"
    c = out.cancel()
    assert c is not None and c.status == 200, f"CANCEL answered {c}\n{pbx.log_tail()}"
    final = out.wait_final(5)
    assert final is not None and final.status == 487, f"{final}\n{pbx.log_tail()}"
    assert inc.wait_cancel(5) is not None, \
        f"the ringing device got no CANCEL: {callee.describe_inbox()}\n{pbx.log_tail()}"
    row = wait_cdr(pbx, 3506, 3507)
    assert row["disposition"] == "cancelled", row


def test_no_answer_480_after_ring_timeout_cdr_no_answer(call_pbx, phones):
    pbx = call_pbx
    caller = phones(pbx, 3508, CALLER_IP)
    callee = phones(pbx, 3509, CALLEE_IP)
    out = caller.call("3509", offer())
    inc = wait_incoming(pbx, callee, out)
    inc.ring()
    rang = time.time()
    final = out.wait_final(RING_TIMEOUT + 7)
    waited = time.time() - rang
    assert final is not None and final.status == 480, f"{final} after {waited:.1f}s\n{pbx.log_tail()}"
    assert RING_TIMEOUT - 0.5 <= waited <= RING_TIMEOUT + 3, \
        f"480 after {waited:.1f}s of ringing, ring_timeout is {RING_TIMEOUT}s"
    assert inc.wait_cancel(3) is not None, \
        f"the device was not cancelled at the ring timeout: {callee.describe_inbox()}"
    row = wait_cdr(pbx, 3508, 3509)
    assert row["disposition"] == "no_answer", row
