#!/usr/bin/env python3
"""A real, scriptable receiving SMTP server for kurir's tests (aiosmtpd, from PyPI).

It listens on 127.0.0.1 only, offers STARTTLS with a certificate made by the test (and refuses
MAIL before STARTTLS), stores every accepted message as DIR/mail/<n>.eml, and logs every
command it sees to DIR/peer.log, one line each:

    CONNECT / EHLO <name> / STARTTLS / MAIL <from> tls=<yes|no> / RCPT <to> -> <code>
    DATA-COMMAND tls=<yes|no> / DATA <n> <to> / QUIT

Fault injection is read from DIR/rules.json at every RCPT, so a test can change it while the
server runs: {"address": {"tempfail": K, "reject": true}} answers 451 to the first K RCPTs of
that address and 550 to every RCPT of a rejected one.

Usage: smtp_peer.py --dir DIR --port PORT [--cert PEM --key PEM] [--no-starttls | --implicit-tls]
"""

import argparse
import asyncio
import json
import os
import signal
import ssl
import sys
import threading

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP


class Peer:
    def __init__(self, directory):
        self.dir = directory
        self.mail_dir = os.path.join(directory, "mail")
        os.makedirs(self.mail_dir, exist_ok=True)
        self.lock = threading.Lock()
        self.count = 0
        self.rcpt_counts = {}

    def log(self, line):
        with self.lock:
            with open(os.path.join(self.dir, "peer.log"), "a", encoding="utf-8") as f:
                f.write(line + "\n")

    def rules(self):
        path = os.path.join(self.dir, "rules.json")
        try:
            with open(path, encoding="utf-8") as f:
                return json.load(f)
        except FileNotFoundError:
            return {}

    @staticmethod
    def tls_of(server):
        """Whether this connection is encrypted: after STARTTLS or from the first byte."""
        transport = getattr(server, "transport", None)
        encrypted = transport is not None and transport.get_extra_info("ssl_object") is not None
        return "yes" if encrypted or server.session.ssl else "no"

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        self.log(f"EHLO {hostname}")
        session.host_name = hostname
        return responses

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        self.log(f"MAIL {address} tls={self.tls_of(server)}")
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 2.1.0 Ok"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        rule = self.rules().get(address.lower(), {})
        with self.lock:
            n = self.rcpt_counts.get(address.lower(), 0) + 1
            self.rcpt_counts[address.lower()] = n
        if rule.get("reject"):
            reply = "550 5.1.1 Mailbox unavailable"
        elif n <= int(rule.get("tempfail", 0)):
            reply = "451 4.3.0 Temporary failure, try again later"
        else:
            envelope.rcpt_tos.append(address)
            reply = "250 2.1.5 Ok"
        self.log(f"RCPT {address} -> {reply[:3]}")
        return reply

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            self.count += 1
            n = self.count
        path = os.path.join(self.mail_dir, f"{n:05d}.eml")
        tmp = path + ".tmp"
        with open(tmp, "wb") as f:
            f.write(envelope.original_content)
        os.rename(tmp, path)
        self.log(f"DATA {n} {','.join(envelope.rcpt_tos)}")
        return f"250 2.0.0 Ok: queued as Q{n:06d}"

    async def handle_QUIT(self, server, session, envelope):
        self.log("QUIT")
        return "221 2.0.0 Bye"


class LoggingSMTP(SMTP):
    async def smtp_STARTTLS(self, arg):
        self.event_handler.log("STARTTLS")
        return await super().smtp_STARTTLS(arg)

    async def smtp_DATA(self, arg):
        self.event_handler.log(f"DATA-COMMAND tls={Peer.tls_of(self)}")
        return await super().smtp_DATA(arg)

    def connection_made(self, transport):
        self.event_handler.log("CONNECT")
        super().connection_made(transport)


class PeerController(Controller):
    def factory(self):
        return LoggingSMTP(self.handler, **self.SMTP_kwargs)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--cert")
    parser.add_argument("--key")
    parser.add_argument("--no-starttls", action="store_true")
    parser.add_argument("--implicit-tls", action="store_true", help="TLS from the first byte (port 465 style)")
    args = parser.parse_args()

    peer = Peer(args.dir)
    kwargs = {}
    if args.implicit_tls:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(args.cert, args.key)
        kwargs["ssl_context"] = context
    elif not args.no_starttls:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(args.cert, args.key)
        kwargs["tls_context"] = context
        kwargs["require_starttls"] = True
    controller = PeerController(
        peer, hostname="127.0.0.1", port=args.port, ident="kurir-test-peer", **kwargs
    )
    controller.start()
    with open(os.path.join(args.dir, "ready"), "w", encoding="utf-8") as f:
        f.write(str(args.port))

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    # The parent test may die without a signal: stop when stdin closes, too.
    threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()
    stop.wait()
    controller.stop()


if __name__ == "__main__":
    asyncio.set_event_loop_policy(asyncio.DefaultEventLoopPolicy())
    main()
