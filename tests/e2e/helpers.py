"""Helpers that drive the client recipes of tests/clients (SIPp, baresip)."""

import os
import socket
import subprocess
import time

from conftest import CLIENTS, DOMAIN, free_port, free_port_pair, require

SIPP_DIR = os.path.join(CLIENTS, "sipp")
BARESIP_DIR = os.path.join(CLIENTS, "baresip")


def sipp_register_many(pbx, users, transport, tmp_path, rate=25, local_ip="127.0.0.1", expires=3600):
    """Register every (user, password) with tests/clients/sipp/register.xml in ONE SIPp run
    (-m len(users), an injection CSV in the recipe's format). Returns (rc, screen log)."""
    require("sipp")
    csv = os.path.join(tmp_path, f"users-{transport}.csv")
    with open(csv, "w") as f:
        f.write("SEQUENTIAL\n")
        f.writelines(f"{u};{DOMAIN};[authentication username={u} password={p}]\n" for u, p in users)
    t = {"udp": "u1", "tcp": "t1"}[transport]
    port = free_port(socket.SOCK_DGRAM if transport == "udp" else socket.SOCK_STREAM, local_ip)
    logs = os.path.join(tmp_path, f"sipp-{transport}")
    os.makedirs(logs, exist_ok=True)
    argv = ["sipp", pbx.hostport(transport), "-sf", os.path.join(SIPP_DIR, "register.xml"),
            "-inf", csv, "-key", "expires", str(expires), "-t", t, "-i", local_ip, "-p", str(port),
            "-m", str(len(users)), "-r", str(rate), "-l", "50", "-nostdin", "-timeout", "90s",
            "-timeout_error", "-trace_err", "-error_file", os.path.join(logs, "errors.log"),
            "-trace_msg", "-message_file", os.path.join(logs, "messages.log")]
    r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=120)
    tail = r.stdout[-3000:]
    try:
        with open(os.path.join(logs, "errors.log"), errors="replace") as f:
            tail += "\n--- sipp errors.log:\n" + f.read()[-3000:]
    except OSError:
        pass
    return r.returncode, tail


def sipp_register_one(pbx, user, password, transport="udp", local_ip="127.0.0.1", sip_port=None,
                      expires=3600, timeout=15):
    """tests/clients/sipp/register.sh; returns (rc, output). Its last line is the summary
    `sipp-register: ... result=OK|FAIL rc=N ...`."""
    require("sipp")
    env = dict(os.environ, LOCAL_IP=local_ip, DOMAIN=DOMAIN, TIMEOUT=str(timeout),
               TRANSPORT={"udp": "u1", "tcp": "t1"}[transport])
    if sip_port:
        env["SIP_PORT"] = str(sip_port)
    r = subprocess.run([os.path.join(SIPP_DIR, "register.sh"), pbx.hostport(transport), str(user),
                        password, str(expires)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       text=True, timeout=timeout + 30, env=env)
    return r.returncode, r.stdout


class BaresipRegistration:
    """tests/clients/baresip/register.sh USER PASS STAY in the background."""

    def __init__(self, pbx, user, password, transport="udp", stay=20, tmp_path="/tmp",
                 local_ip="127.0.0.1"):
        require("baresip", "openssl")
        self.out = os.path.join(tmp_path, f"baresip-{user}-{transport}.out")
        # ports from the run's own block: the recipe's port-0 pick can be taken by an outgoing
        # connection (the PBX's database pool) before baresip binds it
        env = dict(os.environ, TRANSPORT=transport, DOMAIN=DOMAIN, TIMEOUT="20", LOCAL_IP=local_ip,
                   SIP_PORT=str(free_port_pair(local_ip)), CTRL_PORT=str(free_port()))
        self.f = open(self.out, "w")
        self.proc = subprocess.Popen([os.path.join(BARESIP_DIR, "register.sh"), pbx.hostport(transport),
                                      str(user), password, str(stay)], stdout=self.f,
                                     stderr=subprocess.STDOUT, env=env, text=True)
        self.user, self.stay = user, stay

    def output(self):
        with open(self.out, errors="replace") as f:
            return f.read()

    def wait_registered(self, timeout=30):
        """True once the recipe printed its `reginfo:` lines (it is registered and staying)."""
        end = time.time() + timeout
        while time.time() < end:
            out = self.output()
            if "reginfo:" in out:
                return True
            if self.proc.poll() is not None or "baresip-register:" in out:
                return False
            time.sleep(0.2)
        return False

    def wait(self, timeout=None):
        try:
            rc = self.proc.wait(timeout or self.stay + 40)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait(5)
        self.f.close()
        return rc
