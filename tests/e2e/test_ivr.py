"""The paper's IVR end to end: "enter your customer number, then your PIN" -> a look-up in the
company's database -> "your balance is ...".

The dialplan's `read` collects the digits (RFC 4733 events from the python phone), `db_lookup`
queries a SQLite database the test creates (`[lookup.crm]`, opened read-only), with the digits
bound as parameters, and `say` speaks the balance: the prompts of "two hundred fifty" arrive as
audio, byte for byte the committed prompt files. A wrong PIN finds no row: `on_failure` plays
"invalid" and hangs up. A PIN written as an SQL injection is only a wrong PIN. `pbx check`
refuses a `db_lookup` of a database the config does not name.

Addresses: the PBX 127.0.0.1; the caller 127.0.0.33.
"""

import os
import sqlite3
import time

import pytest

from callclient import sdp_offer
from callhelpers import password
from conftest import PBX_BIN, run
from media import RtpPeer
from prompts import keys, prompt_bytes, prompt_received

CALLER_IP = "127.0.0.33"
CALLER = 3501

PLAN = """\
# written by tests/e2e/test_ivr.py
[defaults]
context = "staff"

[context.staff]
may_call = ["any"]

[[context.staff.rule]]
pattern = "800"
steps = [
    "answer",
    { read = { var = "account", prompt = "extension", max_digits = 8, timeout = "3s" } },
    { read = { var = "pin", prompt = "vm-password", max_digits = 8, timeout = "3s" } },
    { db_lookup = { database = "crm",
                    query = "SELECT balance FROM accounts WHERE id = $1 AND pin = $2",
                    params = ["${account}", "${pin}"], timeout = "2s",
                    set = { balance = "balance" },
                    on_failure = [{ playback = "pbx-invalid" }, "hangup"] } },
    { say = { number = "${balance}" } },
    { playback = "vm-goodbye" },
    "hangup",
]
"""


@pytest.fixture(scope="module")
def ivr_pbx(pbx_factory):
    p = pbx_factory("ivr", '\n[lookup.crm]\nurl = "sqlite://crm.db?mode=ro"\n', dialplan=PLAN)
    db = sqlite3.connect(os.path.join(p.dir, "crm.db"))
    db.executescript("CREATE TABLE accounts (id TEXT PRIMARY KEY, pin TEXT, balance INTEGER);"
                     "INSERT INTO accounts VALUES ('4711', '1234', 250), ('42', '0000', 7);")
    db.commit()
    db.close()
    p.cli("extension", "add", str(CALLER), "--password", password(CALLER))
    return p.start()


def call_ivr(pbx, phones, account, pin):
    """Calls 800, enters `account#` and `pin#`; returns (call, rtp) with the audio after the
    PIN in `rtp`."""
    phone = phones(pbx, CALLER, CALLER_IP)
    rtp = RtpPeer.even(CALLER_IP)
    out = phone.call("800", sdp_offer(*rtp.addr, pts=(0, 101)))
    final = out.wait_final(5)
    assert final is not None and final.status == 200, f"{final}\n{pbx.log_tail()}"
    to_pbx = out.answer_sdp.addr
    prompt_received(rtp, "extension", timeout=8)
    ts = keys(rtp, to_pbx, account + "#", ts=8000)
    prompt_received(rtp, "vm-password", timeout=8)
    rtp.clear()
    keys(rtp, to_pbx, pin + "#", ts=ts)
    return out, rtp


def test_the_balance_of_the_account_is_said(ivr_pbx, phones):
    out, rtp = call_ivr(ivr_pbx, phones, "4711", "1234")
    try:
        got = prompt_received(rtp, "vm-goodbye", timeout=15)
        said = prompt_bytes("digits/2") + prompt_bytes("digits/hundred") + prompt_bytes("digits/50")
        assert said in got, "the balance, two hundred fifty, is said"
        assert out.wait_bye(5) is not None, f"no BYE\n{ivr_pbx.log_tail()}"
    finally:
        rtp.close()
    log = ivr_pbx.log_text()
    assert "1234" not in log, "the PIN does not reach the log"


@pytest.mark.parametrize("pin", ["9999", "1*1"])
def test_a_wrong_pin_finds_nothing_and_hangs_up(ivr_pbx, phones, pin):
    # `1*1` is the caller's best try at `1' OR '1'='1` with a phone's keys: still just a value.
    out, rtp = call_ivr(ivr_pbx, phones, "4711", pin)
    try:
        got = prompt_received(rtp, "pbx-invalid", timeout=10)
        assert prompt_bytes("digits/hundred") not in got, "no balance for a wrong PIN"
        assert out.wait_bye(5) is not None, f"no BYE\n{ivr_pbx.log_tail()}"
    finally:
        rtp.close()


def test_pbx_check_refuses_a_lookup_database_the_config_does_not_name(ivr_pbx):
    bad = PLAN.replace('database = "crm"', 'database = "erp"')
    path = os.path.join(ivr_pbx.dir, "dialplan-bad.toml")
    with open(path, "w") as f:
        f.write(bad)
    config = os.path.join(ivr_pbx.dir, "pbx-bad.toml")
    with open(ivr_pbx.config) as f:
        text = f.read().replace('file = "dialplan.toml"', 'file = "dialplan-bad.toml"')
    with open(config, "w") as f:
        f.write(text)
    r = run([PBX_BIN, "check", "--config", config])
    assert r.returncode != 0, r.stdout
    assert "db_lookup names the database `erp`" in r.stderr + r.stdout, r.stderr
