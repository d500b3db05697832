"""A server built by hand with the Linode guide, then converged by site.yml (issue #4, fault 4)."""

import re

import pytest

from vmailtest import make_message

GUIDE_ACCOUNTS = {
    "email1@example.com": "firstpassword",
    "email2@example.com": "secondpassword",
    "email3@example.org": "thirdpassword",
}


def _sql(host, query):
    res = host.run("mariadb -N -B -e %s", query)
    assert res.rc == 0, res.stderr
    return res.stdout.strip()


def test_guide_rows_are_all_kept(host):
    assert _sql(host, "SELECT GROUP_CONCAT(name ORDER BY id) FROM mailserver.virtual_domains") == \
        "example.com,mail.example.com,example.org"
    assert _sql(host, "SELECT GROUP_CONCAT(email ORDER BY id) FROM mailserver.virtual_users") == \
        "email1@example.com,email2@example.com,email3@example.org"
    assert _sql(host, "SELECT GROUP_CONCAT(CONCAT(source,'>',destination) ORDER BY id) FROM mailserver.virtual_aliases") \
        == "alias@example.com>email1@example.com,@example.org>email3@example.org"


def test_redeclared_encrypt_password_was_not_rehashed(host):
    """ENCRYPT() salts are 16 hex digits (SHA(RAND())); a rehash by passlib would not be."""
    stored = _sql(host, "SELECT password FROM mailserver.virtual_users WHERE email='email1@example.com'")
    assert re.fullmatch(r"\$6\$[0-9a-f]{16}\$[./0-9A-Za-z]{86}", stored), stored


def test_schema_version_recorded(host):
    assert int(_sql(host, "SELECT MAX(version) FROM mailserver.vmail_schema")) >= 1


@pytest.mark.parametrize("email", sorted(GUIDE_ACCOUNTS))
def test_every_guide_account_still_logs_in(mail, email):
    imap = mail.imaps()
    try:
        typ, _data = imap.login(email, GUIDE_ACCOUNTS[email])
        assert typ == "OK"
    finally:
        imap.logout()


def test_mail_from_before_adoption_is_readable(mail):
    imap = mail.imaps()
    try:
        imap.login("email1@example.com", GUIDE_ACCOUNTS["email1@example.com"])
        imap.select("INBOX", readonly=True)
        typ, data = imap.search(None, "SUBJECT", "legacy-message-before-adoption")
        assert typ == "OK" and data[0].split(), "legacy message not visible over IMAPS"
    finally:
        imap.logout()


@pytest.mark.parametrize("recipient,mailbox", [
    ("alias@example.com", "email1@example.com"),
    ("email2@example.com", "email2@example.com"),
    ("whoever@example.org", "email3@example.org"),  # the guide's catch-all
])
def test_guide_aliases_and_mailboxes_still_deliver(mail, recipient, mailbox):
    token, msg = make_message("sender@outside.example.org", recipient)
    with mail.smtp(25) as smtp:
        smtp.send_message(msg)
    assert mail.wait_delivered(mailbox, token)


def test_old_lookup_password_no_longer_works(host):
    """The guide's well-known 'mailuserpass' is replaced by a generated one."""
    res = host.run("MYSQL_PWD=mailuserpass mariadb -h 127.0.0.1 -u mailuser -e 'SELECT 1'")
    assert res.rc != 0 and "Access denied" in res.stderr, res.stderr
    # MariaDB resolves 127.0.0.1 to localhost, so the login above is checked
    # against 'mailuser'@'localhost'; the guide's own account is
    # 'mailuser'@'127.0.0.1': compare every mailuser account's stored hash too.
    rows = _sql(host, "SELECT host, authentication_string = PASSWORD('mailuserpass') "
                      "FROM mysql.user WHERE user = 'mailuser' ORDER BY host").splitlines()
    accounts = dict(row.split("\t") for row in rows)
    assert "127.0.0.1" in accounts, rows
    assert all(same == "0" for same in accounts.values()), rows
    # ... and no Postfix/Dovecot file still carries it (the guide's map file was re-rendered).
    res = host.run("grep -rl mailuserpass /etc/postfix /etc/dovecot /etc/vmail")
    assert res.rc == 1, res.stdout + res.stderr
