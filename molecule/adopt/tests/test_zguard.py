"""A change of mail location on a host with mail is refused unless declared; declared, the mail moves (issue #11).

Runs last (file name), on the servers built by the newer guide (mail directly in
/var/mail/vhosts/<domain>/<user>), and moves them to ~/Maildir.
"""

import json

import pytest

from adopttest import mailbox_view, wait_for_subject
from vmailtest import make_message, recap_counts, run_playbook

NEW_LOCATION = "maildir:~/Maildir"
WATCHED = ["/etc/dovecot/dovecot.conf", "/etc/dovecot/dovecot-sql.conf.ext", "/etc/postfix/main.cf"]


@pytest.fixture(scope="module", autouse=True)
def newer_guide_only(mail):
    if mail.revision != "newer":
        pytest.skip("the move is exercised on the newer guide's layout")


def _dovecot_role(host, **variables):
    extra = dict(variables, vmail_test_roles=["dovecot"])
    proc = run_playbook(host, "molecule/default/mail-roles.yml", "-e", json.dumps(extra))
    return proc.returncode, proc.stdout + proc.stderr


def _views(mail):
    views = {}
    for email in ("email1@example.com", "email2@example.com"):
        imap = mail.login(email)
        try:
            views[email] = mailbox_view(imap)
        finally:
            imap.logout()
    return views


@pytest.fixture(scope="module")
def before(host, mail):
    return {"views": _views(mail),
            "files": {p: host.run("sha256sum %s", p).stdout.split(" ")[0] for p in WATCHED}}


def test_undeclared_change_of_location_is_refused(host, mail, before):
    rc, output = _dovecot_role(host, dovecot_mail_location=NEW_LOCATION)
    assert rc != 0, output[-3000:]
    for text in ("maildir:/var/mail/vhosts/%d/%n/", NEW_LOCATION, "/var/mail/vhosts/%d/%n/Maildir",
                 "2 mailboxes", "dovecot_mail_location_move"):
        assert text in output, f"{text!r} not in the failure:\n{output[-3000:]}"
    after = {p: host.run("sha256sum %s", p).stdout.split(" ")[0] for p in WATCHED}
    assert after == before["files"], "a refused run changed the configuration"
    assert host.service("dovecot").is_running
    assert _views(mail) == before["views"], "the running server no longer serves the old mail as it was"


def test_declared_move_keeps_every_message_once(host, mail, before):
    rc, output = _dovecot_role(host, dovecot_mail_location=NEW_LOCATION, dovecot_mail_location_move=True)
    assert rc == 0, output[-4000:]
    assert _views(mail) == before["views"], "folders, subscriptions, UIDs or flags differ after the move"
    for email in ("email1@example.com", "email2@example.com"):
        local = email.split("@", maxsplit=1)[0]
        home = f"/var/mail/vhosts/example.com/{local}"
        assert host.file(f"{home}/Maildir/cur").is_directory
        assert not host.file(f"{home}/cur").exists, f"old Maildir left in {home}"
    found = host.run("find /var/mail/vhosts -type d -name cur -not -path '*/.*'").stdout.split()
    assert sorted(found) == ["/var/mail/vhosts/example.com/email1/Maildir/cur",
                             "/var/mail/vhosts/example.com/email2/Maildir/cur"], found


def test_after_the_move_new_mail_lands_at_the_new_location(host, mail):
    token, msg = make_message("sender@outside.example.org", "email1@example.com")
    with mail.smtp(25) as smtp:
        smtp.send_message(msg)
    assert wait_for_subject(mail, "email1@example.com", token)
    maildir = "/var/mail/vhosts/example.com/email1/Maildir"
    assert host.run("grep -rlF -- %s %s/new %s/cur", token, maildir, maildir).rc == 0


def test_move_run_again_changes_nothing(host):
    rc, output = _dovecot_role(host, dovecot_mail_location=NEW_LOCATION, dovecot_mail_location_move=True)
    assert rc == 0, output[-3000:]
    assert recap_counts(output, host.backend.get_hostname())["changed"] == 0, output[-3000:]
