"""The account model in real mail flows (issue #8): alias domains, disabled mailboxes, aliases and domains.

The accounts come from inventory (group_vars/all.yml, the mailsql_*__model parts). The disabled-mailbox
test changes gina's ``active`` flag the way an admin does, through playbooks/accounts.yml with the
inventory value overridden, and sets it back at the end.
"""

import imaplib
import json
import poplib
import smtplib
import time

import pytest
from vmailtest import make_message, recap_counts, run_playbook

OUTSIDE = "sender@outside.example.org"
GINA = "gina@example.com"
DISABLED = "5.2.1"  # RFC 3463 "Mailbox disabled, not accepting messages" (vmail_lookups.DISABLED_ACTION)


def rcpt(mail, recipient, sender=OUTSIDE):
    """(code, text) of RCPT TO from a client outside mynetworks on port 25."""
    with mail.smtp(25) as smtp:
        smtp.mail(sender)
        code, text = smtp.rcpt(recipient)
        smtp.rset()
    return code, text.decode(errors="replace")


def send(mail, recipient):
    token, msg = make_message(OUTSIDE, recipient)
    with mail.smtp(25) as smtp:
        assert smtp.send_message(msg) == {}
    return token


# --- Alias domains -------------------------------------------------------------


def test_alias_domain_delivers_to_the_same_local_part(mail):
    token = send(mail, "alice@alias.example")
    assert mail.wait_delivered("alice@example.com", token), "user@alias.example did not reach user@example.com"


def test_alias_domain_covers_the_targets_aliases(mail):
    token = send(mail, "postmaster@alias.example")
    assert mail.wait_delivered("alice@example.com", token), "postmaster@alias.example (alias of the target) lost"


def test_alias_domain_covers_the_targets_catch_all(mail):
    token = send(mail, "nobody-here@aliasnet.example")
    assert mail.wait_delivered("carol@example.net", token), "the target's catch-all did not take the message"


def test_alias_domain_refuses_an_unknown_local_part(mail):
    code, text = rcpt(mail, "nobody-here@alias.example")
    assert code == 550, (code, text)


def test_user_may_send_as_the_alias_domain_form_of_own_address(mail):
    token, msg = make_message("alice@alias.example", "bob@example.com")
    with mail.submission("alice@example.com") as smtp:
        assert smtp.send_message(msg) == {}
    assert mail.wait_delivered("bob@example.com", token)


def test_nobody_else_may_send_as_the_alias_domain_form(mail):
    with mail.submission("bob@example.com") as smtp:
        smtp.mail("alice@alias.example")
        code, text = smtp.rcpt("carol@example.net")
    assert code == 553 and b"not owned by user" in text, (code, text)


# --- Disabled alias and domain ---------------------------------------------------


def test_disabled_alias_does_not_expand(mail):
    code, text = rcpt(mail, "old@example.com")
    assert code == 550, (code, text)


def test_disabled_domain_is_refused_as_a_destination(mail):
    # From outside: no longer a domain of this server, so smtpd_relay_restrictions refuse it first.
    code, text = rcpt(mail, "hank@closed.example")
    assert code == 554 and "Relay access denied" in text, (code, text)
    # An authenticated sender may relay, but not to a disabled domain of this server.
    with mail.submission("alice@example.com") as smtp:
        smtp.mail("alice@example.com")
        code, text = smtp.rcpt("hank@closed.example")
    assert code == 550 and DISABLED.encode() in text, (code, text)


def test_mailbox_of_a_disabled_domain_cannot_log_in(mail):
    with pytest.raises(imaplib.IMAP4.error):
        mail.imap_login("hank@closed.example")


# --- Disabled mailbox: refused everywhere, nothing lost, restored on re-enable ------


def set_gina_active(host, mail, active):
    users = [dict(u, active=active) if u["email"] == GINA else u for u in mail.vars["mailsql_users__model"]]
    proc = run_playbook(host, "accounts.yml", "-e", json.dumps({"mailsql_users__model": users}), timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert recap_counts(proc.stdout, host.backend.get_hostname())["changed"] >= 1, proc.stdout[-3000:]


def imap_search(mail, email, token):
    imap = mail.imaps()
    try:
        imap.login(email, mail.password(email))
        imap.select("INBOX", readonly=True)
        status, data = imap.search(None, "BODY", token)
        assert status == "OK", data
        return data[0].split()
    finally:
        imap.logout()


def open_sessions(mail, email):
    """An IMAP session (logged in, INBOX selected) and a POP3 session (after STAT) of *email*, both kept open."""
    imap = mail.imaps()
    imap.login(email, mail.password(email))
    imap.select("INBOX")
    pop = mail.pop3s()
    pop.user(email)
    pop.pass_(mail.password(email))
    pop.stat()
    return imap, pop


def session_ended(command, errors, timeout=10):
    """True once *command* (a NOOP on a kept session) raises one of *errors*: the server ended the session."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            command()
        except errors:
            return True
        time.sleep(0.5)
    return False


def test_disabled_mailbox_refused_then_restored(host, mail):
    token = send(mail, GINA)
    assert mail.wait_delivered(GINA, token)
    assert mail.imap_login(GINA) == "OK"
    # Sessions opened before the change (issue #20, S20-4): disabling the mailbox must end them
    # (mail_accounts' doveadm kick), not only refuse new logins.
    imap, pop = open_sessions(mail, GINA)
    assert imap.noop()[0] == "OK" and pop.noop().startswith(b"+OK")

    set_gina_active(host, mail, False)
    try:
        assert session_ended(imap.noop, (imaplib.IMAP4.abort, OSError, EOFError)), \
            "the IMAP session opened before the mailbox was disabled is still open"
        assert session_ended(pop.noop, (poplib.error_proto, OSError, EOFError)), \
            "the POP3 session opened before the mailbox was disabled is still open"
        with pytest.raises(imaplib.IMAP4.error):
            mail.imap_login(GINA)
        pop = mail.pop3s()
        try:
            pop.user(GINA)
            with pytest.raises(poplib.error_proto):
                pop.pass_(mail.password(GINA))
        finally:
            pop.close()
        with pytest.raises(smtplib.SMTPAuthenticationError):
            mail.submission(GINA)
        code, text = rcpt(mail, GINA)
        assert code == 550 and DISABLED in text, (code, text)
        # An authenticated local sender is refused at RCPT too (no bounce later).
        with mail.submission("alice@example.com") as smtp:
            smtp.mail("alice@example.com")
            code, text = smtp.rcpt(GINA)
        assert code == 550 and DISABLED.encode() in text, (code, text)
        # Nothing was deleted.
        assert mail.maildir_grep(GINA, token).rc == 0
    finally:
        set_gina_active(host, mail, True)

    assert mail.imap_login(GINA) == "OK"
    assert imap_search(mail, GINA, token), "the mail from before the account was disabled is gone"
    token2 = send(mail, GINA)
    assert mail.wait_delivered(GINA, token2)
