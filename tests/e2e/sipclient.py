"""A small SIP user agent client for the end-to-end tests (Python stdlib only).

It sends requests over UDP, TCP or TLS (``ssl``, certificate not verified: the PBX makes a
self-signed one on first start), parses the responses, and answers digest challenges
(RFC 3261 §22, RFC 7616: MD5 or SHA-256, qop=auth). It exists for the protocol checks that no
packaged client does precisely (exact status codes, Min-Expires, no answer at all after a ban,
raw garbage bytes) and for REGISTER over TLS, because Debian's SIPp 3.6.1 is built without TLS.
"""

import hashlib
import os
import re
import socket
import ssl
import time

COMPACT = {"v": "via", "f": "from", "t": "to", "i": "call-id", "m": "contact", "l": "content-length",
           "c": "content-type", "k": "supported", "s": "subject", "e": "content-encoding"}


class Response:
    def __init__(self, raw: bytes):
        self.raw = raw
        head, _, self.body = raw.partition(b"\r\n\r\n")
        lines = head.decode("utf-8", "replace").split("\r\n")
        parts = lines[0].split(" ", 2)
        if len(parts) < 2 or parts[0] != "SIP/2.0":
            raise ValueError(f"not a SIP response: {lines[0]!r}")
        self.status = int(parts[1])
        self.reason = parts[2] if len(parts) > 2 else ""
        self.headers: list[tuple[str, str]] = []
        for line in lines[1:]:
            if line[:1] in (" ", "\t") and self.headers:      # folded line
                k, v = self.headers[-1]
                self.headers[-1] = (k, v + " " + line.strip())
            elif ":" in line:
                k, v = line.split(":", 1)
                k = k.strip().lower()
                self.headers.append((COMPACT.get(k, k), v.strip()))

    def all(self, name: str) -> list[str]:
        name = name.lower()
        return [v for k, v in self.headers if k == name]

    def get(self, name: str) -> str | None:
        vals = self.all(name)
        return vals[0] if vals else None

    def __repr__(self):
        return f"<Response {self.status} {self.reason}>"


def parse_challenge(value: str) -> dict:
    """`Digest realm="r", nonce="n", qop="auth", algorithm=SHA-256` -> dict (keys lower-case)."""
    scheme, _, rest = value.partition(" ")
    out = {"scheme": scheme}
    for m in re.finditer(r'([A-Za-z0-9_-]+)\s*=\s*("((?:[^"\\]|\\.)*)"|[^\s,]+)', rest):
        out[m.group(1).lower()] = m.group(3) if m.group(3) is not None else m.group(2)
    return out


def digest_response(ch: dict, method: str, uri: str, user: str, password: str,
                    cnonce: str, nc: int = 1) -> str:
    """The Authorization header value answering challenge `ch`."""
    alg = ch.get("algorithm", "MD5")
    h = {"MD5": hashlib.md5, "SHA-256": hashlib.sha256}[alg.upper().replace("SHA256", "SHA-256")]

    def H(s: str) -> str:
        return h(s.encode()).hexdigest()

    realm, nonce = ch.get("realm", ""), ch.get("nonce", "")
    ha1 = H(f"{user}:{realm}:{password}")
    ha2 = H(f"{method}:{uri}")
    qops = [q.strip() for q in ch.get("qop", "").split(",") if q.strip()]
    parts = [f'username="{user}"', f'realm="{realm}"', f'nonce="{nonce}"', f'uri="{uri}"',
             f"algorithm={alg}"]
    if "auth" in qops:
        ncs = f"{nc:08x}"
        resp = H(f"{ha1}:{nonce}:{ncs}:{cnonce}:auth:{ha2}")
        parts += ["qop=auth", f"nc={ncs}", f'cnonce="{cnonce}"']
    else:
        resp = H(f"{ha1}:{nonce}:{ha2}")
    parts.append(f'response="{resp}"')
    if "opaque" in ch:
        parts.append(f'opaque="{ch["opaque"]}"')
    return "Digest " + ", ".join(parts)


class SipClient:
    """One local socket (UDP) or one connection (TCP/TLS) to the PBX."""

    def __init__(self, transport: str, server: tuple[str, int], local_ip: str = "127.0.0.1",
                 timeout: float = 3.0):
        self.transport = transport.lower()
        self.server = server
        self.timeout = timeout
        self.buf = b""
        if self.transport == "udp":
            self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            self.sock.bind((local_ip, 0))
        else:
            raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            raw.bind((local_ip, 0))
            raw.settimeout(timeout)
            raw.connect(server)
            if self.transport == "tls":
                ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
                ctx.check_hostname = False
                ctx.verify_mode = ssl.CERT_NONE
                ctx.minimum_version = ssl.TLSVersion.TLSv1_2
                raw = ctx.wrap_socket(raw, server_hostname=server[0])
            self.sock = raw
        self.local = self.sock.getsockname()
        self.cseq = 0
        self.call_id = f"{os.urandom(8).hex()}@{self.local[0]}"
        self.tag = os.urandom(4).hex()

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # ------------------------------------------------------------------ wire

    def send_raw(self, data: bytes):
        if self.transport == "udp":
            self.sock.sendto(data, self.server)
        else:
            self.sock.sendall(data)

    def recv(self, timeout: float | None = None) -> Response | None:
        """The next response, or None when nothing (complete) arrives in time."""
        timeout = self.timeout if timeout is None else timeout
        end = time.time() + timeout
        while True:
            left = end - time.time()
            if left <= 0:
                return None
            if self.transport == "udp":
                self.sock.settimeout(left)
                try:
                    data, _ = self.sock.recvfrom(65535)
                except (socket.timeout, TimeoutError):
                    return None
                if data.strip() == b"":
                    continue            # keep-alive
                return Response(data)
            msg = self._frame()
            if msg is not None:
                return Response(msg)
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(65535)
            except (socket.timeout, TimeoutError):
                return None
            if not data:
                raise ConnectionError("connection closed by the PBX")
            self.buf += data

    def _frame(self) -> bytes | None:
        """One message from the stream buffer (Content-Length framing, RFC 3261 §18.3)."""
        self.buf = self.buf.lstrip(b"\r\n")
        end = self.buf.find(b"\r\n\r\n")
        if end < 0:
            return None
        head = self.buf[:end].decode("utf-8", "replace")
        m = re.search(r"(?im)^(?:content-length|l)\s*:\s*(\d+)", head)
        n = int(m.group(1)) if m else 0
        total = end + 4 + n
        if len(self.buf) < total:
            return None
        msg, self.buf = self.buf[:total], self.buf[total:]
        return msg

    # ------------------------------------------------------------------ requests

    def build(self, method: str, uri: str, from_uri: str, to_uri: str, headers: list[str] = (),
              body: bytes = b"", cseq: int | None = None) -> bytes:
        if cseq is None:
            self.cseq += 1
            cseq = self.cseq
        via_t = {"udp": "UDP", "tcp": "TCP", "tls": "TLS"}[self.transport]
        branch = "z9hG4bK" + os.urandom(8).hex()
        lines = [f"{method} {uri} SIP/2.0",
                 f"Via: SIP/2.0/{via_t} {self.local[0]}:{self.local[1]};branch={branch};rport",
                 "Max-Forwards: 70",
                 f"From: <{from_uri}>;tag={self.tag}",
                 f"To: <{to_uri}>",
                 f"Call-ID: {self.call_id}",
                 f"CSeq: {cseq} {method}",
                 "User-Agent: pbx-e2e-sipclient"]
        lines += list(headers)
        lines.append(f"Content-Length: {len(body)}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode() + body

    def request(self, method: str, uri: str, from_uri: str, to_uri: str, headers: list[str] = (),
                timeout: float | None = None) -> Response | None:
        """Send one request; return its final response (1xx skipped) or None on timeout."""
        self.send_raw(self.build(method, uri, from_uri, to_uri, headers))
        while True:
            r = self.recv(timeout)
            if r is None or r.status >= 200:
                return r

    def contact(self, user: str) -> str:
        return f"<sip:{user}@{self.local[0]}:{self.local[1]};transport={self.transport}>"

    def register(self, user: str, password: str, domain: str, expires: int | None = 3600,
                 contact: str | None = None, algorithm: str = "MD5", extra: list[str] = (),
                 timeout: float | None = None) -> Response | None:
        """REGISTER, answer one 401 with digest; the final response (None on timeout)."""
        uri, aor = f"sip:{domain}", f"sip:{user}@{domain}"
        hdrs = [f"Contact: {contact or self.contact(user)}"] + list(extra)
        if expires is not None:
            hdrs.append(f"Expires: {expires}")
        r = self.request("REGISTER", uri, aor, aor, hdrs, timeout)
        if r is None or r.status not in (401, 407):
            return r
        name = "www-authenticate" if r.status == 401 else "proxy-authenticate"
        chs = [parse_challenge(v) for v in r.all(name)]
        ch = next((c for c in chs if c.get("algorithm", "MD5").upper() == algorithm.upper()), None)
        if ch is None:
            raise AssertionError(f"no {algorithm} challenge in {r.all(name)}")
        auth = digest_response(ch, "REGISTER", uri, user, password, os.urandom(6).hex())
        hname = "Authorization" if r.status == 401 else "Proxy-Authorization"
        return self.request("REGISTER", uri, aor, aor, hdrs + [f"{hname}: {auth}"], timeout)
