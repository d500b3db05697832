"""The outside world (issue #9 tests): what a receiving MX sees of the mail this server sends.

Each mail server has a partner container, ``vmail-outside-<platform>`` (molecule.yml, group
``outside``; prepare.yml installs it): a plain Debian Postfix, the MX of ``outside.test``, that
checks SPF with Debian's ``postfix-policyd-spf-python``, and dnsmasq. The fixture gives dnsmasq
exactly the ``dns_records`` that ``mail_domain`` returned in converge.yml (from the DKIM keys
the rspamd role exported), the A record of the MX host and outside.test's own records, and
points the mail server's resolver at it for the time of this module. Then:

- mail a user submits arrives at the outside MX with ``Received-SPF: Pass`` for the server's
  address (RFC 7208, judged by the outside's own policy daemon) and DKIM signatures (RSA and
  ed25519) that dkimpy accepts, resolving the keys through that DNS server (RFC 6376, 8463);
- mail the outside MX sends to a user finds the server through the published MX record, and
  rspamd's ``Authentication-Results`` on it show SPF and DMARC passing for outside.test (whose
  SPF and DMARC records the fixture serves; rspamd is restarted to resolve through dnsmasq);
- after a key rotation (one rspamd role run with a new selector, the old one retired) the records
  mail_domain returns again are served, the new signatures verify at the outside MX and the old
  selector still answers; that run's ``-vvv`` output holds no private key text.
"""

import email
import json
import shlex
import time

import pytest
import testinfra
from vmailtest import dkim_private_key_texts, make_message, outside_name, run_playbook

from test_rspamd import delivered, wait_milter

ALICE = "alice@example.com"
CATCHER_MAILDIR = "/home/catcher/Maildir"
# outside.test's own policy records (the fixture serves them): only its MX sends its mail.
OUTSIDE_SPF = "v=spf1 mx -all"
OUTSIDE_DMARC = "v=DMARC1; p=reject"

# Verifies every DKIM-Signature of the message on stdin, the keys fetched from DNS (the host's
# resolver: dnsmasq); prints {"<selector>": true|false}.
VERIFY_ALL = r"""
import json, re, sys, dkim
msg = sys.stdin.buffer.read()
sigs = re.findall(rb"^DKIM-Signature:((?:.*\r?\n[ \t].*)*.*)", msg, re.M | re.I)
out = {}
for i, sig in enumerate(sigs):
    selector = re.search(rb"\bs=([^;\s]+)", sig).group(1).decode()
    try:
        out[selector] = bool(dkim.DKIM(msg).verify(idx=i))
    except dkim.DKIMException:  # Debian 12's dkimpy raises on a body hash mismatch
        out[selector] = False
print(json.dumps(out))
"""


def dnsmasq_lines(records):
    """dnsmasq(8) options that serve *records* (mail_domain's ``dns_records``) unchanged."""
    lines = []
    for rec in records:
        kind, name = rec["type"], rec["name"].rstrip(".")
        if kind == "MX":
            lines.append(f"mx-host={name},{rec['value'].rstrip('.')},{rec['priority']}")
        elif kind == "TXT":
            chunks = rec.get("value_chunks") or [rec["value"]]
            assert not any('"' in c or "\\" in c for c in chunks), rec
            lines.append(f"txt-record={name}," + ",".join(f'"{c}"' for c in chunks))
        elif kind == "CNAME":
            lines.append(f"cname={name},{rec['value'].rstrip('.')}")
        elif kind == "SRV":
            lines.append(f"srv-host={name},{rec['target'].rstrip('.')},{rec['port']},"
                         f"{rec['priority']},{rec['weight']}")
        elif kind in ("A", "AAAA"):
            lines.append(f"host-record={name},{rec['value']}")
        else:
            raise AssertionError(f"no dnsmasq form for {rec}")
    return lines


def write_in_place(host, path, text):
    """Overwrite *path* keeping its inode (Docker bind-mounts /etc/resolv.conf)."""
    host.check_output(f"printf '%s' {shlex.quote(text)} > {path}")


def serve(dns, records):
    """Make the outside host's dnsmasq serve exactly *records* (besides what it forwards)."""
    write_in_place(dns, "/etc/dnsmasq.d/50-vmail-records.conf", "\n".join(dnsmasq_lines(records)) + "\n")
    dns.check_output("systemctl restart dnsmasq")


def restart_rspamd(host):
    host.check_output("systemctl restart rspamd")
    wait_milter(host, up=True)


@pytest.fixture(scope="module")
def outside(host):
    """The partner MX/DNS container, serving this server's published records; the mail server
    resolves through it until the module ends (its own resolver is restored afterwards)."""
    name = outside_name(host.backend.get_hostname())
    other = testinfra.get_host(f"docker://{name}")
    if not other.run("true").succeeded:
        pytest.fail(f"outside container {name} is not running (molecule.yml platforms, group outside)")
    mail_ip = host.check_output("hostname -I").split()[0]
    outside_ip = other.check_output("hostname -I").split()[0]
    records = json.loads(host.check_output("cat /root/vmail-test-dns-records.json"))
    own = [
        {"type": "A", "name": host.ansible.get_variables()["postfix_myhostname"], "value": mail_ip},
        {"type": "MX", "name": "outside.test", "value": "mx.outside.test", "priority": 10},
        {"type": "A", "name": "mx.outside.test", "value": outside_ip},
        {"type": "TXT", "name": "outside.test", "value": OUTSIDE_SPF},
        {"type": "TXT", "name": "_dmarc.outside.test", "value": OUTSIDE_DMARC},
    ]
    serve(other, records + own)

    saved = {p: host.check_output(f"cat {p}") + "\n" for p in
             ("/etc/resolv.conf", "/var/spool/postfix/etc/resolv.conf")}
    for path in saved:
        write_in_place(host, path, f"nameserver {outside_ip}\n")
    host.check_output("postfix reload")
    # rspamd reads /etc/resolv.conf when it starts: restarted to check SPF/DMARC through dnsmasq.
    restart_rspamd(host)
    yield {"host": other, "ip": outside_ip, "mail_ip": mail_ip, "records": records, "own": own}
    for path, text in saved.items():
        write_in_place(host, path, text)
    host.check_output("postfix reload")
    restart_rspamd(host)


def outside_message(outside, token, timeout=60):
    """The message holding *token* in the outside catch-all mailbox, as bytes (None if absent)."""
    host = outside["host"]
    deadline = time.time() + timeout
    while time.time() < deadline:
        found = host.run(f"grep -rlF -- {shlex.quote(token)} {CATCHER_MAILDIR}/new")
        if found.rc == 0:
            return host.check_output(f"cat {found.stdout.split()[0]}").encode()
        time.sleep(1)
    return None


def test_outside_dns_serves_exactly_the_returned_records(host, outside):
    """The fixture is what it claims: each record mail_domain returned resolves to its rdata."""
    dns = outside["host"]
    for rec in outside["records"]:
        got = dns.check_output(f"dig +short {rec['type']} {rec['name']} @127.0.0.1")
        assert got.replace('" "', "").strip() == rec["rdata"].replace('" "', "").strip(), rec
    # ... and the mail server itself resolves through it.
    assert host.check_output("getent hosts mx.outside.test").split()[0] == outside["ip"]


def test_submitted_mail_arrives_outside_with_spf_pass_and_valid_dkim(host, mail, outside):
    token, msg = make_message(ALICE, "friend@outside.test")
    msg.set_content(f"Hello from the mail server.\n{token}\n")
    with mail.submission(ALICE) as smtp:
        smtp.send_message(msg)
    raw = outside_message(outside, token)
    if raw is None:
        queue = host.run("postqueue -p").stdout
        pytest.fail(f"not received at the outside MX within 60 s; mail server queue:\n{queue}")

    # SPF, judged by the receiving MX (Debian's postfix-policyd-spf-python) for the client it saw.
    headers = raw.split(b"\n\n", 1)[0].decode()
    spf = [line for line in headers.splitlines() if line.startswith("Received-SPF:")]
    assert spf and spf[0].split()[1] == "Pass", headers
    assert f"client-ip={outside['mail_ip']}" in spf[0], spf

    # DKIM: dkimpy on the outside host, keys from DNS; both signatures (RSA, ed25519) verify.
    dns = outside["host"]
    run = dns.run(f"python3 -c {shlex.quote(VERIFY_ALL)} < $(grep -rlF -- {token} {CATCHER_MAILDIR}/new)")
    assert run.rc == 0, run.stderr
    verdicts = json.loads(run.stdout)
    selectors = {r["name"].split("._domainkey.")[0] for r in outside["records"] if "._domainkey." in r["name"]}
    assert verdicts == {s: True for s in selectors}, (verdicts, selectors)
    # Debian's own dkimverify (first signature) agrees ...
    path = dns.check_output(f"grep -rlF -- {token} {CATCHER_MAILDIR}/new")
    assert dns.run(f"dkimverify < {path}").stdout.strip() == "signature ok"
    # ... and the same check refuses a changed body, so a pass above means something.
    tampered = dns.run(f"sed 's/Hello from/Hello, forged, from/' {path} | python3 -c {shlex.quote(VERIFY_ALL)}")
    assert set(json.loads(tampered.stdout).values()) == {False}, tampered.stdout
    # DMARC (RFC 7489): both pass aligned with the From domain, whose policy is published.
    assert "d=example.com" in headers.replace("\n", " ") and "From: alice@example.com" in headers
    assert "p=quarantine" in dns.check_output("dig +short TXT _dmarc.example.com @127.0.0.1")


def send_from_outside(dns, sender):
    """Hand a message for alice to the outside MX's own Postfix; return its token."""
    token = make_message(sender, ALICE)[0]
    dns.check_output(f"printf 'Subject: {token}\\n\\nHello {token}\\n' | /usr/sbin/sendmail -f {sender} {ALICE}")
    return token


def delivered_from_outside(dns, mail, token, timeout=90):
    """Wait for *token* in alice's Maildir, flushing the outside queue (postscreen's first 450
    makes it retry once: flushed here instead of waiting for its queue run)."""
    deadline = time.time() + timeout
    while time.time() < deadline and not mail.wait_delivered(ALICE, token, timeout=5):
        dns.run("postqueue -f")
    return mail.wait_delivered(ALICE, token, timeout=1)


def test_outside_mx_reaches_the_server_through_the_published_mx(host, mail, outside):
    """A plain Postfix elsewhere delivers to alice by the MX record."""
    dns = outside["host"]
    token = send_from_outside(dns, "friend@outside.test")
    assert delivered_from_outside(dns, mail, token), dns.run("postqueue -p").stdout
    log = dns.run("journalctl -u postfix@- --no-pager -n 50").stdout
    assert f"relay=mail.example.com[{outside['mail_ip']}]:25" in log, log


def authentication_results(raw):
    """The Authentication-Results headers of *raw* (bytes), each unfolded into one line."""
    return [" ".join(str(value).split())
            for value in email.message_from_bytes(raw).get_all("Authentication-Results", [])]


def test_mail_from_outside_gets_spf_and_dmarc_results(host, mail, outside):
    """Mail the outside MX delivers for friend@outside.test carries rspamd's verdicts on it, judged
    through the published records (outside.test: OUTSIDE_SPF, OUTSIDE_DMARC): SPF passes for the
    MX's address and DMARC passes for the From domain outside.test (aligned by SPF)."""
    dns = outside["host"]
    token = send_from_outside(dns, "friend@outside.test")
    assert delivered_from_outside(dns, mail, token), dns.run("postqueue -p").stdout
    raw = delivered(host, mail, ALICE, token)
    results = authentication_results(raw)
    assert len(results) == 1, results
    verdicts = {v.split("=", 1)[0]: v for v in (part.strip() for part in results[0].split(";")) if "=" in v}
    assert verdicts.get("spf", "").startswith("spf=pass "), results
    assert "smtp.mailfrom=friend@outside.test" in verdicts["spf"], results
    assert outside["ip"] in verdicts["spf"], results
    assert verdicts.get("dmarc", "").startswith("dmarc=pass "), results
    assert "header.from=outside.test" in verdicts["dmarc"], results


def postfix_role(host, **extra):
    proc = run_playbook(host, "molecule/default/mail-roles.yml", "-e",
                        json.dumps({"vmail_test_roles": ["postfix"], **extra}), timeout=600)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]


def test_dns_checks_on_with_the_published_records(host, mail, outside):
    """postfix_dns_checks on (the default outside tests): the outside MX, whose name, address,
    reverse name and sender domain resolve, is accepted; a client without reverse name (this test
    host, through Docker's gateway) and a sender domain that does not exist are refused."""
    dns = outside["host"]
    try:
        postfix_role(host, postfix_dns_checks=True)
        restrictions = host.check_output("postconf -h smtpd_client_restrictions smtpd_sender_restrictions")
        assert "reject_unknown_reverse_client_hostname" in restrictions
        assert "reject_unknown_sender_domain" in restrictions

        bad = send_from_outside(dns, "nobody@nowhere.outside.test")
        token = send_from_outside(dns, "friend@outside.test")
        assert delivered_from_outside(dns, mail, token), dns.run("postqueue -p").stdout
        log = dns.check_output("journalctl -u postfix@- --no-pager -n 200")
        assert "<nobody@nowhere.outside.test>: Sender address rejected: Domain not found" in log, log
        assert mail.maildir_grep(ALICE, bad).rc != 0

        with mail.smtp() as smtp:
            smtp.mail("friend@outside.test")
            code, reply = smtp.rcpt(ALICE)
        assert code // 100 in (4, 5) and b"cannot find your reverse hostname" in reply, (code, reply)
    finally:
        postfix_role(host)
        dns.run("postsuper -d ALL")  # the refused message would otherwise retry for days
    assert "reject_unknown_sender_domain" not in host.check_output("postconf -h smtpd_sender_restrictions")


SIGNING_CONF = "/etc/rspamd/local.d/dkim_signing.conf"
KEYS_JSON = "/root/vmail-test-dkim-keys.json"
OLD = ["mail", "mail-ed25519"]


def submit_outside(host, mail, outside, note):
    """Alice's message to the outside MX; its path there (the catcher's Maildir)."""
    token, msg = make_message(ALICE, "friend@outside.test")
    msg.set_content(f"{note}\n{token}\n")
    with mail.submission(ALICE) as smtp:
        smtp.send_message(msg)
    assert outside_message(outside, token) is not None, host.run("postqueue -p").stdout
    return outside["host"].check_output(f"grep -rlF -- {token} {CATCHER_MAILDIR}/new")


def dkim_verdicts(outside, path):
    """{selector: verified} for every DKIM-Signature of the message at *path* on the outside host,
    dkimpy fetching the keys from its DNS server."""
    run = outside["host"].run(f"python3 -c {shlex.quote(VERIFY_ALL)} < {path}")
    assert run.rc == 0, run.stderr
    return json.loads(run.stdout)


def test_key_rotation_verifies_at_the_outside_mx(host, mail, outside):
    """Rotation as docs/dns.md tells it: a new selector signs, the old one stays published (retired).
    One rspamd role run (at -vvv) makes the new keys; mail_domain returns the records again, the
    DNS server serves them; at the outside MX both new signatures (RSA, ed25519) verify, the old
    selector's record still answers and mail signed with it before the rotation still verifies.
    The run's output holds no private key text. Afterwards the old configuration is put back by
    hand (no second role run): the new keys removed, dkim_signing.conf and the DNS restored, and
    mail is signed with the old selectors again."""
    dns = outside["host"]
    new = f"rot{int(time.time()) % 100000}"
    old_mail = submit_outside(host, mail, outside, "Signed before the rotation.")
    assert dkim_verdicts(outside, old_mail) == {s: True for s in OLD}
    old_rdata = dns.check_output("dig +short TXT mail._domainkey.example.com @127.0.0.1")
    keys_before = host.check_output("ls /var/lib/rspamd/dkim").split()
    # The keys file exists only once a test has run the rspamd role through mail-roles.yml
    # (test_rspamd.py, after this file); the rotation's own role run writes it.
    host.check_output(f"cp -p {SIGNING_CONF} {SIGNING_CONF}.vmail-test && "
                      f"{{ [ ! -e {KEYS_JSON} ] || cp -p {KEYS_JSON} {KEYS_JSON}.vmail-test; }}")
    try:
        proc = run_playbook(host, "molecule/default/mail-roles.yml", "-vvv", "-e", json.dumps({
            "vmail_test_roles": ["rspamd"], "rspamd_dkim_domains": ["example.com"],
            "rspamd_dkim_selector": new,
            "rspamd_dkim_retired_selectors": ["mail", {"selector": "mail-ed25519", "algorithm": "ed25519"}],
        }), timeout=600)
        output = proc.stdout + proc.stderr
        assert proc.returncode == 0, output[-4000:]
        added = sorted(set(host.check_output("ls /var/lib/rspamd/dkim").split()) - set(keys_before))
        assert added == sorted(f"example.com.{new}{alg}.{ext}" for alg in ("", "-ed25519") for ext in ("key", "pub"))
        # docs/security.md: no DKIM private key text (the new keys' nor the old ones') in -vvv output.
        # (Counted, not compared in the assert: pytest would print the key text it compares.)
        texts = dkim_private_key_texts(host)
        leaked = sum(text in output for text in texts)
        assert leaked == 0, f"{leaked} pieces of DKIM private key text in -vvv output"
        wait_milter(host, up=True)

        keys = json.loads(host.check_output(f"cat {KEYS_JSON}"))
        result = host.ansible("vmail.mailserver.mail_domain", json.dumps({
            "name": "example.com", "config_file": "/etc/vmail/mailsql-admin.cnf",
            "dns": {"mx": [mail.hostname], "dkim_keys": keys}}), check=False)
        assert not result.get("failed"), result
        serve(dns, result["dns_records"] + outside["own"])

        # The retired selector still answers as before, and mail signed with it still verifies.
        assert dns.check_output("dig +short TXT mail._domainkey.example.com @127.0.0.1") == old_rdata
        assert dkim_verdicts(outside, old_mail) == {s: True for s in OLD}
        new_mail = submit_outside(host, mail, outside, "Signed after the rotation.")
        assert dkim_verdicts(outside, new_mail) == {new: True, f"{new}-ed25519": True}
    finally:
        host.run(f"rm -f /var/lib/rspamd/dkim/example.com.{new}.* /var/lib/rspamd/dkim/example.com.{new}-ed25519.*")
        host.run(f"mv {SIGNING_CONF}.vmail-test {SIGNING_CONF}; if [ -e {KEYS_JSON}.vmail-test ]; "
                 f"then mv {KEYS_JSON}.vmail-test {KEYS_JSON}; else rm -f {KEYS_JSON}; fi")
        restart_rspamd(host)
        serve(dns, outside["records"] + outside["own"])
    assert host.check_output("ls /var/lib/rspamd/dkim").split() == keys_before
    assert dkim_verdicts(outside, submit_outside(host, mail, outside, "Restored.")) == {s: True for s in OLD}
