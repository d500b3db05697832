"""Faults survived (issue #4): nothing lost when the database or a daemon goes away,
bad configuration never goes live, re-runs keep data.

These tests stop and restart services; the file name sorts them after the
plain mail-flow tests, and each test leaves every service running.
"""

import json
import smtplib
import threading
import time

import pytest
from vmailtest import make_message, recap_counts, run_playbook

SERVICES = ("postfix", "dovecot", "mariadb")


def _ensure_running(host):
    for svc in SERVICES:
        host.run("systemctl start %s", svc)
    for svc in SERVICES:
        for _attempt in range(30):
            if host.service(svc).is_running:
                break
            time.sleep(1)
        assert host.service(svc).is_running, f"{svc} is not running"


def _copies(mail, email, token):
    res = mail.maildir_grep(email, token)
    return len([line for line in res.stdout.splitlines() if line.strip()])


def test_database_down_defers_and_delivers_exactly_once(host, mail):
    """MariaDB stopped: 4xx (never 5xx) to SMTP clients, accepted mail waits; delivered once later."""
    _ensure_running(host)
    token, msg = make_message("root@mail.example.com", "alice@example.com")
    assert host.run("systemctl stop mariadb").rc == 0
    try:
        with mail.smtp(25) as smtp:
            smtp.mail("sender@outside.example.org")
            code, reply = smtp.rcpt("alice@example.com")
        assert 400 <= code < 500, f"database down must give a temporary error, got {code} {reply!r}"
        # A message Postfix has already taken (local submission) must wait, not bounce.
        res = host.run("printf %%s %s | /usr/sbin/sendmail -i -f root@mail.example.com alice@example.com",
                       msg.as_string())
        assert res.rc == 0, res.stderr
        time.sleep(5)
        assert _copies(mail, "alice@example.com", token) == 0, "delivered although the database is down"
    finally:
        host.run("systemctl start mariadb")
        _ensure_running(host)
    deadline = time.time() + 120
    while time.time() < deadline and _copies(mail, "alice@example.com", token) == 0:
        host.run("postqueue -f")
        host.run("postkick public pickup W")
        time.sleep(3)
    time.sleep(3)
    assert _copies(mail, "alice@example.com", token) == 1, "not delivered exactly once after the database came back"
    # Never a bounce: no message from MAILER-DAEMON (null sender) in the queue.
    bounces = [json.loads(line) for line in host.run("postqueue -j").stdout.splitlines()
               if json.loads(line).get("sender", "x") in ("", "MAILER-DAEMON")]
    assert not bounces, bounces


def _send_once(mail, msg):
    """One SMTP transaction on port 25: True when the message was accepted (250 after DATA)."""
    try:
        smtp = mail.smtp(25)
        try:
            return not smtp.send_message(msg)
        finally:
            _close_quietly(smtp)
    except (smtplib.SMTPException, OSError):
        return False


def test_database_back_accepts_mail_within_5_seconds(host, mail):
    """Issue #20: a lookup failure must not outlive its cause. Postfix's MySQL client skips a failed
    host for 60 s in every process that saw the failure; the postfix role's reconnect unit reloads
    Postfix when MariaDB starts, so the first message after the outage is accepted at once."""
    _ensure_running(host)
    batch = [make_message("sender@outside.example.org", "bob@example.com") for _i in range(10)]
    for _token, msg in batch:
        assert _send_once(mail, msg), "not accepted before the outage"
    outage = time.time()
    assert host.run("systemctl stop mariadb").rc == 0
    try:
        # Postfix meets the outage (its lookups fail now), as a busy server would.
        with mail.smtp(25) as smtp:
            smtp.mail("sender@outside.example.org")
            code, reply = smtp.rcpt("bob@example.com")
        assert 400 <= code < 500, f"database down must give a temporary error, got {code} {reply!r}"
        time.sleep(max(0.0, 10 - (time.time() - outage)))
    finally:
        assert host.run("systemctl start mariadb").rc == 0
    back = time.time()
    token, msg = make_message("sender@outside.example.org", "bob@example.com")
    accepted = False
    while not accepted and time.time() - back < 5:
        accepted = _send_once(mail, msg)
        if not accepted:
            time.sleep(0.5)
    elapsed = time.time() - back
    _ensure_running(host)
    assert accepted, f"no message accepted within 5 s after the database came back ({elapsed:.1f} s)"
    tokens = [t for t, _m in batch] + [token]
    deadline = time.time() + 120
    while time.time() < deadline and any(_copies(mail, "bob@example.com", t) == 0 for t in tokens):
        host.run("postqueue -f")
        time.sleep(2)
    counts = {t: _copies(mail, "bob@example.com", t) for t in tokens}
    assert all(c == 1 for c in counts.values()), counts


def _close_quietly(smtp):
    try:
        smtp.quit()
    except (smtplib.SMTPException, OSError):
        smtp.close()


def _send_with_retry(mail, msg, deadline):
    """Send like an MTA would: retry on temporary errors and dropped connections."""
    while time.time() < deadline:
        try:
            smtp = mail.smtp(25)
            try:
                refused = smtp.send_message(msg)
            finally:
                _close_quietly(smtp)
            # The 250 after DATA is the server taking responsibility (RFC 5321
            # 6.1); what happens to QUIT afterwards (a 421 or a reset while the
            # service restarts) must not make us send the message a second time.
            if not refused:
                return True
        except smtplib.SMTPRecipientsRefused as exc:
            if any(code >= 500 for code, _msg in exc.recipients.values()):
                raise
        except smtplib.SMTPResponseException as exc:
            if exc.smtp_code >= 500:
                raise
        except OSError:
            # connection refused or dropped while the service restarts; smtplib's
            # other errors (SMTPServerDisconnected, ...) are OSError subclasses too
            pass
        time.sleep(1)
    return False


@pytest.mark.parametrize("service", SERVICES)
def test_restart_during_batch_loses_nothing(host, mail, service):
    _ensure_running(host)
    batch = [make_message("sender@outside.example.org", "bob@example.com") for _i in range(12)]
    accepted = []

    def sender():
        deadline = time.time() + 180
        for token, msg in batch:
            if _send_with_retry(mail, msg, deadline):
                accepted.append(token)

    thread = threading.Thread(target=sender)
    thread.start()
    time.sleep(1.0)
    assert host.run("systemctl restart %s", service).rc == 0
    thread.join(240)
    _ensure_running(host)
    assert len(accepted) == len(batch), f"only {len(accepted)} of {len(batch)} accepted"
    deadline = time.time() + 120
    while time.time() < deadline and any(_copies(mail, "bob@example.com", t) == 0 for t in accepted):
        host.run("postqueue -f")
        time.sleep(2)
    counts = {t: _copies(mail, "bob@example.com", t) for t in accepted}
    assert all(c == 1 for c in counts.values()), counts


def _maildir_count(host):
    return int(host.run("find /var/mail/vhosts -type f -path '*/cur/*' -o -type f -path '*/new/*' | wc -l")
               .stdout.strip())


def _row_counts(host):
    out = host.run("mariadb -N -B -e %s",
                   "SELECT (SELECT COUNT(*) FROM mailserver.virtual_domains),"
                   " (SELECT COUNT(*) FROM mailserver.virtual_users),"
                   " (SELECT COUNT(*) FROM mailserver.virtual_aliases),"
                   " (SELECT GROUP_CONCAT(password ORDER BY email) FROM mailserver.virtual_users)")
    assert out.rc == 0, out.stderr
    return out.stdout.strip()


def test_rerun_keeps_data_and_changes_nothing(host, mail):
    _ensure_running(host)
    before_rows, before_mail = _row_counts(host), _maildir_count(host)
    assert before_mail > 0, "no mail on the server yet: the test could not judge"
    proc = run_playbook(host, "site.yml")
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    counts = recap_counts(proc.stdout, host.backend.get_hostname())
    assert counts["changed"] == 0 and counts["failed"] == 0, counts
    assert _row_counts(host) == before_rows, "rows or password hashes changed on a re-run"
    assert _maildir_count(host) == before_mail
