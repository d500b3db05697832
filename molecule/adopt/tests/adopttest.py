"""IMAP views of a mailbox, to compare what a user sees before and after a change."""

import re
import time

FLAGS_RE = re.compile(rb"FLAGS \(([^)]*)\)")
UID_RE = re.compile(rb"UID (\d+)")


def folders(imap):
    typ, data = imap.list()
    assert typ == "OK", data
    names = []
    for line in data:
        name = line.decode().rsplit(" ", 1)[-1].strip('"')
        names.append(name)
    return sorted(names)


def subscribed(imap):
    typ, data = imap.lsub()
    assert typ == "OK", data
    return sorted(line.decode().rsplit(" ", 1)[-1].strip('"') for line in data if line)


def folder_view(imap, folder):
    """{Message-ID: (uid, sorted flags)} and UIDVALIDITY of one folder, read-only."""
    typ, _data = imap.select(f'"{folder}"', readonly=True)
    assert typ == "OK", folder
    uidvalidity = imap.response("UIDVALIDITY")[1][0]
    typ, data = imap.uid("FETCH", "1:*", "(UID FLAGS BODY.PEEK[HEADER.FIELDS (MESSAGE-ID SUBJECT)])")
    assert typ == "OK", data
    messages = {}
    for item in data:
        if not isinstance(item, tuple):
            continue
        meta, header = item
        uid = int(UID_RE.search(meta).group(1))
        flags = tuple(sorted(f for f in FLAGS_RE.search(meta).group(1).decode().split() if f != "\\Recent"))
        subject = re.search(rb"(?im)^Subject: (.*)$", header).group(1).decode().strip()
        assert subject not in messages, f"{subject} twice in {folder}"
        messages[subject] = (uid, flags)
    return uidvalidity, messages


def mailbox_view(imap):
    """Everything a user sees: folders, subscriptions, and per folder UIDVALIDITY and messages."""
    view = {"folders": folders(imap), "subscribed": subscribed(imap), "content": {}}
    for folder in view["folders"]:
        view["content"][folder] = folder_view(imap, folder)
    return view


def wait_for_subject(mail, email, subject, folder="INBOX", timeout=60):
    """Poll over IMAP until a message with *subject* is in *folder*; return True/False."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        imap = mail.login(email)
        try:
            imap.select(folder, readonly=True)
            typ, data = imap.search(None, "SUBJECT", subject)
            if typ == "OK" and data[0].split():
                return True
        finally:
            imap.logout()
        time.sleep(1)
    return False
