"""The firewall (issue #21 item 5, roles/firewall): the mail ports open, everything else refused at once.

The mail server's nftables table ``inet vmail_firewall`` is judged from its partner container
(``<prefix>-outside-<platform>``, the outside world of test_outside.py), which reaches the server's
own address on the Docker network directly, not through a published port:

- the public mail ports answer with their greetings;
- a listener on a port outside the allowed set (8025) serves the server itself but refuses the
  outside container within 2 s (a TCP reset), and a UDP datagram gets an ICMP error back (not a
  silent drop);
- fail2ban's own table keeps working beside it: a banned outside address is refused even on an
  open port, and a reload of either leaves the other's table (and the ban) in place;
- the ruleset file passes ``nft -c``; a check-mode run of the role changes nothing and shows the
  diff of a new port; a real run opens it (the handler reloads), the next closes it again;
- over SSH, the role refuses rules that would shut the connection running it (a simulated
  ``SSH_CONNECTION``), and nothing is changed.

The published ports the other test files use (127.0.0.1:<base+port>, Docker's proxy) keep working
with the firewall on: those files are the test of that.
"""

import json
import shlex
import time

import pytest
import testinfra
from vmailtest import outside_name, recap_counts, run_playbook

TABLE = "inet vmail_firewall"
RULES = "/etc/vmail/firewall.nft"
CLOSED_PORT = 8025
LISTENER = "vmail-test-fw-listener"

# Runs on the outside container: for each "port[/tls|/connect]", connect to the server; "connect" stops
# there, otherwise the greeting is read (after the TLS handshake with "tls") and the session ended the
# protocol's way (nothing on 25: postscreen would count a client that talks first). Prints
# {"spec": [outcome, seconds]}.
PROBE = r"""
import json, socket, ssl, sys, time
addr, specs = sys.argv[1], sys.argv[2:]
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
BYE = {"* OK": b"a LOGOUT\r\n", "+OK": b"QUIT\r\n", "220": b"QUIT\r\n", '"IMPL': b"LOGOUT\r\n"}
out = {}
for spec in specs:
    port, _, mode = spec.partition("/")
    start = time.monotonic()
    try:
        sock = socket.create_connection((addr, int(port)), timeout=10)
        sock.settimeout(10)
        if mode == "connect":
            outcome = "connected"
        else:
            if mode == "tls":
                sock = ctx.wrap_socket(sock)
            greeting = sock.recv(200).decode(errors="replace")
            bye = [b for k, b in BYE.items() if greeting.startswith(k)]
            if bye and port != "25":
                sock.sendall(bye[0])
            outcome = greeting.split("\r\n")[0][:60] or "connected, no greeting"
        sock.close()
    except ConnectionRefusedError:
        outcome = "refused"
    except OSError as exc:
        outcome = type(exc).__name__
    out[spec] = [outcome, round(time.monotonic() - start, 2)]
print(json.dumps(out))
"""

# One UDP datagram to addr:port on a connected socket: an ICMP error comes back as an OSError.
UDP_PROBE = r"""
import socket, sys
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.settimeout(3)
sock.connect((sys.argv[1], int(sys.argv[2])))
sock.send(b"x")
try:
    sock.recv(10)
    print("answer")
except socket.timeout:
    print("silence")
except OSError as exc:
    print("error " + str(exc.errno))
"""


@pytest.fixture(scope="module")
def outside(host):
    name = outside_name(host.backend.get_hostname())
    other = testinfra.get_host(f"docker://{name}")
    if not other.run("true").succeeded:
        pytest.fail(f"outside container {name} is not running (molecule.yml platforms, group outside)")
    return other


@pytest.fixture(scope="module")
def mail_ip(host):
    return host.check_output("hostname -I").split()[0]


def probe(other, addr, *specs):
    cmd = "python3 -c " + " ".join(shlex.quote(str(a)) for a in (PROBE, addr, *specs))
    return json.loads(other.check_output(cmd))


@pytest.fixture
def listener(host):
    """A plain HTTP server on CLOSED_PORT on every address of the mail server, for the test's time."""
    host.run(f"systemctl stop {LISTENER}")
    host.run(f"systemctl reset-failed {LISTENER}")
    host.check_output("mkdir -p /run/vmail-test-fw")      # an empty directory to serve
    host.check_output(f"systemd-run --unit {LISTENER} --property=DynamicUser=yes "
                      f"python3 -m http.server {CLOSED_PORT} --bind 0.0.0.0 --directory /run/vmail-test-fw")
    deadline = time.time() + 15
    while host.run(f"ss -Htln 'sport = :{CLOSED_PORT}'").stdout.strip() == "" and time.time() < deadline:
        time.sleep(0.5)
    assert host.run(f"ss -Htln 'sport = :{CLOSED_PORT}'").stdout.strip(), host.run(f"systemctl status {LISTENER}").stdout
    yield CLOSED_PORT
    host.run(f"systemctl stop {LISTENER}")


def wait_banned(host, address, timeout=30):
    """Wait until fail2ban (restarted or not) runs and its jail dovecot bans *address*."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        status = host.run("fail2ban-client status dovecot")
        if status.rc == 0 and address in status.stdout:
            return
        time.sleep(1)
    pytest.fail(f"fail2ban does not ban {address}: {host.run('fail2ban-client status dovecot').stdout}")


def unban(host, address):
    """Unban *address* once fail2ban answers; wait until its nftables set no longer holds it."""
    deadline = time.time() + 30
    while host.run("fail2ban-client ping").rc != 0 and time.time() < deadline:
        time.sleep(1)
    host.run(f"fail2ban-client set dovecot unbanip {address}")
    while address in host.run("nft list table inet f2b-table").stdout and time.time() < deadline:
        time.sleep(1)


def test_the_ruleset_is_checked_loaded_and_kept_at_boot(host):
    assert host.run(f"nft -c -f {RULES}").rc == 0
    assert host.file(RULES).mode == 0o600
    listed = host.check_output(f"nft list table {TABLE}")
    assert "policy drop" in listed and "reject with tcp reset" in listed, listed
    unit = host.service("vmail-firewall")
    assert unit.is_enabled and unit.is_running


def test_mail_ports_are_open_to_the_outside(host, outside, mail_ip):
    expected = {"25": "220", "587": "220", "465/tls": "220", "993/tls": "* OK"}
    variables = host.ansible.get_variables()
    if variables.get("dovecot_pop3_enabled", True):
        expected["995/tls"] = "+OK"
    sieve_port = int(variables.get("dovecot_managesieve_port", 4190))
    if variables.get("dovecot_sieve", True) and sieve_port:
        expected[str(sieve_port)] = '"IMPLEMENTATION"'
    got = probe(outside, mail_ip, *expected)
    for spec, greeting in expected.items():
        assert got[spec][0].startswith(greeting), (spec, got)


def test_other_ports_are_refused_at_once_from_outside_but_not_locally(host, outside, mail_ip, listener):
    # The server itself reaches the listener, over the loopback and over its own address.
    for addr in ("127.0.0.1", mail_ip):
        assert host.run(f"python3 -c 'import urllib.request as u; u.urlopen(\"http://{addr}:{listener}/\", timeout=5)'").rc == 0, addr
    got = probe(outside, mail_ip, f"{listener}/connect")
    outcome, seconds = got[f"{listener}/connect"]
    assert outcome == "refused" and seconds < 2, got
    # UDP too: an ICMP error (administratively prohibited: EHOSTUNREACH 113 or ECONNREFUSED 111), not silence.
    udp = outside.check_output("python3 -c " + " ".join(shlex.quote(a) for a in (UDP_PROBE, mail_ip, "9")))
    assert udp.startswith("error "), udp


def test_fail2ban_keeps_its_own_table_and_bans(host, outside, mail_ip):
    outside_ip = outside.check_output("hostname -I").split()[0]
    assert probe(outside, mail_ip, "993/tls")["993/tls"][0].startswith("* OK")
    host.check_output(f"fail2ban-client set dovecot banip {outside_ip}")
    try:
        wait_banned(host, outside_ip)
        tables = host.check_output("nft list tables")
        assert "table inet vmail_firewall" in tables and "table inet f2b-table" in tables, tables
        # Banned: refused even on a port our table opens (both tables must accept a packet).
        assert probe(outside, mail_ip, "993/tls")["993/tls"][0] == "refused"
        # Reloading our table leaves fail2ban's table and its ban alone, and the other way round.
        host.check_output("systemctl reload vmail-firewall")
        assert outside_ip in host.check_output("nft list table inet f2b-table")
        assert probe(outside, mail_ip, "993/tls")["993/tls"][0] == "refused"
        host.check_output("systemctl restart fail2ban")
        assert "table inet vmail_firewall" in host.check_output("nft list tables")
        # fail2ban restores its bans from its database once its jails are up again
        wait_banned(host, outside_ip)
    finally:
        unban(host, outside_ip)
    assert probe(outside, mail_ip, "993/tls")["993/tls"][0].startswith("* OK")


def test_check_mode_then_a_port_opened_and_closed(host, outside, mail_ip, listener):
    hostname = host.backend.get_hostname()
    before = host.check_output(f"sha256sum {RULES}")
    result = run_playbook(host, "molecule/default/firewall.yml", "--check", "--diff")
    assert result.returncode == 0, result.stdout[-3000:]
    assert recap_counts(result.stdout, hostname)["changed"] == 0, result.stdout[-3000:]
    opened = json.dumps({"firewall_public_tcp_ports": [listener]})
    result = run_playbook(host, "molecule/default/firewall.yml", "--check", "--diff", "-e", opened)
    assert result.returncode == 0, result.stdout[-3000:]
    assert recap_counts(result.stdout, hostname)["changed"] >= 1
    assert f"{listener}" in result.stdout and "+    tcp dport" in result.stdout, result.stdout[-3000:]
    assert host.check_output(f"sha256sum {RULES}") == before      # check mode wrote nothing
    try:
        result = run_playbook(host, "molecule/default/firewall.yml", "-e", opened)
        assert result.returncode == 0, result.stdout[-3000:]
        assert "RUNNING HANDLER [vmail.mailserver.firewall : Load the firewall rules]" in result.stdout
        got = probe(outside, mail_ip, f"{listener}/connect")
        assert got[f"{listener}/connect"][0] == "connected", got
    finally:
        result = run_playbook(host, "molecule/default/firewall.yml")
    assert result.returncode == 0, result.stdout[-3000:]
    assert host.check_output(f"sha256sum {RULES}") == before
    assert probe(outside, mail_ip, f"{listener}/connect")[f"{listener}/connect"][0] == "refused"


def test_rules_that_would_shut_the_ssh_connection_are_refused(host):
    hostname = host.backend.get_hostname()
    before = host.check_output(f"sha256sum {RULES}")
    extra = json.dumps({"vmail_test_firewall_environment": {"SSH_CONNECTION": "203.0.113.9 50022 192.0.2.25 22"},
                        "firewall_admin_networks": ["192.0.2.0/24", "2001:db8::/32"]})
    result = run_playbook(host, "molecule/default/firewall.yml", "-e", extra)
    assert result.returncode != 0
    assert "locked out" in result.stdout and "203.0.113.9" in result.stdout, result.stdout[-3000:]
    assert recap_counts(result.stdout, hostname)["changed"] == 0
    assert host.check_output(f"sha256sum {RULES}") == before
    # From an admin network, to the SSH port: accepted (and nothing to change).
    extra = json.dumps({"vmail_test_firewall_environment": {"SSH_CONNECTION": "192.0.2.9 50022 192.0.2.25 22"},
                        "firewall_admin_networks": ["0.0.0.0/0", "::/0"]})
    result = run_playbook(host, "molecule/default/firewall.yml", "-e", extra)
    assert result.returncode == 0, result.stdout[-3000:]
    assert recap_counts(result.stdout, hostname)["changed"] == 0


def test_disabled_removes_its_own_table_only(host, outside, mail_ip, listener):
    hostname = host.backend.get_hostname()
    outside_ip = outside.check_output("hostname -I").split()[0]
    host.check_output(f"fail2ban-client set dovecot banip {outside_ip}")
    try:
        result = run_playbook(host, "molecule/default/firewall.yml", "-e", '{"firewall_enabled": false}')
        assert result.returncode == 0, result.stdout[-3000:]
        tables = host.check_output("nft list tables")
        assert "vmail_firewall" not in tables and "table inet f2b-table" in tables, tables
        # (systemd 257 of Debian 13 answers is-enabled of a removed unit with exit code 4: the file is asked)
        assert not host.file(RULES).exists and not host.file("/etc/systemd/system/vmail-firewall.service").exists
        # fail2ban's ban holds without our table, and with it gone the other ports are no longer refused
        assert probe(outside, mail_ip, "993/tls")["993/tls"][0] == "refused"
        unban(host, outside_ip)
        assert probe(outside, mail_ip, f"{listener}/connect")[f"{listener}/connect"][0] == "connected"
    finally:
        unban(host, outside_ip)
        result = run_playbook(host, "molecule/default/firewall.yml")
    assert result.returncode == 0, result.stdout[-3000:]
    assert recap_counts(result.stdout, hostname)["changed"] >= 1
    assert probe(outside, mail_ip, f"{listener}/connect")[f"{listener}/connect"][0] == "refused"
    assert host.service("vmail-firewall").is_enabled
