"""GET /healthz and GET /metrics (Prometheus text) with the counters issue 3 names."""

import re
import socket
import time

import pytest

from conftest import DOMAIN, MAX_AUTH_FAILURES
from sipclient import SipClient


def metric_values(text):
    """{metric line without value: value} for every sample line."""
    out = {}
    for ln in text.splitlines():
        if not ln or ln.startswith("#"):
            continue
        m = re.match(r"^([A-Za-z_:][A-Za-z0-9_:]*(?:\{[^}]*\})?)\s+(\S+)", ln)
        if m:
            try:
                out[m.group(1)] = float(m.group(2))
            except ValueError:
                pass
    return out


def test_metrics_count_requests_responses_registrations_auth_failures_bans(pbx):
    with SipClient("udp", pbx.server("udp")) as c:
        r = c.register("1001", "secret1001", DOMAIN)
        assert r is not None and r.status == 200, r
    with SipClient("udp", pbx.server("udp"), local_ip="127.0.0.9", timeout=2) as c:
        for i in range(MAX_AUTH_FAILURES):
            c.register("1002", f"guess{i}", DOMAIN)
        assert c.register("1002", "secret1002", DOMAIN) is None, "attacker not banned"

    status, text = pbx.http_get("/metrics")
    assert status == 200
    values = metric_values(text)
    assert values, f"no samples in /metrics:\n{text[:2000]}"
    wanted = {
        "requests": r"request",
        "responses": r"response",
        "registrations": r"regist",
        "auth failures": r"auth\w*fail|fail\w*auth",
        "bans": r"\bban|_ban|ban_",
    }
    for what, pat in wanted.items():
        hits = {k: v for k, v in values.items() if re.search(pat, k.split("{")[0], re.I)}
        assert hits, f"/metrics has no counter for {what} (/{pat}/):\n{text[:3000]}"
        assert any(v > 0 for v in hits.values()), f"{what} counters are all zero: {hits}"
    req = {k: v for k, v in values.items() if re.search("request", k, re.I) and "REGISTER" in k}
    assert req, "requests are not counted by method (no REGISTER label)"
    # Issue 11: a shard whose engine fails is counted; none failed here.
    assert values.get("pbx_engine_panics_total") == 0, text[:3000]


def test_healthz(pbx):
    assert pbx.http_status("/healthz") == 200


def active_registrations(pbx):
    status, text = pbx.http_get("/metrics")
    assert status == 200
    for line in text.splitlines():
        if line.startswith("pbx_registrations_active "):
            return float(line.split()[1])
    return None


def test_removing_an_extension_drops_its_live_bindings(pbx):
    """`pbx extension remove` while the PBX runs: the running PBX forgets the bindings too
    (seen in the active-registrations gauge, updated every 2 s)."""
    pbx.add_extension(1990, "secret1990")
    with SipClient("udp", pbx.server("udp")) as c:
        r = c.register("1990", "secret1990", DOMAIN)
        assert r is not None and r.status == 200, r
    assert pbx.wait_bindings([1990], lambda found: "1990" in found), "binding not stored"
    time.sleep(2.5)  # the gauge is refreshed every 2 s
    before = active_registrations(pbx)
    pbx.cli("extension", "remove", "1990")
    deadline, after = time.time() + 12, before
    while time.time() < deadline:
        after = active_registrations(pbx)
        if after is not None and before is not None and after <= before - 1:
            break
        time.sleep(0.5)
    assert after is not None and before is not None and after <= before - 1, (before, after)


# ---------------------------------------------------------------- each counter tells the truth
#
# Every test reads the counters it expects to move before and after, from its own source
# address (127.0.41.x), so the other tests of the module do not disturb it.

DENIED, FLOODER, GUESSER = "127.0.41.66", "127.0.41.67", "127.0.41.68"
RATE = 20
SMALL_MAX = 1500


def metric(pbx, sample):
    """The value of one sample line of /metrics (0 when absent)."""
    status, text = pbx.http_get("/metrics")
    assert status == 200
    return metric_values(text).get(sample, 0.0)


def dropped(pbx, reason):
    return metric(pbx, f'pbx_sip_dropped_total{{reason="{reason}"}}')


def responses(pbx, cls):
    return metric(pbx, f'pbx_sip_responses_total{{class="{cls}"}}')


@pytest.fixture(scope="module")
def guarded(pbx_factory):
    """A PBX with a denied network, a low rate limit and a small `max_message_size`."""
    p = pbx_factory("metrics-guarded")
    extra = f'deny = ["{DENIED}/32"]\nrate_limit = {RATE}\nrate_burst = {RATE}\n'
    text = p.toml(security={"extra": extra}).replace(
        f'domain = "{DOMAIN}"', f'domain = "{DOMAIN}"\nmax_message_size = {SMALL_MAX}', 1)
    with open(p.config, "w") as f:
        f.write(text)
    p.add_extension(1001, "secret1001")
    return p.start()


def options_bytes(client, pad=0):
    headers = [f"X-Pad: {'a' * pad}"] if pad else []
    return client.build("OPTIONS", f"sip:{DOMAIN}", f"sip:probe@{DOMAIN}", f"sip:{DOMAIN}",
                        headers)


def stream_closed(sock, within=5):
    sock.settimeout(within)
    try:
        while sock.recv(65535) != b"":
            pass
        return True
    except (ConnectionResetError, BrokenPipeError):
        return True
    except (socket.timeout, TimeoutError):
        return False


def test_505_for_another_sip_version_is_counted_as_5xx(pbx):
    before = {c: responses(pbx, c) for c in ("4xx", "5xx")}
    unparsable = dropped(pbx, "unparsable")
    with SipClient("udp", pbx.server("udp"), local_ip="127.0.41.2") as c:
        c.send_raw(options_bytes(c).replace(b" SIP/2.0\r\n", b" SIP/3.0\r\n", 1))
        r = c.recv()
    assert r is not None and r.status == 505, r
    assert responses(pbx, "5xx") == before["5xx"] + 1
    assert responses(pbx, "4xx") == before["4xx"], "the 505 was counted as 4xx"
    assert dropped(pbx, "unparsable") == unparsable + 1


def test_400_for_a_malformed_request_is_counted_as_4xx_and_unparsable(pbx):
    before, unparsable = responses(pbx, "4xx"), dropped(pbx, "unparsable")
    with SipClient("udp", pbx.server("udp"), local_ip="127.0.41.3") as c:
        request = options_bytes(c)
        no_to = b"\r\n".join(ln for ln in request.split(b"\r\n") if not ln.startswith(b"To:"))
        c.send_raw(no_to)
        r = c.recv()
    assert r is not None and r.status == 400, r
    assert responses(pbx, "4xx") == before + 1
    assert dropped(pbx, "unparsable") == unparsable + 1


def test_provisional_responses_of_a_call_that_rang_are_counted(pbx, phones):
    from callhelpers import establish
    before = responses(pbx, "1xx")
    caller = phones(pbx, 2001, "127.0.41.4")
    callee = phones(pbx, 2002, "127.0.41.5")
    call = establish(pbx, caller, callee)
    try:
        rang = [r.status for r in call.out.provisional]
        assert 180 in rang, f"the caller saw no 180: {call.out.responses}"
        r = call.out.bye()
        assert r is not None and r.status == 200, r
    finally:
        call.close()
    # every 1xx the caller received was sent (and counted) by the PBX
    assert responses(pbx, "1xx") - before >= len(rang), (before, rang)


def test_a_70_kb_tcp_message_is_oversized_not_framing(pbx):
    oversized, framing = dropped(pbx, "oversized"), dropped(pbx, "framing")
    with SipClient("tcp", pbx.server("tcp"), local_ip="127.0.41.6") as c:
        body = b"x" * 70_000
        aor = f"sip:1001@{DOMAIN}"
        head = c.build("MESSAGE", aor, aor, aor, ["Content-Type: text/plain"])
        head = head.replace(b"Content-Length: 0", f"Content-Length: {len(body)}".encode())
        try:
            c.sock.sendall(head + body)
        except (BrokenPipeError, ConnectionResetError):
            pass                                    # closed while we were still sending
        assert stream_closed(c.sock), "a 70 KB message left the connection open"
    assert dropped(pbx, "oversized") == oversized + 1
    assert dropped(pbx, "framing") == framing


def test_a_tcp_message_without_content_length_is_framing(pbx):
    framing = dropped(pbx, "framing")
    with SipClient("tcp", pbx.server("tcp"), local_ip="127.0.41.7") as c:
        request = options_bytes(c).replace(b"Content-Length: 0\r\n", b"")
        c.sock.sendall(request)
        assert stream_closed(c.sock), "a message without Content-Length left the connection open"
    assert dropped(pbx, "framing") == framing + 1


def test_garbage_on_a_tcp_connection_is_counted(pbx):
    garbage = dropped(pbx, "garbage")
    with socket.create_connection(pbx.server("tcp"), timeout=5,
                                  source_address=("127.0.41.8", 0)) as s:
        s.sendall(b"\0" * 2048)
        assert stream_closed(s)
    assert dropped(pbx, "garbage") == garbage + 1


def test_a_failed_tls_handshake_is_counted(pbx):
    failed = dropped(pbx, "tls_handshake")
    with socket.create_connection(pbx.server("tls"), timeout=5,
                                  source_address=("127.0.41.9", 0)) as s:
        s.sendall(b"OPTIONS sip:pbx.test SIP/2.0\r\n\r\n")      # plain SIP to the TLS port
        assert stream_closed(s)
    deadline = time.time() + 5
    while dropped(pbx, "tls_handshake") < failed + 1 and time.time() < deadline:
        time.sleep(0.1)
    assert dropped(pbx, "tls_handshake") == failed + 1


def test_a_udp_datagram_over_max_message_size_is_oversized(guarded):
    oversized = dropped(guarded, "oversized")
    with SipClient("udp", guarded.server("udp"), local_ip="127.0.41.10", timeout=1.5) as c:
        fits = options_bytes(c, pad=SMALL_MAX - 600)
        assert len(fits) <= SMALL_MAX
        c.send_raw(fits)
        r = c.recv()
        assert r is not None and r.status == 200, f"a {len(fits)}-byte OPTIONS was not answered"
        big = options_bytes(c, pad=3000)
        assert len(big) > 3000
        c.send_raw(big)
        assert c.recv() is None, "an oversized datagram was answered"
    assert dropped(guarded, "oversized") == oversized + 1


def test_a_denied_network_is_counted_as_acl(guarded):
    acl = dropped(guarded, "acl")
    with SipClient("udp", guarded.server("udp"), local_ip=DENIED, timeout=1.5) as c:
        assert options(c) is None
    assert dropped(guarded, "acl") == acl + 1


def test_requests_over_the_rate_limit_are_counted(guarded):
    limited = dropped(guarded, "rate_limit")
    sent = 2 * RATE
    with SipClient("udp", guarded.server("udp"), local_ip=FLOODER, timeout=1.5) as c:
        for _ in range(sent):
            c.send_raw(options_bytes(c))
        answered = 0
        while c.recv() is not None:
            answered += 1
    assert answered < sent, "no request was rate limited"
    assert dropped(guarded, "rate_limit") - limited == sent - answered


def test_requests_from_a_banned_source_are_counted(guarded):
    with SipClient("udp", guarded.server("udp"), local_ip=GUESSER, timeout=2) as c:
        for i in range(MAX_AUTH_FAILURES):
            c.register("1001", f"guess{i}", DOMAIN)
        banned = dropped(guarded, "banned")
        assert options(c) is None, "a banned source was answered"
    assert dropped(guarded, "banned") == banned + 1


def options(client):
    return client.request("OPTIONS", f"sip:{DOMAIN}", f"sip:probe@{DOMAIN}", f"sip:{DOMAIN}")
