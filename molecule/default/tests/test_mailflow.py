"""End-to-end mail flows, from a client outside mynetworks (issue #3).

Every test sends a message with a unique token and then looks for that token
in the recipient's Maildir on the server, so a test passes only when the mail
really went SMTP -> Postfix -> MySQL lookups -> LMTP -> Dovecot -> Maildir.
"""

import imaplib
import poplib
import smtplib

import pytest
from vmailtest import banner, make_message

# --- Inbound SMTP on port 25 -------------------------------------------------


def test_smtp_delivers_to_mailbox(mail):
    token, msg = make_message("sender@outside.example.org", "alice@example.com")
    with mail.smtp(25) as smtp:
        refused = smtp.send_message(msg)
    assert refused == {}
    assert mail.wait_delivered("alice@example.com", token), "message not in alice's Maildir"


def test_smtp_alias_lands_in_target_mailbox(mail):
    token, msg = make_message("sender@outside.example.org", "postmaster@example.com")
    with mail.smtp(25) as smtp:
        smtp.send_message(msg)
    assert mail.wait_delivered("alice@example.com", token)


def test_smtp_alias_with_two_destinations(mail):
    token, msg = make_message("sender@outside.example.org", "sales@example.com")
    with mail.smtp(25) as smtp:
        smtp.send_message(msg)
    assert mail.wait_delivered("alice@example.com", token)
    assert mail.wait_delivered("bob@example.com", token)


def test_catch_all_does_not_steal_existing_mailbox(mail):
    token, msg = make_message("sender@outside.example.org", "dave@example.net")
    with mail.smtp(25) as smtp:
        smtp.send_message(msg)
    assert mail.wait_delivered("dave@example.net", token)
    assert mail.maildir_grep("carol@example.net", token).rc != 0, "catch-all stole dave's mail"


def test_catch_all_takes_unknown_address(mail):
    token, msg = make_message("sender@outside.example.org", "nobody-here@example.net")
    with mail.smtp(25) as smtp:
        smtp.send_message(msg)
    assert mail.wait_delivered("carol@example.net", token)


def test_split_account_variables_are_applied(mail):
    """erin and info@ come only from mailsql_users__extra/mailsql_aliases__extra (merged by the mailsql role)."""
    token, msg = make_message("sender@outside.example.org", "info@example.com")
    with mail.smtp(25) as smtp:
        refused = smtp.send_message(msg)
    assert refused == {}
    assert mail.wait_delivered("erin@example.com", token), "alias from mailsql_aliases__extra not delivered"
    assert mail.imap_login("erin@example.com") == "OK"


def test_unknown_address_of_managed_domain_is_rejected(mail):
    with mail.smtp(25) as smtp:
        smtp.mail("sender@outside.example.org")
        code, reply = smtp.rcpt("no-such-user@example.com")
    assert 500 <= code < 600, (code, reply)
    assert b"User unknown" in reply or b"Recipient address rejected" in reply


@pytest.mark.parametrize("sender", ["sender@outside.example.org", "alice@example.com", ""])
def test_no_relay_without_auth(mail, sender):
    """Relay to an outside domain is refused, also with a forged local sender."""
    with mail.smtp(25) as smtp:
        smtp.mail(sender)
        code, reply = smtp.rcpt("victim@outside.example.org")
    assert 500 <= code < 600, (code, reply)


def test_no_relay_after_starttls_without_auth(mail):
    with mail.smtp(25) as smtp:
        smtp.starttls(context=mail.client_context())
        smtp.ehlo()
        smtp.mail("sender@outside.example.org")
        code, reply = smtp.rcpt("victim@outside.example.org")
    assert 500 <= code < 600, (code, reply)


# --- AUTH only over TLS --------------------------------------------------------


@pytest.mark.parametrize("port", [25, 587])
def test_no_auth_offered_before_starttls(mail, port):
    with mail.smtp(port) as smtp:
        assert smtp.has_extn("starttls")
        assert not smtp.has_extn("auth"), f"AUTH offered in plaintext on {port}"
        code, _reply = smtp.docmd("AUTH", "PLAIN AGFsaWNlQGV4YW1wbGUuY29tAHdyb25n")
        assert code >= 500


def test_auth_offered_after_starttls_on_submission(mail):
    with mail.smtp(587) as smtp:
        smtp.starttls(context=mail.client_context())
        smtp.ehlo()
        assert smtp.has_extn("auth")


@pytest.mark.parametrize("port", [143, 110])
def test_plain_imap_pop3_closed_by_default(host, mail, port):
    listening = [s for s in host.socket.get_listening_sockets() if s.endswith(f":{port}")]
    assert not listening, f"plain port {port} is listening: {listening}"
    assert banner(mail.port(port)) is None, f"plain port {port} answers from outside"


# --- Submission ---------------------------------------------------------------


@pytest.mark.parametrize("port", [587, 465])
def test_submission_relays_for_authenticated_user(mail, port):
    _token, msg = make_message("alice@example.com", "friend@outside.example.org")
    with mail.submission("alice@example.com", port) as smtp:
        refused = smtp.send_message(msg)
    assert refused == {}


@pytest.mark.parametrize("port", [587, 465])
def test_submission_delivers_locally(mail, port):
    token, msg = make_message("alice@example.com", "bob@example.com")
    with mail.submission("alice@example.com", port) as smtp:
        smtp.send_message(msg)
    assert mail.wait_delivered("bob@example.com", token)


@pytest.mark.parametrize("port", [587, 465])
def test_submission_requires_auth(mail, port):
    if port == 465:
        smtp = smtplib.SMTP_SSL("127.0.0.1", mail.port(465), context=mail.client_context(), timeout=30)
        smtp.ehlo()
    else:
        smtp = mail.smtp(587)
        smtp.starttls(context=mail.client_context())
        smtp.ehlo()
    with smtp:
        smtp.mail("alice@example.com")
        code, reply = smtp.rcpt("friend@outside.example.org")
    assert 500 <= code < 600, (code, reply)


@pytest.mark.parametrize("sender", ["bob@example.com", "carol@example.net", "someone@foreign.example.org"])
def test_authenticated_user_cannot_send_as_someone_else(mail, sender):
    with mail.submission("alice@example.com", 587) as smtp:
        smtp.mail(sender)
        code, reply = smtp.rcpt("friend@outside.example.org")
    assert 500 <= code < 600, (code, reply)
    assert b"not owned" in reply or b"mismatch" in reply.lower() or code == 553


def test_authenticated_user_may_send_as_own_alias(mail):
    with mail.submission("alice@example.com", 587) as smtp:
        smtp.mail("postmaster@example.com")
        code, reply = smtp.rcpt("friend@outside.example.org")
    assert code == 250, (code, reply)


def test_wrong_password_fails_on_submission(mail):
    with mail.smtp(587) as smtp:
        smtp.starttls(context=mail.client_context())
        smtp.ehlo()
        with pytest.raises(smtplib.SMTPAuthenticationError):
            smtp.login("alice@example.com", "not-the-password")


# --- IMAPS / POP3S ------------------------------------------------------------


def test_imaps_fetches_delivered_message(mail):
    token, msg = make_message("sender@outside.example.org", "bob@example.com")
    with mail.smtp(25) as smtp:
        smtp.send_message(msg)
    assert mail.wait_delivered("bob@example.com", token)
    imap = mail.imaps()
    try:
        imap.login("bob@example.com", mail.password("bob@example.com"))
        typ, _data = imap.select("INBOX", readonly=True)
        assert typ == "OK"
        typ, data = imap.search(None, "SUBJECT", token)
        assert typ == "OK" and data[0].split(), "message not found over IMAPS"
        num = data[0].split()[0]
        typ, fetched = imap.fetch(num, "(RFC822)")
        assert typ == "OK"
        assert token.encode() in fetched[0][1]
    finally:
        imap.logout()


def test_imaps_special_use_folders(mail):
    imap = mail.imaps()
    try:
        imap.login("alice@example.com", mail.password("alice@example.com"))
        typ, boxes = imap.list()
        assert typ == "OK"
        listing = b"\n".join(boxes)
        for folder, flag in ((b"Drafts", b"\\Drafts"), (b"Junk", b"\\Junk"), (b"Sent", b"\\Sent"),
                             (b"Trash", b"\\Trash")):
            assert folder in listing and flag in listing, listing
        typ, subscribed = imap.lsub()
        assert all(f in b"\n".join(subscribed) for f in (b"Drafts", b"Junk", b"Sent", b"Trash"))
    finally:
        imap.logout()


def test_imaps_wrong_password_fails(mail):
    imap = mail.imaps()
    try:
        with pytest.raises(imaplib.IMAP4.error):
            imap.login("alice@example.com", "not-the-password")
    finally:
        try:
            imap.logout()
        except Exception:  # noqa: BLE001 - connection may already be closed
            pass


def test_pop3s_fetches_message(mail):
    token, msg = make_message("sender@outside.example.org", "carol@example.net")
    with mail.smtp(25) as smtp:
        smtp.send_message(msg)
    assert mail.wait_delivered("carol@example.net", token)
    pop = mail.pop3s()
    try:
        pop.user("carol@example.net")
        pop.pass_(mail.password("carol@example.net"))
        count, _size = pop.stat()
        assert count >= 1
        found = False
        for i in range(count, 0, -1):
            _resp, lines, _octets = pop.top(i, 0)
            if any(token.encode() in line for line in lines):
                found = True
                break
        assert found, "message not found over POP3S"
    finally:
        pop.quit()


def test_pop3s_wrong_password_fails(mail):
    pop = mail.pop3s()
    pop.user("carol@example.net")
    with pytest.raises(poplib.error_proto):
        pop.pass_("not-the-password")
    pop.close()


# --- The guide's own checks ---------------------------------------------------


@pytest.mark.parametrize("mapfile,key,expected", [
    ("mysql-virtual-mailbox-domains.cf", "example.com", "1"),
    ("mysql-virtual-mailbox-maps.cf", "alice@example.com", "1"),
    ("mysql-virtual-alias-maps.cf", "postmaster@example.com", "alice@example.com"),
    ("mysql-virtual-email2email.cf", "dave@example.net", "dave@example.net"),
])
def test_postmap_queries(host, mapfile, key, expected):
    out = host.run(f"postmap -q {key} mysql:/etc/postfix/{mapfile}")
    assert out.rc == 0, out.stderr
    assert out.stdout.strip() == expected


def test_postmap_unknown_domain_not_found(host):
    out = host.run("postmap -q not-managed.example.org mysql:/etc/postfix/mysql-virtual-mailbox-domains.cf")
    assert out.rc == 1 and out.stdout.strip() == ""
