"""ACME certificates (issue #21, item 3): the acme role against Pebble, Let's Encrypt's test CA.

The outside partner of each mail server (prepare.yml) runs Debian's ``pebble``: its API on 14000
with a certificate from the scenario's test CA, HTTP-01 validated on port 80 of the names it
resolves through the outside host's dnsmasq. molecule/default/acme.yml runs the firewall and acme
roles with acme_server pointing at it; the certificate goes where the scenario's Postfix and
Dovecot read theirs. Then:

- port 80 still closed (the firewall role not run yet): certbot fails, the run does not (a warning), the
  certificate in use stays;
- issuance: Pebble validates mail.example.com over HTTP-01 (port 80 opened by the firewall role), and
  SMTPS (465) and IMAPS (993) serve the new certificate at once, verified against the root Pebble
  issues under (fetched from its management API) for the name mail.example.com, after a reload (the
  master processes keep running); a second run changes nothing;
- renewal through Debian's certbot.service (what certbot.timer starts, with the role's drop-in
  trusting the test CA for the API) once the lineage is due: a new certificate served, again
  without a restart; the deploy hook run again on unchanged files reloads nothing.

The scenario's own certificate, the firewall's ruleset (port 80 closed) and the DNS records are put back at the end.
"""

import json
import os
import pathlib
import socket
import ssl
import time
import urllib.request

import pytest
import testinfra
from vmailtest import TIMEOUT, outside_name, recap_counts, run_playbook

CERT = "/etc/ssl/vmail-test/fullchain.pem"
KEY = "/etc/ssl/vmail-test/privkey.pem"
LINEAGE = "vmail-mail"
DNSMASQ_FILE = "/etc/dnsmasq.d/60-vmail-acme.conf"
HOOK = "/usr/local/sbin/vmail-acme-deploy"
FIREWALL_RULES = "/etc/vmail/firewall.nft"


def main_pid(host, unit):
    return host.run(f"systemctl show -p MainPID --value {unit}").stdout.strip()


def pids(host):
    return main_pid(host, "dovecot"), main_pid(host, "postfix@-")


def acme_play(host, server, extra=None, firewall=False):
    """molecule/default/acme.yml with Pebble's directory; the PLAY RECAP counters and the output.
    The firewall role (which opens port 80) runs only when *firewall* (once, in the issuance test)."""
    variables = {"acme_server": server, "vmail_test_acme_firewall": firewall, **(extra or {})}
    proc = run_playbook(host, "molecule/default/acme.yml", "-e", json.dumps(variables), timeout=300)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    return recap_counts(proc.stdout, host.backend.get_hostname()), proc.stdout


def served_der(mail, port, root_pem):
    """The certificate served on *port* (implicit TLS), verified against *root_pem* for mail.example.com."""
    ctx = ssl.create_default_context(cadata=root_pem)
    with socket.create_connection(("127.0.0.1", mail.port(port)), timeout=TIMEOUT) as sock:
        with ctx.wrap_socket(sock, server_hostname="mail.example.com") as tls:
            return tls.getpeercert(binary_form=True)


def file_der(host, path):
    pem = host.check_output(f"openssl x509 -in {path}")
    return ssl.PEM_cert_to_DER_cert(pem + "\n")


class Pebble:
    def __init__(self, outside, address):
        self.outside = outside
        self.server = f"https://{address}:14000/dir"
        ca_file = pathlib.Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]) / "pki" / "ca.crt"
        ctx = ssl.create_default_context(cafile=str(ca_file))
        ctx.check_hostname = False  # Pebble's API certificate names its address, checked by certbot
        # Pebble makes a new root at each start: the one it issues under now, from its management API.
        with urllib.request.urlopen(f"https://{address}:15000/roots/0", context=ctx, timeout=TIMEOUT) as resp:
            self.root = resp.read().decode()


def forget_lineage(host):
    host.run(f"certbot delete --non-interactive --cert-name {LINEAGE}")


@pytest.fixture(scope="module")
def pebble(host):
    """Pebble on the outside partner, resolving mail.example.com to this server; everything put back after."""
    outside = testinfra.get_host(f"docker://{outside_name(host.backend.get_hostname())}")
    if not outside.run("systemctl is-active pebble").succeeded:
        pytest.fail("Pebble is not running on the outside partner (prepare.yml)")
    address = outside.check_output("hostname -I").split()[0]
    mail_ip = host.check_output("hostname -I").split()[0]
    for path in (CERT, KEY, FIREWALL_RULES):
        host.check_output(f"cp -p {path} {path}.vmail-acme-saved")
    forget_lineage(host)
    outside.check_output(f"printf 'host-record=mail.example.com,{mail_ip}\\n' > {DNSMASQ_FILE}"
                         " && systemctl restart dnsmasq")
    try:
        yield Pebble(outside, address)
    finally:
        forget_lineage(host)
        for path in (CERT, KEY, FIREWALL_RULES):
            host.run(f"mv -f {path}.vmail-acme-saved {path}")
        host.run("systemctl reload postfix dovecot vmail-firewall")
        outside.run(f"rm -f {DNSMASQ_FILE} && systemctl restart dnsmasq")


def port_80_open(host):
    return host.run("nft list chain inet vmail_firewall input | grep -Eq 'dport .*[{ ]80[,} ]'").rc == 0


def test_a_failed_issuance_is_a_warning_and_the_certificate_stays(host, pebble):
    """Port 80 still closed by the firewall (the role not run yet): Pebble cannot validate."""
    assert not port_80_open(host)
    before = file_der(host, CERT)
    counts, out = acme_play(host, pebble.server)
    assert counts["failed"] == 0
    assert "WARNING: certbot could not get a certificate for mail.example.com" in out, out[-3000:]
    assert "Detail:" in out, out[-3000:]  # certbot's reason, passed on
    assert file_der(host, CERT) == before
    assert host.run(f"test -e /etc/letsencrypt/live/{LINEAGE}").rc != 0


def test_issued_by_pebble_served_after_a_reload_then_nothing_changes(host, mail, pebble):
    before = pids(host)
    counts = acme_play(host, pebble.server, firewall=True)[0]
    assert port_80_open(host), "the firewall role did not open port 80 (firewall_acme_http)"
    assert counts["changed"] > 0
    issued = file_der(host, f"/etc/letsencrypt/live/{LINEAGE}/cert.pem")
    assert file_der(host, CERT) == issued
    key = host.file(KEY)
    assert (key.user, key.group, key.mode) == ("root", "root", 0o600)
    assert served_der(mail, 465, pebble.root) == issued
    assert served_der(mail, 993, pebble.root) == issued
    assert pids(host) == before, "restarted, not reloaded"
    assert host.service("certbot.timer").is_enabled
    assert host.run("systemctl is-active certbot.timer").stdout.strip() == "active"

    again = acme_play(host, pebble.server)[0]
    assert again["changed"] == 0, again


def test_renewed_by_certbot_service_reloaded_only_when_changed(host, mail, pebble):
    old = file_der(host, CERT)
    before = pids(host)
    # Due now: what certbot.timer starts (certbot.service, with the role's drop-in) renews it.
    conf = f"/etc/letsencrypt/renewal/{LINEAGE}.conf"
    host.check_output(f"sed -i '1i renew_before_expiry = 36500 days' {conf}")
    try:
        result = host.run("systemctl start certbot.service")
        assert result.rc == 0, host.run("journalctl -u certbot.service -n 30 --no-pager").stdout
    finally:
        host.check_output(f"sed -i '/^renew_before_expiry = 36500 days$/d' {conf}")
    new = file_der(host, f"/etc/letsencrypt/live/{LINEAGE}/cert.pem")
    assert new != old, "certbot.service did not renew"
    deadline = time.time() + TIMEOUT
    while served_der(mail, 993, pebble.root) != new and time.time() < deadline:
        time.sleep(0.5)
    assert served_der(mail, 993, pebble.root) == new
    assert served_der(mail, 465, pebble.root) == new
    assert pids(host) == before, "restarted, not reloaded"

    reloads = "journalctl --no-pager -o cat -u dovecot -u postfix@- | grep -c '^Reload'"
    count = host.run(reloads).stdout.strip()
    hook = host.run(f"RENEWED_LINEAGE=/etc/letsencrypt/live/{LINEAGE} {HOOK}")
    assert hook.rc == 0 and hook.stdout.startswith("unchanged"), hook.stdout + hook.stderr
    assert host.run(reloads).stdout.strip() == count, "reloaded although nothing changed"
