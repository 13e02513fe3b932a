"""The web admin's second slice in a real browser (Debian's chromium, headless, Playwright):
a call between two python phones is seen on the Calls page, hung up from there (both phones
get a BYE) and found in the call record search, its CSV and the API; the dashboard counts it;
the dialplan editor refuses a broken file (the problem at its line, the file on disk
unchanged), saves a good one and traces a call; the permission matrix is edited and a call
it no longer allows is refused with 403.

Screenshots go to a temp dir, or to PBX_E2E_SCREENSHOTS (e.g. docs/screenshots).
"""

import json
import os
import re
import urllib.request

import pytest

from callclient import Phone, sdp_offer
from callhelpers import establish, password, wait_cdr

ADMIN, ADMIN_PW = "admin", "Adm1n-calls-pass"
CALLER_IP, CALLEE_IP, LOBBY_IP = "127.0.14.2", "127.0.14.3", "127.0.14.4"

PLAN = """\
# Who may call whom is edited on the Permissions page.
[defaults]
context = "staff"

[context.staff]
[[context.staff.rule]]
extension = true
steps = [{ dial = "${number}" }]

[context.lobby]
members = ["4900-4999"]
may_call = ["4001", "staff"]   # reception, and staff while we are open
include = ["staff"]
"""


@pytest.fixture(scope="module")
def web_pbx(pbx_factory):
    p = pbx_factory("webcalls", dialplan=PLAN)
    p.import_extensions([(n, password(n)) for n in (4001, 4002, 4901)])
    p.cli("admin", "create", ADMIN, "--password", ADMIN_PW)
    return p.start()


@pytest.fixture()
def page(web_pbx, browser):
    """A logged-in page (at the dashboard)."""
    base = f"http://127.0.0.1:{web_pbx.web}"
    ctx = browser.new_context(viewport={"width": 1280, "height": 800})
    p = ctx.new_page()
    p.goto(f"{base}/")
    p.fill("input[name=user]", ADMIN)
    p.fill("input[name=password]", ADMIN_PW)
    p.click("button:has-text('Log in')")
    p.wait_for_url(f"{base}/")
    assert p.locator("h1").first.inner_text() == "Dashboard"
    yield p
    ctx.close()


def shoot(page, shots, name):
    page.screenshot(path=os.path.join(shots, f"{name}.png"), full_page=True)


def api(pbx, path):
    token = pbx.cli("admin", "token", ADMIN).stdout.strip()
    req = urllib.request.Request(f"http://127.0.0.1:{pbx.web}{path}",
                                 headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(req, timeout=5) as r:
        return json.loads(r.read())


def test_a_live_call_is_hung_up_from_the_calls_page_and_found_in_the_records(web_pbx, page, shots):
    base = f"http://127.0.0.1:{web_pbx.web}"
    server = web_pbx.server("udp")
    with Phone(4001, password(4001), server, local_ip=CALLER_IP) as caller, \
            Phone(4002, password(4002), server, local_ip=CALLEE_IP) as callee:
        for phone in (caller, callee):
            r = phone.register()
            assert r is not None and r.status == 200, r
        call = establish(web_pbx, caller, callee)
        try:
            page.goto(f"{base}/calls")
            rows = page.locator("tr[data-call]")
            assert rows.count() == 1, page.content()
            text = rows.first.inner_text()
            for want in ("4001", "4002", "answered", "PCMU/8000", "none"):
                assert want in text, (want, text)
            shoot(page, shots, "calls")
            assert [c["caller"] for c in api(web_pbx, "/api/v1/calls")] == ["4001"]

            # The dashboard counts it.
            page.goto(f"{base}/")
            assert "1 answered" in page.locator("#calls-now").inner_text()

            # Hang up: both phones get a BYE, the call leaves the page.
            page.goto(f"{base}/calls")
            page.click("tr[data-call] button:has-text('Hang up')")
            assert page.locator(".alert.ok").inner_text() == "The call is being hung up."
            assert call.out.wait_bye(5) is not None, f"no BYE to the caller\n{web_pbx.log_tail()}"
            assert call.inc.wait_bye(5) is not None, f"no BYE to the callee\n{web_pbx.log_tail()}"
            page.wait_for_selector("text=Nobody is on the phone right now.", timeout=6000)
            assert api(web_pbx, "/api/v1/calls") == []
        finally:
            call.close()

    # The record: the search page, its filters, the CSV and the API.
    wait_cdr(web_pbx, 4001, 4002)
    page.goto(f"{base}/cdrs")
    page.fill("input[name=extension]", "4001")
    page.select_option("select[name=disposition]", "answered")
    page.click("button:has-text('Search')")
    page.wait_for_url(re.compile(r".*/cdrs\?.*extension=4001"))
    row = page.locator("#records tbody tr")
    assert row.count() == 1
    text = row.first.inner_text()
    for want in ("4001", "4002", "answered", "PCMU/8000", "hung up by the PBX"):
        assert want in text, (want, text)
    shoot(page, shots, "cdrs")
    page.select_option("select[name=disposition]", "busy")
    page.click("button:has-text('Search')")
    assert page.locator("text=No call matches.").is_visible()

    csv = page.request.get(f"{base}/cdrs.csv?extension=4002")
    assert csv.ok and csv.headers["content-type"].startswith("text/csv")
    lines = csv.text().strip().splitlines()
    assert lines[0].startswith("id,call_id,caller,called,started_at")
    assert len(lines) == 2 and ",4001,4002," in lines[1], lines

    found = api(web_pbx, "/api/v1/cdrs?extension=4002&disposition=answered")
    assert [(c["caller"], c["hangup_side"]) for c in found["items"]] == [("4001", "pbx")]
    assert found["next_cursor"] is None


def test_the_dashboard_shows_the_day(web_pbx, page, shots):
    # After the call above: devices registered, and the call in the chart of the day.
    assert int(page.locator("#devices .big").inner_text()) >= 2
    assert "SIP up" in page.locator("#health").inner_text()
    assert "Database up" in page.locator("#health").inner_text()
    assert page.locator("rect.bar").count() == 24
    calls = sum(int(v) for v in page.locator("rect.bar").evaluate_all(
        "bars => bars.map(b => b.dataset.calls)"))
    assert calls >= 1
    shoot(page, shots, "dashboard")
    small = page.context.new_page()
    small.set_viewport_size({"width": 390, "height": 844})
    small.goto(page.url)
    shoot(small, shots, "dashboard-phone")
    small.close()


def test_the_dialplan_editor_refuses_a_broken_file_and_traces_a_call(web_pbx, page, shots):
    base = f"http://127.0.0.1:{web_pbx.web}"
    page.goto(f"{base}/dialplan")
    editor = page.locator("textarea[name=text]")
    assert editor.input_value() == PLAN
    # A broken file: not written, each problem at its line.
    broken = PLAN + "bogus = 1\n"                      # line 14
    editor.fill(broken)
    page.click("button:has-text('Save and reload')")
    problems = page.locator("#problems").inner_text()
    assert "line 14, column 1" in problems and "bogus" in problems, problems
    assert page.locator("#line-14.bad-line").count() == 1
    assert page.locator("textarea[name=text]").input_value() == broken
    with open(web_pbx.dialplan) as f:
        assert f.read() == PLAN
    shoot(page, shots, "dialplan-errors")

    # A good edit is saved and reloaded.
    edited = PLAN.replace("# Who may call", "# Who in the office may call")
    page.locator("textarea[name=text]").fill(edited)
    page.click("button:has-text('Save and reload')")
    assert page.locator(".alert.ok").inner_text().startswith("Saved and reloaded")
    with open(web_pbx.dialplan) as f:
        assert f.read() == edited

    # What happens when the lobby's 4901 dials 4002 on Sunday at 23:00.
    page.fill("#trace-form input[name=from]", "4901")
    page.fill("#trace-form input[name=to]", "4002")
    page.fill("#trace-form input[name=at]", "2026-12-06T23:00")
    page.click("button:has-text('Trace')")
    steps = page.locator("#trace li").all_inner_texts()
    assert steps and any("lobby" in s for s in steps), steps
    shoot(page, shots, "dialplan-trace")


def test_unticking_a_permission_refuses_the_call_with_403(web_pbx, page, shots):
    base = f"http://127.0.0.1:{web_pbx.web}"
    server = web_pbx.server("udp")
    with Phone(4901, password(4901), server, local_ip=LOBBY_IP) as lobby, \
            Phone(4002, password(4002), server, local_ip=CALLEE_IP) as callee:
        for phone in (lobby, callee):
            r = phone.register()
            assert r is not None and r.status == 200, r
        # The lobby may call staff: 4002 rings.
        call = establish(web_pbx, lobby, callee)
        r = call.out.bye()
        assert r is not None and r.status == 200, r
        call.close()

        page.goto(f"{base}/permissions")
        box = page.locator("input[name='c:lobby:staff']")
        assert box.is_checked()
        assert page.locator("input[name='out:staff']").is_checked()
        assert not page.locator("input[name='out:lobby']").is_checked()
        shoot(page, shots, "permissions")
        box.uncheck()
        page.click("button:has-text('Save and reload')")
        assert page.locator(".alert.ok").inner_text().startswith("Saved and reloaded")
        assert not page.locator("input[name='c:lobby:staff']").is_checked()
        with open(web_pbx.dialplan) as f:
            text = f.read()
        assert 'may_call = ["4001"]   # reception, and staff while we are open' in text, text
        assert text.startswith("# Who in the office may call")

        # Now the lobby's call to staff is refused before anything rings.
        out = lobby.call("4002", sdp_offer(LOBBY_IP, 40000))
        final = out.wait_final(5)
        assert final is not None and final.status == 403, \
            f"{final}; {out.responses}\n{web_pbx.log_tail()}"
        assert callee.wait_call(0.5) is None
