"""Trunks end to end (issue 15, parts 1-3): the real PBX release binary, real sockets.

- `pbx trunk add|list|remove`: a legacy PBX by IP authentication and a provider with
  credentials; errors for a duplicate name, a bad CIDR, a bad host, a bad transport,
  --register without credentials, an unknown trunk to remove;
- registering to a provider: SIPp as the provider's registrar challenges with 401 (MD5,
  qop=auth, its own `verifyauth` checks the digest), grants 10 s, the PBX refreshes before
  that with the nonce reused (nc=00000002, checked again), is shown `registered` by `pbx
  trunk list` and `pbx_trunk_registered{trunk="provider"} 1` in /metrics, and removes the
  binding (`Expires: 0`) when it stops;
- a wrong password at the provider: 401 after the answer, state `down` with the reason,
  `pbx_trunk_register_failures_total` counted, no password in the log;
- IP authentication: an INVITE from the legacy PBX's network reaches the trunk's context
  (its number 2000 rings extension 1000, which sees the external caller) with no digest
  step; the same INVITE from another address is challenged (407) and nothing rings; with
  `--channels 1` a second call while the first is up gets 503;
- OPTIONS pings (`[sip] qualify_interval = "2s"`): the legacy PBX answering is `up` in
  `pbx trunk list` and `pbx_trunk_up`, and `down` once it is gone.

- Kamailio as a provider that requires digest for REGISTER and INVITE: the PBX registers
  to it, and a caller out there (a python UA registered on Kamailio) dials the DID; Kamailio
  routes the call to the PBX's registered Contact, and extension 1000 rings and answers.

Addresses: the PBX 127.0.0.1; the legacy PBX 127.0.21.2; an impostor 127.0.21.3; extension
1000's phone 127.0.21.4; SIPp as the provider 127.0.21.5; Kamailio 127.0.21.6; the caller
on Kamailio 127.0.21.7.
"""

import os
import re
import subprocess
import time

import pytest

from callclient import Phone, sdp_offer
from conftest import free_port, require
from kamailio import Kamailio
from trunkplan import trunk_rows

LEGACY_IP, IMPOSTOR_IP, PHONE_IP, PROVIDER_IP = "127.0.21.2", "127.0.21.3", "127.0.21.4", "127.0.21.5"
KAMAILIO_IP, OUTSIDE_IP = "127.0.21.6", "127.0.21.7"
PROVIDER_USER, PROVIDER_PASSWORD = "4930123", "prov-S3cret"

PLAN = """\
# written by tests/e2e/test_trunks.py
[defaults]
context = "staff"

[context.staff]
[[context.staff.rule]]
extension = true
steps = [{ dial = "${number}" }]

[context.from-legacy]
may_call = ["2000"]
[[context.from-legacy.rule]]
pattern = "2000"
steps = [{ dial = { targets = ["1000"], timeout = "10s" } }]

[context.from-provider]
may_call = ["4930123", "+4930123"]
[[context.from-provider.rule]]
pattern = "4930123"
steps = [{ dial = "1000" }]
"""

# The provider: 401 (MD5, qop=auth), then 200 for 10 s; the refresh (nonce reused) 200 for
# an hour; the removal (Expires: 0) 200. Each REGISTER with credentials is checked by SIPp.
REGISTRAR_XML = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="provider registrar">
  <recv request="REGISTER"/>
  <send><![CDATA[

SIP/2.0 401 Unauthorized
[last_Via:]
[last_From:]
[last_To:];tag=prov[pid]
[last_Call-ID:]
[last_CSeq:]
WWW-Authenticate: Digest realm="provider.test", nonce="n[pid]x[call_number]", algorithm=MD5, qop="auth"
Content-Length: 0

]]></send>
  <recv request="REGISTER">
    <action>
      <verifyauth assign_to="first" username="{user}" password="{password}"/>
      <ereg regexp="nc=00000001" search_in="hdr" header="Authorization:" check_it="true" assign_to="nc1"/>
      <log message="FIRST [$first] [$nc1]"/>
    </action>
  </recv>
  <nop hide="true" test="first" next="grant"/>
  <send next="end"><![CDATA[

SIP/2.0 403 Bad digest
[last_Via:]
[last_From:]
[last_To:];tag=prov[pid]
[last_Call-ID:]
[last_CSeq:]
Content-Length: 0

]]></send>
  <label id="grant"/>
  <send><![CDATA[

SIP/2.0 200 OK
[last_Via:]
[last_From:]
[last_To:];tag=prov[pid]
[last_Call-ID:]
[last_CSeq:]
[last_Contact:];expires=10
Content-Length: 0

]]></send>
  <recv request="REGISTER">
    <action>
      <verifyauth assign_to="refresh" username="{user}" password="{password}"/>
      <ereg regexp="nc=00000002" search_in="hdr" header="Authorization:" check_it="true" assign_to="nc2"/>
      <log message="REFRESH [$refresh] [$nc2]"/>
    </action>
  </recv>
  <nop hide="true" test="refresh" next="long"/>
  <send next="end"><![CDATA[

SIP/2.0 403 Bad digest on refresh
[last_Via:]
[last_From:]
[last_To:];tag=prov[pid]
[last_Call-ID:]
[last_CSeq:]
Content-Length: 0

]]></send>
  <label id="long"/>
  <send><![CDATA[

SIP/2.0 200 OK
[last_Via:]
[last_From:]
[last_To:];tag=prov[pid]
[last_Call-ID:]
[last_CSeq:]
[last_Contact:];expires=3600
Content-Length: 0

]]></send>
  <recv request="REGISTER">
    <action>
      <ereg regexp="Expires: *0" search_in="msg" check_it="true" assign_to="removal"/>
      <log message="REMOVAL [$removal]"/>
    </action>
  </recv>
  <send><![CDATA[

SIP/2.0 200 OK
[last_Via:]
[last_From:]
[last_To:];tag=prov[pid]
[last_Call-ID:]
[last_CSeq:]
Content-Length: 0

]]></send>
  <label id="end"/>
</scenario>
"""

# A provider that refuses every answer: 401, and 401 again.
REFUSING_XML = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="provider refusing">
  <recv request="REGISTER"/>
  <send><![CDATA[

SIP/2.0 401 Unauthorized
[last_Via:]
[last_From:]
[last_To:];tag=prov[pid]
[last_Call-ID:]
[last_CSeq:]
WWW-Authenticate: Digest realm="provider.test", nonce="a[pid]", algorithm=MD5, qop="auth"
Content-Length: 0

]]></send>
  <recv request="REGISTER"/>
  <send><![CDATA[

SIP/2.0 401 Unauthorized
[last_Via:]
[last_From:]
[last_To:];tag=prov[pid]
[last_Call-ID:]
[last_CSeq:]
WWW-Authenticate: Digest realm="provider.test", nonce="b[pid]", algorithm=MD5, qop="auth"
Content-Length: 0

]]></send>
</scenario>
"""


class SippRegistrar:
    """SIPp as a provider's registrar on PROVIDER_IP: one scenario, then it exits."""

    def __init__(self, tmp_path, name, xml, timeout=60):
        require("sipp")
        self.port = free_port(ip=PROVIDER_IP)
        self.dir = os.path.join(str(tmp_path), name)
        os.makedirs(self.dir, exist_ok=True)
        scenario = os.path.join(self.dir, "scenario.xml")
        with open(scenario, "w") as f:
            f.write(xml.replace("{user}", PROVIDER_USER).replace("{password}", PROVIDER_PASSWORD))
        self.messages = os.path.join(self.dir, "messages.log")
        self.log = os.path.join(self.dir, "scenario.log")
        self.screen = open(os.path.join(self.dir, "screen.log"), "w")
        self.proc = subprocess.Popen(
            ["sipp", "-sf", scenario, "-i", PROVIDER_IP, "-p", str(self.port), "-m", "1",
             "-nostdin", "-timeout", f"{timeout}s", "-timeout_error",
             "-trace_err", "-error_file", os.path.join(self.dir, "errors.log"),
             "-trace_logs", "-log_file", self.log,
             "-trace_msg", "-message_file", self.messages],
            stdout=self.screen, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

    def text(self, path):
        try:
            with open(path, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def registers(self):
        """The REGISTER requests SIPp received, in order (their text)."""
        msgs = re.split(r"\n-{10,}.*\n", self.text(self.messages))
        return [m for m in msgs if re.search(r"^REGISTER ", m, re.M)]

    def wait_registers(self, n, timeout):
        end = time.time() + timeout
        while time.time() < end:
            if len(self.registers()) >= n:
                return True
            time.sleep(0.2)
        return False

    def wait(self, timeout=15):
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
            return None
        finally:
            self.screen.close()

    def describe(self):
        return (f"--- sipp messages:\n{self.text(self.messages)[-6000:]}\n--- sipp log:\n"
                f"{self.text(self.log)}\n--- errors:\n"
                f"{self.text(os.path.join(self.dir, 'errors.log'))[-3000:]}")


def wait_trunk_state(pbx, name, state, timeout):
    end = time.time() + timeout
    while True:
        row = trunk_rows(pbx).get(name, {})
        if row.get("state") == state or time.time() >= end:
            return row
        time.sleep(0.25)


def metric(pbx, name, labels):
    _, text = pbx.http_get("/metrics")
    m = re.search(rf"^{name}\{{{re.escape(labels)}\}} (\S+)$", text, re.M)
    return float(m.group(1)) if m else None


@pytest.fixture(scope="module")
def pbx(pbx_factory):
    # qualify every 2 s: trunks are pinged as often
    p = pbx_factory("trunks", extra_toml='[sip]\nqualify_interval = "2s"\n', dialplan=PLAN)
    p.import_extensions([(1000, "pw1000"), (1001, "pw1001")])
    return p.start()


def test_trunk_cli_add_list_remove_and_errors(pbx):
    r = pbx.cli("trunk", "add", "cli-legacy", "--host", "10.9.8.7:5080", "--allow", "10.9.8.0/24",
                "--allow", "10.9.9.1", "--context", "from-legacy")
    assert "trunk cli-legacy added (10.9.8.7:5080)" in r.stdout, r.stdout
    r = pbx.cli("trunk", "add", "cli-provider", "--host", "sip.provider.test", "--username",
                "acct", "--password", "Secr3t-pw", "--transport", "tls")
    # No --register: stored, not registering; the default context.
    rows = trunk_rows(pbx)
    assert rows["cli-legacy"]["host"] == "10.9.8.7:5080"
    assert rows["cli-legacy"]["allow"] == "10.9.8.0/24,10.9.9.1/32"
    assert rows["cli-legacy"]["context"] == "from-legacy"
    assert rows["cli-legacy"]["state"] == "unknown"
    assert rows["cli-provider"]["host"] == "sip.provider.test:5061"
    assert rows["cli-provider"]["transport"] == "tls"
    assert rows["cli-provider"]["context"] == "from-trunk"
    assert rows["cli-provider"]["register"] == "no (acct)"
    listing = pbx.cli("trunk", "list").stdout
    assert "Secr3t-pw" not in listing

    bad = [
        (["cli-legacy", "--host", "10.1.1.1"], "trunk cli-legacy already exists"),
        (["x1", "--host", "10.1.1.1", "--allow", "10.0.0.0/33"], "bad network `10.0.0.0/33`"),
        (["x2", "--host", "not a host"], "bad host `not a host`"),
        (["x3", "--host", "10.1.1.1:99999"], "bad port `99999`"),
        (["x4", "--host", "10.1.1.1", "--transport", "sctp"], "bad transport `sctp`"),
        (["x5", "--host", "10.1.1.1", "--register"], "--register needs --username and --password"),
        (["x6", "--host", "10.1.1.1", "--username", "u"], "give --username and --password together"),
        (["bad name", "--host", "10.1.1.1"], "bad trunk name `bad name`"),
    ]
    for args, message in bad:
        r = pbx.cli("trunk", "add", *args, check=False)
        assert r.returncode == 1, (args, r.stdout, r.stderr)
        assert message in r.stderr, (args, r.stderr)
    assert set(trunk_rows(pbx)) == {"cli-legacy", "cli-provider"}

    r = pbx.cli("trunk", "remove", "nosuch", check=False)
    assert r.returncode == 1 and "unknown trunk nosuch" in r.stderr, r.stderr
    assert "trunk cli-provider removed" in pbx.cli("trunk", "remove", "cli-provider").stdout
    assert "trunk cli-legacy removed" in pbx.cli("trunk", "remove", "cli-legacy").stdout
    assert trunk_rows(pbx) == {}


def test_an_invite_from_the_legacy_network_reaches_its_context_without_digest(pbx):
    legacy_port = free_port(ip=LEGACY_IP)
    with Phone(1000, "pw1000", pbx.server("udp"), local_ip=PHONE_IP) as phone, \
            Phone("+4930555", "irrelevant", pbx.server("udp"), local_ip=LEGACY_IP,
                  port=legacy_port, display_name="Old PBX") as legacy, \
            Phone("+4930555", "irrelevant", pbx.server("udp"), local_ip=IMPOSTOR_IP) as impostor:
        pbx.cli("trunk", "add", "legacy", "--host", f"{LEGACY_IP}:{legacy_port}",
                "--allow", f"{LEGACY_IP}/32", "--context", "from-legacy", "--channels", "1")
        # The running PBX re-reads trunks every 5 s and pings the new one at once: the old
        # PBX (a python UA here) answers the OPTIONS.
        row = wait_trunk_state(pbx, "legacy", "up", 15)
        assert row.get("state") == "up", (row, pbx.log_tail())
        assert metric(pbx, "pbx_trunk_up", 'trunk="legacy"') == 1.0
        assert legacy.requests("OPTIONS"), "no OPTIONS reached the legacy PBX"
        r = phone.register(expires=120)
        assert r is not None and r.status == 200, r

        # The impostor sends the legacy PBX's INVITE from elsewhere: challenged, not routed.
        out = impostor.call("2000", sdp=sdp_offer(IMPOSTOR_IP, 40100))
        final = out.wait_final(10)
        assert final is not None and final.status == 407, final
        assert phone.wait_call(2) is None, "the impostor's call rang 1000"

        # From the legacy network: no challenge, 1000 rings with the external caller shown.
        out = legacy.call("2000", sdp=sdp_offer(LEGACY_IP, 40102))
        inc = phone.wait_call(10)
        assert inc is not None, f"1000 was not rung\n{pbx.log_tail()}"
        assert "+4930555" in inc.invite.get("from"), inc.invite.get("from")
        assert "Old PBX" in inc.invite.get("from")
        inc.answer(sdp_offer(PHONE_IP, 40104))
        final = out.wait_final(10)
        assert final is not None and final.status == 200, final
        assert not out.challenged, "the legacy PBX was challenged"
        assert all(r.status not in (401, 407) for r in out.responses)
        # One channel (--channels 1), in use: a second call meanwhile gets 503.
        second = legacy.call("2000", sdp=sdp_offer(LEGACY_IP, 40106))
        refused = second.wait_final(10)
        assert refused is not None and refused.status == 503, refused
        assert phone.wait_call(1) is None, "a call over the channel limit rang 1000"
        assert metric(pbx, "pbx_trunk_calls_refused_total", 'trunk="legacy"') == 1.0
        bye = out.bye()
        assert bye is not None and bye.status == 200, bye
        phone.unregister()
    m = pbx.wait_log(r"call started.*caller=\+4930555.*trunk=legacy", timeout=5)
    assert m is not None, pbx.log_tail()
    # The call record names the trunk, with the external number as the caller.
    cdr = pbx.wait_cdr("+4930555", "2000")
    assert cdr is not None and cdr.get("trunk") == "legacy", cdr
    # The old PBX is gone: its next OPTIONS (every 2 s here) goes unanswered (Timer F, 32 s).
    row = wait_trunk_state(pbx, "legacy", "down", 50)
    assert row.get("state") == "down", (row, pbx.log_tail())
    assert "no answer" in row.get("detail", ""), row
    assert metric(pbx, "pbx_trunk_up", 'trunk="legacy"') == 0.0
    pbx.cli("trunk", "remove", "legacy")


def test_the_pbx_registers_to_the_provider_refreshes_and_unregisters(pbx_factory, tmp_path):
    provider = SippRegistrar(tmp_path, "registrar", REGISTRAR_XML)
    p = pbx_factory("registering", dialplan=PLAN)
    p.cli("trunk", "add", "provider", "--host", f"{PROVIDER_IP}:{provider.port}",
          "--username", PROVIDER_USER, "--password", PROVIDER_PASSWORD, "--register",
          "--context", "from-provider")
    p.start()
    try:
        assert provider.wait_registers(2, 15), provider.describe() + p.log_tail()
        row = wait_trunk_state(p, "provider", "registered", 10)
        assert row.get("state") == "registered", (row, p.log_tail(), provider.describe())
        assert metric(p, "pbx_trunk_registered", 'trunk="provider"') == 1.0
        first, second = provider.registers()[:2]
        assert "Authorization" not in first
        assert re.search(r"^Expires: 3600", first, re.M), first
        assert re.search(rf"^Contact: <sip:{PROVIDER_USER}@127\.0\.0\.1:{p.udp};transport=udp>",
                         first, re.M), first
        assert re.search(r'Authorization: Digest username="4930123", realm="provider.test"',
                         second), second
        # Granted 10 s: refreshed well before they end, with the nonce reused (nc=2).
        assert provider.wait_registers(3, 15), provider.describe()
        refresh = provider.registers()[2]
        assert "nc=00000002" in refresh, refresh
        assert "REFRESH true" in provider.text(provider.log), provider.describe()
        row = wait_trunk_state(p, "provider", "registered", 5)
        assert "3600" in row.get("detail", ""), row
        log = p.log_text()
        assert re.search(r"trunk registered.*trunk=provider", log), p.log_tail()
        assert PROVIDER_PASSWORD not in log
    finally:
        p.stop()
    # On SIGTERM the binding was removed, and the scenario ended well.
    rc = provider.wait(15)
    assert provider.wait_registers(4, 1), provider.describe()
    assert re.search(r"^Expires: 0", provider.registers()[3], re.M), provider.registers()[3]
    assert rc == 0, provider.describe()
    assert trunk_rows(p)["provider"]["state"] == "unknown"


def test_a_wrong_password_marks_the_trunk_down(pbx_factory, tmp_path):
    provider = SippRegistrar(tmp_path, "refusing", REFUSING_XML)
    p = pbx_factory("refused", dialplan=PLAN)
    p.cli("trunk", "add", "provider", "--host", f"{PROVIDER_IP}:{provider.port}",
          "--username", PROVIDER_USER, "--password", "Wr0ng-pass", "--register")
    p.start()
    try:
        row = wait_trunk_state(p, "provider", "down", 15)
        assert row.get("state") == "down", (row, p.log_tail(), provider.describe())
        assert "credentials refused" in row.get("detail", ""), row
        assert "retry in 300s" in row.get("detail", ""), row
        assert metric(p, "pbx_trunk_registered", 'trunk="provider"') == 0.0
        assert metric(p, "pbx_trunk_register_failures_total", 'trunk="provider"') == 1.0
        # Given up, not looping: exactly the two REGISTERs of the scenario.
        time.sleep(1)
        assert len(provider.registers()) == 2, provider.describe()
        assert "Wr0ng-pass" not in p.log_text()
    finally:
        p.stop()
    assert provider.wait(15) == 0, provider.describe()


def test_kamailio_provider_requires_digest_and_routes_a_did_to_the_extension(pbx_factory, tmp_path):
    kam = Kamailio(tmp_path, {PROVIDER_USER: PROVIDER_PASSWORD, "5550001": "caller-pw"},
                   ip=KAMAILIO_IP, probe_ip=OUTSIDE_IP)
    try:
        assert kam.wait_ready(), kam.log()
        p = pbx_factory("kamailio-provider", dialplan=PLAN)
        p.import_extensions([(1000, "pw1000")])
        p.cli("trunk", "add", "provider", "--host", f"{KAMAILIO_IP}:{kam.port}",
              "--username", PROVIDER_USER, "--password", PROVIDER_PASSWORD, "--register",
              "--context", "from-provider")
        p.start()
        row = wait_trunk_state(p, "provider", "registered", 15)
        assert row.get("state") == "registered", (row, p.log_tail(), kam.log())
        kam_domain = f"{KAMAILIO_IP}:{kam.port}"
        with Phone(1000, "pw1000", p.server("udp"), local_ip=PHONE_IP) as phone, \
                Phone("5550001", "caller-pw", (KAMAILIO_IP, kam.port), local_ip=OUTSIDE_IP,
                      domain=kam_domain) as caller:
            r = phone.register(expires=120)
            assert r is not None and r.status == 200, r
            # The caller dials the DID at the provider; Kamailio asks it for digest (407),
            # then sends the call to the PBX's registered Contact.
            out = caller.call(f"sip:{PROVIDER_USER}@{kam_domain}", sdp=sdp_offer(OUTSIDE_IP, 40110))
            inc = phone.wait_call(10)
            assert inc is not None, f"1000 was not rung\n{p.log_tail()}\n{kam.log()}"
            assert "5550001" in inc.invite.get("from"), inc.invite.get("from")
            inc.answer(sdp_offer(PHONE_IP, 40112))
            final = out.wait_final(10)
            assert final is not None and final.status == 200, (final, kam.log())
            assert out.challenged, "Kamailio did not challenge the caller"
            bye = out.bye()
            assert bye is not None and bye.status == 200, bye
            phone.unregister()
        assert p.wait_log(r"call started.*caller=5550001.*trunk=provider.*callee=4930123",
                          timeout=5) is not None, p.log_tail()
        cdr = p.wait_cdr("5550001", "4930123")
        assert cdr is not None and cdr.get("trunk") == "provider", cdr
        assert cdr.get("disposition") == "answered", cdr
        p.stop()
    finally:
        kam.stop()
