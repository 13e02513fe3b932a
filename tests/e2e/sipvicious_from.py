"""Runs one sipvicious tool from a chosen local address.

    python3 sipvicious_from.py 127.0.0.7 svwar -e1000-1010 -m REGISTER udp://127.0.0.1:5060

sipvicious 0.3.8 binds its socket to every interface whatever `-b` says (the option does not
reach the scanner), so an attacker and a phone on one machine would share an address and a
ban. This wrapper rewrites a bind to the wildcard address into a bind to the given one, and
passes `-x` (the address written into Via and Contact) to match.
"""

import importlib
import socket
import sys

TOOLS = {"svmap": "sipvicious.svmap", "svwar": "sipvicious.svwar", "svcrack": "sipvicious.svcrack"}


def main():
    if len(sys.argv) < 3 or sys.argv[2] not in TOOLS:
        sys.exit(f"usage: {sys.argv[0]} LOCAL_IP {{{'|'.join(TOOLS)}}} ARGS...")
    local_ip, tool, args = sys.argv[1], sys.argv[2], sys.argv[3:]
    original_bind = socket.socket.bind

    def bind(self, address):
        if isinstance(address, tuple) and address[0] in ("", "0.0.0.0"):
            address = (local_ip, *address[1:])
        return original_bind(self, address)

    socket.socket.bind = bind
    sys.argv = [f"sipvicious_{tool}", "-x", local_ip, *args]
    importlib.import_module(TOOLS[tool]).main()


if __name__ == "__main__":
    main()
