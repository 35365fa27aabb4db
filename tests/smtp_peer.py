#!/usr/bin/env python3
"""A real, scriptable receiving SMTP server for kurir's tests (aiosmtpd, from PyPI).

It listens on 127.0.0.1 only, offers STARTTLS with a certificate made by the test (and refuses
MAIL before STARTTLS), stores every accepted message as DIR/mail/<n>.eml, and logs every
command it sees to DIR/peer.log, one line each:

    CONNECT / EHLO <name> / STARTTLS / MAIL <from> tls=<yes|no> / RCPT <to> -> <code>
    DATA-COMMAND tls=<yes|no> / DATA <n> <to> / QUIT

Fault injection is read from DIR/rules.json, so a test can change it while the server runs;
counts start again whenever the file changes. Per recipient address:
    {"tempfail": K, "code": 421}   the first K RCPTs get 421 (default 451)
    {"reject": true}               every RCPT gets 550
    {"delay": S, "times": K}       the first K messages are stored, then the reply waits S seconds
    {"drop_mid_data": K}           the first K DATA get 354, then the connection is closed
    {"drop_after_data": K}         the first K messages are stored, then the connection is closed
                                   without a reply

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
        self.counts = {}
        self.rules_text = None

    def log(self, line):
        with self.lock:
            with open(os.path.join(self.dir, "peer.log"), "a", encoding="utf-8") as f:
                f.write(line + "\n")

    def rules(self):
        path = os.path.join(self.dir, "rules.json")
        try:
            with open(path, encoding="utf-8") as f:
                text = f.read()
        except FileNotFoundError:
            text = "{}"
        with self.lock:
            if text != self.rules_text:
                self.rules_text = text
                self.counts = {}
        return json.loads(text)

    def take(self, address, key, limit):
        """True for the first `limit` occurrences of (address, key) since the rules changed."""
        with self.lock:
            n = self.counts.get((address, key), 0) + 1
            self.counts[(address, key)] = n
        return n <= int(limit)

    def rule(self, address):
        return self.rules().get(address.lower(), {})

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
        rule = self.rule(address)
        if rule.get("reject"):
            reply = "550 5.1.1 Mailbox unavailable"
        elif self.take(address.lower(), "tempfail", rule.get("tempfail", 0)):
            code = int(rule.get("code", 451))
            reply = f"{code} 4.3.0 Temporary failure, try again later"
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
        address = (envelope.rcpt_tos or [""])[0].lower()
        rule = self.rule(address)
        if self.take(address, "drop_after_data", rule.get("drop_after_data", 0)):
            self.log(f"DROP-AFTER-DATA {n}")
            server.transport.close()
            return "250 2.0.0 Ok: never sent"
        if "delay" in rule and self.take(address, "delay", rule.get("times", 1)):
            self.log(f"DELAY {n} {rule['delay']}s")
            await asyncio.sleep(float(rule["delay"]))
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
        rcpts = self.envelope.rcpt_tos if self.envelope else []
        address = (rcpts or [""])[0].lower()
        rule = self.event_handler.rule(address) if address else {}
        if address and self.event_handler.take(address, "drop_mid_data", rule.get("drop_mid_data", 0)):
            self.event_handler.log("DROP-MID-DATA")
            await self.push("354 End data with <CR><LF>.<CR><LF>")
            self.transport.close()
            return
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
