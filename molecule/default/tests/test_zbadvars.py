"""Bad role variables are refused and bad configuration never goes live (issue #4).

One table of cases; each runs the Postfix or Dovecot role on the converged
host with one bad variable and asserts (1) the play fails, (2) the message
names the problem; then (3) main.cf, master.cf, the Dovecot config and the SQL
files are byte-for-byte unchanged, and (4) both services still run and still
accept, deliver and serve mail.
"""

import concurrent.futures
import json

import pytest

from vmailtest import make_message, run_playbook

WATCHED = [
    "/etc/postfix/main.cf",
    "/etc/postfix/master.cf",
    "/etc/postfix/mysql-virtual-mailbox-maps.cf",
    "/etc/dovecot/dovecot.conf",
    "/etc/dovecot/dovecot-sql.conf.ext",
]

CASES = [
    # id, roles to run, variables, text the failure must contain
    ("postfix-cert-missing", ["postfix"],
     {"postfix_tls_cert_file": "/nonexistent/cert.pem", "postfix_tls_key_file": "/etc/ssl/vmail-test/privkey.pem"},
     "/nonexistent/cert.pem"),
    ("postfix-key-mismatch", ["postfix"],
     {"postfix_tls_cert_file": "/etc/ssl/vmail-test/fullchain.pem", "postfix_tls_key_file": "/root/other.key"},
     "does not match"),
    ("postfix-cert-only", ["postfix"],
     {"postfix_tls_cert_file": "/etc/ssl/vmail-test/fullchain.pem", "postfix_tls_key_file": ""},
     "Set both postfix_tls_cert_file and postfix_tls_key_file"),
    ("postfix-bad-hostname", ["postfix"], {"postfix_myhostname": "bad_host!"}, "postfix_myhostname"),
    ("postfix-port-range", ["postfix"], {"postfix_submission_port": 70000}, "65535"),
    ("postfix-port-clash", ["postfix"], {"postfix_submission_port": 25}, "distinct"),
    ("postfix-unknown-restriction", ["postfix"],
     {"postfix_main_cf_extra": {"smtpd_relay_restrictions": "permit_mynetworks, permit_everyone"}},
     "permit_everyone"),
    ("postfix-unknown-parameter", ["postfix"], {"postfix_main_cf_extra": {"smtpd_tls_securty_level": "may"}},
     "smtpd_tls_securty_level"),
    ("dovecot-cert-missing", ["dovecot"],
     {"dovecot_tls_cert_file": "/nonexistent/cert.pem", "dovecot_tls_key_file": "/etc/ssl/vmail-test/privkey.pem"},
     "/nonexistent/cert.pem"),
    ("dovecot-key-mismatch", ["dovecot"],
     {"dovecot_tls_cert_file": "/etc/ssl/vmail-test/fullchain.pem", "dovecot_tls_key_file": "/root/other.key"},
     "does not match the certificate"),
    ("dovecot-bad-hostname", ["dovecot"], {"dovecot_hostname": "bad host"}, "dovecot_hostname"),
    ("dovecot-uid-taken", ["dovecot"], {"dovecot_vmail_uid": 5999}, "5999"),
    ("dovecot-weak-ciphers", ["dovecot"], {"dovecot_ssl_cipher_list": "ALL:aNULL:eNULL"}, "dovecot_ssl_cipher_list"),
    ("dovecot-unknown-setting", ["dovecot"], {"dovecot_extra_config": "no_such_dovecot_setting = yes\n"},
     "doveconf rejected"),
    # values only Postfix itself can judge (staged postconf/postfix check/smtpd -S)
    ("postfix-bad-value", ["postfix"], {"postfix_main_cf_extra": {"smtpd_tls_security_level": "bogus"}},
     "Invalid TLS level \"bogus\""),
    ("postfix-bad-size", ["postfix"], {"postfix_main_cf_extra": {"message_size_limit": "lots"}},
     "message_size_limit"),
    # issue #20: shell code in the quota-warning sender, line breaks anywhere, open-relay networks
    ("dovecot-quota-from-shell", ["dovecot"], {"dovecot_quota_warning_from": "$(id)@example.com"},
     "dovecot_quota_warning_from"),
    ("dovecot-newline", ["dovecot"], {"dovecot_postmaster_address": "postmaster@example.com\nmail_debug = yes"},
     "dovecot_postmaster_address, dovecot_quota_warning_from must be one line"),
    ("dovecot-newline-nested", ["dovecot"],
     {"dovecot_special_use_mailboxes": [{"name": "Junk\r\nx", "special_use": "Junk"}]},
     "dovecot_special_use_mailboxes[0].name must be one line"),
    ("postfix-newline", ["postfix"], {"postfix_smtpd_banner": "$myhostname ESMTP\nrelayhost = evil.example"},
     "postfix_smtpd_banner must be one line"),
    ("postfix-open-relay-v4", ["postfix"], {"postfix_mynetworks": ["127.0.0.0/8", "0.0.0.0/0"]}, "0.0.0.0/0"),
    ("postfix-open-relay-v6", ["postfix"], {"postfix_mynetworks": ["127.0.0.0/8", "[::]/0"]}, "[::]/0"),
]


PARALLEL = 5  # ansible-playbook runs at once; each mostly waits on the container


def _snapshot(host):
    return {path: host.run("sha256sum %s", path).stdout.split(" ")[0] for path in WATCHED}


@pytest.fixture(scope="module")
def refused(host):
    """Run every case against this platform (PARALLEL at a time); keep each outcome.

    Returns {"before": snapshot, "after": snapshot, "results": {case_id: (rc, output)}}.
    The cases fail before anything is written, so running them side by side is safe;
    the snapshot comparison afterwards would catch one that did write.
    """
    # A key that matches no certificate, and a user squatting on uid 5999.
    assert host.run("test -f /root/other.key || openssl genrsa -out /root/other.key 2048").rc == 0
    host.run("chmod 600 /root/other.key")
    host.run("getent passwd squatter >/dev/null || useradd -u 5999 -M -s /usr/sbin/nologin squatter")
    before = _snapshot(host)

    def run(case):
        case_id, roles, variables, _message = case
        extra = dict(variables, vmail_test_roles=roles)
        proc = run_playbook(host, "molecule/default/mail-roles.yml", "-e", json.dumps(extra))
        return case_id, (proc.returncode, proc.stdout + proc.stderr)

    with concurrent.futures.ThreadPoolExecutor(max_workers=PARALLEL) as pool:
        results = dict(pool.map(run, CASES))
    return {"before": before, "after": _snapshot(host), "results": results}


@pytest.mark.parametrize("case_id,roles,variables,message", CASES, ids=[c[0] for c in CASES])
def test_bad_role_variable_is_refused(refused, case_id, roles, variables, message):
    rc, output = refused["results"][case_id]
    assert rc != 0, f"{case_id}: the play did not fail\n{output[-3000:]}"
    assert message in output, f"{case_id}: message does not name the problem\n{output[-3000:]}"


def test_refused_variables_changed_no_file(refused):
    changed = [p for p in WATCHED if refused["before"][p] != refused["after"][p]]
    assert not changed, f"configuration files changed by refused runs: {changed}"


def test_server_still_serves_after_refused_configs(host, mail, refused):
    """Bad configuration never goes live: the running daemons keep their config and serve mail."""
    assert refused["results"], "no case ran"
    for svc in ("postfix", "dovecot"):
        assert host.service(svc).is_running, f"{svc} stopped"
    token, msg = make_message("sender@outside.example.org", "alice@example.com")
    with mail.smtp(25) as smtp:
        smtp.send_message(msg)
    assert mail.wait_delivered("alice@example.com", token), "server stopped accepting mail"
    assert mail.imap_login("alice@example.com") == "OK"
