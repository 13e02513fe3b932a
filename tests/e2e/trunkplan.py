"""What the trunk tests share: a dialplan where staff dial extensions and `9` + a number out
through one trunk, and the trunk's far end as a python UA."""

import contextlib

from callclient import Phone
from conftest import free_port, parse_table


def trunk_plan(test_file, trunk, inbound_context=None):
    """Staff call extensions and `9NUMBER` goes out as `trunk:TRUNK/NUMBER`; with
    `inbound_context`, the trunk's own calls ring extensions from that context."""
    plan = f"""\
# written by tests/e2e/{test_file}
[defaults]
context = "staff"

[context.staff]
may_call = ["extensions", "_9."]
[[context.staff.rule]]
extension = true
steps = [{{ dial = "${{number}}" }}]
[[context.staff.rule]]
pattern = "_9."
steps = [{{ dial = "trunk:{trunk}/${{number:1}}" }}]
"""
    if inbound_context:
        plan += f"""
[context.{inbound_context}]
[[context.{inbound_context}.rule]]
extension = true
steps = [{{ dial = "${{number}}" }}]
"""
    return plan


@contextlib.contextmanager
def far_end(name, ip):
    """The trunk's far end on `ip`, up before the PBX (it answers the PBX's OPTIONS pings)."""
    ua = Phone(name, "", ("127.0.0.1", 5060), local_ip=ip, port=free_port(ip=ip))
    try:
        yield ua
    finally:
        ua.close()


def trunk_rows(pbx):
    """`pbx trunk list` as {name: row}, each row a dict by lower-case column name."""
    return {row["name"]: row for row in parse_table(pbx.cli("trunk", "list").stdout)}
