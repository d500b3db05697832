"""Bad role variables are refused (issue #4): a clear message, nothing changed.

One table of cases; each runs the Postfix or Dovecot role on the converged
host with one bad variable and asserts (1) the play fails, (2) the message
names the problem, (3) main.cf, master.cf, the Dovecot config and the SQL
files are byte-for-byte unchanged, and (4) both services still run.
"""

import json

import pytest

from vmailtest import run_playbook

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
     "does not belong to the certificate"),
    ("dovecot-bad-hostname", ["dovecot"], {"dovecot_hostname": "bad host"}, "dovecot_hostname"),
    ("dovecot-uid-taken", ["dovecot"], {"dovecot_vmail_uid": 5999}, "5999"),
    ("dovecot-weak-ciphers", ["dovecot"], {"dovecot_ssl_cipher_list": "ALL:aNULL:eNULL"}, "dovecot_ssl_cipher_list"),
    ("dovecot-unknown-setting", ["dovecot"], {"dovecot_extra_config": "no_such_dovecot_setting = yes\n"},
     "doveconf rejected"),
]


@pytest.fixture(scope="module")
def prepared(host):
    """A key that matches no certificate, and a user squatting on uid 5999."""
    assert host.run("test -f /root/other.key || openssl genrsa -out /root/other.key 2048").rc == 0
    host.run("chmod 600 /root/other.key")
    host.run("getent passwd squatter >/dev/null || useradd -u 5999 -M -s /usr/sbin/nologin squatter")
    return True


def _snapshot(host):
    return {path: host.run("sha256sum %s", path).stdout.split(" ")[0] for path in WATCHED}


@pytest.mark.parametrize("case_id,roles,variables,message", CASES, ids=[c[0] for c in CASES])
def test_bad_role_variable_is_refused(host, prepared, case_id, roles, variables, message):
    before = _snapshot(host)
    extra = dict(variables, vmail_test_roles=roles)
    proc = run_playbook(host, "molecule/default/mail-roles.yml", "-e", json.dumps(extra))
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0, f"{case_id}: the play did not fail\n{output[-3000:]}"
    assert message in output, f"{case_id}: message does not name the problem\n{output[-3000:]}"
    assert _snapshot(host) == before, f"{case_id}: configuration files changed"
    for svc in ("postfix", "dovecot"):
        assert host.service(svc).is_running, f"{case_id}: {svc} stopped"
