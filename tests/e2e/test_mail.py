"""E-mail through `[smtp]` to a real SMTP server (aiosmtpd, tests/clients/smtp/smtp-sink.py):

- `pbx mail test ADDRESS` sends at once and says so; with no server listening it fails (exit 1)
  with the reason and the server's address;
- the ban alert (`[security] alert_email`): a source banned while the mail server is down
  is not lost: the alert waits in the spool, `pbx_mail_failed_total` counts the failed
  attempts, and once the server is up the retry delivers exactly one alert for that ban,
  naming the address.

Addresses: the PBX 127.0.0.1; the password guesser 127.0.0.14.
"""

import re
import time

import pytest

from conftest import DOMAIN, MAX_AUTH_FAILURES, free_port
from mailsink import SmtpSink
from sipclient import SipClient

GUESSER = "127.0.0.14"
ADMIN = "it@example.com"
@pytest.fixture(scope="module")
def smtp_port():
    return free_port()


@pytest.fixture(scope="module")
def mail_pbx(pbx_factory, smtp_port):
    extra = (f'[security]\nalert_email = "{ADMIN}"\n\n'
             f'[smtp]\nurl = "smtp://127.0.0.1:{smtp_port}"\nfrom = "PBX <pbx@{DOMAIN}>"\n')
    p = pbx_factory("mail", extra)
    p.add_extension(1001, "secret1001")
    return p.start()


def metric(pbx, name):
    _, text = pbx.http_get("/metrics")
    m = re.search(rf"^{name}(?:{{[^}}]*}})? (\d+)", text, re.M)
    return int(m.group(1)) if m else 0


def test_a_ban_alert_waits_for_the_mail_server_and_arrives_once(mail_pbx, smtp_port, tmp_path):
    pbx = mail_pbx
    with SipClient("udp", pbx.server("udp"), local_ip=GUESSER) as c:
        for i in range(MAX_AUTH_FAILURES - 1):
            r = c.register("1001", f"guess{i}", DOMAIN)
            assert r is not None and r.status in (401, 403), f"attempt {i + 1}: {r}"
        c.register("1001", "guess-last", DOMAIN, timeout=2)
    # The ban is written to the store behind the answer: wait for it.
    end = time.time() + 5
    while GUESSER not in pbx.ban_list() and time.time() < end:
        time.sleep(0.1)
    assert GUESSER in pbx.ban_list(), pbx.ban_list()
    # Nothing listens yet: the first attempt fails and is counted.
    end = time.time() + 10
    while metric(pbx, "pbx_mail_failed_total") < 1 and time.time() < end:
        time.sleep(0.2)
    assert metric(pbx, "pbx_mail_failed_total") >= 1, pbx.log_tail()
    assert metric(pbx, "pbx_mail_queued") == 1
    assert pbx.wait_log(r"e-mail not delivered; will retry", timeout=5) is not None
    sink = SmtpSink(tmp_path / "mail", smtp_port)
    try:
        # The retries wait 5 s, then 10 s, ...: the alert arrives within about 20 s.
        messages = sink.wait(1, 30)
        assert len(messages) == 1, f"{len(messages)} alerts\n{pbx.log_tail()}"
        alert = messages[0]
        assert alert["To"] == ADMIN and alert["X-RcptTo"] == ADMIN, dict(alert)
        assert GUESSER in alert["Subject"], alert["Subject"]
        body = alert.get_payload(decode=True).decode()
        assert "pbx ban remove 127.0.0.14" in body, body
        assert metric(pbx, "pbx_mail_sent_total") == 1
        assert metric(pbx, "pbx_mail_queued") == 0
        time.sleep(1)
        assert len(sink.messages()) == 1, "one alert per ban"
    finally:
        sink.stop()


def test_mail_test_sends_at_once_or_says_why_not(mail_pbx, smtp_port, tmp_path):
    pbx = mail_pbx
    r = pbx.cli("mail", "test", "anna@example.com", check=False)
    assert r.returncode == 1, r.stdout
    assert f"127.0.0.1:{smtp_port}" in r.stderr, r.stderr
    sink = SmtpSink(tmp_path / "test-mail", smtp_port)
    try:
        r = pbx.cli("mail", "test", "anna@example.com")
        assert "sent to anna@example.com" in r.stdout, r.stdout
        messages = sink.wait(1, 5)
        assert len(messages) == 1 and "test message" in messages[0]["Subject"], messages
    finally:
        sink.stop()
