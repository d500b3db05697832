"""rspamd as Postfix's milter (issue #9 item 1): DKIM signing out, verdicts and spam refusal in.

Mail submitted by a user is signed by rspamd (RSA and, in this scenario, ed25519) and an
independent verifier (dkimpy, RFC 6376 / RFC 8463) accepts both signatures against the public
keys the role left for DNS; a changed body fails the same check. Mail from outside gets
``Authentication-Results`` and the score headers; GTUBE is refused at the end of DATA; with
rspamd stopped the server answers 4xx (``milter_default_action = tempfail``) and loses nothing.
A key rotation (new selector, the old one retired) signs with the new key.
"""

import json
import smtplib
import time

import dkim
import pytest
from vmailtest import make_message, recap_counts, run_playbook

from test_quota import queue

ALICE = "alice@example.com"
BOB = "bob@example.com"
OUTSIDE = "someone@outside.test"
GTUBE = "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X"
KEY_DIR = "/var/lib/rspamd/dkim"
MILTER_SOCKET = "/var/spool/postfix/rspamd/milter.sock"


def domain_names(mail):
    """The domains the mailsql role declared (what the rspamd role keys by default)."""
    domains = list(mail.vars.get("mailsql_domains", []))
    for name in sorted(k for k in mail.vars if k.startswith("mailsql_domains__")):
        domains += mail.vars[name]
    return [d["name"] for d in domains if d.get("state", "present") == "present"]


def dns_keys(host):
    """{"<selector>._domainkey.<domain>": TXT}: the DKIM records mail_domain returned in converge.yml
    from the keys the rspamd role exported (rspamd_dkim_dns_keys), as an admin would publish them."""
    records = json.loads(host.check_output("cat /root/vmail-test-dns-records.json"))
    return {r["name"]: r["value"] for r in records if r["type"] == "TXT" and "._domainkey." in r["name"]}


def published_records(host):
    """The DKIM records mail_domain returns for the keys the last rspamd role run exported."""
    keys = json.loads(host.check_output("cat /root/vmail-test-dkim-keys.json"))
    result = host.ansible("vmail.mailserver.mail_domain", json.dumps({
        "name": "example.com", "config_file": "/etc/vmail/mailsql-admin.cnf",
        "dns": {"mx": ["mail.example.com"], "dkim_keys": keys}}), check=False)
    assert not result.get("failed"), result
    return {r["name"]: r["value"] for r in result["dns_records"] if "._domainkey." in r["name"]}


def delivered(host, mail, email, token, timeout=40):
    """The delivered message holding *token*, as bytes with CRLF line ends (as it was signed)."""
    assert mail.wait_delivered(email, token, timeout=timeout), f"{token} not delivered to {email}"
    local, domain = email.split("@")
    path = f"/var/mail/vhosts/{domain}/{local}"
    name = host.check_output(f"grep -rlF -- '{token}' {path}/new {path}/cur | head -1")
    text = host.check_output(f"cat {name}")
    return (text.replace("\r\n", "\n").replace("\n", "\r\n") + "\r\n").encode()


def signatures(raw):
    """The DKIM-Signature headers of *raw*, as {tag: value} dicts in header order."""
    sigs = []
    for name, value in dkim.rfc822_parse(raw)[0]:
        if name.lower() == b"dkim-signature":
            tags = dkim.util.parse_tag_value(value)
            sigs.append({k.decode(): v.decode() for k, v in tags.items()})
    return sigs


def verify(raw, records, index):
    """dkimpy's verdict on signature *index*, resolving keys from *records* only."""
    def dnsfunc(name, timeout=5):
        return records.get(name.decode().rstrip(".").lower(), "").encode()
    return dkim.DKIM(raw).verify(idx=index, dnsfunc=dnsfunc)


def submit(mail, sender, recipient):
    token, msg = make_message(sender, recipient)
    with mail.submission(sender) as smtp:
        smtp.send_message(msg)
    return token


def test_rspamd_runs_and_listens_on_this_host_only(host):
    for unit in ("rspamd", "redis-server"):
        assert host.service(unit).is_running and host.service(unit).is_enabled, unit
    # rspamd's TCP ports: 11333 normal worker, 11334 controller, 11335 fuzzy; redis 6379. The milter
    # (11332 by default) is a unix socket in Postfix's queue directory (tests/test_abuse.py).
    listeners = host.check_output("ss -Hltn").splitlines()
    local = [line.split()[3] for line in listeners]
    ours = [addr for addr in local if addr.rsplit(":", 1)[1] in ("11332", "11333", "11334", "11335", "6379")]
    assert not any(addr.endswith(":11332") for addr in ours), "the milter still listens on TCP"
    assert host.file(MILTER_SOCKET).is_socket
    assert all(addr.startswith(("127.0.0.1:", "[::1]:")) for addr in ours), listeners
    assert not any(addr.endswith(":11334") for addr in ours), "the controller still listens on TCP"
    sock = host.file("/run/rspamd/controller.sock")
    assert sock.is_socket and sock.mode == 0o600 and sock.user == "_rspamd"


def test_dkim_private_keys_are_root_and_rspamd_only(host, mail):
    assert host.file(KEY_DIR).mode == 0o750 and host.file(KEY_DIR).group == "_rspamd"
    for domain in domain_names(mail):
        for selector in ("mail", "mail-ed25519"):
            key = host.file(f"{KEY_DIR}/{domain}.{selector}.key")
            assert key.exists, key.path
            assert (key.user, key.group, key.mode) == ("root", "_rspamd", 0o640), key.path
            assert host.file(f"{KEY_DIR}/{domain}.{selector}.pub").mode == 0o644


def test_submitted_mail_is_signed_and_verifies(host, mail):
    """Two signatures (RSA, ed25519) that dkimpy accepts; a changed body fails both."""
    token = submit(mail, ALICE, BOB)
    raw = delivered(host, mail, BOB, token)
    sigs = signatures(raw)
    assert [(s["d"], s["s"], s["a"]) for s in sigs] == [
        ("example.com", "mail", "rsa-sha256"), ("example.com", "mail-ed25519", "ed25519-sha256")], sigs
    records = dns_keys(host)
    for index in range(len(sigs)):
        assert verify(raw, records, index), f"signature {sigs[index]['s']} does not verify"
    tampered = raw.replace(token.encode(), b"vmail-test-tampered", 1)
    for index in range(len(sigs)):
        assert not verify(tampered, records, index)


def test_inbound_mail_gets_verdict_headers_and_no_signature(host, mail):
    token, msg = make_message(OUTSIDE, ALICE)
    with mail.smtp() as smtp:
        smtp.send_message(msg)
    raw = delivered(host, mail, ALICE, token)
    headers = raw.split(b"\r\n\r\n", 1)[0].decode()
    assert "\r\nAuthentication-Results: " in "\r\n" + headers, headers
    assert "\r\nX-Spam-Status: No" in "\r\n" + headers, headers
    assert not signatures(raw), "inbound mail was signed"


def test_gtube_from_outside_is_refused_at_data(host, mail):
    token, msg = make_message(OUTSIDE, ALICE)
    msg.set_content(f"Test message {token}\n{GTUBE}\n")
    with mail.smtp() as smtp, pytest.raises(smtplib.SMTPDataError) as refused:
        smtp.send_message(msg)
    assert refused.value.smtp_code // 100 == 5, refused.value
    time.sleep(2)
    assert mail.maildir_grep(ALICE, token).rc != 0
    assert not [m for m in queue(host) if token in json.dumps(m)]


def wait_milter(host, up):
    for _attempt in range(60):
        listening = host.run(f"ss -Hlx | grep -qF ' {MILTER_SOCKET} '").rc == 0
        if listening == up:
            return
        time.sleep(1)
    raise AssertionError(f"rspamd's milter socket did not come {'up' if up else 'down'}")


def test_rspamd_down_defers_with_4xx_and_loses_nothing(host, mail):
    host.check_output("systemctl stop rspamd")
    try:
        wait_milter(host, up=False)
        token, msg = make_message(OUTSIDE, ALICE)
        with mail.smtp() as smtp, pytest.raises(smtplib.SMTPResponseException) as deferred:
            smtp.send_message(msg)
        assert deferred.value.smtp_code // 100 == 4, deferred.value
        assert not [m for m in queue(host) if token in json.dumps(m)], "taken while rspamd was down"
    finally:
        host.check_output("systemctl start rspamd")
        wait_milter(host, up=True)
    with mail.smtp() as smtp:       # the sender's retry
        smtp.send_message(msg)
    raw = delivered(host, mail, ALICE, token)
    assert b"Authentication-Results" in raw
    maildir = "/var/mail/vhosts/example.com/alice"
    assert host.check_output(f"grep -rlF -- '{token}' {maildir}/new {maildir}/cur | wc -l") == "1"


def rspamd_role(host, mail, **extra):
    args = {"vmail_test_roles": ["rspamd"], "rspamd_dkim_domains": domain_names(mail), **extra}
    proc = run_playbook(host, "molecule/default/mail-roles.yml", "-e", json.dumps(args))
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    return recap_counts(proc.stdout, host.backend.get_hostname())


def test_key_rotation_signs_with_the_new_selector(host, mail):
    """A new selector with the old one retired: new keys, new signatures that verify; the old key stays."""
    try:
        retired = ["mail", {"selector": "mail-ed25519", "algorithm": "ed25519"}]
        assert rspamd_role(host, mail, rspamd_dkim_selector="rot2",
                           rspamd_dkim_retired_selectors=retired)["changed"] > 0
        token = submit(mail, ALICE, BOB)
        raw = delivered(host, mail, BOB, token)
        sigs = signatures(raw)
        assert [s["s"] for s in sigs] == ["rot2", "rot2-ed25519"], sigs
        records = published_records(host)
        assert {"mail._domainkey.example.com", "rot2._domainkey.example.com",
                "rot2-ed25519._domainkey.example.com"} <= set(records), records
        for index in range(len(sigs)):
            assert verify(raw, records, index)
    finally:
        rspamd_role(host, mail)
    assert rspamd_role(host, mail)["changed"] == 0
    token = submit(mail, ALICE, BOB)
    assert [s["s"] for s in signatures(delivered(host, mail, BOB, token))] == ["mail", "mail-ed25519"]
