"""Between mail nodes nothing goes in clear and nobody can pose as a node (issue #20, docs/security.md
S20-7, S20-8): Postfix delivers to another node's LMTP only after STARTTLS with the node's certificate
verified (the mailsql role's CA, the node name), and Dovecot proxies a login to another node only after
STARTTLS with the same check. A node that shows a certificate the CA did not sign, or one for another
name, gets neither the mail (it waits in the queue) nor the password (the login fails); once the
right certificate is back, the queued mail arrives once."""

import base64
import time

import pytest
from clustertest import (imap_count, inventory_address, maildir_count, new_token, node, password, queue, send,
                         wait_delivered, wait_for)

NODE_CERT = "/etc/vmail/node-tls/node.crt"
NODE_KEY = "/etc/vmail/node-tls/node.key"


def journal_since(mail_node, since, grep):
    return node(mail_node).run(
        "journalctl --no-pager -q --since @%s | grep -F -- %s", str(int(since)), grep).stdout


def test_nodes_have_an_internal_certificate_for_their_node_name():
    for name in ("mail1", "mail2"):
        host = node(name)
        assert host.file(NODE_KEY).mode == 0o600 and host.file(NODE_KEY).user == "root"
        subject = host.check_output("openssl x509 -in %s -noout -subject -ext subjectAltName", NODE_CERT)
        assert f"DNS:{name}.cluster.test" in subject, subject
        # signed by the database CA the mail nodes already trust
        verify = host.run("openssl verify -CAfile /etc/dovecot/vmail-nodes-ca.pem %s", NODE_CERT)
        assert verify.rc == 0 and verify.stdout.strip().endswith("OK"), verify.stdout + verify.stderr


def test_lmtp_to_the_other_node_is_verified_tls():
    since = time.time() - 1
    token = new_token()
    send("db3", "mail1", "bob@example.net", token)
    assert wait_delivered("mail2", "bob@example.net", token) == 1

    def logged():
        log = journal_since("mail1", since, "lmtp-nodes")
        return log if "status=sent" in log else None
    log = wait_for(logged, what="mail1's lmtp-nodes delivery in the journal")
    assert f"Verified TLS connection established to mail2.cluster.test[{inventory_address('mail2')}]:24" in log, log
    assert "relay=mail2.cluster.test" in log, log
    # the local unix-socket LMTP is the plain service: mail for alice stays on mail1 without lmtp-nodes
    assert node("mail1").check_output("postconf -hP lmtp-nodes/unix/lmtp_tls_security_level") == "secure"


def test_proxied_login_verifies_the_node():
    mail1 = node("mail1")
    answer = mail1.check_output("doveadm auth test bob@example.net %s", password("bob@example.net"))
    assert "starttls=yes" in answer and "any-cert" not in answer, answer
    assert mail1.check_output("doveconf -h ssl_client_ca_file") == "/etc/dovecot/vmail-nodes-ca.pem"
    token = new_token()
    send("db3", "mail2", "bob@example.net", token)
    assert wait_delivered("mail2", "bob@example.net", token) == 1
    since = time.time() - 1
    assert imap_count("db3", "mail1", "bob@example.net", token) == 1
    log = journal_since("mail1", since, "bob@example.net")
    assert "proxy" in log.lower(), log


_LOGIN_SCRIPT = r'''
import imaplib, ssl, sys
server, user, pw = sys.argv[1:4]
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
imap = imaplib.IMAP4(server, 143, timeout=30)
imap.starttls(ssl_context=ctx)
try:
    imap.login(user, pw)
except imaplib.IMAP4.error as e:
    print("refused", e)
    sys.exit(0)
print("logged-in")
'''


def imap_login(via, mail_node, email):
    script = base64.b64encode(_LOGIN_SCRIPT.encode()).decode()
    return node(via).check_output("python3 -c \"import base64;exec(base64.b64decode('%s'))\" %s %s %s",
                                  script, f"{mail_node}.cluster.test", email, password(email))


def _self_signed(host):
    host.check_output("openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=mail2.cluster.test "
                      "-addext subjectAltName=DNS:mail2.cluster.test -keyout /root/fake.key -out /root/fake.crt")
    return "/root/fake.crt", "/root/fake.key"


def _other_node(host):
    # mail1's own certificate: signed by the CA, but for mail1.cluster.test
    for path, dest in ((NODE_CERT, "/root/fake.crt"), (NODE_KEY, "/root/fake.key")):
        content = node("mail1").check_output("base64 -w0 %s", path)
        host.check_output("echo %s | base64 -d > %s", content, dest)
    return "/root/fake.crt", "/root/fake.key"


@pytest.mark.parametrize("make_cert, postfix_says, dovecot_says", [
    (_self_signed, "self-signed certificate", "Received invalid SSL certificate"),
    (_other_node, "hostname mismatch", "doesn't match expected host name"),
], ids=["not-signed-by-the-ca", "another-node's-name"])
def test_a_node_with_a_wrong_certificate_gets_neither_mail_nor_passwords(make_cert, postfix_says, dovecot_says):
    mail1, mail2 = node("mail1"), node("mail2")
    mail2.check_output("cp -p %s /root/node.crt.saved && cp -p %s /root/node.key.saved", NODE_CERT, NODE_KEY)
    try:
        cert, key = make_cert(mail2)
        mail2.check_output("cp %s %s && cp %s %s && systemctl reload dovecot", cert, NODE_CERT, key, NODE_KEY)
        time.sleep(2)
        since = time.time() - 1
        token = new_token()
        send("db3", "mail1", "bob@example.net", token)

        def deferred():
            entries = [q for q in queue("mail1") if any(r["address"] == "bob@example.net" for r in q["recipients"])]
            return entries if entries and all(q["queue_name"] == "deferred" for q in entries) else None
        entries = wait_for(deferred, what="the message to be deferred on mail1")
        assert len(entries) == 1, entries
        log = journal_since("mail1", since, "lmtp-nodes")
        assert "Verified TLS connection established" not in log, log
        assert "certificate verification failed for mail2.cluster.test" in log and postfix_says in log, log
        assert "status=deferred (Server certificate not verified)" in log, log
        assert maildir_count("mail2", "bob@example.net", token) == 0
        # a proxied login is refused before the password goes to mail2
        since = time.time() - 1
        assert imap_login("db3", "mail1", "bob@example.net").startswith("refused")
        assert dovecot_says in journal_since("mail1", since, "proxy(bob@example.net")
        assert not journal_since("mail2", since, "bob@example.net"), "mail2 saw bob's login"
    finally:
        mail2.check_output("cp -p /root/node.crt.saved %s && cp -p /root/node.key.saved %s && systemctl reload dovecot",
                           NODE_CERT, NODE_KEY)
    time.sleep(2)
    mail1.check_output("postqueue -f")
    assert wait_delivered("mail2", "bob@example.net", token, timeout=120) == 1
    assert imap_login("db3", "mail1", "bob@example.net") == "logged-in"
