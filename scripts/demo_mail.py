"""Send a message through the demo server's submission port and fetch it over IMAPS.

Usage: demo_mail.py --port-base 10000 --user demo@example.com --cafile mail.crt
The password is read from the environment variable VMAIL_DEMO_PASSWORD (never
from the command line, where the process list would show it).
Exit status 0 only when the message was delivered and fetched back.
"""

import argparse
import imaplib
import os
import smtplib
import ssl
import sys
import time
import uuid
from email.message import EmailMessage


def tls_context(cafile):
    """Verify the server certificate against the demo's self-signed certificate.

    We connect to 127.0.0.1 while the certificate names mail.example.com, so the
    chain is verified but not the host name.
    """
    ctx = ssl.create_default_context(cafile=cafile)
    ctx.check_hostname = False
    return ctx


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port-base", type=int, default=10000)
    parser.add_argument("--user", required=True)
    parser.add_argument("--cafile", required=True)
    parser.add_argument("--timeout", type=int, default=60, help="seconds to wait for delivery")
    args = parser.parse_args()
    password = os.environ.get("VMAIL_DEMO_PASSWORD")
    if not password:
        sys.exit("VMAIL_DEMO_PASSWORD is not set")
    ctx = tls_context(args.cafile)

    token = f"vmail-demo-{uuid.uuid4().hex[:12]}"
    msg = EmailMessage()
    msg["From"] = args.user
    msg["To"] = args.user
    msg["Subject"] = f"Hello from vmail.mailserver ({token})"
    msg.set_content("This message went through Postfix submission, LMTP and Dovecot.\n")

    with smtplib.SMTP(args.host, args.port_base + 587, timeout=30) as smtp:
        smtp.starttls(context=ctx)
        smtp.login(args.user, password)
        smtp.send_message(msg)
    print(f"sent     {msg['Subject']!r} via submission {args.host}:{args.port_base + 587} (STARTTLS, AUTH)")

    deadline = time.time() + args.timeout
    while True:
        imap = imaplib.IMAP4_SSL(args.host, args.port_base + 993, ssl_context=ctx, timeout=30)
        try:
            imap.login(args.user, password)
            imap.select("INBOX", readonly=True)
            typ, data = imap.search(None, "SUBJECT", token)
            if typ == "OK" and data[0].split():
                num = data[0].split()[-1]
                _typ, fetched = imap.fetch(num, "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
                subject = fetched[0][1].decode().strip()
                print(f"fetched  {subject!r} via IMAPS {args.host}:{args.port_base + 993}")
                return 0
        finally:
            imap.logout()
        if time.time() > deadline:
            print("the message did not arrive in time", file=sys.stderr)
            return 1
        time.sleep(1)


if __name__ == "__main__":
    sys.exit(main())
