"""The web admin's third slice in a real browser (Debian's chromium, headless, Playwright):
voicemail messages put in place the way the PBX files them (a WAV made with sox under
`[voicemail] storage`, a row in the PBX's database) are listed, played (the browser reads
the audio's duration and can seek in it), downloaded byte for byte, marked heard and
deleted (row and file); the Security page, the dashboard and the API show failed SIP
authentications and web logins; the dashboard shows mail failing, then up; the Admins page
makes and revokes API tokens; and the admin is served over HTTPS (`[web] tls = true`) with
the self-signed certificate made at first start, its session cookie `Secure`.

Screenshots go to a temp dir, or to PBX_E2E_SCREENSHOTS (e.g. docs/screenshots).
"""

import hashlib
import http.client
import json
import os
import re
import sqlite3
import ssl
import subprocess
import urllib.error
import urllib.parse
import urllib.request

import pytest

from conftest import DOMAIN, require
from sipclient import SipClient

ADMIN, ADMIN_PW = "admin", "Adm1n-voicemail-pass"
# Addresses of this module's clients (other modules use 127.0.13.x, 127.0.14.x).
SIP_GUESSER, WEB_GUESSER, HTTPS_CLIENT = "127.0.21.2", "127.0.21.3", "127.0.21.4"
MAIL_GUESSER = "127.0.21.5"


@pytest.fixture(scope="module")
def web_pbx(pbx_factory):
    p = pbx_factory("webvm")
    p.import_extensions([(n, f"pw{n}") for n in (5001, 5002)])
    p.cli("admin", "create", ADMIN, "--password", ADMIN_PW)
    return p.start()


def log_in(browser, base, **ctx_args):
    ctx = browser.new_context(viewport={"width": 1280, "height": 800}, **ctx_args)
    p = ctx.new_page()
    p.goto(f"{base}/")
    p.fill("input[name=user]", ADMIN)
    p.fill("input[name=password]", ADMIN_PW)
    p.click("button:has-text('Log in')")
    p.wait_for_url(f"{base}/")
    assert p.locator("h1").first.inner_text() == "Dashboard"
    return ctx, p


def shoot(page, shots, name):
    page.screenshot(path=os.path.join(shots, f"{name}.png"), full_page=True)


def api(pbx, path, method="GET", body=None):
    token = pbx.cli("admin", "token", ADMIN).stdout.strip()
    headers = {"Authorization": f"Bearer {token}"}
    if body is not None:
        headers["Content-Type"] = "application/json"
        body = json.dumps(body).encode()
    req = urllib.request.Request(f"{pbx.web_scheme}://127.0.0.1:{pbx.web}{path}", data=body,
                                 headers=headers, method=method)
    with urllib.request.urlopen(req, timeout=5, context=pbx._web_ssl()) as r:
        data = r.read()
        return r.status, (json.loads(data) if data and r.headers.get_content_type()
                          == "application/json" else data)


# --------------------------------------------------------------------------- messages


def sql(pbx, query, args=()):
    """Runs one statement on the PBX's database (the SQLite file, or its PostgreSQL
    database through psql); the rows."""
    if pbx.pg_db:
        require("psql")
        text = query
        for a in args:  # only numbers and our own strings without quotes
            text = text.replace("?", f"'{a}'" if isinstance(a, str) else str(a), 1)
        r = subprocess.run(["psql", pbx.db_url, "-v", "ON_ERROR_STOP=1", "-qAtc", text],
                           capture_output=True, text=True, timeout=30)
        assert r.returncode == 0, r.stderr
        return [tuple(line.split("|")) for line in r.stdout.splitlines() if line]
    db = sqlite3.connect(os.path.join(pbx.dir, "data", "pbx.db"), timeout=10)
    try:
        rows = db.execute(query, args).fetchall()
        db.commit()
        return rows
    finally:
        db.close()


def leave_message(pbx, mailbox, caller, name, received_at, seconds, freq):
    """A message as the PBX files one: a 16-bit 8 kHz mono WAV under the storage folder
    (`[voicemail] storage = "data/voicemail"`), and its row in `new`. (id, path)."""
    require("sox")
    folder = os.path.join(pbx.dir, "data", "voicemail", str(mailbox))
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, f"msg-{received_at}.wav")
    subprocess.run(["sox", "-n", "-r", "8000", "-c", "1", "-b", "16", "-e", "signed-integer",
                    path, "synth", str(seconds), "sine", str(freq), "vol", "0.3"], check=True)
    rows = sql(pbx, "INSERT INTO voicemail_messages (mailbox, folder, caller_number, caller_name, "
                    "received_at, duration_ms, path) VALUES (?, 'new', ?, ?, ?, ?, ?) RETURNING id",
               (str(mailbox), str(caller), name, received_at, seconds * 1000, path))
    return int(rows[0][0]), path


def folder_of(pbx, message_id):
    rows = sql(pbx, "SELECT folder FROM voicemail_messages WHERE id = ?", (message_id,))
    return rows[0][0] if rows else None


def test_voicemail_is_played_downloaded_marked_heard_and_deleted(web_pbx, browser, shots, tmp_path):
    base = f"http://127.0.0.1:{web_pbx.web}"
    older, older_path = leave_message(web_pbx, 5001, 5002, "Bob Baker", 1_780_000_000, 3, 440)
    newer, newer_path = leave_message(web_pbx, 5001, "+4930123456", "", 1_780_003_600, 2, 660)
    ctx, page = log_in(browser, base)
    try:
        page.click("nav a:has-text('Voicemail')")
        page.wait_for_url(f"{base}/voicemail")
        row = page.locator("tr[data-mailbox='5001']")
        assert "2 new" in row.inner_text(), page.content()
        shoot(page, shots, "voicemail")
        row.locator("a:has-text('Listen')").click()
        page.wait_for_url(f"{base}/voicemail/5001")
        rows = page.locator("tr[data-message]")
        assert rows.count() == 2
        # Newest first; caller, length and folder shown.
        assert rows.nth(0).get_attribute("data-message") == str(newer)
        text = rows.nth(1).inner_text()
        for want in ("5002", "Bob Baker", "0:03", "new"):
            assert want in text, (want, text)

        # The browser loads the audio: its duration is the WAV's, and it can seek in it
        # (the server answers byte ranges).
        audio = f"tr[data-message='{older}'] audio"
        page.wait_for_function(
            "sel => { const a = document.querySelector(sel); return a && a.readyState >= 1 && a.duration > 0; }",
            arg=audio, timeout=10_000)
        duration = page.eval_on_selector(audio, "a => a.duration")
        assert 2.9 < duration < 3.1, duration
        seekable = page.eval_on_selector(audio, "a => a.seekable.length ? a.seekable.end(0) : 0")
        assert seekable > 2.9, seekable
        shoot(page, shots, "voicemail-mailbox")

        # Download: the same bytes as the file, named as an attachment.
        with page.expect_download() as got:
            rows.nth(1).locator("a:has-text('Download')").click()
        download = got.value
        assert download.suggested_filename == f"voicemail-5001-{older}.wav"
        saved = tmp_path / "down.wav"
        download.save_as(saved)
        with open(older_path, "rb") as f:
            assert saved.read_bytes() == f.read()

        # Mark heard: new -> old, in the database too.
        page.locator(f"tr[data-message='{older}'] button:has-text('Mark heard')").click()
        assert page.locator(".alert.ok").inner_text() == "The message is moved."
        assert "old" in page.locator(f"tr[data-message='{older}']").inner_text()
        assert folder_of(web_pbx, older) == "old"
        status, boxes = api(web_pbx, "/api/v1/mailboxes")
        assert status == 200 and {"number": "5001", "new": 1, "old": 1, "saved": 0} in boxes, boxes

        # Delete: the row and the file go.
        page.locator(f"tr[data-message='{older}'] button:has-text('Delete')").click()
        assert page.locator(".alert.ok").inner_text() == "The message is deleted."
        assert page.locator("tr[data-message]").count() == 1
        assert folder_of(web_pbx, older) is None
        assert not os.path.exists(older_path)
        assert os.path.exists(newer_path)
    finally:
        ctx.close()


def test_the_voicemail_api_serves_ranges_moves_and_deletes(web_pbx):
    mid, path = leave_message(web_pbx, 5002, 5001, "Alice", 1_780_010_000, 1, 800)
    status, listed = api(web_pbx, "/api/v1/mailboxes/5002/messages")
    assert status == 200
    message = next(m for m in listed if m["id"] == mid)
    assert message["folder"] == "new" and message["duration_ms"] == 1000
    with open(path, "rb") as f:
        wav = f.read()
    token = web_pbx.cli("admin", "token", ADMIN).stdout.strip()
    conn = http.client.HTTPConnection("127.0.0.1", web_pbx.web, timeout=5)
    try:
        conn.request("GET", message["audio"], headers={"Authorization": f"Bearer {token}"})
        r = conn.getresponse()
        assert r.status == 200 and r.getheader("Content-Type") == "audio/wav"
        assert r.read() == wav
        conn.request("GET", message["audio"], headers={"Authorization": f"Bearer {token}",
                                                       "Range": "bytes=44-99"})
        r = conn.getresponse()
        assert r.status == 206, r.status
        assert r.getheader("Content-Range") == f"bytes 44-99/{len(wav)}"
        assert r.read() == wav[44:100]
        conn.request("GET", message["audio"])
        r = conn.getresponse()
        r.read()
        assert r.status == 401
    finally:
        conn.close()
    status, moved = api(web_pbx, f"/api/v1/mailboxes/5002/messages/{mid}", "PATCH",
                        {"folder": "saved"})
    assert status == 200 and moved["folder"] == "saved"
    assert folder_of(web_pbx, mid) == "saved"
    status, _ = api(web_pbx, f"/api/v1/mailboxes/5002/messages/{mid}", "DELETE")
    assert status == 204
    assert folder_of(web_pbx, mid) is None and not os.path.exists(path)


# --------------------------------------------------------------------------- security


def web_login(pbx, source_ip, password):
    """One login through the form from `source_ip`; the status of the POST."""
    conn = http.client.HTTPConnection("127.0.0.1", pbx.web, timeout=5,
                                      source_address=(source_ip, 0))
    try:
        conn.request("GET", "/")
        r = conn.getresponse()
        body = r.read().decode()
        cookie = r.getheader("Set-Cookie").split(";")[0]
        token = re.search(r'name="csrf" value="([0-9a-f]{64})"', body).group(1)
        form = urllib.parse.urlencode({"user": ADMIN, "password": password, "csrf": token})
        conn.request("POST", "/login", body=form, headers={
            "Cookie": cookie, "Content-Type": "application/x-www-form-urlencoded"})
        r = conn.getresponse()
        r.read()
        return r.status
    finally:
        conn.close()


def test_failed_sip_and_web_logins_are_security_events(web_pbx, browser, shots):
    with SipClient("udp", web_pbx.server("udp"), local_ip=SIP_GUESSER) as c:
        for _ in range(2):
            r = c.register("5001", "not-the-password", DOMAIN, timeout=3)
            assert r is not None and r.status in (401, 403), r
    assert web_login(web_pbx, WEB_GUESSER, "guess") == 401

    status, events = api(web_pbx, "/api/v1/security/events")
    assert status == 200
    sip = [e for e in events if e["source"] == SIP_GUESSER]
    assert sip and sip[0]["kind"] == "auth_failed" and sip[0]["user"] == "5001", events
    assert sip[0]["count"] == 2, "two failures in a row are one line"
    assert any(e["source"] == WEB_GUESSER and e["kind"] == "login_failed" for e in events), events

    base = f"http://127.0.0.1:{web_pbx.web}"
    ctx, page = log_in(browser, base)
    try:
        dash = page.locator("#recent-events")
        assert SIP_GUESSER in dash.inner_text() and WEB_GUESSER in dash.inner_text()
        page.click("nav a:has-text('Security')")
        page.wait_for_url(f"{base}/security")
        rows = page.locator("#events tr[data-kind]")
        text = rows.all_inner_texts()
        assert any(SIP_GUESSER in t and "SIP authentication failed" in t and "×2" in t
                   for t in text), text
        assert any(WEB_GUESSER in t and "web login failed" in t for t in text), text
        shoot(page, shots, "security")
    finally:
        ctx.close()


# --------------------------------------------------------------------------- HTTPS


def test_the_admin_is_served_over_https_with_a_secure_cookie(pbx_factory, browser, shots):
    require("curl")
    p = pbx_factory("webtls", web_tls=True)
    p.cli("admin", "create", ADMIN, "--password", ADMIN_PW)
    p.start()  # waits for GET /healthz over HTTPS
    base = f"https://127.0.0.1:{p.web}"
    # The certificate was made at first start (self-signed, for the SIP domain).
    assert os.path.exists(os.path.join(p.dir, "tls", "cert.pem"))
    r = subprocess.run(["curl", "-sk", "--interface", HTTPS_CLIENT, "-o", "/dev/null",
                        "-w", "%{http_code} %{ssl_verify_result}", f"{base}/healthz"],
                       capture_output=True, text=True, timeout=15)
    assert r.stdout.split()[0] == "200", r
    # Plain HTTP on the same port gets no page.
    r = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}",
                        f"http://127.0.0.1:{p.web}/healthz"],
                       capture_output=True, text=True, timeout=15)
    assert r.stdout != "200", r
    # A client that does not check the self-signed certificate gets the login page.
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    conn = http.client.HTTPSConnection("127.0.0.1", p.web, timeout=5, context=ctx)
    try:
        conn.request("GET", "/")
        r = conn.getresponse()
        body = r.read().decode()
        assert r.status == 200 and "Log in" in body
        assert "Secure" in r.getheader("Set-Cookie"), r.getheader("Set-Cookie")
    finally:
        conn.close()

    bctx, page = log_in(browser, base, ignore_https_errors=True)
    try:
        session = [c for c in bctx.cookies() if c["name"] == "pbx_session"]
        assert session and session[0]["secure"] and session[0]["httpOnly"], session
        page.goto(f"{base}/security")
        assert page.locator("h1").first.inner_text() == "Security"
    finally:
        bctx.close()


# --------------------------------------------------------------------------- admins


def test_an_admin_is_created_makes_a_token_and_revokes_it(web_pbx, browser, shots):
    base = f"http://127.0.0.1:{web_pbx.web}"
    ctx, page = log_in(browser, base)
    try:
        page.click("nav a:has-text('Admins')")
        page.wait_for_url(f"{base}/admins")
        form = page.locator("#new-admin")
        form.locator("input[name=user]").fill("carol")
        form.locator("input[name=password]").fill("short")
        form.locator("input[name=confirm]").fill("short")
        form.locator("button").click()
        assert "At least 10 characters" in page.locator("#new-admin").inner_text()
        form = page.locator("#new-admin")
        form.locator("input[name=password]").fill("carol's long passphrase")
        form.locator("input[name=confirm]").fill("carol's long passphrase")
        form.locator("button").click()
        assert page.locator(".alert.ok").inner_text() == "The admin account is created."
        assert page.locator("tr[data-admin='carol']").count() == 1
        page.locator("button:has-text('New token for me')").click()
        token = page.locator("#token").inner_text().strip()
        assert re.fullmatch(r"[0-9a-f]{64}", token), token
        req = urllib.request.Request(f"{base}/api/v1/tokens",
                                     headers={"Authorization": f"Bearer {token}"})
        with urllib.request.urlopen(req, timeout=5) as r:
            listed = json.loads(r.read())
        # Listed by the first digits of its SHA-256, never by itself.
        token_id = hashlib.sha256(token.encode()).hexdigest()[:12]
        assert any(t["id"] == token_id and t["user"] == ADMIN for t in listed), listed
        assert token not in json.dumps(listed)
        page.goto(f"{base}/admins")
        shoot(page, shots, "admins")
        page.locator(f"tr[data-token='{token_id}'] button:has-text('Revoke')").click()
        assert page.locator(".alert.ok").inner_text() == "The token is revoked."
        try:
            urllib.request.urlopen(req, timeout=5)
            status = 200
        except urllib.error.HTTPError as e:
            status = e.code
        assert status == 401
    finally:
        ctx.close()


# --------------------------------------------------------------------------- mail health


def test_the_dashboard_shows_mail_failing_then_up(pbx_factory, browser, tmp_path):
    from conftest import MAX_AUTH_FAILURES, free_port
    from test_mail import SmtpSink

    smtp_port = free_port()
    extra = (f'[security]\nalert_email = "admin@{DOMAIN}"\n\n'
             f'[smtp]\nurl = "smtp://127.0.0.1:{smtp_port}"\nfrom = "PBX <pbx@{DOMAIN}>"\n')
    p = pbx_factory("webmail", extra)
    p.import_extensions([(5101, "pw5101")])
    p.cli("admin", "create", ADMIN, "--password", ADMIN_PW)
    p.start()
    base = f"http://127.0.0.1:{p.web}"
    ctx, page = log_in(browser, base)
    try:
        assert "nothing sent yet" in page.locator("#mail-health").inner_text()
        # A ban makes an alert; nothing listens on the mail port yet.
        with SipClient("udp", p.server("udp"), local_ip=MAIL_GUESSER) as c:
            for i in range(MAX_AUTH_FAILURES - 1):
                c.register("5101", f"guess{i}", DOMAIN, timeout=3)
            c.register("5101", "guess-last", DOMAIN, timeout=2)
        assert p.wait_log(r"e-mail not delivered; will retry", timeout=10) is not None
        page.goto(f"{base}/")
        health = page.locator("#mail-health").inner_text()
        assert "failing" in health and "1 waiting" in health, health
        assert "SMTP" in page.locator("#health").inner_text()
        sink = SmtpSink(tmp_path / "mail", smtp_port)
        try:
            assert len(sink.wait(1, 30)) == 1  # the retry delivers it
            page.goto(f"{base}/")
            page.wait_for_function(
                "() => document.querySelector('#mail-health').innerText.includes('Mail up')",
                timeout=15_000)  # the dashboard refreshes itself every 10 s
            assert "waiting" not in page.locator("#mail-health").inner_text()
        finally:
            sink.stop()
    finally:
        ctx.close()
