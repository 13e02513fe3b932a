"""SIPp as a trunk's far end, for the trunk tests (test_trunk_calls.py, test_trunk_dns.py,
test_trunk_transports.py): `SippTrunk` runs a UAS scenario until stopped; `uas_scenario`
wraps a scenario's INVITE part with what every trunk's far end does besides (OPTIONS pings
answered 200, so that the PBX keeps the trunk up)."""

import os
import re
import subprocess

from conftest import require

# The end of every scenario: an OPTIONS ping's 200, and the label a finished call jumps to.
_PING_AND_DONE = """  <label id="ping"/>
  <send><![CDATA[

SIP/2.0 200 OK
[last_Via:]
[last_From:]
[last_To:];tag=ping[pid]x[call_number]
[last_Call-ID:]
[last_CSeq:]
Content-Length: 0

]]></send>
  <label id="done"/>
</scenario>
"""


def uas_scenario(name, invite_part):
    """A SIPp UAS scenario named `name`: an OPTIONS ping is answered 200 (and the scenario
    ends), an INVITE goes through `invite_part`, which ends by jumping to `done` (or falls
    through to `ping` only after `next="done"`)."""
    return ('<?xml version="1.0" encoding="ISO-8859-1" ?>\n'
            f'<scenario name="{name}">\n'
            '  <recv request="OPTIONS" optional="true" next="ping"/>\n'
            + invite_part + _PING_AND_DONE)


# The first trunk's far end (SIPp), for the whole module: OPTIONS pings answered 200 (so the
# trunk stays up); an INVITE to 301... gets 503, to 303... 486, anything else no answer at all.
FIRST_XML = uas_scenario("first trunk", """  <recv request="INVITE">
    <action>
      <ereg regexp="^INVITE sip:301" search_in="msg" check_it="false" assign_to="unavailable"/>
      <ereg regexp="^INVITE sip:303" search_in="msg" check_it="false" assign_to="busy"/>
    </action>
  </recv>
  <nop hide="true" test="unavailable" next="s503"/>
  <nop hide="true" test="busy" next="s486"/>
  <recv request="CANCEL" timeout="30000" ontimeout="done" next="done"/>
  <label id="s503"/>
  <send next="ack"><![CDATA[

SIP/2.0 503 Service Unavailable
[last_Via:]
[last_From:]
[last_To:];tag=far[pid]x[call_number]
[last_Call-ID:]
[last_CSeq:]
Content-Length: 0

]]></send>
  <label id="s486"/>
  <send><![CDATA[

SIP/2.0 486 Busy Here
[last_Via:]
[last_From:]
[last_To:];tag=far[pid]x[call_number]
[last_Call-ID:]
[last_CSeq:]
Content-Length: 0

]]></send>
  <label id="ack"/>
  <recv request="ACK" next="done"/>
""")


class SippTrunk:
    """SIPp as a trunk's far end on `ip`:`port`, running `xml` for every call (and every
    OPTIONS ping) until stopped."""

    def __init__(self, tmp_path, name, ip, port, xml, media_port=None, transport=None):
        require("sipp")
        self.dir = os.path.join(str(tmp_path), name)
        os.makedirs(self.dir, exist_ok=True)
        scenario = os.path.join(self.dir, "scenario.xml")
        with open(scenario, "w") as f:
            f.write(xml)
        self.messages = os.path.join(self.dir, "messages.log")
        self.screen = open(os.path.join(self.dir, "screen.log"), "w")
        media = ["-mi", ip, "-mp", str(media_port)] if media_port else []
        media += ["-t", transport] if transport else []
        self.proc = subprocess.Popen(
            ["sipp", "-sf", scenario, "-i", ip, "-p", str(port), *media, "-nostdin",
             "-trace_msg", "-message_file", self.messages,
             "-trace_err", "-error_file", os.path.join(self.dir, "errors.log")],
            stdout=self.screen, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

    def text(self):
        try:
            with open(self.messages, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def invites(self, number):
        """The INVITEs to `number` SIPp received (their text; retransmissions included)."""
        msgs = re.split(r"\n-{10,}.*\n", self.text())
        return [m for m in msgs if re.search(rf"^INVITE sip:{number}@", m, re.M)]

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.screen.close()
