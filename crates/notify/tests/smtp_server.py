"""A small SMTP receiver for the email sink's tests (aiosmtpd).

Usage: smtp_server.py PORT OUTDIR [CERT KEY]
Writes each message to OUTDIR/NNN.eml (the raw DATA) with OUTDIR/NNN.env (MAIL FROM
on the first line, one RCPT TO per further line), the .eml last and atomically.
With CERT and KEY, STARTTLS is offered and required before MAIL. Prints READY when
listening; stops when stdin closes or on SIGTERM.
"""

import os
import signal
import ssl
import sys
import threading

from aiosmtpd.controller import Controller


class Handler:
    def __init__(self, outdir):
        self.outdir = outdir
        self.count = 0
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            self.count += 1
            n = self.count
        base = os.path.join(self.outdir, "%03d" % n)
        with open(base + ".env", "w") as f:
            f.write(envelope.mail_from + "\n")
            for r in envelope.rcpt_tos:
                f.write(r + "\n")
            f.write("tls=%s\n" % ("yes" if session.ssl else "no"))
        data = envelope.original_content or envelope.content
        if isinstance(data, str):
            data = data.encode()
        with open(base + ".tmp", "wb") as f:
            f.write(data)
        os.rename(base + ".tmp", base + ".eml")
        return "250 OK"


def main():
    port = int(sys.argv[1])
    outdir = sys.argv[2]
    kwargs = {}
    if len(sys.argv) > 4:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(sys.argv[3], sys.argv[4])
        kwargs = {"tls_context": ctx, "require_starttls": True}
    controller = Controller(Handler(outdir), hostname="127.0.0.1", port=port, **kwargs)
    controller.start()
    print("READY", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())

    def watch_stdin():
        sys.stdin.read()
        stop.set()

    threading.Thread(target=watch_stdin, daemon=True).start()
    stop.wait()
    controller.stop()


if __name__ == "__main__":
    main()
