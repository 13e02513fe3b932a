"""The SIP trace: `pbx trace add|list|remove` on a running PBX (per source network, per
extension), secrets redacted in what is logged, `[trace]` filters and file from the config, and
HEP3 export of every message to a capture server (a python UDP socket here)."""

import base64
import os
import re
import socket
import struct
import threading
import time

import pytest

from callclient import Phone, sdp_offer
from callhelpers import wait_incoming
from conftest import DOMAIN
from media import RtpPeer
from sipclient import SipClient, digest_response, parse_challenge

# this module's own loopback addresses
TRACED, OTHER, EXT_SRC, CALLER_IP, CALLEE_IP, HEP_SRC = (
    "127.0.80.1", "127.0.80.2", "127.0.80.3", "127.0.80.5", "127.0.80.6", "127.0.80.7")
NUMBERS = list(range(2100, 2112))


def password(n):
    return f"pw{n}"


def start(pbx_factory, name, extra_toml=""):
    p = pbx_factory(name, extra_toml)
    p.import_extensions([(n, password(n)) for n in NUMBERS])
    return p.start()


@pytest.fixture(scope="module")
def pbx(pbx_factory):
    # SDES keys over UDP so the python phones can make an SRTP call
    return start(pbx_factory, "trace", "[rtp]\nsdes_over_insecure = true\n")


def mark(pbx):
    return len(pbx.log_text())


def cli_trace(pbx, *args):
    return pbx.cli("trace", *args).stdout


def wait_synced(pbx, after, pattern):
    """The running PBX logged that it took the new filters (it re-reads them every 2 s)."""
    m = pbx.wait_log(pattern, after, timeout=10)
    assert m is not None, f"no {pattern!r} in the log\n{pbx.log_tail()}"


def blocks(pbx, after=0):
    """The trace blocks logged since character `after`: each is the summary line and the
    message text up to the next log line."""
    text = pbx.log_text()[after:]
    out = []
    for m in re.finditer(r"sip_trace: (SIP (?:in|out) .*?)(?=\n\d{4}-\d\d-\d\dT|\Z)", text, re.S):
        out.append(m.group(1))
    return out


def register_by_hand(client, user, password, extra=()):
    """REGISTER with a 401 answered; returns (final response, the digest response value)."""
    uri, aor = f"sip:{DOMAIN}", f"sip:{user}@{DOMAIN}"
    hdrs = [f"Contact: {client.contact(user)}", "Expires: 60", *extra]
    r = client.request("REGISTER", uri, aor, aor, hdrs)
    assert r is not None and r.status == 401, r
    ch = next(c for c in map(parse_challenge, r.all("www-authenticate"))
              if c.get("algorithm", "MD5").upper() == "MD5")
    auth = digest_response(ch, "REGISTER", uri, user, password, os.urandom(6).hex())
    value = re.search(r'response="([0-9a-f]+)"', auth).group(1)
    r = client.request("REGISTER", uri, aor, aor, hdrs + [f"Authorization: {auth}"])
    return r, value


def test_source_trace_added_by_cli_logs_redacted_messages_until_removed(pbx):
    at = mark(pbx)
    out = cli_trace(pbx, "add", "--source", TRACED)
    trace_id = re.search(r"trace (\d+) added: source 127\.0\.80\.1/32", out)
    assert trace_id, out
    assert re.search(rf"(?m)^{trace_id.group(1)}\s+source\s+127\.0\.80\.1/32\s+never",
                     cli_trace(pbx, "list")), cli_trace(pbx, "list")
    wait_synced(pbx, at, r"SIP trace on.*source 127\.0\.80\.1/32")

    at = mark(pbx)
    with SipClient("udp", pbx.server("udp"), local_ip=TRACED) as c:
        r, secret = register_by_hand(c, "2100", password(2100))
        assert r is not None and r.status == 200, r
        traced_port = c.local[1]
        call_id = c.call_id
        # an unparsable request is traced too, with the 400 the transport answers
        branch = "z9hG4bKtrace" + os.urandom(4).hex()
        c.send_raw((f"OPTIONS sip:{DOMAIN} SIP/2.0\r\nVia: SIP/2.0/UDP {TRACED}:{traced_port};"
                    f"branch={branch};rport\r\nFrom: <sip:a@{DOMAIN}>;tag=1\r\nTo: <sip:{DOMAIN}>"
                    "\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n").encode())
        r = c.recv()
        assert r is not None and r.status == 400, r
    with SipClient("udp", pbx.server("udp"), local_ip=OTHER) as c:
        r, _ = register_by_hand(c, "2101", password(2101))
        assert r is not None and r.status == 200, r
        other_call_id = c.call_id

    seen = blocks(pbx, at)
    bad = [b for b in seen if branch in b]
    assert [b for b in bad if b.startswith(f"SIP in udp {TRACED}:{traced_port} ")], seen
    assert [b for b in bad if b.startswith("SIP out ") and "\nSIP/2.0 400 " in b], seen
    mine = [b for b in seen if call_id in b]
    pbx_udp = pbx.hostport("udp")
    ins = [b for b in mine if b.startswith(f"SIP in udp {TRACED}:{traced_port} -> {pbx_udp} at ")]
    outs = [b for b in mine if b.startswith(f"SIP out udp {pbx_udp} -> {TRACED}:{traced_port} at ")]
    # two REGISTERs in, a 401 and a 200 out: each with wall-clock time and size
    assert len(ins) == 2 and len(outs) == 2, "\n\n".join(seen) or pbx.log_tail()
    for b in mine:
        assert re.match(r"SIP (in|out) udp \S+ -> \S+ at \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z "
                        r"\(\d+ bytes\)\n", b), b
    assert ins[0].split("\n")[1] == f"REGISTER sip:{DOMAIN} SIP/2.0"
    assert any("\nSIP/2.0 401 Unauthorized" in b for b in outs), outs
    assert any("\nSIP/2.0 200 OK" in b for b in outs), outs
    authorized = [b for b in ins if "\nAuthorization: Digest " in b]
    assert len(authorized) == 1, ins
    assert 'response="[redacted]"' in authorized[0], authorized[0]
    assert 'username="2100"' in authorized[0], authorized[0]
    assert secret not in pbx.log_text(), "the digest response reached the log"
    assert not any(other_call_id in b for b in seen), "a source without a trace was logged"

    # removed: the running PBX stops within its sync interval
    at = mark(pbx)
    assert f"trace {trace_id.group(1)} removed" in cli_trace(pbx, "remove", trace_id.group(1))
    wait_synced(pbx, at, r"SIP trace off")
    with SipClient("udp", pbx.server("udp"), local_ip=TRACED) as c:
        r, _ = register_by_hand(c, "2100", password(2100))
        assert r is not None and r.status == 200, r
        assert not any(c.call_id in b for b in blocks(pbx, at)), "traced after `trace remove`"
    assert "source" not in cli_trace(pbx, "list")
    r = pbx.cli("trace", "remove", trace_id.group(1), check=False)
    assert r.returncode != 0 and "no trace filter" in r.stderr, r


def test_extension_trace_matches_register_and_invite_for_that_extension(pbx):
    at = mark(pbx)
    out = cli_trace(pbx, "add", "--extension", "2102", "--for", "10m")
    assert "extension 2102 for 10m" in out, out
    assert re.search(r"extension\s+2102\s+in \d+s", cli_trace(pbx, "list"))
    wait_synced(pbx, at, r"SIP trace on.*extension 2102")

    at = mark(pbx)
    with SipClient("udp", pbx.server("udp"), local_ip=EXT_SRC) as c:
        r, secret = register_by_hand(c, "2102", password(2102))
        assert r is not None and r.status == 200, r
        register_call_id = c.call_id
    with SipClient("udp", pbx.server("udp"), local_ip=EXT_SRC) as c:
        r, _ = register_by_hand(c, "2103", password(2103))
        assert r is not None and r.status == 200, r
        untraced_call_id = c.call_id
    with SipClient("udp", pbx.server("udp"), local_ip=EXT_SRC) as c:
        # a call from 2103 to 2102: traced by its Request-URI / To
        r = c.request("INVITE", f"sip:2102@{DOMAIN}", f"sip:2103@{DOMAIN}", f"sip:2102@{DOMAIN}",
                      [f"Contact: {c.contact('2103')}"])
        assert r is not None and r.status == 407, r
        invite_call_id = c.call_id

    seen = blocks(pbx, at)
    assert [b for b in seen if register_call_id in b and "\nREGISTER " in b], pbx.log_tail()
    assert [b for b in seen if invite_call_id in b and f"\nINVITE sip:2102@{DOMAIN} " in b]
    assert [b for b in seen if invite_call_id in b and "\nSIP/2.0 407 " in b]
    assert not any(untraced_call_id in b for b in seen), "another extension was traced"
    assert secret not in pbx.log_text()

    at = mark(pbx)
    assert "1 trace filter(s) removed" in cli_trace(pbx, "remove", "all")
    wait_synced(pbx, at, r"SIP trace off")


def test_sdes_keys_of_an_srtp_call_are_redacted(pbx):
    at = mark(pbx)
    cli_trace(pbx, "add", "--source", CALLER_IP)
    cli_trace(pbx, "add", "--extension", "2105")
    wait_synced(pbx, at, r"SIP trace on.*source 127\.0\.80\.5/32.*extension 2105")

    at = mark(pbx)
    caller_key = base64.b64encode(os.urandom(30)).decode()
    callee_key = base64.b64encode(os.urandom(30)).decode()
    caller = Phone(2104, password(2104), pbx.server("udp"), local_ip=CALLER_IP)
    callee = Phone(2105, password(2105), pbx.server("udp"), local_ip=CALLEE_IP)
    caller_rtp, callee_rtp = RtpPeer.even(CALLER_IP), RtpPeer.even(CALLEE_IP)
    try:
        assert callee.register(expires=60).status == 200
        # the relay takes no MKI: tag 1 (with one) is refused, tag 2 is used
        offer = sdp_offer(*caller_rtp.addr, proto="RTP/SAVP",
                          crypto=[f"1 AES_CM_128_HMAC_SHA1_80 inline:{caller_key}|2^20|1:4",
                                  f"2 AES_CM_128_HMAC_SHA1_80 inline:{caller_key}|2^20"])
        out = caller.call("2105", offer)
        inc = wait_incoming(pbx, callee, out)
        # the PBX's keys offered to the callee (if it offers SRTP), and the callee's answer
        offered = [line.split()[:3] for line in inc.offer.crypto]
        keys = [caller_key] + [key.split(":", 1)[1].split("|")[0] for _, _, key in offered]
        answer_crypto = [f"{tag} {suite} inline:{callee_key}" for tag, suite, _ in offered[:1]]
        keys += [callee_key] if answer_crypto else []
        inc.answer(sdp_offer(*callee_rtp.addr, pts=(0,),
                             proto="RTP/SAVP" if answer_crypto else "RTP/AVP",
                             crypto=answer_crypto))
        final = out.wait_final(5)
        assert final is not None and final.status == 200, f"{final}\n{pbx.log_tail()}"
        pbx_to_caller = out.answer_sdp.crypto
        assert pbx_to_caller, f"the PBX answered an SRTP offer without a=crypto:\n{final.raw!r}"
        keys += [c.split()[2].split(":", 1)[1].split("|")[0] for c in pbx_to_caller]
        assert out.bye() is not None
    finally:
        caller_rtp.close()
        callee_rtp.close()
        callee.register(expires=0, timeout=1)
        for phone in (caller, callee):
            phone.close()

    seen = [b for b in blocks(pbx, at) if out.call_id in b or inc.call_id in b]
    crypto_lines = [ln for b in seen for ln in b.split("\n") if ln.startswith("a=crypto:")]
    # the caller's offer in, the PBX's answer out, and (SRTP to the callee) the PBX's offer out
    # and the callee's answer in
    assert len(crypto_lines) >= (4 if answer_crypto else 2), "\n\n".join(seen)
    for ln in crypto_lines:
        assert re.fullmatch(r"a=crypto:\d+ \S+ inline:\[redacted\](\|\S+)?( .*)?", ln), ln
    assert "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:[redacted]|2^20|1:4" in crypto_lines
    log = pbx.log_text()
    for key in keys:
        assert key not in log, "an SRTP key reached the log"
    at = mark(pbx)
    cli_trace(pbx, "remove", "all")
    wait_synced(pbx, at, r"SIP trace off")


# ------------------------------------------------------------------------------------ HEP


class HepReceiver:
    """A capture server: a UDP socket collecting HEP3 packets on a thread."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.packets = []
        self.lock = threading.Lock()
        self.stop = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self.stop:
            try:
                data, _ = self.sock.recvfrom(65535)
            except (socket.timeout, TimeoutError):
                continue
            except OSError:
                return
            with self.lock:
                self.packets.append(data)

    def close(self):
        self.stop = True
        self.thread.join(2)
        self.sock.close()

    def wait(self, pred, timeout=5.0):
        """The decoded packets (dicts) for which pred holds, once there is one."""
        end = time.time() + timeout
        while True:
            with self.lock:
                found = [c for c in map(decode_hep, self.packets) if pred(c)]
            if found or time.time() >= end:
                return found
            time.sleep(0.05)


def decode_hep(packet):
    """{chunk type: bytes} of a HEP3 packet, framing checked (vendor 0 chunks only)."""
    assert packet[:4] == b"HEP3", packet[:16]
    (total,) = struct.unpack("!H", packet[4:6])
    assert total == len(packet), (total, len(packet))
    chunks, at = {}, 6
    while at < total:
        vendor, kind, length = struct.unpack("!HHH", packet[at:at + 6])
        assert vendor == 0 and length >= 6 and at + length <= total, (vendor, kind, length)
        assert kind not in chunks, f"chunk {kind} twice"
        chunks[kind] = packet[at + 6:at + length]
        at += length
    assert at == total
    return chunks


def u16(b):
    return struct.unpack("!H", b)[0]


def u32(b):
    return struct.unpack("!I", b)[0]


@pytest.fixture(scope="module")
def hep():
    r = HepReceiver()
    yield r
    r.close()


@pytest.fixture(scope="module")
def hep_pbx(pbx_factory, hep):
    return start(pbx_factory, "hep", f"""
[trace]
hep = "udp:127.0.0.1:{hep.port}"
hep_id = 2001
hep_password = "capture-pw"
extensions = ["2110"]
file = "trace/sip.log"
""")


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_hep_receives_every_message_with_addresses_ports_and_payload(hep_pbx, hep, transport):
    with SipClient(transport, hep_pbx.server(transport), local_ip=HEP_SRC) as c:
        request = c.build("OPTIONS", f"sip:{DOMAIN}", f"sip:probe@{DOMAIN}", f"sip:{DOMAIN}")
        c.send_raw(request)
        r = c.recv()
        assert r is not None and r.status == 200, r
        local_port, call_id = c.local[1], c.call_id
    pbx_ip, pbx_port = hep_pbx.server(transport)
    proto = {"udp": 17, "tcp": 6}[transport]

    ins = hep.wait(lambda ch: call_id.encode() in ch.get(15, b"")
                   and ch[15].startswith(b"OPTIONS "))
    assert len(ins) == 1, ins
    ch = ins[0]
    assert ch[1] == bytes([2]) and ch[2] == bytes([proto]), ch
    assert socket.inet_ntoa(ch[3]) == HEP_SRC and socket.inet_ntoa(ch[4]) == pbx_ip
    assert u16(ch[7]) == local_port and u16(ch[8]) == pbx_port
    assert ch[11] == bytes([1]), "protocol type SIP"
    assert u32(ch[12]) == 2001 and ch[14] == b"capture-pw"
    assert ch[15] == request, "the payload is the message byte for byte (not redacted)"
    assert abs(u32(ch[9]) - time.time()) < 300 and u32(ch[10]) < 1_000_000

    outs = hep.wait(lambda c2: call_id.encode() in c2.get(15, b"")
                    and c2[15].startswith(b"SIP/2.0 200 "))
    assert len(outs) == 1, outs
    ch = outs[0]
    assert ch[2] == bytes([proto])
    assert socket.inet_ntoa(ch[3]) == pbx_ip and socket.inet_ntoa(ch[4]) == HEP_SRC
    assert u16(ch[7]) == pbx_port and u16(ch[8]) == local_port
    # HEP exports everything; the log traces only what a filter names
    assert not any(call_id in b for b in blocks(hep_pbx))


def test_config_extension_filter_writes_redacted_blocks_to_the_trace_file(hep_pbx, hep):
    assert re.search(r"(?m)^config\s+extension\s+2110\s+never",
                     hep_pbx.cli("trace", "list").stdout)
    with SipClient("udp", hep_pbx.server("udp"), local_ip=HEP_SRC) as c:
        r, secret = register_by_hand(c, "2110", password(2110))
        assert r is not None and r.status == 200, r
        call_id = c.call_id
    path = os.path.join(hep_pbx.dir, "trace", "sip.log")
    # the file is written by a thread of its own: wait for the last block (the 200)
    end, text, file_blocks = time.time() + 5, "", []
    while time.time() < end:
        text = open(path).read() if os.path.exists(path) else ""
        file_blocks = [b for b in text.split("\n\n") if call_id in b]
        if any("\nSIP/2.0 200 OK" in b for b in file_blocks):
            break
        time.sleep(0.1)
    assert any(b.startswith(f"SIP in udp {HEP_SRC}:") and 'response="[redacted]"' in b
               for b in file_blocks), text
    assert any(b.startswith("SIP out udp ") and "\nSIP/2.0 200 OK" in b for b in file_blocks), text
    assert secret not in text
    assert any(call_id in b for b in blocks(hep_pbx)), "the log gets the blocks too"
    # the capture server got the unredacted REGISTER, as the phone sent it
    assert hep.wait(lambda ch: call_id.encode() in ch.get(15, b"")
                    and secret.encode() in ch[15])
