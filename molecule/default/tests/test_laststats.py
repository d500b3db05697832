"""Last login and quota usage that Dovecot writes into the database (issue #8 items 2 and 6).

Dovecot's last_login plugin (IMAP, POP3) and quota_clone plugin write through the dict server
(the SQL dict "sql" over the lookup account) into vmail_last_login and vmail_quota_usage;
mail_info reads them. These tests log in / deliver for real and then ask mail_info on the host,
so they fail when nothing writes the tables (the configuration before the dict server).
"""

import time

from vmailtest import make_message

ADMIN_CNF = "/etc/vmail/mailsql-admin.cnf"
# dave@example.net receives plain inbound mail in test_mailflow only by its catch-all neighbour;
# the quota test delivers its own messages to it and compares with doveadm.
LOGIN_USER = "dave@example.net"
QUOTA_USER = "dave@example.net"


def mail_info(host, **args):
    """Run vmail.mailserver.mail_info on the host (as the admin account) and return its result."""
    opts = " ".join(f"{k}={v}" for k, v in args.items())
    res = host.ansible("vmail.mailserver.mail_info", f"config_file={ADMIN_CNF} {opts}", check=False)
    assert not res.get("failed"), res
    return res


def mailbox(info, email):
    rows = [m for m in info["mailboxes"] if m["email"] == email]
    assert len(rows) == 1, info["mailboxes"]
    return rows[0]


def sql_value(host, sql):
    """One value read with the admin account (its option file), or None when there is no row."""
    out = host.check_output("mariadb --defaults-extra-file=%s -N -B -e %s", ADMIN_CNF, sql)
    return out.strip() or None


def wait_for(fetch, check, timeout=20):
    """Poll ``fetch()`` until ``check(value)``; return the last value."""
    deadline = time.time() + timeout
    value = fetch()
    while not check(value) and time.time() < deadline:
        time.sleep(0.5)
        value = fetch()
    return value


def test_imap_login_is_recorded_and_reported(host, mail):
    before = int(host.check_output("date +%s"))
    assert mail.imap_login(LOGIN_USER) == "OK"
    stamp = wait_for(lambda: sql_value(host, "SELECT last_login FROM vmail_last_login WHERE email = '%s'"
                                       % LOGIN_USER),
                     lambda v: v is not None and int(v) >= before)
    assert stamp is not None and int(stamp) >= before, f"no last login written for {LOGIN_USER}: {stamp}"
    now = int(host.check_output("date +%s"))
    assert int(stamp) <= now, "last_login is not Unix seconds (ms/us precision?)"

    info = mail_info(host, inactive_days=1)
    row = mailbox(info, LOGIN_USER)
    assert row["last_login"] is not None
    seen = time.mktime(time.strptime(row["last_login"], "%Y-%m-%dT%H:%M:%SZ")) - time.timezone
    assert now - 60 <= seen <= now + 1, (row["last_login"], now)
    inactive = [m["email"] for m in info["inactive"]]
    assert LOGIN_USER not in inactive
    # A mailbox nobody logged into is listed.
    never = [m["email"] for m in info["mailboxes"] if m.get("last_login") is None]
    assert set(never) <= set(inactive), (never, inactive)


def test_pop3_login_is_recorded(host, mail):
    before = int(host.check_output("date +%s"))
    pop = mail.pop3s()
    try:
        pop.user(LOGIN_USER)
        pop.pass_(mail.password(LOGIN_USER))
        pop.stat()
    finally:
        pop.quit()
    stamp = wait_for(lambda: sql_value(host, "SELECT last_login FROM vmail_last_login WHERE email = '%s'"
                                       % LOGIN_USER),
                     lambda v: v is not None and int(v) >= before)
    assert stamp is not None and int(stamp) >= before


def doveadm_table(host, command, *args):
    """Rows of ``doveadm -f tab <command>`` (its ``%s`` filled with ``args``) as dicts, lower-case keys."""
    lines = host.check_output("doveadm -f tab " + command, *args).splitlines()
    header = [h.lower() for h in lines[0].split("\t")]
    return [dict(zip(header, line.split("\t"))) for line in lines[1:]]


def doveadm_usage(host, email):
    """(KiB, messages) as the quota plugin reports them and (bytes, messages) of all the user's mailboxes."""
    quota = dict((r["type"], int(r["value"])) for r in doveadm_table(host, "quota get -u %s", email))
    total = doveadm_table(host, "mailbox status -u %s -t %s %s", email, "messages vsize", "*")[0]
    return (quota["STORAGE"], quota["MESSAGE"]), (int(total["vsize"]), int(total["messages"]))


def test_usage_matches_doveadm_after_delivery(host, mail):
    for _attempt in range(2):
        token, msg = make_message("sender@client.example.org", QUOTA_USER)
        with mail.smtp() as smtp:
            smtp.send_message(msg)
        assert mail.wait_delivered(QUOTA_USER, token), "message was not delivered"
    (kib, messages), (vsize, count) = doveadm_usage(host, QUOTA_USER)
    assert messages >= 2 and messages == count

    def usage():
        row = mailbox(mail_info(host), QUOTA_USER)
        return row.get("usage_bytes"), row.get("usage_messages")

    got_bytes, got_messages = wait_for(usage, lambda v: v[1] == messages)
    assert got_messages == messages, (got_bytes, got_messages, messages)
    assert got_bytes is not None and got_bytes > 0
    # The count backend counts virtual sizes (CRLF line ends); doveadm quota get rounds up to KiB.
    assert got_bytes == vsize, (got_bytes, vsize)
    assert (got_bytes + 1023) // 1024 == kib, (got_bytes, kib)
    raw = sql_value(host, "SELECT CONCAT(bytes, ' ', messages) FROM vmail_quota_usage WHERE email = '%s'"
                    % QUOTA_USER)
    assert raw == f"{got_bytes} {got_messages}"
