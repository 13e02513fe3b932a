"""`pbx check`: a valid config exits 0; a bad one prints every problem as path:line:col: message
and exits 1."""

import os
import re
import subprocess

from conftest import PBX_BIN, Pbx

BAD = """[sip]
listen = ["udp:127.0.0.1:5060", "carrier-pigeon:1.2.3.4:5"]
domain = "pbx.test"
colour = "blue"

[database]
url = "sqlite://data/pbx.db"

[security]
max_auth_failures = "five"
failure_window = "sixty"
ban_for = "1h"

[web]
listen = "127.0.0.1:not-a-port"
tls = "yes"
"""
# the line of each problem above (1-based): bad listen scheme, unknown key, wrong type,
# bad duration, bad address, not a boolean
BAD_LINES = {2, 4, 10, 11, 15, 16}


def check(path):
    return subprocess.run([PBX_BIN, "check", "--config", path], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, timeout=60)


def test_check_accepts_the_test_config(tmp_path):
    p = Pbx(tmp_path)
    r = check(p.config)
    p.drop_database()
    assert r.returncode == 0, r.stdout + r.stderr


def test_check_reports_every_problem_with_position(tmp_path):
    path = os.path.join(str(tmp_path), "pbx.toml")
    with open(path, "w") as f:
        f.write(BAD)
    r = check(path)
    assert r.returncode == 1, f"exit {r.returncode}\n{r.stdout}{r.stderr}"
    out = r.stdout + r.stderr
    rx = re.compile(r"^(?P<path>.+?):(?P<line>\d+):(?P<col>\d+): (?P<msg>\S.*)$")
    found = [m for m in (rx.match(ln) for ln in out.splitlines()) if m]
    assert found, f"no path:line:col: message lines in:\n{out}"
    for m in found:
        assert os.path.basename(m["path"]) == "pbx.toml", m.group(0)
        assert int(m["col"]) >= 1
    lines = {int(m["line"]) for m in found}
    assert BAD_LINES <= lines, f"expected problems on lines {sorted(BAD_LINES)}, got {sorted(lines)}:\n{out}"


def test_check_warns_about_rtp_ports_in_the_ephemeral_range(tmp_path):
    """ports = "40000-41000" lies inside the kernel's ephemeral ports (32768-60999 by
    default): a warning pointing at the value, and still exit 0."""
    p = Pbx(tmp_path)
    with open(p.config) as f:
        text = f.read()
    text = re.sub(r'(?m)^ports = ".*"$', 'ports = "40000-41000"', text)
    with open(p.config, "w") as f:
        f.write(text)
    lines = text.splitlines()
    line = next(i for i, ln in enumerate(lines, 1) if ln.startswith("ports = "))
    col = lines[line - 1].index('"') + 1
    r = check(p.config)
    p.drop_database()
    assert r.returncode == 0, f"exit {r.returncode}\n{r.stdout}{r.stderr}"
    low, high = 32768, 60999
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            low, high = (int(v) for v in f.read().split())
    except OSError:
        pass
    expected = (f"{p.config}:{line}:{col}: warning: the RTP port range 40000-41000 overlaps "
                f"the kernel's ephemeral ports {low}-{high}")
    if low <= 41000 and 40000 <= high:
        assert expected in r.stderr, f"expected {expected!r} in:\n{r.stderr}"
    else:  # a kernel tuned away from the default: no overlap, no warning
        assert "warning" not in r.stderr, r.stderr
    # The generated test config (ports below 20000) has no such warning.
    clean = Pbx(tmp_path, "clean")
    r = check(clean.config)
    clean.drop_database()
    assert r.returncode == 0 and "warning" not in r.stderr, r.stdout + r.stderr


def test_check_missing_file(tmp_path):
    r = check(os.path.join(str(tmp_path), "nope.toml"))
    assert r.returncode == 1
    assert "nope.toml" in r.stdout + r.stderr


def test_check_validates_media_bind_and_connection_limits(tmp_path):
    path = os.path.join(str(tmp_path), "pbx.toml")
    with open(path, "w") as f:
        f.write('[sip]\ndomain = "pbx.test"\n'
                '[rtp]\nbind = "eth0"\n'
                '[security]\nmessage_timeout = "0s"\nmax_connections_per_source = -1\n')
    r = check(path)
    assert r.returncode == 1, f"exit {r.returncode}\n{r.stdout}{r.stderr}"
    out = r.stdout + r.stderr
    assert re.search(r"pbx\.toml:4:8: bad bind `eth0`: expected an IP address", out), out
    assert re.search(r"pbx\.toml:6:19: `message_timeout` in \[security\] must be longer", out), out
    assert re.search(r"pbx\.toml:7:30: `max_connections_per_source` in \[security\] must be", out), out
    with open(path, "w") as f:
        f.write('[sip]\ndomain = "pbx.test"\n[rtp]\nbind = "127.0.0.1"\n')
    r = check(path)
    assert r.returncode == 0, r.stdout + r.stderr
