"""What an operator sees at the default log level, and changing an extension on a running PBX.

- the log (stderr, RUST_LOG unset = info) has one line per binding added, removed (un-REGISTER
  and `Contact: *`) and expired, each naming the extension and the contact; a refresh adds no
  line;
- a call has a "call started" line and a "call ended" line naming the CDR id that
  `pbx cdr list` shows for the same call, with caller, callee, disposition and duration;
- no password reaches the log;
- `pbx extension set` on the running PBX: the registration stays (`pbx registration list`),
  the new password works for the next REGISTER once the PBX has re-read the extensions (its
  "extension credentials loaded" line), the old one is refused; `--context` moves a caller
  to another dialplan context.

Addresses: the PBX 127.0.0.1; phones 127.0.61.1-127.0.61.5.
"""

import re
import time

import pytest

from callclient import sdp_offer
from callhelpers import password, wait_cdr, wait_incoming
from conftest import DOMAIN
from sipclient import SipClient

PHONE_A, PHONE_B, PHONE_C, PHONE_D, PHONE_E = (f"127.0.61.{n}" for n in range(1, 6))
NUMBERS = [3001, 3002, 3003, 3004, 3005, 3006]
MIN_EXPIRES = 2

PLAN = """\
[defaults]
context = "staff"

[context.staff]
[[context.staff.rule]]
extension = true
steps = [{ dial = "${number}" }]

[context.lobby]
members = ["3990-3999"]
may_call = ["3001"]
include = ["staff"]
"""


@pytest.fixture(scope="module")
def ops_pbx(pbx_factory):
    """A PBX with a dialplan, extensions 3001-3006 (password pw<N>) and `min_expires` of 2 s,
    so that a binding can expire within the test."""
    p = pbx_factory("ops", dialplan=PLAN)
    with open(p.config) as f:
        text = f.read()
    text = text.replace(f'domain = "{DOMAIN}"',
                        f'domain = "{DOMAIN}"\nmin_expires = "{MIN_EXPIRES}s"', 1)
    with open(p.config, "w") as f:
        f.write(text)
    p.import_extensions([(n, password(n)) for n in NUMBERS])
    return p.start()


def log_line(pbx, pattern, after, timeout=5.0):
    """The first log line from character `after` on that matches `pattern` (the whole line
    is the match)."""
    m = pbx.wait_log(pattern + r"[^\n]*", after, timeout)
    assert m is not None, f"no log line matching {pattern!r}\n{pbx.log_tail()}"
    return m


def registered(pbx, number, ip, pw=None, expires=120):
    c = SipClient("udp", pbx.server("udp"), local_ip=ip)
    r = c.register(str(number), pw or password(number), DOMAIN, expires=expires)
    assert r is not None and r.status == 200, f"{number}@{ip}: {r}\n{pbx.log_tail()}"
    return c


def test_register_refresh_and_unregister_are_logged(ops_pbx):
    pbx = ops_pbx
    start = len(pbx.log_text())
    c = registered(pbx, 3001, PHONE_A)
    try:
        contact = re.escape(f"sip:3001@{PHONE_A}:{c.local[1]}")
        added = log_line(pbx, rf"registration added.*extension=3001.*contact={contact}", start)
        assert f"source={PHONE_A}:" in added.group(0), added.group(0)
        # A refresh of the same binding is not a new one.
        mark = len(pbx.log_text())
        r = c.register("3001", password(3001), DOMAIN, expires=120)
        assert r is not None and r.status == 200, r
        mark2 = len(pbx.log_text())
        r = c.register("3001", password(3001), DOMAIN, expires=0)
        assert r is not None and r.status == 200, r
        removed = log_line(pbx, rf"registration removed.*extension=3001.*contact={contact}", mark2)
        assert "registration added" not in pbx.log_text()[mark:removed.start()], \
            pbx.log_text()[mark:]
    finally:
        c.close()


def test_contact_star_logs_each_binding_removed(ops_pbx):
    pbx = ops_pbx
    a = registered(pbx, 3002, PHONE_A)
    b = registered(pbx, 3002, PHONE_B)
    try:
        mark = len(pbx.log_text())
        r = a.register("3002", password(3002), DOMAIN, expires=0, contact="*")
        assert r is not None and r.status == 200, r
        for phone in (a, b):
            contact = re.escape(f"sip:3002@{phone.local[0]}:{phone.local[1]}")
            log_line(pbx, rf"registration removed.*extension=3002.*contact={contact}", mark)
    finally:
        a.close()
        b.close()


def test_expiry_is_logged(ops_pbx):
    pbx = ops_pbx
    mark = len(pbx.log_text())
    c = registered(pbx, 3003, PHONE_C, expires=MIN_EXPIRES)
    try:
        contact = re.escape(f"sip:3003@{PHONE_C}:{c.local[1]}")
        log_line(pbx, rf"registration added.*extension=3003.*contact={contact}", mark)
        # expires after MIN_EXPIRES s; the PBX sweeps expired bindings every 2 s
        log_line(pbx, rf"registration expired.*extension=3003.*contact={contact}", mark,
                 timeout=MIN_EXPIRES + 8)
        assert "3003" not in pbx.wait_bindings([3003], lambda found: not found)
    finally:
        c.close()


def test_a_call_logs_start_and_end_with_the_cdr_id(ops_pbx, phones):
    pbx = ops_pbx
    mark = len(pbx.log_text())
    caller = phones(pbx, 3004, PHONE_D)
    callee = phones(pbx, 3005, PHONE_E)
    out = caller.call("3005", sdp_offer(PHONE_D, 40000))
    inc = wait_incoming(pbx, callee, out)
    inc.ring()
    inc.answer(sdp_offer(PHONE_E, 42000))
    final = out.wait_final(5)
    assert final is not None and final.status == 200, f"{final}\n{pbx.log_tail()}"
    assert inc.wait_ack(3) is not None
    r = out.bye()
    assert r is not None and r.status == 200, r
    started = log_line(pbx, r"call started.*caller=3004.*callee=3005", mark)
    call_id = re.search(r"call=(\S+)", started.group(0))
    assert call_id is not None, started.group(0)
    ended = log_line(pbx, rf"call ended cdr=(\d+) call={re.escape(call_id.group(1))} "
                          r"caller=3004 callee=3005 disposition=answered duration=\d+s", mark)
    row = wait_cdr(pbx, 3004, 3005)
    assert row["id"] == ended.group(1), (row, ended.group(0))
    assert row["disposition"] == "answered", row


def test_extension_set_keeps_the_binding_and_the_new_password_works(ops_pbx):
    pbx = ops_pbx
    new = "Brand-new-pass-3006"
    c = registered(pbx, 3006, PHONE_B)
    try:
        assert "3006" in pbx.wait_bindings([3006], lambda found: "3006" in found)
        mark = len(pbx.log_text())
        out = pbx.cli("extension", "set", "3006", "--password", new, "--name", "Desk")
        assert "extension 3006 changed" in out.stdout, out.stdout
        # The running PBX re-reads the extensions when they change (within 5 s) and says so.
        log_line(pbx, r"extension credentials loaded", mark, timeout=10)
        assert "3006" in pbx.bindings([3006]), pbx.registration_lines()
        rows = [ln for ln in pbx.cli("extension", "list").stdout.splitlines()
                if ln.startswith("3006")]
        assert rows and "Desk" in rows[0], rows
        r = c.register("3006", new, DOMAIN, expires=120)
        assert r is not None and r.status == 200, f"{r}\n{pbx.log_tail()}"
        r = c.register("3006", password(3006), DOMAIN, expires=120)
        assert r is not None and r.status == 401, f"the old password still works: {r}"
        assert "3006" in pbx.bindings([3006]), pbx.registration_lines()
        log = pbx.log_text()
        for secret in (new, password(3006)):
            assert secret not in log, f"{secret!r} in the log"
        r = c.register("3006", new, DOMAIN, expires=0)
        assert r is not None and r.status == 200, r
    finally:
        c.close()


def test_extension_set_context_moves_the_caller(ops_pbx, phones):
    """3004 in staff may call 3005; once set to the lobby context, which may only call 3001,
    the call is refused with a plain 403 (the context name stays in the log and the CDR)."""
    pbx = ops_pbx
    mark = len(pbx.log_text())
    pbx.cli("extension", "set", "3004", "--context", "lobby")
    log_line(pbx, r"extension credentials loaded", mark, timeout=10)
    try:
        caller = phones(pbx, 3004, PHONE_D)
        phones(pbx, 3005, PHONE_E)
        out = caller.call("3005", sdp_offer(PHONE_D, 40000))
        final = out.wait_final(5)
        assert final is not None and final.status == 403, f"{final}\n{pbx.log_tail()}"
        assert final.reason == "Forbidden", final.reason
        log_line(pbx, r"call refused by the dialplan.*context lobby may not call 3005", mark)
        row = refused_cdr(pbx)
        assert row is not None, pbx.cli("cdr", "list").stdout
        assert row["disposition"] == "failed", row
        assert row["hangup"].startswith("pbx 403 Forbidden"), row
    finally:
        pbx.cli("extension", "set", "3004", "--context", "")


def refused_cdr(pbx, timeout=5.0):
    """The CDR of the refused call (written just after it ended)."""
    end = time.time() + timeout
    while time.time() < end:
        for row in pbx.cdrs():
            if "context lobby may not call 3005" in row.get("hangup", ""):
                return row
        time.sleep(0.25)
    return None
