"""Trunks over TCP and TLS (issue 15, item 1): the PBX opens the connection itself, the real
release binary, real sockets.

- A TCP trunk to a SIPp UAS listening on TCP (`-t t1`): extension 1000 dials out, the PBX
  connects, the INVITE says `SIP/2.0/TCP` in Via and `transport=tcp` in Contact, SIPp
  answers; the caller hangs up (BYE out over the connection), then on a second call SIPp
  hangs up (its BYE comes in over the same connection and reaches the caller).
- Kamailio as a provider on TCP and TLS (its TLS certificate made by the test with openssl,
  signed by a test CA given to the PBX as `[sip] tls_ca_file`, for Kamailio's address). Over
  TCP the PBX registers (401, digest), `pbx trunk list` says `registered` and shows the
  transport, and a call to the registered number comes in. Over TLS the certificate is
  verified and a call is answered by a phone on Kamailio, which hangs up (its BYE comes back
  to the PBX and reaches the caller).
- A TLS trunk whose certificate is not for the address the PBX meant to reach (the PBX's
  own TLS listener, with a certificate for another address): refused with a clear log line,
  and the `in_order` dial completes the call on the next trunk.

Addresses: the PBX 127.0.0.1; extension 1000's phone 127.0.29.2; SIPp on TCP 127.0.29.3;
Kamailio 127.0.29.6 (its probe 127.0.29.8); the phones on Kamailio 127.0.29.7 and 127.0.29.9.
"""

import os
import re
import subprocess
import time

import pytest

from callclient import Phone, sdp_offer
from conftest import free_port, require
from sippuas import SippTrunk, uas_scenario
from kamailio import Kamailio
from trunkplan import trunk_rows

# Protocol and media behaviour, not the store: run on SQLite only (scripts/test.sh).
pytestmark = pytest.mark.store_independent

PHONE_IP, SIPP_IP, KAM_IP, KAM_PHONE_IP, KAM_PROBE_IP, FAR_PHONE_IP = (
    "127.0.29.2", "127.0.29.3", "127.0.29.6", "127.0.29.7", "127.0.29.8", "127.0.29.9")
# The provider knows the PBX as its user 1000 (Kamailio wants the From user of an INVITE to
# be the account's, and the trunk presents the calling extension's number).
TRUNK_USER, TRUNK_PASSWORD = "1000", "tls-Trunk-Pw1"
# The TLS trunk's account (calls out present it: --caller-id-mode trunk).
TLS_USER, TLS_PASSWORD = "1001", "tls-Trunk-Pw2"

PLAN = """\
# written by tests/e2e/test_trunk_transports.py
[defaults]
context = "staff"

[context.staff]
may_call = ["extensions", "_7.", "_5.", "_9."]
[[context.staff.rule]]
extension = true
steps = [{ dial = "${number}" }]
[[context.staff.rule]]
pattern = "_7."
steps = [{ dial = "trunk:sipptcp/${number:1}" }]
[[context.staff.rule]]
pattern = "_5."
steps = [{ dial = "trunk:kamtls/${number:1}" }]
[[context.staff.rule]]
pattern = "_9."
steps = [{ dial = { targets = ["trunk:badtls/${number:1}", "trunk:sipptcp/${number:1}"],
                    strategy = "in_order", timeout = "20s" } }]

[context.from-provider]
may_call = ["1000", "1001"]
[[context.from-provider.rule]]
pattern = "_100[01]"
steps = [{ dial = "1000" }]
"""

SDP = """v=0
o=far 1 1 IN IP[media_ip_type] [media_ip]
s=-
c=IN IP[media_ip_type] [media_ip]
t=0 0
m=audio [media_port] RTP/AVP 0
a=rtpmap:0 PCMU/8000
"""

# The TCP trunk's far end: OPTIONS answered 200; an INVITE answered 200; then the PBX's BYE
# is answered, or, for numbers starting with 2, SIPp sends the BYE itself.
UAS_XML = uas_scenario("tcp trunk", """  <recv request="INVITE">
    <action>
      <ereg regexp="^INVITE sip:2" search_in="msg" check_it="false" assign_to="hangs"/>
      <ereg regexp=".*" search_in="hdr" header="From:" check_it="true" assign_to="from"/>
      <ereg regexp=".*" search_in="hdr" header="To:" check_it="true" assign_to="to"/>
      <ereg regexp="sip:[^&gt;]*" search_in="hdr" header="Contact:" check_it="true"
            assign_to="contact"/>
    </action>
  </recv>
  <send retrans="500"><![CDATA[

SIP/2.0 200 OK
[last_Via:]
[last_From:]
[last_To:];tag=far[pid]x[call_number]
[last_Call-ID:]
[last_CSeq:]
Contact: <sip:far@[local_ip]:[local_port];transport=tcp>
Content-Type: application/sdp
Content-Length: [len]

{sdp}
]]></send>
  <recv request="ACK"/>
  <nop hide="true" test="hangs" next="hangup"/>
  <recv request="BYE"/>
  <send next="done"><![CDATA[

SIP/2.0 200 OK
[last_Via:]
[last_From:]
[last_To:]
[last_Call-ID:]
[last_CSeq:]
Content-Length: 0

]]></send>
  <label id="hangup"/>
  <pause milliseconds="500"/>
  <send><![CDATA[

BYE [$contact] SIP/2.0
Via: SIP/2.0/TCP [local_ip]:[local_port];branch=[branch]
From: [$to];tag=far[pid]x[call_number]
To: [$from]
[last_Call-ID:]
CSeq: 1 BYE
Max-Forwards: 70
Content-Length: 0

]]></send>
  <recv response="200" next="done"/>
""".replace("{sdp}", SDP))


def openssl(*args):
    require("openssl")
    r = subprocess.run(["openssl", *args], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr


def make_ca(directory):
    """A test CA: (its certificate, its key)."""
    ca_key, ca_pem = os.path.join(directory, "ca.key"), os.path.join(directory, "ca.pem")
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            "-subj", "/CN=pbx e2e test CA", "-keyout", ca_key, "-out", ca_pem,
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    return ca_pem, ca_key


def make_server_cert(ca, directory, name, ip):
    """A server certificate for `ip` (its only name) signed by `ca`: (cert, key)."""
    ca_pem, ca_key = ca
    key, csr = os.path.join(directory, f"{name}.key"), os.path.join(directory, f"{name}.csr")
    pem, ext = os.path.join(directory, f"{name}.pem"), os.path.join(directory, f"{name}.ext")
    with open(ext, "w") as f:
        f.write(f"basicConstraints=CA:FALSE\nsubjectAltName=IP:{ip}\n"
                "extendedKeyUsage=serverAuth\nkeyUsage=digitalSignature,keyEncipherment\n")
    openssl("req", "-new", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={ip}",
            "-keyout", key, "-out", csr)
    openssl("x509", "-req", "-in", csr, "-CA", ca_pem, "-CAkey", ca_key, "-CAcreateserial",
            "-days", "2", "-extfile", ext, "-out", pem)
    return pem, key


def wait_trunk_state(pbx, name, state, timeout):
    end = time.time() + timeout
    while True:
        row = trunk_rows(pbx).get(name, {})
        if row.get("state") == state or time.time() >= end:
            return row
        time.sleep(0.25)


@pytest.fixture(scope="module")
def ca(tmp_path_factory):
    directory = str(tmp_path_factory.mktemp("ca"))
    return make_ca(directory), directory


@pytest.fixture(scope="module")
def kamailio(tmp_path_factory, ca):
    """Kamailio on UDP/TCP and TLS, its certificate signed by the test CA for its address."""
    (ca_files, directory) = ca
    tmp = tmp_path_factory.mktemp("kam")
    work = os.path.join(str(tmp), "kamailio")
    os.makedirs(work, exist_ok=True)
    pem, key = make_server_cert(ca_files, directory, "kamailio", KAM_IP)
    # run-kamailio.sh keeps a certificate already in its work directory.
    os.replace(pem, os.path.join(work, "server.pem"))
    os.replace(key, os.path.join(work, "server.key"))
    kam = Kamailio(tmp, {TRUNK_USER: TRUNK_PASSWORD, TLS_USER: TLS_PASSWORD, "2001": "pw2001",
                         "2002": "pw2002"},
                   ip=KAM_IP, probe_ip=KAM_PROBE_IP, tls_port=free_port(ip=KAM_IP))
    try:
        assert kam.wait_ready(), kam.log()
        yield kam
    finally:
        kam.stop()


def install_certificate(pbx, cert_and_key):
    """Makes `pbx`'s TLS listener present this certificate (`[tls]` in its config)."""
    pem, key = cert_and_key
    os.makedirs(os.path.join(pbx.dir, "tls"), exist_ok=True)
    os.replace(pem, os.path.join(pbx.dir, "tls", "cert.pem"))
    os.replace(key, os.path.join(pbx.dir, "tls", "key.pem"))


@pytest.fixture(scope="module")
def sipp_tcp(tmp_path_factory):
    port = free_port(ip=SIPP_IP)
    uas = SippTrunk(tmp_path_factory.mktemp("sipp"), "tcp", SIPP_IP, port, UAS_XML,
                    transport="t1")
    try:
        yield uas, port
    finally:
        uas.stop()


@pytest.fixture(scope="module")
def pbx(pbx_factory, ca, kamailio, sipp_tcp):
    (ca_files, directory) = ca
    p = pbx_factory("trunk-transports", dialplan=PLAN,
                    extra_toml=f'[sip]\ntls_ca_file = "{ca_files[0]}"\nqualify_interval = "2s"\n'
                               '[calls]\ntrunk_setup_timeout = "3s"\n')
    # The PBX's own TLS listener presents a certificate for another address: as a trunk's
    # far end it must be refused.
    install_certificate(p, make_server_cert(ca_files, directory, "wrong-name", "127.0.29.99"))
    p.import_extensions([(1000, "pw1000")])
    _, sipp_port = sipp_tcp
    p.cli("trunk", "add", "sipptcp", "--host", f"{SIPP_IP}:{sipp_port}", "--transport", "tcp")
    p.cli("trunk", "add", "kamtcp", "--host", f"{KAM_IP}:{kamailio.port}", "--transport", "tcp",
          "--username", TRUNK_USER, "--password", TRUNK_PASSWORD, "--register",
          "--context", "from-provider")
    p.cli("trunk", "add", "kamtls", "--host", f"{KAM_IP}:{kamailio.tls_port}",
          "--transport", "tls", "--username", TLS_USER, "--password", TLS_PASSWORD,
          "--register", "--context", "from-provider",
          "--caller-id-mode", "trunk", "--caller-id", TLS_USER,
          # The phone behind Kamailio answers plain RTP (over TLS the PBX offers SRTP).
          "--media-encryption", "off")
    p.cli("trunk", "add", "badtls", "--host", f"127.0.0.1:{p.tls}", "--transport", "tls")
    return p.start()


def test_a_tcp_trunk_call_goes_out_on_a_connection_the_pbx_opens(pbx, sipp_tcp):
    uas, port = sipp_tcp
    # Its OPTIONS pings (every 2 s) go over TCP too: up once SIPp listens.
    row = wait_trunk_state(pbx, "sipptcp", "up", 15)
    assert row.get("state") == "up", (row, pbx.log_tail())
    assert row.get("transport") == "tcp", row
    with Phone(1000, "pw1000", pbx.server("udp"), local_ip=PHONE_IP) as phone:
        # The caller hangs up: the BYE goes out over the connection.
        out = phone.call("7100100", sdp=sdp_offer(PHONE_IP, 40310))
        final = out.wait_final(10)
        assert final is not None and final.status == 200, (final, uas.text()[-3000:],
                                                            pbx.log_tail())
        bye = out.bye()
        assert bye is not None and bye.status == 200, (bye, uas.text()[-3000:])
        # The trunk hangs up: its BYE comes in over the connection and reaches the caller.
        out = phone.call("7200200", sdp=sdp_offer(PHONE_IP, 40312))
        final = out.wait_final(10)
        assert final is not None and final.status == 200, (final, uas.text()[-3000:])
        assert out.wait_bye(10) is not None, (uas.text()[-3000:], pbx.log_tail())
    invites = uas.invites(100100)
    assert invites, uas.text()[-3000:]
    assert re.search(r"^Via: SIP/2\.0/TCP 127\.0\.0\.1:%d;" % pbx.tcp, invites[0], re.M), invites[0]
    assert re.search(r"^Contact: <sip:[^>]*;transport=tcp>", invites[0], re.M), invites[0]
    assert "TCP message received" in uas.text(), uas.text()[-3000:]
    for callee in (100100, 200200):
        cdr = pbx.wait_cdr(1000, callee)
        assert cdr is not None and cdr.get("trunk") == "sipptcp", cdr
        assert cdr.get("disposition") == "answered", cdr


def test_registering_over_tcp_and_a_call_in_on_it(pbx, kamailio):
    row = wait_trunk_state(pbx, "kamtcp", "registered", 15)
    assert row.get("state") == "registered", (row, pbx.log_tail(), kamailio.log())
    assert row.get("transport") == "tcp", row
    kam_domain = f"{KAM_IP}:{kamailio.port}"
    with Phone(1000, "pw1000", pbx.server("udp"), local_ip=PHONE_IP) as phone, \
            Phone("2002", "pw2002", (KAM_IP, kamailio.port), local_ip=KAM_PHONE_IP,
                  domain=kam_domain) as caller:
        r = phone.register(expires=120)
        assert r is not None and r.status == 200, r
        # Kamailio finds the PBX's binding (made over TCP) and sends the call to it.
        out = caller.call(f"sip:{TRUNK_USER}@{kam_domain}", sdp=sdp_offer(KAM_PHONE_IP, 40320))
        inc = phone.wait_call(10)
        assert inc is not None, f"1000 was not rung\n{pbx.log_tail()}\n{kamailio.log()}"
        inc.answer(sdp_offer(PHONE_IP, 40322))
        final = out.wait_final(10)
        assert final is not None and final.status == 200, (final, kamailio.log())
        bye = out.bye()
        assert bye is not None and bye.status == 200, bye
        phone.unregister()
    assert TRUNK_PASSWORD not in pbx.log_text()


def test_a_tls_trunk_call_with_the_certificate_verified(pbx, kamailio):
    kam_domain = f"{KAM_IP}:{kamailio.port}"
    with Phone(1000, "pw1000", pbx.server("udp"), local_ip=PHONE_IP) as phone, \
            Phone("2001", "pw2001", (KAM_IP, kamailio.port), local_ip=FAR_PHONE_IP,
                  domain=kam_domain) as far:
        r = far.register(expires=120)
        assert r is not None and r.status == 200, r
        out = phone.call("52001", sdp=sdp_offer(PHONE_IP, 40330))
        inc = far.wait_call(10)
        assert inc is not None, f"2001 was not rung\n{pbx.log_tail()}\n{kamailio.log()}"
        inc.answer(sdp_offer(FAR_PHONE_IP, 40332))
        final = out.wait_final(10)
        assert final is not None and final.status == 200, (final, pbx.log_tail())
        # The far end hangs up: its BYE comes back through Kamailio to the caller.
        bye = inc.bye()
        assert bye is not None and bye.status == 200, (bye, pbx.log_tail(), kamailio.log())
        assert out.wait_bye(10) is not None, pbx.log_tail()
        far.unregister()
    cdr = pbx.wait_cdr(1000, 2001)
    assert cdr is not None and cdr.get("trunk") == "kamtls", cdr
    assert cdr.get("disposition") == "answered", cdr
    assert pbx.wait_log(rf"TLS connection refused.*{KAM_IP}", timeout=0.5) is None, \
        pbx.log_tail()


def test_registering_over_tls_with_a_sips_contact_and_a_call_in_on_it(pbx, kamailio):
    row = wait_trunk_state(pbx, "kamtls", "registered", 15)
    assert row.get("state") == "registered", (row, pbx.log_tail(), kamailio.log())
    assert row.get("transport") == "tls", row
    kam_domain = f"{KAM_IP}:{kamailio.port}"
    with Phone(1000, "pw1000", pbx.server("udp"), local_ip=PHONE_IP) as phone, \
            Phone("2002", "pw2002", (KAM_IP, kamailio.port), local_ip=KAM_PHONE_IP,
                  domain=kam_domain) as caller:
        r = phone.register(expires=120)
        assert r is not None and r.status == 200, r
        # The binding is sips: (RFC 5630): Kamailio reaches the PBX over TLS.
        out = caller.call(f"sip:{TLS_USER}@{kam_domain}", sdp=sdp_offer(KAM_PHONE_IP, 40350))
        inc = phone.wait_call(10)
        assert inc is not None, f"1000 was not rung\n{pbx.log_tail()}\n{kamailio.log()}"
        inc.answer(sdp_offer(PHONE_IP, 40352))
        final = out.wait_final(10)
        assert final is not None and final.status == 200, (final, kamailio.log())
        bye = out.bye()
        assert bye is not None and bye.status == 200, bye
        phone.unregister()
    assert pbx.wait_log(rf"call started.*caller=2002.*trunk=kamtls.*callee={TLS_USER}"
                        r".*transport=tls", timeout=5) is not None, pbx.log_tail()
    assert TLS_PASSWORD not in pbx.log_text()


def test_a_certificate_for_another_name_is_refused_and_the_call_fails_over(pbx, sipp_tcp):
    uas, _ = sipp_tcp
    assert wait_trunk_state(pbx, "sipptcp", "up", 15).get("state") == "up", pbx.log_tail()
    with Phone(1000, "pw1000", pbx.server("udp"), local_ip=PHONE_IP) as phone:
        out = phone.call("9100300", sdp=sdp_offer(PHONE_IP, 40340))
        final = out.wait_final(15)
        assert final is not None and final.status == 200, (final, pbx.log_tail())
        bye = out.bye()
        assert bye is not None and bye.status == 200, bye
    assert pbx.wait_log(r"TLS connection refused: the server's certificate does not verify"
                        r".*127\.0\.0\.1", timeout=2) is not None, pbx.log_tail()
    assert uas.invites(100300), "the call did not fail over to the next trunk"
    cdr = pbx.wait_cdr(1000, 100300)
    assert cdr is not None and cdr.get("trunk") == "sipptcp", cdr


def test_a_trunk_that_skips_verification_says_so_and_a_missing_ca_file_is_refused(pbx):
    r = pbx.cli("trunk", "add", "blind", "--host", "127.0.29.11", "--transport", "tls",
                "--tls-no-verify")
    assert "will NOT be verified" in r.stderr, r.stderr
    row = trunk_rows(pbx).get("blind", {})
    assert row.get("transport") == "tls (not verified)", row
    assert row.get("host") == "127.0.29.11:5061", row
    r = pbx.cli("trunk", "add", "cafile", "--host", "127.0.29.12", "--transport", "tls",
                "--tls-ca-file", "/nonexistent/ca.pem", check=False)
    assert r.returncode != 0, r.stdout + r.stderr
    assert "--tls-ca-file: no such file /nonexistent/ca.pem" in r.stderr, r.stderr
    assert "cafile" not in trunk_rows(pbx)
