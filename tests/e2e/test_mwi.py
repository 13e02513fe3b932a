"""Message-waiting indication (RFC 3842) against the real PBX: a baresip subscribed to its
mailbox sees the lamp go on and off as message rows change in the database (sqlite3 or psql
writes them, as another node or an admin's script would: the PBX's triggers and change watch
find them); a python subscriber checks the protocol (489, 423, 403, refresh, Expires 0, 481);
an extension flagged `--mwi-unsolicited` gets NOTIFYs without subscribing."""

import os
import re
import subprocess
import time

import pytest

from baresip_phone import BaresipPhone
from conftest import CLIENTS, DB, DOMAIN, require, run
from mwiclient import Phone, tag_of


@pytest.fixture(scope="module")
def mwi_pbx(pbx_factory):
    p = pbx_factory("mwi")
    for n in (1001, 1002, 1003, 1004, 1005):
        p.add_extension(n, f"secret{n}")
    return p.start()


# ---------------------------------------------------------------------- the database

def sql(pbx, statement):
    """Runs SQL on the PBX's database behind its back (the real path of any writer)."""
    if DB == "sqlite":
        require("sqlite3")
        argv = ["sqlite3", "-cmd", ".timeout 5000", os.path.join(pbx.dir, "data", "pbx.db"),
                statement]
    else:
        argv = ["psql", pbx.db_url, "-v", "ON_ERROR_STOP=1", "-qc", statement]
    r = run(argv)
    assert r.returncode == 0, f"{argv}: {r.stderr}"


def leave_message(pbx, mailbox, folder="new"):
    sql(pbx, "INSERT INTO voicemail_messages (mailbox, folder, caller_number, received_at, "
             f"duration_ms, path) VALUES ('{mailbox}', '{folder}', '2000', 1, 3000, 'm.wav')")


def wait_mwi(phone, n, timeout=12.0):
    """The `n`-th message summary baresip's mwi module received (it prints each one in its
    log: the ctrl_tcp event of the first can come before the test's connection), or None."""
    end = time.time() + timeout
    while time.time() < end:
        with open(phone.bs.logf, errors="replace") as f:
            text = re.sub(r"\x1b\[[0-9;]*m", "", f.read()).replace("\r", "")
        bodies = text.split("----- MWI for ")[1:]
        if len(bodies) >= n:
            return bodies[n - 1].split("\n\n")[0]
        time.sleep(0.2)
    return None


# ---------------------------------------------------------------------- tests

def test_baresip_lamp_follows_the_mailbox(mwi_pbx, tmp_path):
    """baresip's mwi module subscribes after registering: `no` at first; a message row
    written by SQL turns the lamp on with the counts, listening to it (folder old) off.

    The account is created over ctrl_tcp (`uanew`) once baresip's main loop runs, not read
    from the accounts file at start-up: baresip 1.0.0's mwi module re-subscribes every
    subscription it knows from a timer 1 ms after loading, and appends to that list while it
    walks it. A registration that completes before the timer fires (a fast answer to the
    REGISTER) makes that walk endless and baresip hangs (ctrl_tcp silent, "mwi: subscribing"
    repeated). With no account at start-up the list is empty when the timer fires."""
    phone = BaresipPhone(tmp_path, 1001, "secret1001", server=mwi_pbx.hostport(),
                         local_ip="127.0.31.11")
    write_config = phone.bs.write_config
    account = []

    def with_mwi(mic):
        write_config(mic)
        path = os.path.join(phone.workdir, "accounts")
        with open(path) as f:
            text = f.read()
        assert "mwi=no" in text, text
        account.append(text.strip().replace("mwi=no", "mwi=yes", 1))
        with open(path, "w") as f:
            f.write("")
        path = os.path.join(phone.workdir, "config")
        with open(path) as f:
            text = f.read()
        old = "module\tctrl_tcp.so"
        assert old in text, text
        with open(path, "w") as f:
            f.write(text.replace(old, old + "\nmodule\tmwi.so", 1))

    phone.bs.write_config = with_mwi
    with phone:
        phone.command("uanew", account[0])
        assert phone.wait_registered(), phone.log()
        no = wait_mwi(phone, 1)
        assert no is not None, f"{phone.log()}\n{mwi_pbx.log_tail()}"
        assert "Messages-Waiting: no" in no, no
        assert mwi_pbx.wait_log(r"MWI subscribed mailbox=1001"), mwi_pbx.log_tail()

        leave_message(mwi_pbx, 1001)
        on = wait_mwi(phone, 2)
        assert on is not None, f"{phone.log()}\n{mwi_pbx.log_tail()}"
        assert "Messages-Waiting: yes" in on, on
        assert "Voice-Message: 1/0 (0/0)" in on, on
        assert f"Message-Account: sip:1001@{DOMAIN}" in on, on

        sql(mwi_pbx, "UPDATE voicemail_messages SET folder = 'old' WHERE mailbox = '1001'")
        off = wait_mwi(phone, 3)
        assert off is not None, f"{phone.log()}\n{mwi_pbx.log_tail()}"
        assert "Messages-Waiting: no" in off, off
        assert "Voice-Message: 0/1 (0/0)" in off, off
    status, metrics = mwi_pbx.http_get("/metrics")
    assert re.search(r'pbx_mwi_notifies_total\{kind="subscription"\} [3-9]', metrics), metrics


def test_subscribe_protocol(mwi_pbx):
    phone = Phone(mwi_pbx, 1002, "127.0.31.12")
    try:
        r = phone.subscribe(event="presence")
        assert r is not None and r.status == 489, r and r.first
        assert r.get("allow-events") == "message-summary"
        r = phone.subscribe(expires=10)
        assert r is not None and r.status == 423, r and r.first
        assert r.get("min-expires") == "60"
        r = phone.subscribe(mailbox=1003)
        assert r is not None and r.status == 403, "another extension's mailbox"
        assert phone.subscribe(password="wrong").status == 401

        r = phone.subscribe(expires=600, extra=["Accept: application/simple-message-summary"])
        assert r is not None and r.status == 200, r and r.first
        assert r.get("expires") == "600"
        tag = tag_of(r.get("to"))
        n = phone.notify()
        assert n is not None, mwi_pbx.log_tail()
        assert n.get("subscription-state") == "active;expires=600"
        assert n.get("event") == "message-summary"
        assert n.get("content-type") == "application/simple-message-summary"
        assert tag_of(n.get("from")) == tag
        assert n.text() == ("Messages-Waiting: no\r\nMessage-Account: sip:1002@pbx.test\r\n"
                            "Voice-Message: 0/0 (0/0)\r\n")
        phone.answer(n)

        # a refresh in the dialog (no challenge), shorter, with a NOTIFY again
        r = phone.subscribe(expires=120, to_tag=tag)
        assert r is not None and r.status == 200 and r.get("expires") == "120", r and r.first
        n = phone.notify()
        assert n is not None and n.get("subscription-state") == "active;expires=120"
        phone.answer(n)

        # a saved and a new message: counted as 1 new, 1 old
        leave_message(mwi_pbx, 1002, "saved")
        leave_message(mwi_pbx, 1002)
        n = phone.notify(timeout=8)
        assert n is not None, mwi_pbx.log_tail()
        phone.answer(n)
        if "1/1" not in n.text():      # the two rows may be seen apart: one NOTIFY each
            n = phone.notify(timeout=8)
            assert n is not None
            phone.answer(n)
        assert "Messages-Waiting: yes" in n.text() and "Voice-Message: 1/1 (0/0)" in n.text(), n.text()

        # unsubscribe: 200 Expires 0, the final NOTIFY; then the dialog is gone (481)
        r = phone.subscribe(expires=0, to_tag=tag)
        assert r is not None and r.status == 200 and r.get("expires") == "0"
        n = phone.notify()
        assert n is not None and n.get("subscription-state") == "terminated;reason=timeout"
        phone.answer(n)
        assert mwi_pbx.wait_log(r"MWI subscription ended.*unsubscribed"), mwi_pbx.log_tail()
        r = phone.subscribe(expires=600, to_tag=tag)
        assert r is not None and r.status == 481
    finally:
        phone.close()


def test_a_481_to_notify_ends_the_subscription(mwi_pbx):
    phone = Phone(mwi_pbx, 1004, "127.0.31.14")
    try:
        r = phone.subscribe(expires=600)
        assert r is not None and r.status == 200
        tag = tag_of(r.get("to"))
        phone.answer(phone.notify())
        leave_message(mwi_pbx, 1004)
        n = phone.notify(timeout=8)
        assert n is not None and "Messages-Waiting: yes" in n.text()
        phone.answer(n, 481, "Call/Transaction Does Not Exist")
        assert mwi_pbx.wait_log(r"MWI subscription ended.*notify failed"), mwi_pbx.log_tail()
        leave_message(mwi_pbx, 1004)
        assert phone.notify(timeout=5) is None, "no NOTIFY after 481"
        r = phone.subscribe(expires=600, to_tag=tag)
        assert r is not None and r.status == 481
    finally:
        phone.close()


def test_unsolicited_notify_for_a_flagged_extension(mwi_pbx):
    mark = len(mwi_pbx.log_text())
    out = mwi_pbx.cli("extension", "set", "1003", "--mwi-unsolicited", "yes").stdout
    assert "extension 1003 changed" in out
    mwi_pbx.cli("extension", "add", "1006", "--password", "secret1006", "--mwi-unsolicited")
    listed = mwi_pbx.cli("extension", "list").stdout.splitlines()
    # The list is a fixed-width table: read the MWI column where its header starts.
    at = listed[0].index("MWI")
    for number, flag in (("1003", "unsolicited"), ("1006", "unsolicited"), ("1004", "-")):
        rows = [ln for ln in listed if ln.startswith(number)]
        assert rows and rows[0][at:].split()[0] == flag, listed
    assert mwi_pbx.wait_log(r"extension credentials loaded", mark, timeout=10), mwi_pbx.log_tail()
    leave_message(mwi_pbx, 1003)
    phone = Phone(mwi_pbx, 1003, "127.0.31.13")
    try:
        r = phone.c.register("1003", "secret1003", DOMAIN, expires=600)
        assert r is not None and r.status == 200, r
        n = phone.notify()
        assert n is not None, f"no NOTIFY after REGISTER\n{mwi_pbx.log_tail()}"
        assert n.first.startswith(f"NOTIFY sip:1003@{phone.c.local[0]}:{phone.c.local[1]}")
        assert n.get("event") == "message-summary"
        assert "Voice-Message: 1/0 (0/0)" in n.text(), n.text()
        phone.answer(n)
        leave_message(mwi_pbx, 1003)
        n = phone.notify(timeout=8)
        assert n is not None and "Voice-Message: 2/0 (0/0)" in n.text(), n and n.text()
        phone.answer(n)
    finally:
        phone.close()
    # an extension without the flag gets nothing unsolicited
    quiet = Phone(mwi_pbx, 1004, "127.0.31.15")
    try:
        r = quiet.c.register("1004", "secret1004", DOMAIN, expires=600)
        assert r is not None and r.status == 200
        assert quiet.notify(timeout=3) is None
    finally:
        quiet.close()
    status, metrics = mwi_pbx.http_get("/metrics")
    assert re.search(r'pbx_mwi_notifies_total\{kind="unsolicited"\} [2-9]', metrics), metrics


def test_sipp_subscriber_sees_the_counts(mwi_pbx, tmp_path):
    """The SIPp recipe (tests/clients/sipp/subscribe-mwi.sh): SUBSCRIBE, 401, SUBSCRIBE with
    credentials, 200, then a NOTIFY whose body it checks."""
    require("sipp")
    leave_message(mwi_pbx, 1005)
    leave_message(mwi_pbx, 1005)
    leave_message(mwi_pbx, 1005, "old")
    env = dict(os.environ, LOCAL_IP="127.0.31.16", DOMAIN=DOMAIN, TRANSPORT="u1", TIMEOUT="20",
               EXPECT="yes", EXPIRES="120", LOG_DIR=str(tmp_path / "sipp-mwi"))
    r = subprocess.run([os.path.join(CLIENTS, "sipp", "subscribe-mwi.sh"), mwi_pbx.hostport(),
                        "1005", "secret1005"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       text=True, timeout=60, env=env)
    assert r.returncode == 0, f"{r.stdout[-3000:]}\n{mwi_pbx.log_tail()}"
    assert "waiting=yes voice=2/1 result=OK" in r.stdout, r.stdout[-2000:]
    # SIPp's log keeps the space after the header's colon
    assert re.search(r"Subscription-State= ?active;expires=120", r.stdout), r.stdout[-2000:]
