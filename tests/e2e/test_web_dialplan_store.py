"""A dialplan saved from the web admin is validated and loaded exactly as `serve` loads one:
with the contexts the store assigns (a trunk's `--context`), against the real release binary.

- A trunk `legacy` (an old PBX: a python UA on 127.0.42.2, `--allow 127.0.42.2/32`) has
  `--context from-legacy`. The plan on disk has no such context, so the old PBX's call to
  extension 1000 is refused and rings nothing.
- The admin saves (PUT /api/v1/dialplan, then the Dialplan page's form) a plan with
  `[context.from-legacy]` and no `may_call`: reachable only because the store assigns it.
  Both accept it (before, the web admin checked without the store's contexts and refused it
  as unreachable), `/api/v1/dialplan/validate` agrees, and the same call now rings 1000.
- A plan that names a `db_lookup` database the config lacks is refused by the web admin
  before anything is written (as `serve` would refuse it), at its line.

Addresses: the PBX 127.0.0.1; the old PBX 127.0.42.2; extension 1000's phone 127.0.42.3.
"""

import json
import re
import urllib.error
import urllib.parse
import urllib.request
from http.cookiejar import CookieJar

import pytest

from callclient import Phone, sdp_offer
from conftest import free_port

ADMIN, ADMIN_PW = "admin", "Adm1n-dialplan-store"
LEGACY_IP, PHONE_IP = "127.0.42.2", "127.0.42.3"

BEFORE = """\
# written by tests/e2e/test_web_dialplan_store.py
[defaults]
context = "staff"

[context.staff]
may_call = ["extensions"]
[[context.staff.rule]]
extension = true
steps = [{ dial = "${number}" }]
"""

# The trunk's context has no `may_call`: only the store's assignment makes it reachable.
WITH_TRUNK_CONTEXT = BEFORE + """
[context.from-legacy]
[[context.from-legacy.rule]]
extension = true
steps = [{ dial = "${number}" }]
"""

WITH_UNKNOWN_LOOKUP = WITH_TRUNK_CONTEXT + """
[[context.from-legacy.rule]]
pattern = "_9XXX"
steps = [{ db_lookup = { database = "crm", query = "SELECT name FROM people WHERE id = $1",
                         params = ["${number}"], set = { caller_name = "name" } } }]
"""


@pytest.fixture(scope="module")
def setup(pbx_factory):
    p = pbx_factory("web-dialplan-store", dialplan=BEFORE)
    p.import_extensions([(1000, "pw1000")])
    p.cli("admin", "create", ADMIN, "--password", ADMIN_PW)
    legacy_port = free_port(ip=LEGACY_IP)
    p.cli("trunk", "add", "legacy", "--host", f"{LEGACY_IP}:{legacy_port}",
          "--allow", f"{LEGACY_IP}/32", "--context", "from-legacy")
    p.start()
    legacy = Phone("+4930555", "", p.server("udp"), local_ip=LEGACY_IP, port=legacy_port)
    try:
        yield p, legacy
    finally:
        legacy.close()


def api(pbx, path, method="GET", body=None):
    token = pbx.cli("admin", "token", ADMIN).stdout.strip()
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(f"http://127.0.0.1:{pbx.web}{path}", method=method,
                                 headers=headers, data=data)
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, json.loads(r.read().decode() or "null")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read().decode() or "null")


def legacy_calls_1000(pbx, legacy):
    """The old PBX calls 1000 (registered on PHONE_IP): (its final status, whether 1000
    rang)."""
    with Phone(1000, "pw1000", pbx.server("udp"), local_ip=PHONE_IP) as phone:
        r = phone.register(expires=120)
        assert r is not None and r.status == 200, r
        out = legacy.call(f"sip:1000@{pbx.hostport('udp')}", sdp=sdp_offer(LEGACY_IP, 40410))
        inc = phone.wait_call(3)
        if inc is not None:
            inc.answer(sdp_offer(PHONE_IP, 40412))
        final = out.wait_final(10)
        if final is not None and final.status == 200:
            bye = out.bye()
            assert bye is not None and bye.status == 200, bye
        phone.unregister()
        return (final.status if final is not None else None), inc is not None


def web_session(pbx):
    """A logged-in browser-like session (cookies) and the web listener's base URL."""
    jar = CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    base = f"http://127.0.0.1:{pbx.web}"
    page = opener.open(f"{base}/", timeout=5).read().decode()
    csrf = re.search(r'name="csrf" value="([^"]+)"', page)
    assert csrf, page[:2000]
    login = urllib.parse.urlencode({"csrf": csrf.group(1), "user": ADMIN,
                                    "password": ADMIN_PW}).encode()
    opener.open(f"{base}/login", data=login, timeout=5).read()
    return opener, base


def test_a_plan_with_a_trunk_context_saved_from_the_web_takes_effect(setup):
    pbx, legacy = setup
    status, rang = legacy_calls_1000(pbx, legacy)
    # The plan on disk has no from-legacy context: refused (403), 1000 not rung.
    assert status is not None and status >= 400 and not rang, (status, rang)

    status, body = api(pbx, "/api/v1/dialplan/validate", "POST", {"text": WITH_TRUNK_CONTEXT})
    assert status == 200 and body["valid"], body
    status, body = api(pbx, "/api/v1/dialplan", "PUT", {"text": WITH_TRUNK_CONTEXT})
    assert status == 200, (body, pbx.log_tail())
    with open(pbx.dialplan) as f:
        assert f.read() == WITH_TRUNK_CONTEXT
    status, rang = legacy_calls_1000(pbx, legacy)
    assert (status, rang) == (200, True), pbx.log_tail()


def test_the_dialplan_page_saves_it_too(setup):
    pbx, legacy = setup
    # Back to the plan without the context (through the API), then the page's form.
    status, body = api(pbx, "/api/v1/dialplan", "PUT", {"text": BEFORE})
    assert status == 200, body
    opener, base = web_session(pbx)
    page = opener.open(f"{base}/dialplan", timeout=5).read().decode()
    csrf = re.search(r'name="csrf" value="([^"]+)"', page)
    assert csrf, page[:2000]
    form = urllib.parse.urlencode({"csrf": csrf.group(1), "text": WITH_TRUNK_CONTEXT}).encode()
    with opener.open(f"{base}/dialplan", data=form, timeout=5) as r:
        assert r.status == 200 and r.url.endswith("/dialplan?saved=1"), r.url
        assert "Saved and reloaded" in r.read().decode()
    status, rang = legacy_calls_1000(pbx, legacy)
    assert (status, rang) == (200, True), pbx.log_tail()


def test_a_lookup_the_config_lacks_is_refused_before_saving(setup):
    pbx, _ = setup
    with open(pbx.dialplan) as f:
        before = f.read()
    status, body = api(pbx, "/api/v1/dialplan", "PUT", {"text": WITH_UNKNOWN_LOOKUP})
    assert status == 422, body
    messages = [p["message"] for p in body["problems"]]
    assert any("db_lookup names the database `crm`" in m for m in messages), body
    line = WITH_UNKNOWN_LOOKUP.splitlines().index('pattern = "_9XXX"')
    assert any(p["line"] >= line for p in body["problems"]), body
    with open(pbx.dialplan) as f:
        assert f.read() == before, "a refused plan was written"
