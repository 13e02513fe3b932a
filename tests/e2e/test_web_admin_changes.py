"""The web admin's fourth slice in a real browser (Debian's chromium, headless, Playwright)
against the release binary:

- trunks: the form refuses bad fields next to each; a trunk to an "old PBX" (a python UA that
  answers OPTIONS) is created, pinged at once and shown `up`; edited (the password kept and
  never shown); deleted. `pbx trunk list` (the CLI, another process) agrees at each step;
- extensions as CSV: an import with mistakes names each line and imports nothing; a good one
  imports all; the export has no password;
- deleting an extension (web and `pbx extension remove`) removes its voicemail files;
- the audit log page and `GET /api/v1/audit` list every change above with the admin, the
  address and web/api;
- a source banned by web login failures gets the admin one alert mail (aiosmtpd sink).

Addresses: the PBX 127.0.0.1; the old PBX 127.0.16.2; the web password guesser 127.0.16.9.
Screenshots go to a temp dir, or to PBX_E2E_SCREENSHOTS (e.g. docs/screenshots).
"""

import json
import os
import re
import time
import urllib.error
import urllib.request

import pytest

from callclient import Phone
from conftest import DOMAIN, MAX_AUTH_FAILURES, free_port, parse_table
from mailsink import SmtpSink

ADMIN, ADMIN_PW = "admin", "Adm1n-changes-pass"
OLD_PBX_IP = "127.0.16.2"
GUESSER_IP = "127.0.16.9"
ALERT_TO = f"it@{DOMAIN}"


@pytest.fixture(scope="module")
def smtp_port():
    return free_port()


@pytest.fixture(scope="module")
def web_pbx(pbx_factory, smtp_port):
    extra = (f'[security]\nalert_email = "{ALERT_TO}"\n\n'
             f'[smtp]\nurl = "smtp://127.0.0.1:{smtp_port}"\nfrom = "PBX <pbx@{DOMAIN}>"\n')
    p = pbx_factory("webchanges", extra)
    p.import_extensions([(4001, "pw4001"), (4002, "pw4002"), (4003, "pw4003")])
    p.cli("admin", "create", ADMIN, "--password", ADMIN_PW)
    return p.start()


@pytest.fixture()
def page(web_pbx, browser):
    base = f"http://127.0.0.1:{web_pbx.web}"
    ctx = browser.new_context(viewport={"width": 1280, "height": 800})
    p = ctx.new_page()
    p.goto(f"{base}/")
    p.fill("input[name=user]", ADMIN)
    p.fill("input[name=password]", ADMIN_PW)
    p.click("button:has-text('Log in')")
    p.wait_for_url(f"{base}/")
    yield p
    ctx.close()


def shoot(page, shots, name):
    # From the top: the sticky header would otherwise sit where the page was scrolled to.
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=os.path.join(shots, f"{name}.png"), full_page=True)


def trunk_rows(pbx):
    return {r["name"]: r for r in parse_table(pbx.cli("trunk", "list").stdout)}


def api(pbx, path, method="GET", body=None, content_type="application/json"):
    token = pbx.cli("admin", "token", ADMIN).stdout.strip()
    headers = {"Authorization": f"Bearer {token}"}
    if body is not None:
        headers["Content-Type"] = content_type
    req = urllib.request.Request(f"http://127.0.0.1:{pbx.web}{path}", method=method,
                                 headers=headers, data=body)
    with urllib.request.urlopen(req, timeout=5) as r:
        text = r.read().decode()
        return r.status, (json.loads(text) if text and r.headers.get_content_type() ==
                          "application/json" else text)


def test_a_trunk_is_created_seen_up_edited_and_deleted(web_pbx, page, shots):
    base = f"http://127.0.0.1:{web_pbx.web}"
    page.click("nav a:has-text('Trunks')")
    page.wait_for_url(f"{base}/trunks")
    assert "No trunks yet" in page.locator("main").inner_text()
    page.click("text=+ New trunk")

    # Mistakes: each message next to its field, nothing stored.
    page.fill("input[name=name]", "old pbx")
    page.fill("input[name=host]", "10.0.0.1:99999")
    page.fill("input[name=username]", "acct")
    page.fill("input[name=channels]", "lots")
    page.click("button:has-text('Create trunk')")
    err = lambda f: page.locator(f"label:has([name={f}]) .error").inner_text()  # noqa: E731
    assert "bad trunk name" in err("name")
    assert "bad port `99999`" in err("host")
    assert "bad channels `lots`" in err("channels")
    assert "give a user name and a password together" == err("password").lstrip("⚠ ")
    shoot(page, shots, "trunk-errors")
    assert trunk_rows(web_pbx) == {}

    old_port = free_port(ip=OLD_PBX_IP)
    with Phone("+4930555", "irrelevant", web_pbx.server("udp"), local_ip=OLD_PBX_IP,
               port=old_port) as old_pbx:
        page.fill("input[name=name]", "old-pbx")
        page.fill("input[name=host]", f"{OLD_PBX_IP}:{old_port}")
        page.fill("input[name=username]", "pbx-a")
        page.fill("input[name=password]", "Tr0nk-secret")
        page.fill("input[name=channels]", "4")
        page.fill("input[name=allowed_networks]", f"{OLD_PBX_IP}/32")
        page.fill("input[name=codecs]", "pcma, pcmu")
        page.click("button:has-text('Create trunk')")
        page.wait_for_url(f"{base}/trunks/old-pbx?saved=1")
        assert page.locator(".alert.ok").inner_text().startswith("Saved.")
        # Stored as the CLI sees it; the password nowhere on the page.
        row = trunk_rows(web_pbx)["old-pbx"]
        assert (row["host"], row["allow"]) == (f"{OLD_PBX_IP}:{old_port}", f"{OLD_PBX_IP}/32")
        assert "Tr0nk-secret" not in page.content()
        assert page.locator("input[name=password]").input_value() == ""

        # The running PBX pings it (no restart): the old PBX answers and the list says up.
        page.goto(f"{base}/trunks")
        deadline = time.time() + 15
        while "up" not in page.locator("tr[data-trunk=old-pbx] .state").inner_text() \
                and time.time() < deadline:
            time.sleep(0.5)
            page.reload()
        state = page.locator("tr[data-trunk=old-pbx] .state").inner_text()
        assert state.startswith("up"), (state, web_pbx.log_tail())
        assert old_pbx.requests("OPTIONS"), "no OPTIONS reached the old PBX"
        shoot(page, shots, "trunks")

        # Edit: the password field left empty keeps the password.
        page.click("tr[data-trunk=old-pbx] a:has-text('Edit')")
        page.fill("input[name=channels]", "8")
        page.select_option("select[name=caller_id_mode]", "trunk")
        page.fill("input[name=caller_id]", "+4930555000")
        shoot(page, shots, "trunk-edit")
        page.click("button:has-text('Save')")
        assert page.locator(".alert.ok").inner_text().startswith("Saved.")
        assert page.locator("input[name=channels]").input_value() == "8"
        status, out = api(web_pbx, "/api/v1/trunks/old-pbx")
        assert (out["channels"], out["caller_id"], out["has_password"]) == (8, "+4930555000", True)
        assert "Tr0nk-secret" not in json.dumps(out)

    # Delete asks first.
    page.click("text=Delete trunk…")
    assert page.locator("h1").inner_text() == "Delete trunk old-pbx?"
    page.click("button:has-text('Delete old-pbx')")
    assert page.locator(".alert.ok").inner_text() == "Trunk old-pbx deleted."
    assert trunk_rows(web_pbx) == {}


def test_extensions_are_imported_and_exported_as_csv(web_pbx, page, shots):
    base = f"http://127.0.0.1:{web_pbx.web}"
    page.goto(f"{base}/extensions")
    page.click("text=Import CSV")
    page.wait_for_url(f"{base}/extensions/import")
    bad = ("number,password,name,email,pin\n"
           "4100,Imp0rt-one,Ines Ortiz,ines@example.com,2468\n"
           "41x,pw,Bad Number,,\n"
           "4001,pw,Taken,,\n"
           "4101,,No Password,,\n")
    page.fill("textarea[name=csv]", bad)
    page.click("button:has-text('Import')")
    problems = page.locator("#problems").inner_text()
    for want in ("line 3: bad extension number `41x`", "line 4: extension 4001 already exists",
                 "line 5: the password is empty", "Nothing was imported."):
        assert want in problems, (want, problems)
    assert page.locator("textarea[name=csv]").input_value() == bad
    shoot(page, shots, "extension-import-errors")
    assert "4100" not in web_pbx.cli("extension", "list").stdout

    good = ("number,password,name,email,pin\n"
            "4100,Imp0rt-one,Ines Ortiz,ines@example.com,2468\n"
            "4101,Imp0rt-two,\"Kim, Lee\",,\n")
    page.fill("textarea[name=csv]", good)
    page.click("button:has-text('Import')")
    page.wait_for_url(f"{base}/extensions?imported=2")
    assert page.locator(".alert.ok").inner_text() == "2 extensions imported."
    listing = web_pbx.cli("extension", "list").stdout
    assert re.search(r"^4100\s+Ines Ortiz\s+ines@example.com\s+yes", listing, re.M), listing
    assert re.search(r"^4101\s+Kim, Lee", listing, re.M), listing

    csv = page.request.get(f"{base}/extensions.csv")
    assert csv.ok and csv.headers["content-type"].startswith("text/csv")
    lines = csv.text().splitlines()
    assert lines[0] == "number,name,email,pin_set,media_encryption,context,allowed_networks,did"
    assert "4100,Ines Ortiz,ines@example.com,yes,optional,,," in lines
    assert '4101,"Kim, Lee",,no,optional,,,' in lines
    assert "Imp0rt" not in csv.text()

    # The API takes the same file: its problems come with their lines.
    with pytest.raises(urllib.error.HTTPError) as refused:
        api(web_pbx, "/api/v1/extensions/import", "POST", b"number,password\n4102,\n", "text/csv")
    assert refused.value.code == 422
    body = json.loads(refused.value.read())
    assert body["problems"] == [{"line": 2, "message": "the password is empty"}]
    status, out = api(web_pbx, "/api/v1/extensions/import", "POST",
                      b"number,password\n4102,Imp0rt-three\n", "text/csv")
    assert (status, out) == (200, {"imported": 1})


def test_deleting_an_extension_removes_its_voicemail_files(web_pbx, page):
    base = f"http://127.0.0.1:{web_pbx.web}"
    storage = os.path.join(web_pbx.dir, "data", "voicemail")
    for number in ("4002", "4003"):
        folder = os.path.join(storage, number)
        os.makedirs(folder, exist_ok=True)
        for f in ("msg-1-a.wav", "greeting-unavailable-1-2.wav", "greeting-name-1-3.wav"):
            with open(os.path.join(folder, f), "wb") as out:
                out.write(b"RIFF")
    keep = os.path.join(storage, "4001")
    os.makedirs(keep, exist_ok=True)
    with open(os.path.join(keep, "msg-2-b.wav"), "wb") as out:
        out.write(b"RIFF")

    page.goto(f"{base}/extensions/4002/delete")
    assert "voicemail box" in page.locator("main").inner_text()
    page.click("button:has-text('Delete 4002')")
    assert page.locator(".alert.ok").inner_text() == "Extension 4002 deleted."
    assert not os.path.exists(os.path.join(storage, "4002"))

    r = web_pbx.cli("extension", "remove", "4003")
    assert "extension 4003 removed, and its 3 voicemail file(s)" in r.stdout, r.stdout
    assert not os.path.exists(os.path.join(storage, "4003"))
    assert os.listdir(keep) == ["msg-2-b.wav"]


def test_the_audit_log_lists_every_change(web_pbx, page, shots):
    base = f"http://127.0.0.1:{web_pbx.web}"
    status, log = api(web_pbx, "/api/v1/audit?per_page=100")
    assert status == 200
    done = [(e["action"], e["target"], e["via"]) for e in log["items"]]
    for want in [("trunk.create", "old-pbx", "web"), ("trunk.update", "old-pbx", "web"),
                 ("trunk.delete", "old-pbx", "web"), ("extension.import", "2 extensions", "web"),
                 ("extension.import", "1 extension", "api"),
                 ("extension.delete", "4002", "web")]:
        assert want in done, (want, done)
    assert all(e["admin"] == ADMIN and e["source"] == "127.0.0.1" for e in log["items"]), log
    # The CLI is not the web admin: its removal is not in this log.
    assert ("extension.delete", "4003", "web") not in done
    assert "Tr0nk-secret" not in json.dumps(log) and "Imp0rt" not in json.dumps(log)

    page.click("nav a:has-text('Audit log')")
    page.wait_for_url(f"{base}/audit")
    rows = page.locator("#audit tbody tr")
    assert rows.count() == log["total"]
    assert rows.first.get_attribute("data-action") == log["items"][0]["action"]
    assert "trunk.create" in page.locator("#audit").inner_text()
    shoot(page, shots, "audit")


def test_a_web_login_ban_mails_the_admin_once(web_pbx, smtp_port, tmp_path):
    from test_web_admin import web_login
    sink = SmtpSink(tmp_path / "mail", smtp_port)
    try:
        for i in range(MAX_AUTH_FAILURES - 1):
            status, _ = web_login(web_pbx.web, GUESSER_IP, f"guess{i}")
            assert status == 401, (i, status)
        status, body = web_login(web_pbx.web, GUESSER_IP, "guess-last")
        assert status == 403 and "banned" in body, status
        # Tries while banned are refused before any check: no second ban, no second mail.
        for _ in range(3):
            status, _ = web_login(web_pbx.web, GUESSER_IP, ADMIN_PW)
            assert status == 403
        messages = sink.wait(1, 20)
        assert len(messages) == 1, f"{len(messages)} alerts\n{web_pbx.log_tail()}"
        alert = messages[0]
        assert alert["To"] == ALERT_TO, dict(alert)
        assert GUESSER_IP in alert["Subject"], alert["Subject"]
        assert "web login" in alert.get_payload(decode=True).decode()
        time.sleep(2)
        assert len(sink.messages()) == 1
    finally:
        sink.stop()
    assert GUESSER_IP in web_pbx.ban_list()
