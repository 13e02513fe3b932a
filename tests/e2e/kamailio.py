"""Kamailio as a second SIP server (registrar and proxy with digest) for the trunk tests: the
kit's tests/clients/kamailio/run-kamailio.sh on an address of the test's choosing."""

import os
import signal
import socket
import subprocess
import time

from conftest import CLIENTS, free_port, require


class Kamailio:
    """tests/clients/kamailio/run-kamailio.sh on KAMAILIO_IP: registrar and proxy, digest for
    REGISTER (401) and INVITE (407) with the users given."""

    def __init__(self, tmp_path, users, ip, probe_ip, tls_port=None):
        require("kamailio")
        self.ip, self.probe_ip, self.tls_port = ip, probe_ip, tls_port
        self.port = free_port(ip=ip)
        self.dir = os.path.join(str(tmp_path), "kamailio")
        os.makedirs(self.dir, exist_ok=True)
        users_file = os.path.join(self.dir, "users")
        with open(users_file, "w") as f:
            f.writelines(f"{u}:{p}\n" for u, p in users.items())
        env = dict(os.environ, KAM_ADDR=ip, KAM_PORT=str(self.port), KAM_USERS=users_file,
                   KAM_WORKDIR=self.dir, KAM_DEBUG="2")
        if tls_port:
            # TLS too (kamailio-tls-modules), with the certificate found in the work
            # directory, else a self-signed one.
            env["KAM_TLS_PORT"] = str(tls_port)
        self.out = open(os.path.join(self.dir, "kamailio.log"), "w")
        self.proc = subprocess.Popen([os.path.join(CLIENTS, "kamailio", "run-kamailio.sh")],
                                     stdout=self.out, stderr=subprocess.STDOUT, env=env,
                                     start_new_session=True)

    def wait_ready(self, timeout=15):
        """Kamailio answers an OPTIONS to itself."""
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind((self.probe_ip, 0))
        s.settimeout(0.5)
        end = time.time() + timeout
        try:
            while time.time() < end:
                if self.proc.poll() is not None:
                    return False
                here = s.getsockname()
                ping = (f"OPTIONS sip:{self.ip}:{self.port} SIP/2.0\r\n"
                        f"Via: SIP/2.0/UDP {here[0]}:{here[1]};branch=z9hG4bK{os.urandom(6).hex()}\r\n"
                        f"Max-Forwards: 70\r\nFrom: <sip:probe@{here[0]}>;tag=p\r\n"
                        f"To: <sip:{self.ip}:{self.port}>\r\nCall-ID: {os.urandom(6).hex()}\r\n"
                        f"CSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n")
                s.sendto(ping.encode(), (self.ip, self.port))
                try:
                    if s.recv(4096).startswith(b"SIP/2.0 200"):
                        return True
                except socket.timeout:
                    pass
            return False
        finally:
            s.close()

    def log(self):
        with open(os.path.join(self.dir, "kamailio.log"), errors="replace") as f:
            return f.read()[-6000:]

    def stop(self):
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(10)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        self.out.close()
