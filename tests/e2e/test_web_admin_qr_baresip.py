"""From the QR code to a real softphone's call (issue 13's browser test): in Debian's
chromium (Playwright) the admin logs in and creates an extension; its provisioning page's QR
image (a screenshot of the SVG) is decoded with zbarimg; the XML behind the decoded URL sets
up baresip (server, transport, user, domain and SRTP from the document; the password the
create page showed once, checked against the document's HA1); baresip registers and calls
another extension (a second baresip); the call is on the Calls page while it lasts, then in
the call record search; the link, opened again, says it was used.

Addresses: the PBX 127.0.0.1; the provisioned baresip 127.0.17.2; the callee 127.0.17.3.
"""

import hashlib
import os
import re
import subprocess
import urllib.request

import pytest

from baresip_phone import BaresipPhone
from callhelpers import password
from conftest import require
from test_web_admin import entries

ADMIN, ADMIN_PW = "admin", "Adm1n-qr-pass"
PHONE_IP, CALLEE_IP = "127.0.17.2", "127.0.17.3"


@pytest.fixture(scope="module")
def web_pbx(pbx_factory):
    p = pbx_factory("webqr")
    p.import_extensions([(4002, password(4002))])
    p.cli("admin", "create", ADMIN, "--password", ADMIN_PW)
    return p.start()


def test_a_phone_set_up_from_the_qr_code_calls_and_the_call_is_seen(web_pbx, browser, shots,
                                                                    tmp_path):
    require("zbarimg", "baresip")
    base = f"http://127.0.0.1:{web_pbx.web}"
    ctx = browser.new_context(viewport={"width": 1280, "height": 800})
    page = ctx.new_page()
    page.goto(f"{base}/")
    page.fill("input[name=user]", ADMIN)
    page.fill("input[name=password]", ADMIN_PW)
    page.click("button:has-text('Log in')")
    page.wait_for_url(f"{base}/")

    # A new extension; its password is shown this once.
    page.goto(f"{base}/extensions/new")
    page.fill("input[name=number]", "4100")
    page.fill("input[name=name]", "Baresip User")
    page.click("button:has-text('Create extension')")
    assert page.locator("h1").inner_text() == "Extension 4100 created"
    shown_password = page.locator("#password").inner_text().strip()

    # Its QR code, read as a phone's camera would.
    page.click("text=Show QR code")
    page.wait_for_url(f"{base}/extensions/4100/qr")
    qr_png = str(tmp_path / "qr.png")
    page.locator("#qr svg").screenshot(path=qr_png)
    z = subprocess.run(["zbarimg", "--quiet", "--raw", qr_png], capture_output=True, text=True,
                       timeout=30)
    assert z.returncode == 0, z.stderr
    url = z.stdout.strip()
    assert re.fullmatch(rf"{re.escape(base)}/provision/[0-9a-f]{{64}}", url), url
    with urllib.request.urlopen(url, timeout=5) as r:
        doc = entries(r.read().decode())

    # baresip from the document's values.
    proxy = re.fullmatch(r"<sip:([\d.]+):(\d+);transport=(\w+)>", doc[("proxy_0", "reg_proxy")])
    assert proxy, doc
    host, port, transport = proxy.group(1), int(proxy.group(2)), proxy.group(3)
    identity = re.search(r"<sip:(\d+)@([^>]+)>", doc[("proxy_0", "reg_identity")])
    assert identity, doc
    user, domain = identity.group(1), identity.group(2)
    assert user == doc[("auth_info_0", "username")] == "4100"
    # The document carries the HA1, not the password: the one shown is the one it was made of.
    ha1 = hashlib.md5(f"{user}:{domain}:{shown_password}".encode()).hexdigest()
    assert doc[("auth_info_0", "ha1")] == ha1
    mediaenc = "srtp" if doc[("sip", "media_encryption")] == "srtp" else ""

    tmp = str(tmp_path)
    callee = BaresipPhone(tmp, 4002, password(4002), web_pbx.hostport("udp"), "udp", "",
                          CALLEE_IP, answer="auto")
    phone = BaresipPhone(tmp, user, shown_password, f"{host}:{port}", transport, mediaenc,
                         PHONE_IP, answer="manual", domain=domain)
    logs = lambda: f"{phone.log()}\n{callee.log()}\n{web_pbx.log_tail()}"  # noqa: E731
    try:
        callee.start()
        phone.start()
        assert callee.wait_registered(), logs()
        assert phone.wait_registered(), logs()
        phone.dial("4002")
        up = phone.wait_event({"CALL_ESTABLISHED", "CALL_CLOSED"}, 10)
        assert up is not None and up["type"] == "CALL_ESTABLISHED", (up, logs())
        answered = callee.wait_event({"CALL_ESTABLISHED", "CALL_CLOSED"}, 5)
        assert answered is not None and answered["type"] == "CALL_ESTABLISHED", logs()

        # On the Calls page while it lasts.
        page.goto(f"{base}/calls")
        rows = page.locator("tr[data-call]")
        assert rows.count() == 1, page.content()
        text = rows.first.inner_text()
        for want in ("4100", "4002", "answered"):
            assert want in text, (want, text)
        shoot = os.path.join(shots, "calls-baresip.png")
        page.screenshot(path=shoot, full_page=True)

        phone.hangup()
        assert phone.wait_event("CALL_CLOSED", 5) is not None, logs()
        assert callee.wait_event("CALL_CLOSED", 5) is not None, logs()
    finally:
        phone.stop()
        callee.stop()

    # Then in the call record search.
    web_pbx.wait_cdr(4100, 4002)
    page.goto(f"{base}/cdrs")
    page.fill("input[name=extension]", "4100")
    page.click("button:has-text('Search')")
    page.wait_for_url(re.compile(r".*/cdrs\?.*extension=4100"))
    row = page.locator("#records tbody tr")
    assert row.count() == 1, page.content()
    text = row.first.inner_text()
    for want in ("4100", "4002", "answered"):
        assert want in text, (want, text)

    # The link did its job once: opened again, it says so.
    page.goto(url)
    assert "used already" in page.content()
    ctx.close()
