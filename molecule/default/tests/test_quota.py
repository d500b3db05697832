"""Quotas enforced (issue #8 item 2): limits from the database, 552 5.2.2 at RCPT, no backscatter.

ivy@example.com has a quota of 100,000 bytes (inventory). The test fills her mailbox over
port 25 from outside until the server refuses the next message at RCPT, and checks what a
mail admin relies on: the refusal is ``552 5.2.2`` before any data is accepted (Dovecot's
quota-status service, asked by Postfix), nothing for her waits in the queue and nothing
bounces to the (possibly forged) sender, the warning mails at 80 % and 95 % arrived, IMAP
QUOTA shows the limit, an alias or alias-domain address that only reaches her is refused the
same way (Postfix's quota_access table), an alias that also reaches bob delivers to bob and
defers her copy (4.2.2, kept in the queue) until there is room, then delivers it once.
"""

import json
import re
import smtplib

import pytest
from vmailtest import make_message

from test_laststats import doveadm_table, mailbox, mail_info, sql_value, wait_for

USER = "ivy@example.com"
ALIAS = "ivy-alias@example.com"              # only ivy
TEAM = "ivy-team@example.com"                # ivy and bob
BOB = "bob@example.com"
SENDER = "quota-test@outside.test"           # outside: a bounce to it would wait in the queue
BIG = 12000                                  # bytes of body per filling message
FULL_REPLY = (552, "5.2.2")


def limit_of(mail):
    return int([u for u in mail.users() if u["email"] == USER][0]["quota"])


def filler(size):
    token, msg = make_message(SENDER, USER)
    line = "All work and no play makes a full mailbox. " * 2
    body = (line.strip() + "\n") * (size // len(line) + 1)
    msg.set_content(f"Filling message {token}\n{body}")
    return token, msg


def send(mail, msg, rcpts, sender=SENDER):
    """Send over port 25 from outside; return None or the (code, text) of the refused recipient.

    smtplib announces the message's SIZE in MAIL FROM when the server offers SIZE, as MTAs do.
    """
    with mail.smtp() as smtp:
        assert smtp.has_extn("size")
        try:
            smtp.sendmail(sender, rcpts, msg.as_bytes())
        except smtplib.SMTPRecipientsRefused as err:
            code, text = list(err.recipients.values())[0]
            return code, text.decode()
    return None


def queue(host):
    """The Postfix queue as a list of postqueue -j entries."""
    out = host.check_output("postqueue -j")
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def queued_to(host, email):
    return [m for m in queue(host) if any(r["address"] == email for r in m["recipients"])]


def storage_bytes(host):
    """Dovecot's own usage and limit of ivy's STORAGE (KiB, as doveadm reports them)."""
    rows = dict((r["type"], r) for r in doveadm_table(host, "quota get -u %s", USER))
    return int(rows["STORAGE"]["value"]), rows["STORAGE"]["limit"]


def empty_mailbox(host):
    host.run("doveadm expunge -u %s mailbox '*' all", USER)
    host.run("doveadm quota recalc -u %s", USER)


@pytest.fixture(scope="module")
def full(host, mail):
    """Fill ivy's mailbox until RCPT is refused; yield what happened; empty it again afterwards."""
    empty_mailbox(host)
    assert queued_to(host, USER) == [], "mail for ivy already waits in the queue"
    accepted, refusals, size = [], [], BIG
    for _attempt in range(30):
        token, msg = filler(size)
        refused = send(mail, msg, [USER])
        if refused:
            refusals.append((size, refused))
            if size < 2000:
                break
            size = 500      # the grace lets a last big one in; small ones until even those are refused
            continue
        assert mail.wait_delivered(USER, token), f"accepted message {token} was not delivered"
        accepted.append(token)
    yield {"accepted": accepted, "refusals": refusals}
    empty_mailbox(host)
    for entry in queued_to(host, USER):
        host.run("postsuper -d %s", entry["queue_id"])


def test_userdb_and_imap_quota_show_the_limit(host, mail):
    """The limit comes from virtual_users.quota through the SQL userdb and IMAP clients see it (RFC 9208)."""
    limit = limit_of(mail)
    out = host.check_output("doveadm user %s", USER)
    assert re.search(r"quota_rule\s+\*:bytes=%d\b" % limit, out) or \
        re.search(r"quota_storage_size\s+%dB\b" % limit, out), out
    imap = mail.imaps()
    try:
        imap.login(USER, mail.password(USER))
        typ, data = imap.getquotaroot("INBOX")
    finally:
        imap.logout()
    assert typ == "OK", data
    text = " ".join(str(d) for d in data)
    found = re.search(r"STORAGE (\d+) (\d+)", text)
    assert found, text
    assert int(found.group(2)) == -(-limit // 1024), text   # IMAP QUOTA counts units of 1024 octets (rounded up)


def test_full_mailbox_is_refused_at_rcpt_with_552(host, mail, full):
    limit = limit_of(mail)
    assert len(full["accepted"]) >= limit // (BIG + 1000), full
    assert full["refusals"], f"30 messages and no refusal: {len(full['accepted'])} accepted"
    size, (code, text) = full["refusals"][-1]
    assert size < 2000, full["refusals"]            # even a small message no longer fits
    assert (code, text.split()[0]) == FULL_REPLY, (code, text)
    kib, shown_limit = storage_bytes(host)
    assert kib * 1024 >= limit - 1024 and int(shown_limit) == -(-limit // 1024), (kib, shown_limit)


def test_nothing_queued_and_nothing_bounced(host, full):
    """Refused at RCPT means never accepted: no copy for ivy waits and no bounce goes to the sender."""
    assert full["refusals"]
    assert queued_to(host, USER) == []
    assert queued_to(host, SENDER) == [], "a bounce to the outside sender was generated"


def test_warning_mails_at_80_and_95_percent(mail, full):
    assert full["accepted"]
    for percent in (80, 95):
        assert mail.wait_delivered(USER, f"Subject: Your mailbox is {percent}% full", timeout=30), \
            f"no quota warning at {percent} %"


def test_usage_copy_and_mail_info_match_dovecot(host, mail, full):
    assert full["refusals"]
    kib, _limit = storage_bytes(host)
    row = wait_for(lambda: mailbox(mail_info(host), USER), lambda r: r.get("usage_bytes") is not None
                   and (r["usage_bytes"] + 1023) // 1024 == kib)
    assert (row["usage_bytes"] + 1023) // 1024 == kib, (row, kib)
    assert row["quota"] == limit_of(mail) and row["usage_bytes"] >= row["quota"], row


def test_alias_and_alias_domain_that_only_reach_a_full_mailbox_are_refused(host, mail, full):
    """Aliases are not mailboxes to Dovecot: Postfix's quota_access table refuses them at RCPT."""
    assert full["refusals"]
    wait_for(lambda: sql_value(host, "SELECT bytes >= %d FROM vmail_quota_usage WHERE email = '%s'"
                               % (limit_of(mail), USER)), lambda v: v == "1")
    for rcpt in (ALIAS, "ivy@alias.example"):
        token, msg = make_message(SENDER, rcpt)
        refused = send(mail, msg, [rcpt])
        assert refused and (refused[0], refused[1].split()[0]) == FULL_REPLY, (rcpt, refused)
    assert queued_to(host, USER) == [] and queued_to(host, SENDER) == []


def test_authenticated_sender_gets_552_too(mail, full):
    assert full["refusals"]
    token, msg = make_message("alice@example.com", USER)
    with mail.submission("alice@example.com") as smtp:
        with pytest.raises(smtplib.SMTPRecipientsRefused) as err:
            smtp.sendmail("alice@example.com", [USER], msg.as_bytes())
    code, text = err.value.recipients[USER]
    assert (code, text.decode().split()[0]) == FULL_REPLY


def test_alias_with_room_left_delivers_and_defers_the_full_copy(host, mail, full):
    """ivy-team reaches ivy (full) and bob: bob gets it now; ivy's copy waits (4.2.2), never bounces,
    and is delivered once when she has room again."""
    assert full["refusals"]
    token, msg = make_message(SENDER, TEAM)
    assert send(mail, msg, [TEAM]) is None
    assert mail.wait_delivered(BOB, token), "bob's copy was not delivered"

    def waiting():
        return [r for m in queued_to(host, USER) for r in m["recipients"] if r["address"] == USER]

    rcpts = wait_for(waiting, lambda v: bool(v) and "delay_reason" in v[0], timeout=40)
    assert rcpts, "ivy's copy is neither delivered nor queued"
    assert re.search(r"4\.2\.2|[Qq]uota", rcpts[0]["delay_reason"]), rcpts
    assert queued_to(host, SENDER) == [], "a bounce to the outside sender was generated"
    assert mail.maildir_grep(USER, token).rc != 0

    empty_mailbox(host)
    host.run("postqueue -f")
    assert mail.wait_delivered(USER, token, timeout=60), "ivy's deferred copy was not delivered after room was made"
    assert wait_for(lambda: queued_to(host, USER), lambda v: v == []) == []
    out = host.run("grep -rlF -- %s /var/mail/vhosts/example.com/ivy/new /var/mail/vhosts/example.com/ivy/cur",
                   token)
    assert len(out.stdout.split()) == 1, out.stdout     # once
