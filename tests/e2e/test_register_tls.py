"""Registration over TLS.

Debian's SIPp 3.6.1 is built without TLS, so TLS is exercised with two other clients instead:
baresip (TRANSPORT=tls, several extensions at once) and the stdlib `ssl` client of sipclient.py
(200 extensions over one TLS connection: REGISTER -> 401 -> digest -> 200).
"""

import socket
import ssl
import warnings

from conftest import DOMAIN
from helpers import BaresipRegistration
from sipclient import SipClient


def test_python_tls_client_registers_200_extensions(pbx):
    users = range(2400, 2600)
    with SipClient("tls", pbx.server("tls")) as c:
        assert isinstance(c.sock, ssl.SSLSocket) and c.sock.version() in ("TLSv1.2", "TLSv1.3")
        for n in users:
            r = c.register(str(n), f"pw{n}", DOMAIN, expires=3600)
            assert r is not None, f"{n}: no answer over TLS\n{pbx.log_tail()}"
            assert r.status == 200, f"{n}: {r.status} {r.reason}"
    found = pbx.wait_bindings(list(users), lambda b: len(b) == 200)
    assert len(found) == 200, f"registration list shows {len(found)} of 200 TLS extensions"
    assert all("tls" in lines[0].lower() for lines in found.values())


def test_tls_refuses_old_protocols(pbx):
    """TLS 1.2+ only (issue 3): a client offering only TLS 1.1 is refused by the server (an
    alert from the PBX, not a client that could not even offer TLS 1.1)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    ctx.set_ciphers("DEFAULT:@SECLEVEL=0")      # let this OpenSSL offer TLS 1.1 at all
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        ctx.minimum_version = ctx.maximum_version = ssl.TLSVersion.TLSv1_1
    s = socket.create_connection(pbx.server("tls"), timeout=3)
    try:
        t = ctx.wrap_socket(s, server_hostname="127.0.0.1")
    except ssl.SSLError as e:
        assert "ALERT" in str(e).upper(), f"the client could not offer TLS 1.1, nothing checked: {e}"
        return
    except OSError:
        return                    # connection closed by the PBX: refused too
    finally:
        s.close()
    v = t.version()
    t.close()
    raise AssertionError(f"the PBX accepted a {v} handshake")


def test_baresip_registers_several_extensions_over_tls(pbx, tmp_path):
    phones = [BaresipRegistration(pbx, n, f"secret{n}", "tls", stay=15, tmp_path=str(tmp_path))
              for n in (1005, 1006, 1007)]
    try:
        for p in phones:
            assert p.wait_registered(), f"baresip {p.user} over TLS:\n{p.output()}\n{pbx.log_tail()}"
        found = pbx.wait_bindings([1005, 1006, 1007], lambda b: len(b) == 3)
        assert sorted(found) == ["1005", "1006", "1007"], pbx.registration_lines()
        for n, lines in found.items():
            assert len(lines) == 1 and "tls" in lines[0].lower(), lines
    finally:
        rcs = [p.wait() for p in phones]
    assert rcs == [0, 0, 0], [p.output() for p in phones]
