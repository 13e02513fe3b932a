"""A small SIP phone for the call tests (Python stdlib only, UDP).

`Phone` is one user agent on one UDP socket: it registers (digest, 401), places calls
(INVITE with SDP, answers the 407 challenge of the PBX with Proxy-Authorization, ACKs, CANCEL,
BYE, re-INVITE) and takes calls (100 Trying sent at once, then 180 / 200 with SDP / 486 ... as
the test decides). A background thread reads the socket and does what a UA's transaction layer
does on its own, so that tests only say what a phone *decides*:

- requests: a retransmission gets the last response again; CANCEL is answered 200 and the
  INVITE it cancels 487; BYE and OPTIONS are answered 200 (`auto_bye=False` to answer BYE
  yourself); a new INVITE gets 100 Trying; the ACK of a 2xx stops its retransmission;
- responses: a non-2xx final response to an INVITE is ACKed (also when retransmitted), a
  retransmitted 2xx gets its ACK again; our requests are retransmitted (RFC 3261 timers A/E)
  until answered.

Every message received is kept in `inbox` (with `wait_for` / `wait_request` to pick one), so a
test can also look at what it did not expect. SDP helpers: `sdp_offer` builds one, `Sdp` parses
one (address, port, profile, payload types, direction, crypto).
"""

import os
import re
import socket
import threading
import time

from conftest import DOMAIN
from sipclient import COMPACT, digest_response, parse_challenge

RTPMAP = {0: "PCMU/8000", 8: "PCMA/8000", 101: "telephone-event/8000"}
T1 = 0.5

# ------------------------------------------------------------------------------------ messages


class SipMessage:
    """A parsed SIP request or response (headers in order, names lower-case and long form)."""

    def __init__(self, raw: bytes, source=None):
        self.raw, self.source, self.time = raw, source, time.time()
        head, _, body = raw.partition(b"\r\n\r\n")
        lines = head.decode("utf-8", "replace").split("\r\n")
        first = lines[0].split(" ", 2)
        if first[0] == "SIP/2.0":
            self.is_request = False
            self.status, self.reason = int(first[1]), (first[2] if len(first) > 2 else "")
            self.method = self.uri = None
        else:
            if len(first) != 3 or first[2] != "SIP/2.0":
                raise ValueError(f"not a SIP message: {lines[0]!r}")
            self.is_request = True
            self.method, self.uri = first[0], first[1]
            self.status, self.reason = None, None
        self.headers = []
        for line in lines[1:]:
            if line[:1] in (" ", "\t") and self.headers:
                k, v = self.headers[-1]
                self.headers[-1] = (k, v + " " + line.strip())
            elif ":" in line:
                k, v = line.split(":", 1)
                k = k.strip().lower()
                self.headers.append((COMPACT.get(k, k), v.strip()))
        n = self.get("content-length")
        self.body = body[:int(n)] if n and n.isdigit() else body

    def all(self, name):
        """Every value of header `name`; comma-separated values of Via/Route/Record-Route are
        split into separate entries."""
        name = name.lower()
        vals = [v for k, v in self.headers if k == name]
        if name in ("via", "route", "record-route"):
            vals = [p.strip() for v in vals for p in split_commas(v)]
        return vals

    def get(self, name):
        vals = self.all(name)
        return vals[0] if vals else None

    @property
    def call_id(self):
        return self.get("call-id")

    @property
    def cseq(self):
        n, m = self.get("cseq").split()
        return int(n), m.upper()

    @property
    def branch(self):
        m = re.search(r";\s*branch=([^;,\s]+)", self.get("via") or "")
        return m.group(1) if m else None

    def tag(self, header):
        m = re.search(r";\s*tag=([^;,\s]+)", self.get(header) or "")
        return m.group(1) if m else None

    def sdp(self):
        if not self.body or "sdp" not in (self.get("content-type") or "").lower():
            return None
        return Sdp(self.body.decode("utf-8", "replace"))

    def __repr__(self):
        if self.is_request:
            return f"<{self.method} {self.uri} cseq={self.get('cseq')}>"
        return f"<{self.status} {self.reason} cseq={self.get('cseq')}>"

    def text(self):
        return self.raw.decode("utf-8", "replace")


def split_commas(value):
    """Split a header value on commas outside <...> and quotes."""
    out, cur, depth, quoted = [], "", 0, False
    for ch in value:
        if ch == '"':
            quoted = not quoted
        elif not quoted and ch == "<":
            depth += 1
        elif not quoted and ch == ">":
            depth -= 1
        if ch == "," and depth == 0 and not quoted:
            out.append(cur)
            cur = ""
        else:
            cur += ch
    out.append(cur)
    return [p for p in out if p.strip()]


def uri_of(header_value):
    """The URI inside a name-addr (`"x" <sip:a@b;p>;tag=..` -> sip:a@b;p) or addr-spec."""
    m = re.search(r"<([^>]*)>", header_value)
    return m.group(1) if m else header_value.split(";")[0].strip()


# ------------------------------------------------------------------------------------ SDP


def sdp_offer(ip, port, pts=(0, 101), direction="sendrecv", proto="RTP/AVP", crypto=None,
              version=1, session_id=None, rtpmap=None):
    """An SDP body (bytes) for one audio stream. `crypto`: a list of a=crypto values;
    `rtpmap`: {pt: "encoding/rate"} for payload types other than 0, 8 and 101."""
    names = {**RTPMAP, **(rtpmap or {})}
    sid = session_id or int.from_bytes(os.urandom(4), "big")
    lines = ["v=0", f"o=e2e {sid} {version} IN IP4 {ip}", "s=-", f"c=IN IP4 {ip}", "t=0 0",
             f"m=audio {port} {proto} {' '.join(str(p) for p in pts)}"]
    for p in pts:
        if p in names:
            lines.append(f"a=rtpmap:{p} {names[p]}")
        if names.get(p, "").lower().startswith("telephone-event"):
            lines.append(f"a=fmtp:{p} 0-16")
    lines += [f"a=crypto:{c}" for c in crypto or []]
    lines += ["a=ptime:20", f"a={direction}"]
    return ("\r\n".join(lines) + "\r\n").encode()


class Sdp:
    """The first audio stream of an SDP body."""

    DIRECTIONS = ("sendrecv", "sendonly", "recvonly", "inactive")

    def __init__(self, text):
        self.text = text
        self.ip = None
        self.port = None
        self.proto = None
        self.pts = []
        self.attrs = []            # media-level attributes, (name, value or None)
        session_attrs = []
        media_ip = None
        in_audio = seen_m = False
        for line in text.replace("\r\n", "\n").split("\n"):
            line = line.strip()
            if len(line) < 2 or line[1] != "=":
                continue
            k, v = line[0], line[2:]
            if k == "m":
                seen_m = True
                parts = v.split()
                in_audio = parts[0] == "audio" and self.port is None
                if in_audio:
                    self.port, self.proto = int(parts[1]), parts[2]
                    self.pts = [int(p) for p in parts[3:] if p.isdigit()]
            elif k == "c":
                addr = v.split()[-1].split("/")[0]
                if not seen_m:
                    self.ip = addr
                elif in_audio:
                    media_ip = addr
            elif k == "a":
                name, _, val = v.partition(":")
                item = (name, val if _ else None)
                if not seen_m:
                    session_attrs.append(item)
                elif in_audio:
                    self.attrs.append(item)
        self.ip = media_ip or self.ip
        self.session_attrs = session_attrs

    def attr(self, name):
        return [v for k, v in self.attrs if k == name]

    @property
    def direction(self):
        for k, _ in self.attrs:
            if k in self.DIRECTIONS:
                return k
        for k, _ in self.session_attrs:
            if k in self.DIRECTIONS:
                return k
        return "sendrecv"

    @property
    def crypto(self):
        return self.attr("crypto")

    @property
    def addr(self):
        return (self.ip, self.port)

    def rtpmap(self):
        out = {}
        for v in self.attr("rtpmap"):
            pt, _, enc = v.partition(" ")
            out[int(pt)] = enc.strip()
        return out

    def __repr__(self):
        return f"<SDP {self.ip}:{self.port} {self.proto} {self.pts} {self.direction}>"


# ------------------------------------------------------------------------------------ phone


class Phone:
    """One SIP user agent on one UDP socket; every request goes to the PBX at `pbx_addr`."""

    def __init__(self, user, password, pbx_addr, local_ip="127.0.0.1", port=0, domain=DOMAIN,
                 auto_bye=True, name=None, display_name=None):
        """`display_name`: put in the From of the calls this phone places (quoted)."""
        self.user, self.password, self.pbx, self.domain = str(user), password, tuple(pbx_addr), domain
        self.display_name = display_name
        self.name = name or f"{user}@{local_ip}"
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((local_ip, port))
        self.local = self.sock.getsockname()
        self.auto_bye = auto_bye
        self.inbox = []                  # every message received, in order
        self.consumed = set()            # ids of inbox messages a wait_* has returned
        self.cv = threading.Condition()
        self.responses_sent = {}         # (branch, method) -> bytes of the last response
        self.invites_answered = {}       # INVITE branch -> final status sent
        self.server_invites = {}         # INVITE branch -> the INVITE (for CANCEL)
        self.acks = {}                   # (call-id, cseq) -> ACK bytes of a 2xx we got
        self.retrans_2xx = {}            # (call-id, cseq) -> [bytes, next, interval, until, dest]
        self.client_tx = {}              # branch -> [bytes, next time, interval, method, until]
        self.client_invites = {}         # branch -> the INVITE bytes' parsed form (for ACK)
        self.outgoing = {}               # initial INVITE branch -> OutgoingCall
        self.reg_call_id = f"reg-{os.urandom(6).hex()}@{self.local[0]}"
        self.reg_tag = os.urandom(4).hex()
        self.reg_cseq = 0
        # called with each datagram the moment it arrives, before parsing (on the phone's
        # thread): for tests that must act within microseconds of a message
        self.on_datagram = None
        self._stop = False
        self._thread = threading.Thread(target=self._loop, daemon=True, name=self.name)
        self._thread.start()

    # ------------------------------------------------------------------ basics

    @property
    def aor(self):
        return f"sip:{self.user}@{self.domain}"

    @property
    def contact_uri(self):
        return f"sip:{self.user}@{self.local[0]}:{self.local[1]}"

    def close(self):
        self._stop = True
        self._thread.join(2)
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def send(self, data: bytes, dest=None):
        """Requests go to the PBX; responses to where their request came from (`dest`)."""
        self.sock.sendto(data, tuple(dest) if dest else self.pbx)

    def via(self, branch=None):
        branch = branch or "z9hG4bK" + os.urandom(8).hex()
        return f"Via: SIP/2.0/UDP {self.local[0]}:{self.local[1]};branch={branch};rport", branch

    def send_request(self, data: bytes, branch: str, method: str):
        """Send and retransmit (timer A for INVITE, E for others) until a response arrives."""
        with self.cv:
            self.client_tx[branch] = [data, time.time() + T1, T1, method, time.time() + 32 * T1]
        self.send(data)

    # ------------------------------------------------------------------ receive loop

    def _loop(self):
        self.sock.settimeout(0.05)
        while not self._stop:
            try:
                data, src = self.sock.recvfrom(65535)
            except (socket.timeout, TimeoutError):
                self._timers()
                continue
            except OSError:
                if self._stop:
                    return
                continue
            hook = self.on_datagram
            if hook is not None:
                hook(data)
            self._timers()
            if not data.strip():
                continue                                        # keep-alive
            try:
                msg = SipMessage(data, src)
            except (ValueError, IndexError):
                continue
            try:
                keep = self._handle_request(msg) if msg.is_request else self._handle_response(msg)
            except Exception:  # noqa: BLE001 - a malformed message must not kill the phone
                keep = True
            if keep:
                with self.cv:
                    self.inbox.append(msg)
                    self.cv.notify_all()

    def _timers(self):
        now = time.time()
        with self.cv:
            for branch, tx in list(self.client_tx.items()):
                if now >= tx[4]:
                    del self.client_tx[branch]
                elif now >= tx[1]:
                    self.send(tx[0])
                    tx[2] = tx[2] * 2 if tx[3] == "INVITE" else min(tx[2] * 2, 4.0)
                    tx[1] = now + tx[2]
            for key, rt in list(self.retrans_2xx.items()):
                if now >= rt[3]:
                    del self.retrans_2xx[key]
                elif now >= rt[1]:
                    self.send(rt[0], rt[4])
                    rt[2] = min(rt[2] * 2, 4.0)
                    rt[1] = now + rt[2]

    def _handle_request(self, req):
        """Transaction-layer work for a request; returns True to keep it in the inbox."""
        branch, method = req.branch, req.method
        key = (branch, method)
        if method == "ACK":
            with self.cv:
                self.retrans_2xx.pop((req.call_id, req.cseq[0]), None)
            # the ACK of a non-2xx final response is part of the INVITE transaction
            return branch not in self.invites_answered or self.invites_answered[branch] < 300
        if key in self.responses_sent:                          # retransmission
            self.send(self.responses_sent[key])
            return False
        if method == "INVITE":
            if branch in self.server_invites:
                return False                                    # retransmission, not answered yet
            self.server_invites[branch] = req
            self.respond(req, 100, "Trying")
            return True
        if method == "CANCEL":
            inv = self.server_invites.get(branch)
            if inv is None:
                self.respond(req, 481, "Call/Transaction Does Not Exist")
                return True
            self.respond(req, 200, "OK")
            if branch not in self.invites_answered:
                self.respond(inv, 487, "Request Terminated")
            return True
        if method == "BYE" and self.auto_bye:
            self.respond(req, 200, "OK")
            return True
        if method == "OPTIONS":
            self.respond(req, 200, "OK", headers=["Allow: INVITE, ACK, CANCEL, BYE, OPTIONS"])
            return True
        return True

    def _handle_response(self, resp):
        branch = resp.branch
        num, method = resp.cseq
        with self.cv:
            tx = self.client_tx.get(branch)
            if tx is not None and (resp.status >= 200 or tx[3] == "INVITE"):
                del self.client_tx[branch]
            elif tx is not None:
                tx[2] = 4.0                                     # provisional: timer E = T2
        if method == "INVITE" and resp.status >= 300:
            inv = self.client_invites.get(branch)
            if inv is not None:
                self.send(self._ack_non_2xx(inv, resp))
            dup = any(m.branch == branch and not m.is_request and m.status == resp.status
                      and m.cseq == resp.cseq for m in self.inbox)
            call = self.outgoing.get(branch)
            if not dup and call is not None and resp.status in (401, 407) and not call.challenged:
                # answer the challenge at once: INVITE again with credentials (new branch)
                call.challenged.append(resp)
                call.auth = self._authorization(resp, "INVITE", call.uri)
                call.send_invite()
            return not dup
        if method == "INVITE" and 200 <= resp.status < 300:
            ack = self.acks.get((resp.call_id, num))
            if ack is not None:                                 # retransmitted 2xx
                self.send(ack)
                return False
        return True

    def _ack_non_2xx(self, inv, resp):
        """RFC 3261 §17.1.1.3: same branch and Request-URI, To from the response."""
        lines = [f"ACK {inv.uri} SIP/2.0", f"Via: {inv.get('via')}", "Max-Forwards: 70",
                 f"From: {inv.get('from')}", f"To: {resp.get('to')}", f"Call-ID: {inv.call_id}",
                 f"CSeq: {inv.cseq[0]} ACK"]
        lines += [f"Route: {r}" for r in inv.all("route")]
        return ("\r\n".join(lines) + "\r\nContent-Length: 0\r\n\r\n").encode()

    # ------------------------------------------------------------------ waiting

    def wait_for(self, pred, timeout, consume=True):
        """The first inbox message not yet returned for which pred(msg) holds; None after
        `timeout` s."""
        end = time.time() + timeout
        with self.cv:
            while True:
                for m in self.inbox:
                    if id(m) not in self.consumed and pred(m):
                        if consume:
                            self.consumed.add(id(m))
                        return m
                left = end - time.time()
                if left <= 0:
                    return None
                self.cv.wait(min(left, 0.1))

    def wait_request(self, method, timeout, call_id=None):
        return self.wait_for(lambda m: m.is_request and m.method == method
                             and (call_id is None or m.call_id == call_id), timeout)

    def requests(self, method):
        with self.cv:
            return [m for m in self.inbox if m.is_request and m.method == method]

    def describe_inbox(self):
        with self.cv:
            return ", ".join(repr(m) for m in self.inbox) or "(nothing received)"

    # ------------------------------------------------------------------ responding

    def respond(self, req, status, reason, body=b"", headers=(), to_tag=None, contact=False,
                content_type="application/sdp"):
        """Send a response to `req` (and remember it for retransmissions of `req`)."""
        to = req.get("to")
        if status > 100 and not re.search(r";\s*tag=", to):
            to += f";tag={to_tag or os.urandom(4).hex()}"
        lines = [f"SIP/2.0 {status} {reason}"]
        lines += [f"Via: {v}" for v in req.all("via")]
        if req.method == "INVITE" and 100 < status < 300:
            lines += [f"Record-Route: {r}" for r in req.all("record-route")]
        lines += [f"From: {req.get('from')}", f"To: {to}", f"Call-ID: {req.call_id}",
                  f"CSeq: {req.get('cseq')}"]
        if contact or (req.method == "INVITE" and 100 < status < 300):
            lines.append(f"Contact: <{self.contact_uri}>")
        lines.append("User-Agent: pbx-e2e-callclient")
        lines += list(headers)
        if body:
            lines.append(f"Content-Type: {content_type}")
        lines.append(f"Content-Length: {len(body)}")
        data = ("\r\n".join(lines) + "\r\n\r\n").encode() + body
        self.responses_sent[(req.branch, req.method)] = data
        if req.method == "INVITE" and status >= 200:
            self.invites_answered[req.branch] = status
            if status < 300:
                with self.cv:
                    self.retrans_2xx[(req.call_id, req.cseq[0])] = [data, time.time() + T1, T1,
                                                                    time.time() + 32 * T1,
                                                                    req.source]
        self.send(data, req.source)
        return data

    # ------------------------------------------------------------------ registration

    def register(self, expires=300, timeout=5):
        """REGISTER this phone's contact (answers a 401/407); returns the final response."""
        uri = f"sip:{self.domain}"
        auth = None
        for _ in range(3):
            self.reg_cseq += 1
            via, branch = self.via()
            lines = [f"REGISTER {uri} SIP/2.0", via, "Max-Forwards: 70",
                     f"From: <{self.aor}>;tag={self.reg_tag}", f"To: <{self.aor}>",
                     f"Call-ID: {self.reg_call_id}", f"CSeq: {self.reg_cseq} REGISTER",
                     f"Contact: <{self.contact_uri}>", f"Expires: {expires}",
                     "User-Agent: pbx-e2e-callclient"]
            if auth:
                lines.append(auth)
            self.send_request(("\r\n".join(lines) + "\r\nContent-Length: 0\r\n\r\n").encode(),
                              branch, "REGISTER")
            r = self.wait_for(lambda m, b=branch: not m.is_request and m.branch == b
                              and m.status >= 200, timeout)
            if r is None or r.status not in (401, 407) or auth:
                return r
            auth = self._authorization(r, "REGISTER", uri)
        return r

    def unregister(self):
        return self.register(expires=0)

    def _authorization(self, resp, method, uri):
        name = "www-authenticate" if resp.status == 401 else "proxy-authenticate"
        chs = [parse_challenge(v) for v in resp.all(name)]
        ch = next((c for c in chs if c.get("algorithm", "MD5").upper() in ("MD5", "SHA-256")), None)
        if ch is None:
            raise AssertionError(f"no usable digest challenge in {resp.all(name)}")
        value = digest_response(ch, method, uri, self.user, self.password, os.urandom(6).hex())
        return f"{'Authorization' if resp.status == 401 else 'Proxy-Authorization'}: {value}"

    # ------------------------------------------------------------------ calls

    def call(self, target, sdp=None, headers=()):
        """Send an INVITE to `target` (a number at the domain, or a sip: URI); returns the
        `OutgoingCall` (use `wait_final()`)."""
        uri = target if target.startswith("sip") else f"sip:{target}@{self.domain}"
        c = OutgoingCall(self, uri, sdp, headers)
        c.send_invite()
        return c

    def wait_call(self, timeout=10):
        """The next initial INVITE (no To tag) as an `IncomingCall`, or None."""
        inv = self.wait_for(lambda m: m.is_request and m.method == "INVITE"
                            and m.tag("to") is None, timeout)
        return IncomingCall(self, inv) if inv else None


class Dialog:
    """What both call directions share: building in-dialog requests, BYE, re-INVITE."""

    def __init__(self, phone):
        self.phone = phone
        self.call_id = None
        self.local_party = None          # our From (UAC) / To (UAS) value, with our tag
        self.remote_party = None         # theirs, with their tag
        self.remote_target = None
        self.route_set = []
        self.local_cseq = 0
        self.last_sdp_version = 1

    def request(self, method, body=b"", headers=(), content_type="application/sdp"):
        """Build and send an in-dialog request; returns its branch."""
        self.local_cseq += 1
        via, branch = self.phone.via()
        lines = [f"{method} {self.remote_target} SIP/2.0", via, "Max-Forwards: 70"]
        lines += [f"Route: {r}" for r in self.route_set]
        lines += [f"From: {self.local_party}", f"To: {self.remote_party}",
                  f"Call-ID: {self.call_id}", f"CSeq: {self.local_cseq} {method}",
                  f"Contact: <{self.phone.contact_uri}>", "User-Agent: pbx-e2e-callclient"]
        lines += list(headers)
        if body:
            lines.append(f"Content-Type: {content_type}")
        lines.append(f"Content-Length: {len(body)}")
        data = ("\r\n".join(lines) + "\r\n\r\n").encode() + body
        if method == "INVITE":
            self.phone.client_invites[branch] = SipMessage(data)
        self.phone.send_request(data, branch, method)
        return branch

    def final_response(self, branch, timeout):
        return self.phone.wait_for(lambda m: not m.is_request and m.branch == branch
                                   and m.status >= 200, timeout)

    def bye(self, timeout=5):
        """Send BYE; returns its final response (None on timeout)."""
        return self.final_response(self.request("BYE"), timeout)

    def wait_bye(self, timeout=10):
        return self.phone.wait_request("BYE", timeout, call_id=self.call_id)

    def reinvite(self, sdp, timeout=5):
        """re-INVITE with `sdp`; ACKs a 2xx; returns the final response."""
        return self.finish_reinvite(self.start_reinvite(sdp), timeout)

    def start_reinvite(self, sdp):
        """Send a re-INVITE and return at once (its branch, for `finish_reinvite`)."""
        return self.request("INVITE", sdp)

    def finish_reinvite(self, branch, timeout=5):
        """The final response to the re-INVITE sent on `branch`; a 2xx is ACKed."""
        r = self.final_response(branch, timeout)
        if r is not None and 200 <= r.status < 300:
            self.send_ack(r)
        return r

    def accept_reinvite(self, req, sdp):
        """200 OK with `sdp` to a re-INVITE received in this dialog."""
        self.phone.respond(req, 200, "OK", body=sdp)

    def send_ack(self, resp):
        num = resp.cseq[0]
        via, _ = self.phone.via()
        lines = [f"ACK {self.remote_target} SIP/2.0", via, "Max-Forwards: 70"]
        lines += [f"Route: {r}" for r in self.route_set]
        lines += [f"From: {self.local_party}", f"To: {self.remote_party}",
                  f"Call-ID: {self.call_id}", f"CSeq: {num} ACK", "Content-Length: 0"]
        data = ("\r\n".join(lines) + "\r\n\r\n").encode()
        self.phone.acks[(self.call_id, num)] = data
        self.phone.send(data)

    def wait_reinvite(self, timeout=5):
        return self.phone.wait_for(lambda m: m.is_request and m.method == "INVITE"
                                   and m.call_id == self.call_id and m.tag("to") is not None,
                                   timeout)


class OutgoingCall(Dialog):
    """A call this phone places (the UAC side)."""

    def __init__(self, phone, uri, sdp, headers):
        super().__init__(phone)
        self.uri, self.sdp_body, self.extra = uri, sdp or b"", list(headers)
        self.call_id = f"{os.urandom(8).hex()}@{phone.local[0]}"
        shown = f'"{phone.display_name}" ' if phone.display_name else ""
        self.local_party = f"{shown}<{phone.aor}>;tag={os.urandom(4).hex()}"
        self.remote_party = f"<{uri}>"
        self.branch = None
        self.invite_via = None
        self.auth = None
        self.provisional = []            # every 1xx received, in order
        self.responses = []              # every response to our INVITE(s), in order
        self.challenged = []             # the 401/407 answered (by the phone's thread)

    def send_invite(self):
        self.local_cseq += 1
        via, self.branch = self.phone.via()
        self.invite_via = via
        lines = [f"INVITE {self.uri} SIP/2.0", via, "Max-Forwards: 70",
                 f"From: {self.local_party}", f"To: <{self.uri}>", f"Call-ID: {self.call_id}",
                 f"CSeq: {self.local_cseq} INVITE", f"Contact: <{self.phone.contact_uri}>",
                 "Allow: INVITE, ACK, CANCEL, BYE, OPTIONS", "User-Agent: pbx-e2e-callclient"]
        if self.auth:
            lines.append(self.auth)
        lines += self.extra
        if self.sdp_body:
            lines.append("Content-Type: application/sdp")
        lines.append(f"Content-Length: {len(self.sdp_body)}")
        data = ("\r\n".join(lines) + "\r\n\r\n").encode() + self.sdp_body
        self.phone.client_invites[self.branch] = SipMessage(data)
        self.phone.outgoing[self.branch] = self
        self.phone.send_request(data, self.branch, "INVITE")

    def next_response(self, timeout):
        """The next response to the current INVITE; a 401/407 is answered (once) with
        credentials and the new INVITE's responses follow; a 2xx is ACKed."""
        end = time.time() + timeout
        while True:
            branch = self.branch
            r = self.phone.wait_for(lambda m: not m.is_request and m.branch == branch
                                    and m.cseq[1] == "INVITE", max(0.0, end - time.time()))
            if r is None:
                return None
            self.responses.append(r)
            if r.status < 200:
                self.provisional.append(r)
                return r
            if any(r is c for c in self.challenged):
                continue                    # the phone has sent the INVITE with credentials
            if r.status < 300:
                self.remote_party = r.get("to")
                contact = r.get("contact")
                self.remote_target = uri_of(contact) if contact else self.uri
                self.route_set = list(reversed(r.all("record-route")))
                self.send_ack(r)
            return r

    def peek_final(self):
        """A final response (not a challenge the phone answered) already received for the
        current INVITE, without consuming it; else None."""
        branch = self.branch
        return self.phone.wait_for(lambda m: not m.is_request and m.branch == branch
                                   and m.cseq[1] == "INVITE" and m.status >= 200
                                   and not any(m is c for c in self.challenged), 0, consume=False)

    def wait_final(self, timeout=10):
        """The final response to the INVITE (1xx collected in `provisional`), or None."""
        end = time.time() + timeout
        while True:
            r = self.next_response(max(0.0, end - time.time()))
            if r is None or r.status >= 200:
                return r

    def wait_provisional(self, status, timeout=10):
        """Wait for a provisional `status` (e.g. 180); returns it, or the final response if
        one came first, or None."""
        for r in self.provisional:
            if r.status == status:
                return r
        end = time.time() + timeout
        while True:
            r = self.next_response(max(0.0, end - time.time()))
            if r is None or r.status == status or r.status >= 200:
                return r

    def cancel(self, timeout=5):
        """CANCEL the pending INVITE; returns the CANCEL's final response."""
        inv = self.phone.client_invites[self.branch]
        lines = [f"CANCEL {self.uri} SIP/2.0", self.invite_via, "Max-Forwards: 70",
                 f"From: {self.local_party}", f"To: <{self.uri}>", f"Call-ID: {self.call_id}",
                 f"CSeq: {inv.cseq[0]} CANCEL", "User-Agent: pbx-e2e-callclient",
                 "Content-Length: 0"]
        data = ("\r\n".join(lines) + "\r\n\r\n").encode()
        # the CANCEL has the INVITE's branch: track its retransmission under a distinct key
        self.phone.send(data)
        return self.phone.wait_for(lambda m: not m.is_request and m.branch == self.branch
                                   and m.cseq[1] == "CANCEL" and m.status >= 200, timeout)

    @property
    def answer_sdp(self):
        for r in reversed(self.responses):
            if 200 <= r.status < 300 and r.sdp():
                return r.sdp()
        return None


class IncomingCall(Dialog):
    """A call this phone receives (the UAS side). `invite` is the INVITE request."""

    def __init__(self, phone, invite):
        super().__init__(phone)
        self.invite = invite
        self.call_id = invite.call_id
        self.to_tag = os.urandom(4).hex()
        self.local_party = f"{invite.get('to')};tag={self.to_tag}"
        self.remote_party = invite.get("from")
        contact = invite.get("contact")
        self.remote_target = uri_of(contact) if contact else uri_of(invite.get("from"))
        self.route_set = invite.all("record-route")

    @property
    def offer(self):
        return self.invite.sdp()

    def ring(self):
        self.phone.respond(self.invite, 180, "Ringing", to_tag=self.to_tag)

    def answer(self, sdp):
        self.phone.respond(self.invite, 200, "OK", body=sdp, to_tag=self.to_tag)

    def reject(self, status=486, reason="Busy Here"):
        self.phone.respond(self.invite, status, reason, to_tag=self.to_tag)

    def wait_ack(self, timeout=5):
        return self.phone.wait_for(lambda m: m.is_request and m.method == "ACK"
                                   and m.call_id == self.call_id, timeout)

    def wait_cancel(self, timeout=10):
        return self.phone.wait_for(lambda m: m.is_request and m.method == "CANCEL"
                                   and m.call_id == self.call_id, timeout)
