"""A real DNS server on loopback for the tests: answers TXT queries from a dict, over UDP and TCP.

Sender authentication with `sender_auth = "dkim"` looks DKIM keys up in DNS;
the tests publish their own test keys here and point `[security] dns_server`
at it, so nothing leaves the machine. Built on dnspython (which intake itself
uses to ask), speaking the real wire protocol.
"""
from __future__ import annotations

import socketserver
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset


class _Records:
    def __init__(self, txt: dict[str, bytes], hold: threading.Event | None = None) -> None:
        self.txt = {name.rstrip(".").lower() + ".": value for name, value in txt.items()}
        self.asked: list[str] = []
        self.hold = hold

    def answer(self, wire: bytes) -> bytes:
        query = dns.message.from_wire(wire)
        response = dns.message.make_response(query)
        response.flags |= dns.flags.AA
        question = query.question[0]
        name = question.name.to_text().lower()
        self.asked.append(name)
        if self.hold is not None:  # a slow resolver: the answer waits until the test lets it go
            self.hold.wait(timeout=30)
        value = self.txt.get(name)
        if value is None:
            response.set_rcode(dns.rcode.NXDOMAIN)
        elif question.rdtype == dns.rdatatype.TXT:
            chunks = [value[i:i + 255] for i in range(0, len(value), 255)]  # a TXT string holds 255 octets
            text = " ".join('"' + chunk.decode("ascii") + '"' for chunk in chunks)
            response.answer.append(dns.rrset.from_text(question.name, 60, "IN", "TXT", text))
        return response.to_wire()


@contextmanager
def dns_server(txt: dict[str, bytes], hold: threading.Event | None = None) -> Iterator[tuple[str, _Records]]:
    """Serve ``txt`` (name → TXT value) on 127.0.0.1; yields "127.0.0.1:PORT" and the records (with what was asked).

    With ``hold``, every answer waits until it is set (a slow resolver).
    """
    records = _Records(txt, hold)

    class Udp(socketserver.BaseRequestHandler):
        def handle(self) -> None:
            data, sock = self.request
            sock.sendto(records.answer(data), self.client_address)

    class Tcp(socketserver.StreamRequestHandler):
        def handle(self) -> None:
            length = int.from_bytes(self.rfile.read(2), "big")
            reply = records.answer(self.rfile.read(length))
            self.wfile.write(len(reply).to_bytes(2, "big") + reply)

    udp = socketserver.ThreadingUDPServer(("127.0.0.1", 0), Udp)
    port = udp.server_address[1]
    tcp = socketserver.ThreadingTCPServer(("127.0.0.1", port), Tcp)  # long TXT answers are retried over TCP
    threads = [threading.Thread(target=server.serve_forever, daemon=True) for server in (udp, tcp)]
    for thread in threads:
        thread.start()
    try:
        yield f"127.0.0.1:{port}", records
    finally:
        for server in (udp, tcp):
            server.shutdown()
            server.server_close()

