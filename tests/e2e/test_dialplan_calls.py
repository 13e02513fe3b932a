"""Calls routed by the TOML dialplan (docs/dialplan.md), end to end: python phones
(callclient) through the real PBX with a `[dialplan] file`.

- patterns: `_8XXXX` and a regex with a capture dial the extension after the prefix; a
  context with `order = "specificity"` sorts `_X.`, `_NXX`, `_2XX` and an exact number as
  Asterisk does; a number no rule matches is 404;
- dial branches: an external number (no trunks yet: unavailable) and an extension with no
  registered device run `on_unavailable`; a busy device runs `on_busy`; a `dial` rings for
  its own `timeout`, then `on_no_answer` runs;
- permissions: a lobby context (`may_call = ["1000"]`) gets 403 and a failed CDR with the
  reason for anything else (also a prefix that would ring 1000), and reaches 1000;
- `http_lookup` against a small HTTP server started here: GET with percent-encoded caller
  values and a Host with the port, POST; JSON into variables (the target dialed, the
  caller name the callee sees); a 500, a closed port and a too slow server run
  `on_failure`; a slow answer is asked once and the caller has 100 Trying meanwhile; a
  CANCEL during the lookup ends the call (487) and nothing is rung;
- reload: SIGHUP while a call is up (the call goes on and ends by BYE, new calls get the new
  plan), a plan that fails validation (errors logged as path:line:col, the last good plan
  stays), a change of the file without SIGHUP; a call waiting in its `http_lookup` during a
  reload goes on with the plan it started with;
- `pbx dialplan trace` on the same plan.

Addresses: the PBX 127.0.0.1; callers 127.0.0.2; the callee 1000 127.0.0.3; 1002 127.0.0.4.
"""

import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest

from callclient import sdp_offer
from callhelpers import password, wait_cdr, wait_incoming
from conftest import free_port

CALLER_IP, CALLEE_IP, OTHER_IP = "127.0.0.2", "127.0.0.3", "127.0.0.4"
# 1000 the reception; 1001, 1002 staff; 1003 never registers; 1990, 1991 the lobby
NUMBERS = [1000, 1001, 1002, 1003, 1990, 1991]
DIAL_TIMEOUT = 3            # the `timeout` of the extension rule's dial, in seconds
SLOW_SERVER = 3.0           # how long /slow takes to answer; its lookup's timeout is 1 s
DELAYED_SERVER = 1.5        # how long /delayed takes (within its lookup's timeout)
CALLER_NAME = "Anna Müller & Co"

# `{lookup}`: http://127.0.0.1:PORT of the test's HTTP server; `{closed}`: a port where
# nothing listens. Rules are referred to by the line of their matcher (see `line_of`).
PLAN = """\
# written by tests/e2e/test_dialplan_calls.py
[defaults]
context = "staff"

[context.lobby]
members = ["1990-1999"]
may_call = ["1000"]
include = ["staff"]

[context.staff]

[[context.staff.rule]]
pattern = "_8XXXX"                      # 8 + an extension: ring that extension
steps = [{{ dial = "${{number:1}}" }}]

[[context.staff.rule]]
regex = "7(\\\\d{{4}})"                    # 7 + an extension, by a capture
steps = [{{ dial = "${{1}}" }}]

[[context.staff.rule]]
pattern = "_6."                         # 6 + a number: routed by the `ordered` context
steps = [{{ goto = {{ context = "ordered", number = "${{number:1}}" }} }}]

[[context.staff.rule]]
pattern = "_0X."                        # external: no trunk yet, so unavailable
steps = [{{ dial = {{ targets = ["${{number}}"], on_unavailable = [{{ dial = "1002" }}] }} }}]

[[context.staff.rule]]
pattern = "5000"
steps = [
    {{ http_lookup = {{ url = "{lookup}/route?caller=${{caller}}&name=${{caller_name}}&dialed=${{number}}",
                      timeout = "2s",
                      set = {{ target = "route.target" }},
                      on_failure = [{{ hangup = {{ status = 503, reason = "Lookup failed" }} }}] }} }},
    {{ dial = "${{target}}" }},
]

[[context.staff.rule]]
pattern = "5001"
steps = [
    {{ http_lookup = {{ url = "{lookup}/fail?caller=${{caller}}", timeout = "2s",
                      set = {{ target = "route.target" }},
                      on_failure = [{{ hangup = {{ status = 503, reason = "Lookup failed" }} }}] }} }},
    {{ dial = "${{target}}" }},
]

[[context.staff.rule]]
pattern = "5002"
steps = [
    {{ http_lookup = {{ url = "http://127.0.0.1:{closed}/route", timeout = "2s",
                      set = {{ target = "route.target" }},
                      on_failure = [{{ set = {{ target = "1002" }} }}] }} }},
    {{ dial = "${{target}}" }},
]

[[context.staff.rule]]
pattern = "5003"
steps = [
    {{ http_lookup = {{ url = "{lookup}/slow", timeout = "1s",
                      set = {{ target = "route.target" }},
                      on_failure = [{{ hangup = 504 }}] }} }},
    {{ dial = "${{target}}" }},
]

[[context.staff.rule]]
pattern = "5004"
steps = [
    {{ http_lookup = {{ url = "{lookup}/route?caller=${{caller}}",
                      set = {{ target = "route.target", caller_name = "customer.name" }} }} }},
    {{ dial = "${{target}}" }},
]

[[context.staff.rule]]
pattern = "5005"
steps = [
    {{ http_lookup = {{ url = "{lookup}/route", method = "POST",
                      body = "caller=${{caller}}&dialed=${{number}}",
                      set = {{ target = "route.target" }},
                      on_failure = [{{ hangup = 503 }}] }} }},
    {{ dial = "${{target}}" }},
]

[[context.staff.rule]]
pattern = "5006"
steps = [
    {{ http_lookup = {{ url = "{lookup}/delayed?caller=${{caller}}", timeout = "4s",
                      set = {{ target = "route.target" }},
                      on_failure = [{{ hangup = 503 }}] }} }},
    {{ dial = "${{target}}" }},
]

[[context.staff.rule]]
extension = true
steps = [
    {{ dial = {{ targets = ["${{number}}"], timeout = "{dial_timeout}s",
               on_busy = [{{ dial = "1002" }}],
               on_no_answer = [{{ hangup = {{ status = 408, reason = "Nobody answered" }} }}],
               on_unavailable = [{{ hangup = {{ status = 410, reason = "Nobody there" }} }}] }} }},
]

# Asterisk's order, whatever the order in the file: 250 < _2XX < _NXX < _X.
[context.ordered]
order = "specificity"

[[context.ordered.rule]]
pattern = "_X."
steps = [{{ hangup = 603 }}]

[[context.ordered.rule]]
pattern = "_NXX"
steps = [{{ hangup = 484 }}]

[[context.ordered.rule]]
pattern = "_2XX"
steps = [{{ hangup = 488 }}]

[[context.ordered.rule]]
pattern = "250"
steps = [{{ dial = "1000" }}]
"""


def line_of(text, needle):
    """The 1-based line of `text` where `needle` first occurs."""
    for i, line in enumerate(text.splitlines(), 1):
        if needle in line:
            return i
    raise AssertionError(f"{needle!r} not in the plan")


# ------------------------------------------------------------------------------ HTTP server


class LookupServer:
    """A small HTTP server on 127.0.0.1 in a thread: `/route` answers JSON naming 1000,
    `/fail` 500, `/slow` and `/delayed` JSON after SLOW_SERVER / DELAYED_SERVER s. Every
    request is recorded as a dict (method, path, query (raw), params (decoded), headers with
    lower-case names, body)."""

    ANSWER = {"route": {"target": "1000"}, "customer": {"name": "Looked Up"}}

    def __init__(self):
        self.requests = []
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def handle_one(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n).decode("utf-8", "replace") if n else ""
                url = urlsplit(self.path)
                with outer.lock:
                    outer.requests.append({"method": self.command, "path": url.path,
                                           "query": url.query, "params": parse_qs(url.query),
                                           "headers": {k.lower(): v
                                                       for k, v in self.headers.items()},
                                           "body": body})
                if url.path == "/fail":
                    return self.reply(500, {"error": "down for maintenance"})
                if url.path == "/slow":
                    time.sleep(SLOW_SERVER)
                    return self.reply(200, outer.ANSWER)
                if url.path == "/delayed":
                    time.sleep(DELAYED_SERVER)
                    return self.reply(200, outer.ANSWER)
                if url.path == "/route":
                    return self.reply(200, outer.ANSWER)
                return self.reply(404, {"error": "no such path"})

            def reply(self, status, obj):
                data = json.dumps(obj).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except OSError:
                    pass                        # the PBX gave up (its timeout)

            do_GET = do_POST = handle_one

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = "http://127.0.0.1:%d" % self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def requests_to(self, path):
        with self.lock:
            return [r for r in self.requests if r["path"] == path]

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


# ------------------------------------------------------------------------------ fixtures


def start_plan_pbx(pbx_factory, name, plan, numbers=NUMBERS):
    p = pbx_factory(name, dialplan=plan)
    p.import_extensions([(n, password(n)) for n in numbers])
    if 1001 in numbers:
        # The name the PBX presents for 1001 (whatever its phone's From says).
        p.cli("extension", "set", "1001", "--name", CALLER_NAME)
    return p.start()


@pytest.fixture(scope="module")
def lookup():
    server = LookupServer()
    yield server
    server.close()


@pytest.fixture(scope="module")
def plan_text(lookup):
    return PLAN.format(lookup=lookup.url, closed=free_port(), dial_timeout=DIAL_TIMEOUT)


@pytest.fixture(scope="module")
def plan_pbx(pbx_factory, plan_text):
    return start_plan_pbx(pbx_factory, "dialplan-calls", plan_text)


# ------------------------------------------------------------------------------ helpers


def offer(ip=CALLER_IP):
    return sdp_offer(ip, 40000)


def final_of(pbx, out, timeout=5):
    final = out.wait_final(timeout)
    assert final is not None, f"no final response: {out.responses}\n{pbx.log_tail()}"
    return final


def ring_and_answer(pbx, caller, callee, dialed):
    """caller dials `dialed`; the callee (a Phone) gets the INVITE, rings, answers; the
    caller gets 200 and ACKs it. Returns (out, inc)."""
    out = caller.call(str(dialed), offer(caller.local[0]))
    inc = wait_incoming(pbx, callee, out)
    inc.ring()
    inc.answer(sdp_offer(callee.local[0], 42000))
    final = final_of(pbx, out)
    assert final.status == 200, \
        f"{caller.user} -> {dialed}: {final}; {out.responses}\n{pbx.log_tail()}"
    assert inc.wait_ack(3) is not None, "the callee got no ACK for its 200"
    return out, inc


def hang_up(pbx, out, inc):
    """The caller sends BYE: 200, and the callee gets the BYE."""
    r = out.bye()
    assert r is not None and r.status == 200, f"caller's BYE: {r}\n{pbx.log_tail()}"
    assert inc.wait_bye(5) is not None, \
        f"the callee got no BYE: {inc.phone.describe_inbox()}\n{pbx.log_tail()}"


def assert_not_rung(pbx, phone, within=0.5):
    inc = phone.wait_call(within)
    assert inc is None, f"{phone.user} was rung: {inc.invite.text()}\n{pbx.log_tail()}"


def refused(pbx, caller, dialed, status):
    """caller dials `dialed` and gets `status` (the INVITE was challenged first)."""
    out = caller.call(str(dialed), offer(caller.local[0]))
    final = final_of(pbx, out)
    assert final.status == status, \
        f"{caller.user} -> {dialed}: {final}, expected {status}\n{pbx.log_tail()}"
    assert out.challenged and out.challenged[0].status == 407, out.responses
    return final


# ------------------------------------------------------------------------------ patterns


@pytest.mark.parametrize("dialed", ["81000", "71000"], ids=["asterisk_8XXXX", "regex_capture"])
def test_prefix_pattern_dials_the_extension_after_the_prefix(plan_pbx, phones, dialed):
    pbx = plan_pbx
    caller = phones(pbx, 1001, CALLER_IP)
    callee = phones(pbx, 1000, CALLEE_IP)
    out, inc = ring_and_answer(pbx, caller, callee, dialed)
    # the callee leg is addressed to the extension the plan dialed, not to what was dialed
    assert re.match(r"sip:1000@", inc.invite.uri), inc.invite.uri
    assert "1000" in inc.invite.get("to"), inc.invite.get("to")
    time.sleep(0.3)
    hang_up(pbx, out, inc)
    row = wait_cdr(pbx, 1001, dialed)
    assert row["disposition"] == "answered", row


@pytest.mark.parametrize("dialed, status", [
    ("6260", 488),          # _2XX before _NXX and _X. although last but one in the file
    ("6360", 484),          # _NXX before _X.
    ("6150", 603),          # N is 2-9: only _X.
    ("612345", 603),        # more digits than _NXX: only _X.
], ids=["_2XX", "_NXX", "_X.-short", "_X.-long"])
def test_specificity_order_as_asterisk(plan_pbx, phones, dialed, status):
    caller = phones(plan_pbx, 1001, CALLER_IP)
    refused(plan_pbx, caller, dialed, status)


def test_specificity_exact_number_first_and_goto_rings(plan_pbx, phones):
    """6250 -> goto ordered with 250: the exact rule, written last, wins and dials 1000."""
    pbx = plan_pbx
    caller = phones(pbx, 1001, CALLER_IP)
    callee = phones(pbx, 1000, CALLEE_IP)
    out, inc = ring_and_answer(pbx, caller, callee, "6250")
    hang_up(pbx, out, inc)
    assert wait_cdr(pbx, 1001, "6250")["disposition"] == "answered"


def test_number_no_rule_matches_is_404(plan_pbx, phones):
    """The caller gets the plain phrase; the context's name stays in the log and the CDR."""
    pbx = plan_pbx
    caller = phones(pbx, 1001, CALLER_IP)
    mark = len(pbx.log_text())
    final = refused(pbx, caller, "5999", 404)
    assert final.reason == "Not Found", final.reason
    line = pbx.wait_log(r"no dialplan rule for the call.*no rule in context staff matches 5999",
                        mark)
    assert line is not None, pbx.log_tail()
    assert " INFO " in line.string[line.string.rfind("\n", 0, line.start()) + 1:line.end()], \
        line.group(0)
    row = wait_cdr(pbx, 1001, "5999")
    assert row["disposition"] == "failed", row
    assert "404 Not Found (no rule in context staff matches 5999)" in row["hangup"], row


# ------------------------------------------------------------------------------ dial branches


def test_external_number_is_unavailable_and_on_unavailable_dials_another(plan_pbx, phones):
    """No trunks yet: `0301234567` is unavailable, the branch rings 1002."""
    pbx = plan_pbx
    caller = phones(pbx, 1001, CALLER_IP)
    other = phones(pbx, 1002, OTHER_IP)
    out, inc = ring_and_answer(pbx, caller, other, "0301234567")
    assert re.match(r"sip:1002@", inc.invite.uri), inc.invite.uri
    hang_up(pbx, out, inc)
    assert wait_cdr(pbx, 1001, "0301234567")["disposition"] == "answered"


def test_unregistered_extension_runs_on_unavailable(plan_pbx, phones):
    pbx = plan_pbx
    caller = phones(pbx, 1001, CALLER_IP)
    assert "1003" not in pbx.bindings([1003])
    final = refused(pbx, caller, "1003", 410)
    assert "Nobody there" in final.reason, final.reason


def test_busy_extension_runs_on_busy(plan_pbx, phones):
    """1000 answers 486: the rule's `on_busy` rings 1002 (docs: "Otherwise the branch for
    the outcome runs (busy; ...)")."""
    pbx = plan_pbx
    caller = phones(pbx, 1001, CALLER_IP)
    callee = phones(pbx, 1000, CALLEE_IP)
    other = phones(pbx, 1002, OTHER_IP)
    out = caller.call("1000", offer())
    inc = wait_incoming(pbx, callee, out)
    inc.reject(486, "Busy Here")
    fallback = other.wait_call(5)
    early = out.peek_final()
    if fallback is not None:
        fallback.answer(sdp_offer(OTHER_IP, 42000))
    assert fallback is not None, \
        (f"on_busy did not ring 1002; the caller got {early or out.responses}"
         f"\n{pbx.log_tail()}")
    final = final_of(pbx, out)
    assert final.status == 200, final
    hang_up(pbx, out, fallback)


def test_dial_rings_for_its_own_timeout_then_on_no_answer(plan_pbx, phones):
    """The rule's dial says timeout = 3s (the server's default ring timeout is 20 s): the
    device is cancelled after ~3 s and `on_no_answer` answers 408."""
    pbx = plan_pbx
    caller = phones(pbx, 1001, CALLER_IP)
    callee = phones(pbx, 1000, CALLEE_IP)
    out = caller.call("1000", offer())
    inc = wait_incoming(pbx, callee, out)
    inc.ring()
    rang = time.time()
    final = final_of(pbx, out, DIAL_TIMEOUT + 5)
    waited = time.time() - rang
    assert inc.wait_cancel(3) is not None, f"no CANCEL to the device: {callee.describe_inbox()}"
    assert DIAL_TIMEOUT - 0.5 <= waited <= DIAL_TIMEOUT + 2, \
        f"{final} after {waited:.1f}s of ringing; the dial's timeout is {DIAL_TIMEOUT}s"
    assert final.status == 408, \
        f"expected the on_no_answer branch (408), got {final}\n{pbx.log_tail()}"


# ------------------------------------------------------------------------------ permissions


def test_lobby_may_not_call_1001_403_and_cdr_with_reason(plan_pbx, phones):
    pbx = plan_pbx
    lobby = phones(pbx, 1990, CALLER_IP)
    staff = phones(pbx, 1001, OTHER_IP)
    final = refused(pbx, lobby, "1001", 403)
    assert_not_rung(pbx, staff)
    row = wait_cdr(pbx, 1990, 1001)
    assert row["disposition"] == "failed", row
    assert "Forbidden" in row["hangup"], row
    assert "context lobby may not call 1001" in row["hangup"], row
    # The context's name is for the log and the CDR, not for the caller.
    assert final.reason == "Forbidden", final.reason


def test_lobby_may_call_the_reception(plan_pbx, phones):
    pbx = plan_pbx
    lobby = phones(pbx, 1991, CALLER_IP)
    reception = phones(pbx, 1000, CALLEE_IP)
    out, inc = ring_and_answer(pbx, lobby, reception, "1000")
    hang_up(pbx, out, inc)
    assert wait_cdr(pbx, 1991, 1000)["disposition"] == "answered"


def test_lobby_permission_is_checked_on_the_dialed_number(plan_pbx, phones):
    """81000 would ring 1000, but the lobby may call only `1000` as dialed: 403."""
    pbx = plan_pbx
    lobby = phones(pbx, 1990, CALLER_IP)
    reception = phones(pbx, 1000, CALLEE_IP)
    refused(pbx, lobby, "81000", 403)
    assert_not_rung(pbx, reception)


# ------------------------------------------------------------------------------ http_lookup


def test_http_lookup_get_routes_the_call(plan_pbx, phones, lookup):
    pbx = plan_pbx
    # The caller's name is the extension's configured one (its phone's From says otherwise).
    caller = phones(pbx, 1001, CALLER_IP, display_name="Not This")
    callee = phones(pbx, 1000, CALLEE_IP)
    before = len(lookup.requests_to("/route"))
    out, inc = ring_and_answer(pbx, caller, callee, "5000")
    reqs = lookup.requests_to("/route")[before:]
    assert len(reqs) == 1, reqs
    req = reqs[0]
    assert req["method"] == "GET", req
    # the values are percent-encoded in the query: the name's space, ü and & do not break it
    assert req["params"].get("caller") == ["1001"], req
    assert req["params"].get("dialed") == ["5000"], req
    assert req["params"].get("name") == [CALLER_NAME], req
    assert "name=Anna%20M%C3%BCller%20%26%20Co" in req["query"], req["query"]
    assert "application/json" in req["headers"].get("accept", ""), req["headers"]
    assert re.match(r"sip:1000@", inc.invite.uri), inc.invite.uri
    hang_up(pbx, out, inc)
    assert wait_cdr(pbx, 1001, "5000")["disposition"] == "answered"


def test_http_lookup_host_header_has_the_port(plan_pbx, phones, lookup):
    """RFC 9112 §3.2: Host is the target URI's authority, the port included when it is not
    80 (a virtual host or a reverse proxy on another port routes by it)."""
    pbx = plan_pbx
    caller = phones(pbx, 1001, CALLER_IP)
    callee = phones(pbx, 1000, CALLEE_IP)
    before = len(lookup.requests_to("/route"))
    out, inc = ring_and_answer(pbx, caller, callee, "5000")
    hang_up(pbx, out, inc)
    req = lookup.requests_to("/route")[before]
    want = urlsplit(lookup.url).netloc
    assert req["headers"].get("host") == want, \
        f"Host: {req['headers'].get('host')}, expected {want}"


def test_http_lookup_post_routes_the_call(plan_pbx, phones, lookup):
    pbx = plan_pbx
    caller = phones(pbx, 1001, CALLER_IP)
    callee = phones(pbx, 1000, CALLEE_IP)
    before = len(lookup.requests_to("/route"))
    out, inc = ring_and_answer(pbx, caller, callee, "5005")
    reqs = lookup.requests_to("/route")[before:]
    assert len(reqs) == 1 and reqs[0]["method"] == "POST", reqs
    assert reqs[0]["body"] == "caller=1001&dialed=5005", reqs[0]
    hang_up(pbx, out, inc)


def test_http_lookup_500_runs_on_failure(plan_pbx, phones, lookup):
    pbx = plan_pbx
    caller = phones(pbx, 1001, CALLER_IP)
    callee = phones(pbx, 1000, CALLEE_IP)
    final = refused(pbx, caller, "5001", 503)
    assert "Lookup failed" in final.reason, final.reason
    assert lookup.requests_to("/fail"), "the PBX did not ask the server"
    assert lookup.requests_to("/fail")[-1]["params"].get("caller") == ["1001"]
    assert_not_rung(pbx, callee)
    row = wait_cdr(pbx, 1001, "5001")
    assert row["disposition"] == "failed" and "Lookup failed" in row["hangup"], row


def test_http_lookup_server_down_on_failure_sets_the_target(plan_pbx, phones):
    """Nothing listens: `on_failure` sets target = 1002, then the next step dials it."""
    pbx = plan_pbx
    caller = phones(pbx, 1001, CALLER_IP)
    other = phones(pbx, 1002, OTHER_IP)
    out, inc = ring_and_answer(pbx, caller, other, "5002")
    hang_up(pbx, out, inc)


def test_http_lookup_timeout_runs_on_failure(plan_pbx, phones, lookup):
    pbx = plan_pbx
    caller = phones(pbx, 1001, CALLER_IP)
    t0 = time.time()
    refused(pbx, caller, "5003", 504)
    took = time.time() - t0
    assert lookup.requests_to("/slow"), "the PBX did not ask the server"
    assert took < SLOW_SERVER - 0.5, f"504 after {took:.1f}s: the 1 s timeout was not kept"


def wait_requests(lookup, path, count, timeout=3.0):
    end = time.time() + timeout
    while len(lookup.requests_to(path)) < count and time.time() < end:
        time.sleep(0.02)
    return lookup.requests_to(path)


def test_http_lookup_slow_answer_one_request_and_trying(plan_pbx, phones, lookup):
    """The server answers after 1.5 s: the caller has its 100 Trying meanwhile (so it stops
    retransmitting), the server is asked once, the call then reaches 1000."""
    pbx = plan_pbx
    caller = phones(pbx, 1001, CALLER_IP)
    callee = phones(pbx, 1000, CALLEE_IP)
    before = len(lookup.requests_to("/delayed"))
    t0 = time.time()
    out = caller.call("5006", offer())
    inc = wait_incoming(pbx, callee, out, timeout=DELAYED_SERVER + 3)
    assert time.time() - t0 >= DELAYED_SERVER - 0.2
    inc.answer(sdp_offer(CALLEE_IP, 42000))
    assert final_of(pbx, out).status == 200
    assert 100 in [r.status for r in out.provisional], out.responses
    hang_up(pbx, out, inc)
    asked = lookup.requests_to("/delayed")[before:]
    assert len(asked) == 1, asked


def test_caller_cancels_during_http_lookup(plan_pbx, phones, lookup):
    """CANCEL while the PBX waits for the lookup: 200 to the CANCEL, 487 to the INVITE, and
    the extension the lookup names is never rung."""
    pbx = plan_pbx
    caller = phones(pbx, 1001, CALLER_IP)
    callee = phones(pbx, 1000, CALLEE_IP)
    before = len(lookup.requests_to("/delayed"))
    out = caller.call("5006", offer())
    assert len(wait_requests(lookup, "/delayed", before + 1)) > before, \
        f"no lookup: {out.responses}\n{pbx.log_tail()}"
    c = out.cancel()
    assert c is not None and c.status == 200, f"CANCEL answered {c}\n{pbx.log_tail()}"
    final = out.wait_final(DELAYED_SERVER + 2)
    rung = callee.wait_call(0.5 if final is not None else DELAYED_SERVER)
    if rung is not None:
        rung.reject(486, "Busy Here")
    assert final is not None and final.status == 487 and rung is None, \
        (f"after the CANCEL (answered 200): the INVITE's final response {final} "
         f"(all: {out.responses}); 1000 rung: {rung is not None}\n{pbx.log_tail()}")
    row = wait_cdr(pbx, 1001, "5006")
    assert row["disposition"] == "cancelled", row


def test_http_lookup_sets_caller_name_that_dial_presents(plan_pbx, phones):
    """`set = { caller_name = "customer.name" }`: docs: "`${caller_name}` ... (a `set` or
    `http_lookup` may change it; `dial` presents it)" - the callee sees "Looked Up"."""
    pbx = plan_pbx
    caller = phones(pbx, 1001, CALLER_IP, display_name="Original")
    callee = phones(pbx, 1000, CALLEE_IP)
    out, inc = ring_and_answer(pbx, caller, callee, "5004")
    shown = inc.invite.get("from")
    hang_up(pbx, out, inc)
    assert "Looked Up" in shown, f"the callee's INVITE has From: {shown}"


# ------------------------------------------------------------------------------ trace


def test_trace_cli_on_the_same_plan(plan_pbx, plan_text):
    r = plan_pbx.cli("dialplan", "trace", "--from", "1001", "--to", "81000")
    rule = line_of(plan_text, 'pattern = "_8XXXX"')
    assert f"rule at line {rule}" in r.stdout and "_8XXXX" in r.stdout, r.stdout
    assert re.search(r"dial extension 1000\b", r.stdout), r.stdout
    r = plan_pbx.cli("dialplan", "trace", "--from", "1990", "--to", "1001", check=False)
    assert "context lobby may not call 1001" in r.stdout + r.stderr, (r.stdout, r.stderr)


# ------------------------------------------------------------------------------ reload

RELOAD_GOOD = """\
[defaults]
context = "staff"

[context.staff]

[[context.staff.rule]]
extension = true
steps = [{ dial = "${number}" }]
"""

RELOAD_CLOSED = """\
[defaults]
context = "staff"

[context.staff]

[[context.staff.rule]]
pattern = "1000"
steps = [{ hangup = { status = 603, reason = "Reception closed" } }]

[[context.staff.rule]]
extension = true
steps = [{ dial = "${number}" }]
"""

# two problems: an unknown field, and a goto to a missing label
RELOAD_BAD = """\
[defaults]
context = "staff"

[context.staff]

[[context.staff.rule]]
pattern = "1000"
bogus = 1
steps = [{ goto = "nowhere" }]

[[context.staff.rule]]
extension = true
steps = [{ dial = "${number}" }]
"""


def test_reload_while_a_call_is_up(pbx_factory, phones):
    pbx = start_plan_pbx(pbx_factory, "dialplan-reload", RELOAD_GOOD, [1000, 1001, 1002])
    path = pbx.dialplan
    a = phones(pbx, 1001, CALLER_IP)
    reception = phones(pbx, 1000, CALLEE_IP)
    b = phones(pbx, 1002, OTHER_IP)
    first_out, first_inc = ring_and_answer(pbx, a, reception, "1000")

    # SIGHUP alone (the file keeps its mtime, so the PBX's watch of it does not fire)
    mark = len(pbx.log_text())
    pbx.write_dialplan(RELOAD_CLOSED, keep_mtime=True)
    pbx.sighup()
    assert pbx.wait_log(r'dialplan reloaded .*why="SIGHUP"', mark), \
        f"no reload logged\n{pbx.log_tail()}"
    final = refused(pbx, b, "1000", 603)
    assert "Reception closed" in final.reason, final.reason
    assert_not_rung(pbx, reception)
    # the plan still routes other numbers
    out, inc = ring_and_answer(pbx, b, a, "1001")
    hang_up(pbx, out, inc)

    # a plan that fails validation: every problem logged as path:line:col, the old plan stays
    mark = len(pbx.log_text())
    pbx.write_dialplan(RELOAD_BAD, keep_mtime=True)
    pbx.sighup()
    assert pbx.wait_log(r'not reloaded.*why="SIGHUP" errors=2', mark), \
        f"no failed reload logged\n{pbx.log_tail()}"
    log = pbx.log_text()[mark:]
    bogus = line_of(RELOAD_BAD, "bogus")
    goto = line_of(RELOAD_BAD, "nowhere")
    goto_col = RELOAD_BAD.splitlines()[goto - 1].index('"nowhere"') + 1
    assert re.search(rf"{re.escape(path)}:{bogus}:1: unknown field `bogus`", log), log
    assert re.search(rf"{re.escape(path)}:{goto}:{goto_col}: goto: no rule with label `nowhere`",
                     log), log
    final = refused(pbx, b, "1000", 603)
    assert "Reception closed" in final.reason, final.reason
    out, inc = ring_and_answer(pbx, b, a, "1001")
    hang_up(pbx, out, inc)

    # the first call went on through all of this; it ends normally
    hang_up(pbx, first_out, first_inc)
    assert wait_cdr(pbx, 1001, 1000)["disposition"] == "answered"

    # a change of the file is noticed without a signal (the watch looks every 2 s)
    mark = len(pbx.log_text())
    pbx.write_dialplan(RELOAD_GOOD)
    assert pbx.wait_log(r'dialplan reloaded .*why="the file changed"', mark, timeout=6), \
        f"no reload\n{pbx.log_tail()}"
    out, inc = ring_and_answer(pbx, b, reception, "1000")
    hang_up(pbx, out, inc)
    assert pbx.alive()


# the call waits in its http_lookup while the plan is replaced: the steps after the lookup
# are the old plan's (dial 1000), not the new one's (dial 1002)
KEEP_PLAN = """\
[defaults]
context = "staff"

[context.staff]

[[context.staff.rule]]
pattern = "5000"
steps = [
    {{ http_lookup = {{ url = "{lookup}/delayed", timeout = "4s",
                      set = {{ target = "route.target" }} }} }},
    {{ dial = "{then}" }},
]

[[context.staff.rule]]
extension = true
steps = [{{ dial = "${{number}}" }}]
"""


def test_call_in_progress_keeps_its_plan(pbx_factory, phones, lookup):
    old = KEEP_PLAN.format(lookup=lookup.url, then="${target}")
    new = KEEP_PLAN.format(lookup=lookup.url, then="1002")
    pbx = start_plan_pbx(pbx_factory, "dialplan-keep", old, [1000, 1001, 1002])
    caller = phones(pbx, 1001, CALLER_IP)
    reception = phones(pbx, 1000, CALLEE_IP)
    other = phones(pbx, 1002, OTHER_IP)
    before = len(lookup.requests_to("/delayed"))
    out = caller.call("5000", offer())
    end = time.time() + 3
    while len(lookup.requests_to("/delayed")) == before and time.time() < end:
        time.sleep(0.02)
    assert len(lookup.requests_to("/delayed")) > before, f"no lookup\n{pbx.log_tail()}"
    mark = len(pbx.log_text())
    pbx.write_dialplan(new, keep_mtime=True)
    pbx.sighup()
    assert pbx.wait_log(r"dialplan reloaded", mark), f"no reload logged\n{pbx.log_tail()}"
    # the lookup is still under way (the server answers after DELAYED_SERVER s)
    assert out.peek_final() is None, out.responses
    inc = wait_incoming(pbx, reception, out, timeout=DELAYED_SERVER + 3)
    inc.answer(sdp_offer(CALLEE_IP, 42000))
    assert final_of(pbx, out).status == 200
    assert_not_rung(pbx, other, within=0.1)
    hang_up(pbx, out, inc)
    # a new call gets the new plan
    out, inc = ring_and_answer(pbx, caller, other, "5000")
    hang_up(pbx, out, inc)
