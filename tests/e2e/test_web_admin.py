"""The web admin in a real browser: Debian's chromium, headless, driven by Playwright (PyPI,
launched with `executable_path`; no browser download). Log in, create an extension, open its
QR page, decode the QR image (zbarimg) and fetch the provisioning document it encodes,
register a SIP client with the account in it (HA1 digest, over the transport it names), see
the device on the extension's page, delete another extension, log out.

Screenshots of each page go to a temp dir, or to PBX_E2E_SCREENSHOTS (e.g. docs/screenshots,
to refresh the admin guide's pictures).
"""

import hashlib
import http.client
import os
import re
import subprocess
import urllib.error
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ET

import pytest

from conftest import DOMAIN, MAX_AUTH_FAILURES, require
from sipclient import SipClient, parse_challenge

ADMIN, ADMIN_PW = "admin", "Adm1n-web-pass"
PHONE_IP = "127.0.13.2"        # the provisioned softphone

PLAN = """\
[defaults]
context = "staff"

[context.staff]
[[context.staff.rule]]
extension = true
steps = [{ dial = "${number}" }]

[context.lobby]
members = ["4900-4999"]
may_call = ["4001"]
include = ["staff"]
"""

PEOPLE = [(4001, "Reception"), (4002, "Anna Berg"), (4003, "Old Fax"), (4004, "Ravi Kumar"),
          (4005, "Meeting room")]


@pytest.fixture(scope="module")
def web_pbx(pbx_factory):
    p = pbx_factory("web", dialplan=PLAN)
    for n, name in PEOPLE:
        p.add_extension(n, f"pw{n}", name=name)
    p.cli("admin", "create", ADMIN, "--password", ADMIN_PW)
    return p.start()


def register_with_ha1(client, user, ha1, domain):
    """REGISTER answering the MD5 challenge from an HA1 (what the provisioning document
    carries) instead of a password (RFC 7616 §3.4.2: response = KD(HA1, nonce:...:HA2))."""
    uri, aor = f"sip:{domain}", f"sip:{user}@{domain}"
    hdrs = [f"Contact: {client.contact(user)}", "Expires: 300"]
    r = client.request("REGISTER", uri, aor, aor, hdrs)
    assert r is not None and r.status == 401, r
    ch = next(c for c in map(parse_challenge, r.all("www-authenticate"))
              if c.get("algorithm", "MD5").upper() == "MD5")
    md5 = lambda s: hashlib.md5(s.encode()).hexdigest()  # noqa: E731
    ha2 = md5(f"REGISTER:{uri}")
    cnonce, nc = os.urandom(6).hex(), "00000001"
    parts = [f'username="{user}"', f'realm="{ch["realm"]}"', f'nonce="{ch["nonce"]}"',
             f'uri="{uri}"', "algorithm=MD5"]
    if "auth" in ch.get("qop", ""):
        resp = md5(f"{ha1}:{ch['nonce']}:{nc}:{cnonce}:auth:{ha2}")
        parts += ["qop=auth", f"nc={nc}", f'cnonce="{cnonce}"']
    else:
        resp = md5(f"{ha1}:{ch['nonce']}:{ha2}")
    parts.append(f'response="{resp}"')
    if "opaque" in ch:
        parts.append(f'opaque="{ch["opaque"]}"')
    return client.request("REGISTER", uri, aor, aor,
                          hdrs + ["Authorization: Digest " + ", ".join(parts)])


def entries(xml_text):
    """{(section, entry): value} of a Linphone lpconfig document."""
    ns = {"lp": "http://www.linphone.org/xsds/lpconfig.xsd"}
    root = ET.fromstring(xml_text)
    return {(s.get("name"), e.get("name")): (e.text or "")
            for s in root.findall("lp:section", ns) for e in s.findall("lp:entry", ns)}


def test_admin_creates_an_extension_and_provisions_a_phone(web_pbx, browser, shots, tmp_path):
    require("zbarimg")
    base = f"http://127.0.0.1:{web_pbx.web}"
    ctx = browser.new_context(viewport={"width": 1280, "height": 800})
    page = ctx.new_page()
    shot = lambda name: page.screenshot(path=os.path.join(shots, f"{name}.png"), full_page=True)  # noqa: E731

    # Not logged in: the login page at /, and every page leads there.
    page.goto(f"{base}/extensions")
    assert page.url == f"{base}/"
    assert page.locator("button", has_text="Log in").is_visible()
    shot("login")
    page.fill("input[name=user]", ADMIN)
    page.fill("input[name=password]", "not-the-password")
    page.click("button[type=submit]")
    assert page.locator(".alert.error").inner_text() == "Wrong user name or password."

    page.fill("input[name=password]", ADMIN_PW)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/")                         # the dashboard
    assert page.locator("h1").first.inner_text() == "Dashboard"
    page.click("nav a:has-text('Extensions')")
    page.wait_for_url(f"{base}/extensions")
    for n, name in PEOPLE:
        assert page.locator(f"a[href='/extensions/{n}']", has_text=str(n)).count() == 1, n
    shot("extensions")

    # Live search (htmx): typing filters the list without a reload.
    page.fill("input[name=q]", "anna")
    page.wait_for_function("() => !document.querySelector(\"a[href='/extensions/4001']\")")
    assert page.locator("a[href='/extensions/4002']", has_text="4002").count() == 1
    page.fill("input[name=q]", "")

    # A form with mistakes: each message next to its field, nothing created.
    page.goto(f"{base}/extensions/new")
    page.fill("input[name=number]", "41a")
    page.fill("input[name=email]", "dana at example")
    page.fill("input[name=pin]", "12")
    page.click("button:has-text('Create extension')")
    assert "bad extension number" in page.locator("label:has(input[name=number]) .error").inner_text()
    assert "bad e-mail address" in page.locator("label:has(input[name=email]) .error").inner_text()
    assert "bad PIN" in page.locator("label:has(input[name=pin]) .error").inner_text()
    shot("extension-errors")
    assert "4100" not in web_pbx.cli("extension", "list").stdout

    page.fill("input[name=number]", "4100")
    page.fill("input[name=name]", "Dana Lee")
    page.fill("input[name=email]", "dana@example.com")
    page.fill("input[name=pin]", "2468")
    page.click("button:has-text('Create extension')")
    assert page.locator("h1").inner_text() == "Extension 4100 created"
    password = page.locator("#password").inner_text().strip()
    assert re.fullmatch(r"[A-Za-z0-9]{20}", password), password
    shot("extension-created")
    assert re.search(r"^4100\s+Dana Lee\s+dana@example.com\s+yes", web_pbx.cli("extension", "list").stdout, re.M)

    # The QR page: decode the image as a phone would and fetch what it encodes.
    page.click("text=Show QR code")
    page.wait_for_url(f"{base}/extensions/4100/qr")
    shot("qr")
    qr_png = str(tmp_path / "qr-code.png")
    page.locator("#qr svg").screenshot(path=qr_png)
    z = subprocess.run(["zbarimg", "--quiet", "--raw", qr_png], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True, timeout=30)
    assert z.returncode == 0, z.stderr
    url = z.stdout.strip()
    assert url == page.locator("#provision-url").inner_text().strip()
    assert re.fullmatch(rf"{re.escape(base)}/provision/[0-9a-f]{{64}}", url), url
    with urllib.request.urlopen(url, timeout=5) as r:
        assert r.headers["Content-Type"].startswith("application/xml")
        doc = entries(r.read().decode())
    assert doc[("auth_info_0", "username")] == "4100"
    ha1 = doc[("auth_info_0", "ha1")]
    assert ha1 == hashlib.md5(f"4100:{DOMAIN}:{password}".encode()).hexdigest()
    proxy = re.fullmatch(r"<sip:([\d.]+):(\d+);transport=(\w+)>", doc[("proxy_0", "reg_proxy")])
    assert proxy, doc
    host, port, transport = proxy.group(1), int(proxy.group(2)), proxy.group(3)
    assert (transport, port) == ("tls", web_pbx.tls)      # TLS offered first...
    assert doc[("sip", "media_encryption")] == "srtp"     # ...with SRTP
    assert "Dana Lee" in doc[("proxy_0", "reg_identity")]

    # The link worked once.
    with pytest.raises(urllib.error.HTTPError) as again:
        urllib.request.urlopen(url, timeout=5)
    assert again.value.code == 410
    assert "used already" in again.value.read().decode()

    # A softphone with that account registers.
    with SipClient(transport, (host, port), local_ip=PHONE_IP) as phone:
        r = register_with_ha1(phone, "4100", ha1, DOMAIN)
        assert r is not None and r.status == 200, r
        # The extension's page shows the device now, and so does the registrations page.
        page.goto(f"{base}/extensions/4100")
        devices = page.locator(".devices").inner_text()
        assert PHONE_IP in devices and "pbx-e2e-sipclient" in devices, devices
        # A context from the running dialplan can be chosen.
        assert page.locator("select[name=context] option").all_inner_texts()[1:] == ["staff", "lobby"]
        shot("extension-edit")
        page.goto(f"{base}/registrations")
        assert PHONE_IP in page.locator("table").inner_text()
        shot("registrations")
        page.goto(f"{base}/extensions/4100/welcome")
        assert page.locator(".qr svg").count() == 1
        shot("welcome-sheet")

    # Edit: the context and the media encryption are saved.
    page.goto(f"{base}/extensions/4100")
    page.select_option("select[name=context]", "lobby")
    page.select_option("select[name=media_encryption]", "required")
    page.click("text=Save")
    assert page.locator(".alert.ok").inner_text() == "Saved."
    assert re.search(r"^4100\s+Dana Lee.*\srequired\s+lobby", web_pbx.cli("extension", "list").stdout, re.M)

    # Delete asks first.
    page.goto(f"{base}/extensions/4003")
    page.click("text=Delete extension…")
    assert page.locator("h1").inner_text() == "Delete extension 4003?"
    shot("extension-delete")
    page.click("button:has-text('Delete 4003')")
    assert page.locator(".alert.ok").inner_text() == "Extension 4003 deleted."
    assert "4003" not in web_pbx.cli("extension", "list").stdout

    # On a phone's width the list still works.
    small = ctx.new_page()
    small.set_viewport_size({"width": 390, "height": 844})
    small.goto(f"{base}/extensions")
    small.screenshot(path=os.path.join(shots, "extensions-phone.png"), full_page=True)
    assert small.locator("a[href='/extensions/4100']").first.is_visible()
    small.close()

    # Log out: back to the login page, and the pages are closed again.
    page.click("button:has-text('Log out')")
    page.wait_for_url(f"{base}/")
    page.goto(f"{base}/extensions/4100")
    assert page.url == f"{base}/"
    ctx.close()


def test_a_form_without_its_csrf_token_is_refused(web_pbx, browser):
    base = f"http://127.0.0.1:{web_pbx.web}"
    ctx = browser.new_context()
    page = ctx.new_page()
    page.goto(f"{base}/")
    page.fill("input[name=user]", ADMIN)
    page.fill("input[name=password]", ADMIN_PW)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/")
    page.goto(f"{base}/extensions/new")
    page.evaluate("document.querySelector(\"form[action='/extensions'] input[name=csrf]\").remove()")
    page.fill("input[name=number]", "4200")
    page.click("button:has-text('Create extension')")
    assert page.locator("h1").inner_text() == "Form refused"
    assert "security token" in page.locator(".alert").inner_text()
    assert "4200" not in web_pbx.cli("extension", "list").stdout
    ctx.close()


def test_api_needs_a_token_and_creates_extensions(web_pbx):
    import json
    base = f"http://127.0.0.1:{web_pbx.web}"
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(f"{base}/api/v1/extensions", timeout=5)
    assert e.value.code == 401
    assert "error" in json.loads(e.value.read())
    token = web_pbx.cli("admin", "token", ADMIN).stdout.strip()
    auth = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    req = urllib.request.Request(f"{base}/api/v1/extensions", method="POST", headers=auth,
                                 data=json.dumps({"number": "4300", "password": "S3cret-pass",
                                                  "name": "Api User", "email": "api@example.com",
                                                  "pin": "1357"}).encode())
    with urllib.request.urlopen(req, timeout=5) as r:
        assert r.status == 201
    with SipClient("udp", web_pbx.server("udp"), local_ip=PHONE_IP) as phone:
        r = phone.register("4300", "S3cret-pass", DOMAIN)
        assert r is not None and r.status == 200, r
    req = urllib.request.Request(f"{base}/api/v1/registrations", headers=auth)
    with urllib.request.urlopen(req, timeout=5) as r:
        regs = json.loads(r.read())
    assert any(x["extension"] == "4300" and x["source"].startswith(PHONE_IP) for x in regs), regs
    # Every path of the document refuses a request without a token.
    req = urllib.request.Request(f"{base}/api/v1/openapi.json", headers=auth)
    with urllib.request.urlopen(req, timeout=5) as r:
        doc = json.loads(r.read())
    for path, item in doc["paths"].items():
        concrete = (path.replace("{number}", "4300").replace("{address}", "192.0.2.1")
                    .replace("{id}", "0-1").replace("{name}", "carrier"))
        for method in item:
            req = urllib.request.Request(f"{base}{concrete}", method=method.upper())
            with pytest.raises(urllib.error.HTTPError) as e:
                urllib.request.urlopen(req, timeout=5)
            assert e.value.code == 401, (method, path)


def web_login(web, source_ip, password):
    """One login through the form from `source_ip`; (status, body)."""
    conn = http.client.HTTPConnection("127.0.0.1", web, timeout=5, source_address=(source_ip, 0))
    try:
        conn.request("GET", "/")
        r = conn.getresponse()
        body = r.read().decode()
        if r.status != 200:
            return r.status, body
        cookie = r.getheader("Set-Cookie").split(";")[0]
        token = re.search(r'name="csrf" value="([0-9a-f]{64})"', body).group(1)
        form = urllib.parse.urlencode({"user": ADMIN, "password": password, "csrf": token})
        conn.request("POST", "/login", body=form, headers={
            "Cookie": cookie, "Content-Type": "application/x-www-form-urlencoded"})
        r = conn.getresponse()
        return r.status, r.read().decode()
    finally:
        conn.close()


def test_failed_web_logins_ban_like_sip_and_the_ban_is_lifted_on_the_bans_page(web_pbx, browser, shots):
    """Wrong admin passwords count in the same gate as SIP digest failures: the 5th bans the
    address for SIP too, the right password is then refused as well; the Bans page lifts it."""
    attacker = "127.0.13.4"
    for i in range(MAX_AUTH_FAILURES - 1):
        status, body = web_login(web_pbx.web, attacker, f"guess{i}")
        assert status == 401 and "Wrong user name or password" in body, (i, status)
    status, body = web_login(web_pbx.web, attacker, "guess-last")
    assert status == 403 and "banned" in body, status
    status, body = web_login(web_pbx.web, attacker, ADMIN_PW)
    assert status == 403 and "banned" in body, status
    assert attacker in web_pbx.ban_list()
    # The same ban drops its SIP.
    with SipClient("udp", web_pbx.server("udp"), local_ip=attacker) as c:
        assert c.register("4001", "pw4001", DOMAIN, timeout=2) is None

    base = f"http://127.0.0.1:{web_pbx.web}"
    ctx = browser.new_context(viewport={"width": 1280, "height": 800})
    page = ctx.new_page()
    page.goto(f"{base}/")
    page.fill("input[name=user]", ADMIN)
    page.fill("input[name=password]", ADMIN_PW)
    page.click("button:has-text('Log in')")
    page.goto(f"{base}/bans")
    row = page.locator("tr", has_text=attacker)
    assert "too many failed authentications" in row.inner_text()
    page.screenshot(path=os.path.join(shots, "bans.png"), full_page=True)
    row.locator("button:has-text('Lift ban')").click()
    assert page.locator(".alert.ok").inner_text() == f"The ban of {attacker} is lifted."
    assert attacker not in web_pbx.ban_list()
    ctx.close()
    # At once: the address registers and logs in again.
    with SipClient("udp", web_pbx.server("udp"), local_ip=attacker) as c:
        r = c.register("4001", "pw4001", DOMAIN, timeout=3)
        assert r is not None and r.status == 200, r
    status, _ = web_login(web_pbx.web, attacker, ADMIN_PW)
    assert status == 303
