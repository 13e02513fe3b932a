"""GET /healthz and GET /metrics (Prometheus text) with the counters issue 3 names."""

import re
import time

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
