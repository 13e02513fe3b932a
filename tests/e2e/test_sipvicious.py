"""sipvicious (PyPI), the tool kit real attackers scan PBXs with, against the PBX: svmap finds
a SIP server, svwar finds no extension with REGISTER, INVITE or OPTIONS, svcrack finds no
password although its word list holds the real one, and the cracking source is banned. Each
tool runs from its own loopback address through sipvicious_from.py (its `-b` is ignored)."""

import os
import sys

import pytest

from conftest import DOMAIN, MAX_AUTH_FAILURES, run
from sipclient import SipClient

WRAPPER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "sipvicious_from.py")
SCANNER, ENUMERATOR, CRACKER, PHONE = "127.0.11.1", "127.0.11.2", "127.0.11.3", "127.0.11.9"


@pytest.fixture(scope="module")
def pbx(pbx_factory):
    r = run([sys.executable, "-c", "import sipvicious"])
    if r.returncode != 0:
        pytest.fail("sipvicious is not installed (run scripts/install-test-deps.sh)")
    # MD5 only: sipvicious 0.3.8 crashes on a SHA-256 challenge, and the cracker should have
    # its best chance (MD5 is what many deployments still offer their older phones)
    p = pbx_factory("sipvicious", extra_toml='[security]\ndigest_algorithms = ["MD5"]\n').start()
    for n in range(1001, 1004):
        p.add_extension(n, f"secret{n}")
    yield p


def sipvicious(source, tool, *args, timeout=120):
    r = run([sys.executable, WRAPPER, source, tool, *args], timeout=timeout)
    return r.returncode, r.stdout + r.stderr


def test_svmap_sees_a_sip_server_and_it_stays_up(pbx):
    rc, out = sipvicious(SCANNER, "svmap", "127.0.0.1", "-p", str(pbx.udp))
    assert rc == 0 and f"127.0.0.1:{pbx.udp}" in out, out
    assert pbx.alive() and pbx.http_status("/healthz") == 200


@pytest.mark.parametrize("method", ["REGISTER", "INVITE", "OPTIONS"])
def test_svwar_finds_no_extension(pbx, method):
    # 1001-1003 exist among the 51 numbers scanned: an unknown number is answered exactly as
    # a known one (REGISTER 401, INVITE 407, OPTIONS 200), so svwar has nothing to tell apart
    rc, out = sipvicious(ENUMERATOR, "svwar", "-e", "990-1040", "-m", method, "-t", "0.02",
                         f"udp://127.0.0.1:{pbx.udp}")
    assert rc == 0, out
    assert "found nothing" in out, f"svwar -m {method}:\n{out}"
    assert "Extension" not in out and "+---" not in out, f"svwar -m {method} listed a result:\n{out}"
    assert pbx.alive()
    assert ENUMERATOR not in pbx.ban_list(), "enumeration without credentials is not guessing"


def test_svcrack_finds_no_password_and_the_source_is_banned(pbx, tmp_path):
    words = [f"wrong{i}" for i in range(30)]
    words[MAX_AUTH_FAILURES + 5] = "secret1001"          # the real one, after the limit
    wordlist = tmp_path / "words.txt"
    wordlist.write_text("\n".join(words) + "\n")
    rc, out = sipvicious(CRACKER, "svcrack", "-u", "1001", "-d", str(wordlist),
                         "--maximumtime", "5", f"udp://127.0.0.1:{pbx.udp}")
    assert "secret1001" not in out, f"svcrack found the password:\n{out}"
    assert "found nothing" in out, out
    assert CRACKER in pbx.ban_list(), f"{pbx.ban_list()}\n{out}"
    # a phone on another address is not affected
    with SipClient("udp", pbx.server("udp"), local_ip=PHONE) as c:
        r = c.register("1001", "secret1001", DOMAIN)
        assert r is not None and r.status == 200, r
