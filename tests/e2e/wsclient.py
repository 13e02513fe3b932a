"""A SIP user agent over WebSocket (RFC 7118) for the end-to-end tests, on PyPI `websockets`.

Like a browser's SIP stack it names itself by a random `.invalid` host in Via and Contact
(RFC 7118 §5.2), so the PBX can only reach it over the socket it opened. One SIP message per
WebSocket message, sent as text. It registers and subscribes with digest (401), answers
requests the PBX sends (INVITE, NOTIFY, OPTIONS, BYE) as the test decides, and keeps every
message received for `wait_for`.
"""

import os
import socket
import ssl
import time
from urllib.parse import urlsplit

from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from callclient import SipMessage
from conftest import DOMAIN
from sipclient import digest_response, parse_challenge


def open_socket(url, local_ip="127.0.0.1", subprotocols=("sip",), timeout=10):
    """The WebSocket to `url` from `local_ip` (a distinct loopback address per test), with
    the given subprotocols offered; raises websockets' InvalidStatus on a refused upgrade."""
    parts = urlsplit(url)
    raw = socket.create_connection((parts.hostname, parts.port), timeout=timeout,
                                   source_address=(local_ip, 0))
    ctx = None
    if parts.scheme == "wss":
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    try:
        return connect(url, sock=raw, ssl=ctx, subprotocols=list(subprotocols) or None, legacy=True,
                       open_timeout=timeout, close_timeout=1,
                       server_hostname=parts.hostname if ctx else None)
    except BaseException:
        raw.close()
        raise


class WsPhone:
    """One extension's device over one WebSocket."""

    def __init__(self, url, user, password, local_ip="127.0.0.1", domain=DOMAIN):
        self.url, self.user, self.password, self.domain = url, str(user), password, domain
        self.ws = open_socket(url, local_ip)
        self.transport = "WSS" if url.startswith("wss") else "WS"
        self.host = os.urandom(6).hex() + ".invalid"
        self.contact_uri = f"sip:{self.user}@{self.host};transport={self.transport.lower()}"
        self.tag = os.urandom(4).hex()
        self.cseq = 0
        self.inbox = []
        self.closed = False

    def close(self):
        try:
            self.ws.close()
        except Exception:  # noqa: BLE001 - already gone
            pass

    # ------------------------------------------------------------------ wire

    def send(self, data):
        self.ws.send(data.decode() if isinstance(data, bytes) else data)

    def _read(self, timeout):
        try:
            frame = self.ws.recv(timeout=max(timeout, 0.01))
        except TimeoutError:
            return None
        except ConnectionClosed:
            self.closed = True
            return None
        raw = frame.encode() if isinstance(frame, str) else frame
        return SipMessage(raw)

    def wait_for(self, pred, timeout=5.0):
        """The first message received (kept ones first) that `pred` accepts, or None."""
        for m in self.inbox:
            if pred(m):
                self.inbox.remove(m)
                return m
        end = time.time() + timeout
        while not self.closed:
            left = end - time.time()
            if left <= 0:
                return None
            m = self._read(left)
            if m is None:
                continue
            if pred(m):
                return m
            self.inbox.append(m)
        return None

    def wait_request(self, method, timeout=5.0):
        return self.wait_for(lambda m: m.is_request and m.method == method, timeout)

    # ------------------------------------------------------------------ requests

    def via(self):
        branch = "z9hG4bK" + os.urandom(8).hex()
        return f"Via: SIP/2.0/{self.transport} {self.host};branch={branch}", branch

    def build(self, method, uri, to_uri, headers=(), body=b"", call_id=None, to_tag=None,
              content_type="application/sdp"):
        self.cseq += 1
        via, branch = self.via()
        to = f"<{to_uri}>" + (f";tag={to_tag}" if to_tag else "")
        lines = [f"{method} {uri} SIP/2.0", via, "Max-Forwards: 70",
                 f"From: <sip:{self.user}@{self.domain}>;tag={self.tag}", f"To: {to}",
                 f"Call-ID: {call_id or self.call_id}", f"CSeq: {self.cseq} {method}",
                 "User-Agent: pbx-e2e-wsclient"]
        lines += list(headers)
        if body:
            lines.append(f"Content-Type: {content_type}")
        lines.append(f"Content-Length: {len(body)}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode() + body, branch

    @property
    def call_id(self):
        if not hasattr(self, "_call_id"):
            self._call_id = os.urandom(8).hex() + "@" + self.host
        return self._call_id

    def request(self, method, uri, to_uri, headers=(), timeout=5.0, **kw):
        """Sends one request; its final response (None on timeout)."""
        data, branch = self.build(method, uri, to_uri, headers, **kw)
        self.send(data)
        return self.wait_for(lambda m: not m.is_request and m.branch == branch
                             and m.status >= 200, timeout)

    def authenticated(self, method, uri, to_uri, headers=(), password=None, **kw):
        """A request, and again with digest when challenged (401/407); the final response."""
        r = self.request(method, uri, to_uri, headers, **kw)
        if r is None or r.status not in (401, 407):
            return r
        name = "www-authenticate" if r.status == 401 else "proxy-authenticate"
        ch = next(parse_challenge(v) for v in r.all(name)
                  if parse_challenge(v).get("algorithm", "MD5").upper() == "MD5")
        auth = digest_response(ch, method, uri, self.user, password or self.password,
                               os.urandom(6).hex())
        hname = "Authorization" if r.status == 401 else "Proxy-Authorization"
        return self.request(method, uri, to_uri, list(headers) + [f"{hname}: {auth}"], **kw)

    def register(self, expires=600, password=None):
        aor = f"sip:{self.user}@{self.domain}"
        hdrs = [f"Contact: <{self.contact_uri}>;expires={expires}", f"Expires: {expires}"]
        return self.authenticated("REGISTER", f"sip:{self.domain}", aor, hdrs, password)

    def subscribe_mwi(self, expires=600):
        aor = f"sip:{self.user}@{self.domain}"
        hdrs = ["Event: message-summary", "Accept: application/simple-message-summary",
                f"Contact: <{self.contact_uri}>", f"Expires: {expires}"]
        return self.authenticated("SUBSCRIBE", aor, aor, hdrs, call_id=os.urandom(8).hex())

    # ------------------------------------------------------------------ responding

    def respond(self, req, status, reason, body=b"", headers=(), to_tag=None):
        to = req.get("to")
        if status > 100 and ";tag=" not in to.replace(" ", ""):
            to += f";tag={to_tag or os.urandom(4).hex()}"
        lines = [f"SIP/2.0 {status} {reason}"]
        lines += [f"Via: {v}" for v in req.all("via")]
        lines += [f"Record-Route: {r}" for r in req.all("record-route")]
        lines += [f"From: {req.get('from')}", f"To: {to}", f"Call-ID: {req.call_id}",
                  f"CSeq: {req.get('cseq')}", f"Contact: <{self.contact_uri}>",
                  "User-Agent: pbx-e2e-wsclient"]
        lines += list(headers)
        if body:
            lines.append("Content-Type: application/sdp")
        lines.append(f"Content-Length: {len(body)}")
        self.send(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
