"""A real SMTP server for the tests: tests/clients/smtp/smtp-sink.py (aiosmtpd), saving each
message it receives as a `.eml` file."""

import email
import glob
import os
import subprocess
import sys
import time

import pytest

from conftest import CLIENTS

SINK = os.path.join(CLIENTS, "smtp", "smtp-sink.py")


class SmtpSink:
    """tests/clients/smtp/smtp-sink.py on `port`, saving each message under `dir`."""

    def __init__(self, directory, port):
        self.dir, self.port = str(directory), port
        os.makedirs(self.dir, exist_ok=True)
        self.proc = subprocess.Popen(
            [sys.executable, SINK, "--dir", self.dir, "--port", str(port), "--duration", "600"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        line = self.proc.stdout.readline()
        if "READY" not in line:
            self.proc.kill()
            pytest.fail(f"smtp-sink did not start: {line}{self.proc.stdout.read()}")

    def messages(self):
        out = []
        for path in sorted(glob.glob(os.path.join(self.dir, "*.eml"))):
            with open(path, "rb") as f:
                out.append(email.message_from_bytes(f.read()))
        return out

    def wait(self, n, timeout):
        end = time.time() + timeout
        while time.time() < end:
            if len(self.messages()) >= n:
                return self.messages()
            time.sleep(0.2)
        return self.messages()

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
