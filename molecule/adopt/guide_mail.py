"""Mail on a guide-built server, the way its users made it (run inside the container by prepare.yml).

Delivers messages through the guide's own Postfix (SMTP on port 25, from the
container itself, which the guide's mynetworks accepts) and Dovecot (LMTP),
then acts as the user over IMAPS: reads and flags one message, files one into
a folder of its own ("Projects", subscribed), and leaves one unread. Prints
"delivered" when it did something; a second run finds the folder and stops.
"""

import imaplib
import json
import os
import smtplib
import ssl
import sys
import time
from email.message import EmailMessage

PASSWORDS = json.loads(os.environ["GUIDE_PASSWORDS"])
MESSAGES = [
    # (recipient, subject) -- alias@example.com is the guide's alias of email1
    ("email1@example.com", "legacy-read-flagged"),
    ("email1@example.com", "legacy-filed-in-projects"),
    ("alias@example.com", "legacy-unread-via-alias"),
    ("email2@example.com", "legacy-for-email2"),
]


def imap(user):
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # the guide's server keeps Dovecot's own self-signed certificate
    conn = imaplib.IMAP4_SSL("127.0.0.1", 993, ssl_context=ctx, timeout=30)
    conn.login(user, PASSWORDS[user])
    return conn


def search(conn, subject):
    typ, data = conn.uid("SEARCH", None, "SUBJECT", subject)
    assert typ == "OK", data
    return data[0].split()


def main():
    conn = imap("email1@example.com")
    typ, folders = conn.list()
    if any(b'"Projects"' in f or f.endswith(b" Projects") for f in folders or []):
        print("already prepared")
        return 0
    conn.logout()
    with smtplib.SMTP("127.0.0.1", 25, local_hostname="mail.example.com", timeout=30) as smtp:
        for recipient, subject in MESSAGES:
            msg = EmailMessage()
            msg["From"] = "old-friend@example.net"
            msg["To"] = recipient
            msg["Subject"] = subject
            msg["Message-ID"] = "<%s@example.net>" % subject
            msg.set_content("This message arrived before vmail.mailserver took the server over.\n")
            smtp.send_message(msg)
    deadline = time.time() + 60
    for recipient, subject in MESSAGES:
        user = "email1@example.com" if recipient == "alias@example.com" else recipient
        while True:
            conn = imap(user)
            conn.select("INBOX")
            found = search(conn, subject)
            conn.logout()
            if found:
                break
            if time.time() > deadline:
                print("not delivered: %s to %s" % (subject, recipient), file=sys.stderr)
                return 1
            time.sleep(1)
    conn = imap("email1@example.com")
    conn.select("INBOX")
    uid = search(conn, "legacy-read-flagged")[0]
    assert conn.uid("STORE", uid, "+FLAGS", r"(\Seen \Flagged)")[0] == "OK"
    assert conn.create("Projects")[0] == "OK"
    assert conn.subscribe("Projects")[0] == "OK"
    uid = search(conn, "legacy-filed-in-projects")[0]
    assert conn.uid("COPY", uid, "Projects")[0] == "OK"
    assert conn.uid("STORE", uid, "+FLAGS", r"(\Deleted)")[0] == "OK"
    assert conn.expunge()[0] == "OK"
    conn.logout()
    print("delivered %d messages, flagged one, filed one into Projects" % len(MESSAGES))
    return 0


if __name__ == "__main__":
    sys.exit(main())
