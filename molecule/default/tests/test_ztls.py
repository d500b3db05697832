"""One self-signed certificate for Postfix and Dovecot with different host names (issue #9, item 5).

Runs the postfix and dovecot roles (mail-roles.yml) without certificate files, with
``dovecot_hostname`` different from ``postfix_myhostname``: the first run creates one
self-signed pair naming both, the second changes nothing and restarts nothing, and a
renewed certificate is served after a reload (Dovecot's and Postfix's master processes
keep running). The scenario's own certificates are put back at the end. Named test_z* so it
runs after the mail-flow tests, which expect the scenario's certificates.
"""

import json
import ssl

import pytest

from vmailtest import recap_counts, run_playbook

SELFSIGNED = {
    "postfix_tls_cert_file": "", "postfix_tls_key_file": "",
    "dovecot_tls_cert_file": "", "dovecot_tls_key_file": "",
    "dovecot_hostname": "imap.example.com",
}


def main_pid(host, unit):
    return host.run(f"systemctl show -p MainPID --value {unit}").stdout.strip()


def roles(host, extra=None):
    args = ["-e", json.dumps(extra)] if extra else []
    proc = run_playbook(host, "molecule/default/mail-roles.yml", *args)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    return recap_counts(proc.stdout, host.backend.get_hostname())


@pytest.fixture(scope="module")
def selfsigned(host):
    """The host switched to the shared self-signed pair; the scenario's certificates again afterwards."""
    host.run("rm -rf /etc/vmail/tls")
    try:
        yield
    finally:
        roles(host)


def served_pem(mail, port):
    return ssl.get_server_certificate(("127.0.0.1", mail.port(port))).strip()


def file_pem(host, path):
    return host.run(f"openssl x509 -in {path}").stdout.strip()


def test_one_certificate_for_both_names_then_nothing_changes(host, mail, selfsigned):
    assert roles(host, SELFSIGNED)["changed"] > 0
    cert = host.run("openssl x509 -in /etc/vmail/tls/mail.crt -noout -ext subjectAltName")
    assert cert.rc == 0, cert.stderr
    assert "DNS:mail.example.com" in cert.stdout and "DNS:imap.example.com" in cert.stdout, cert.stdout
    key = host.file("/etc/vmail/tls/mail.key")
    assert (key.user, key.group, key.mode) == ("root", "root", 0o600)
    assert served_pem(mail, 993) == served_pem(mail, 465) == file_pem(host, "/etc/vmail/tls/mail.crt")

    pids = (main_pid(host, "dovecot"), main_pid(host, "postfix@-"))
    second = roles(host, SELFSIGNED)
    assert second["changed"] == 0, second
    assert (main_pid(host, "dovecot"), main_pid(host, "postfix@-")) == pids, "a service was restarted"


def test_a_new_certificate_is_served_after_a_reload_not_a_restart(host, mail, selfsigned):
    """A renewed certificate (here: the old one deleted) is served at once; Dovecot's master keeps running.

    A reload keeps the listeners and the master process (and LMTP deliveries in progress); Dovecot
    still ends open IMAP sessions on a reload ("Server shutting down"), so that is not promised.
    """
    old = file_pem(host, "/etc/vmail/tls/mail.crt")
    assert old, "run after test_one_certificate_for_both_names_then_nothing_changes"
    pids = (main_pid(host, "dovecot"), main_pid(host, "postfix@-"))
    host.run("rm -f /etc/vmail/tls/mail.crt")
    assert roles(host, SELFSIGNED)["changed"] > 0
    new = file_pem(host, "/etc/vmail/tls/mail.crt")
    assert new and new != old
    assert (main_pid(host, "dovecot"), main_pid(host, "postfix@-")) == pids, "restarted, not reloaded"
    assert served_pem(mail, 993) == new and served_pem(mail, 465) == new
