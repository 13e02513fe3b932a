"""A raw SIP phone that subscribes to message-summary (RFC 3842) and answers NOTIFYs: the
protocol side of the message-waiting tests (test_mwi.py, test_voicemail.py)."""

import os
import re
import time

from conftest import DOMAIN
from sipclient import SipClient, digest_response, parse_challenge


class Message:
    """A request or a response as received (headers by lower-case name)."""

    def __init__(self, raw):
        head, _, self.body = raw.partition(b"\r\n\r\n")
        lines = head.decode("utf-8", "replace").split("\r\n")
        self.first = lines[0]
        self.is_request = not self.first.startswith("SIP/2.0 ")
        self.method = self.first.split(" ", 1)[0] if self.is_request else None
        self.status = None if self.is_request else int(self.first.split(" ")[1])
        self.lines = [ln for ln in lines[1:] if ":" in ln]
        self.raw_head = lines

    def get(self, name):
        for ln in self.lines:
            k, v = ln.split(":", 1)
            if k.strip().lower() == name.lower():
                return v.strip()
        return None

    def text(self):
        return self.body.decode("utf-8", "replace")


class Phone:
    """A UDP SIP endpoint on its own loopback address that subscribes and answers NOTIFYs."""

    def __init__(self, pbx, user, local_ip):
        self.pbx, self.user = pbx, str(user)
        self.c = SipClient("udp", pbx.server("udp"), local_ip=local_ip)
        self.backlog = []

    def close(self):
        self.c.close()

    def recv(self, timeout=3.0):
        if self.backlog:
            return self.backlog.pop(0)
        self.c.sock.settimeout(timeout)
        try:
            data, _ = self.c.sock.recvfrom(65535)
        except (TimeoutError, OSError):
            return None
        return Message(data)

    def expect(self, want, timeout=5.0):
        """The next message `want(m)` accepts; others are kept for later."""
        end, skipped = time.time() + timeout, []
        try:
            while time.time() < end:
                m = self.recv(max(0.1, end - time.time()))
                if m is None:
                    continue
                if want(m):
                    return m
                skipped.append(m)
            return None
        finally:
            self.backlog = skipped + self.backlog

    def answer(self, request, status=200, reason="OK"):
        """A response to a request the PBX sent (Via, From, To, Call-ID, CSeq copied)."""
        copied = [ln for ln in request.lines
                  if ln.split(":", 1)[0].strip().lower() in ("via", "from", "to", "call-id",
                                                              "cseq")]
        copied = [ln + ";tag=phone" if ln.lower().startswith("to:") and "tag=" not in ln
                  else ln for ln in copied]
        text = f"SIP/2.0 {status} {reason}\r\n" + "\r\n".join(copied) + "\r\nContent-Length: 0\r\n\r\n"
        self.c.send_raw(text.encode())

    def subscribe(self, mailbox=None, expires=600, event="message-summary", to_tag=None,
                  password=None, extra=()):
        """SUBSCRIBE (answering one 401); the final response. `to_tag`: in the dialog."""
        mailbox = mailbox or self.user
        uri = f"sip:{mailbox}@{DOMAIN}"
        to = f"{uri}>;tag={to_tag}" if to_tag else uri
        headers = [f"Event: {event}", f"Contact: <sip:{self.user}@{self.c.local[0]}:{self.c.local[1]}>",
                   *extra]
        if expires is not None:
            headers.append(f"Expires: {expires}")
        r = self._send("SUBSCRIBE", uri, to, headers)
        if r is not None and r.status == 401:
            ch = parse_challenge(r.get("www-authenticate"))
            auth = digest_response(ch, "SUBSCRIBE", uri, self.user,
                                   password or f"secret{self.user}", os.urandom(6).hex())
            r = self._send("SUBSCRIBE", uri, to, headers + [f"Authorization: {auth}"])
        return r

    def _send(self, method, uri, to, headers):
        from_uri = f"sip:{self.user}@{DOMAIN}"
        raw = self.c.build(method, uri, from_uri, to, headers)
        # the sipclient writes `To: <URI>`: a dialog's tag goes after the bracket
        raw = raw.replace(f"To: <{to}>".encode(), f"To: <{to}".encode()) if ">;tag=" in to else raw
        self.c.send_raw(raw)
        return self.expect(lambda m: not m.is_request and m.status >= 200)

    def notify(self, timeout=6.0):
        return self.expect(lambda m: m.is_request and m.method == "NOTIFY", timeout)


def tag_of(value):
    m = re.search(r";tag=([^;>\s]+)", value or "")
    return m.group(1) if m else None
