"""baresip registers (tests/clients/baresip/register.sh with STAY) and its binding is listed."""

from helpers import BaresipRegistration


def test_baresip_registration_listed_with_user_agent(pbx, tmp_path):
    phone = BaresipRegistration(pbx, 1001, "secret1001", "udp", stay=10, tmp_path=str(tmp_path))
    try:
        assert phone.wait_registered(), f"{phone.output()}\n{pbx.log_tail()}"
        lines = pbx.wait_bindings([1001], lambda b: "1001" in b).get("1001", [])
        assert len(lines) == 1, pbx.registration_lines()
        assert "baresip" in lines[0].lower(), f"user agent baresip not listed: {lines[0]!r}"
        assert "udp" in lines[0].lower(), lines[0]
        assert "127.0.0.1" in lines[0], lines[0]
    finally:
        rc = phone.wait()
    out = phone.output()
    assert rc == 0 and "reg=REGISTER_OK" in out and "result=OK" in out, out
    # baresip un-registers when it quits (REGISTER with Expires: 0)
    assert "1001" not in pbx.wait_bindings([1001], lambda b: not b), pbx.registration_lines()


def test_baresip_tcp(pbx, tmp_path):
    phone = BaresipRegistration(pbx, 1002, "secret1002", "tcp", stay=3, tmp_path=str(tmp_path))
    try:
        assert phone.wait_registered(), f"{phone.output()}\n{pbx.log_tail()}"
        lines = pbx.wait_bindings([1002], lambda b: "1002" in b).get("1002", [])
        assert len(lines) == 1 and "tcp" in lines[0].lower(), pbx.registration_lines()
    finally:
        rc = phone.wait()
    assert rc == 0, phone.output()


def test_baresip_wrong_password_fails(pbx, tmp_path):
    phone = BaresipRegistration(pbx, 1008, "wrong", "udp", stay=0, tmp_path=str(tmp_path),
                                local_ip="127.0.0.7")
    rc = phone.wait()
    out = phone.output()
    assert rc == 1 and "REGISTER_FAIL" in out, out
