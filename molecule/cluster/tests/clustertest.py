"""Helpers for the cluster scenario's verifier (testinfra over `docker exec`).

The tests act from inside the scenario's network: mail is sent with swaks from a
database container (outside every mail node's ``mynetworks``, so it is mail from
the Internet to the mail nodes), IMAP logins run Python's imaplib there too, and
Maildir and queue checks run on the mail nodes themselves.
"""

import base64
import json
import os
import pathlib
import re
import subprocess
import time
import uuid

import testinfra
import yaml

PREFIX = os.environ.get("VMAIL_CLUSTER_PREFIX", "vmail-cluster")
SCENARIO = pathlib.Path(__file__).resolve().parents[1]
PROJECT_DIR = SCENARIO.parents[1]
DB_NODES = ("db1", "db2", "db3")
MAIL_NODES = ("mail1", "mail2")
TIMEOUT = 90  # seconds to wait for a delivery, a restart or a rejoin


def inventory_vars():
    """The scenario's group_vars/all.yml (plain test data, no templating needed for what we read)."""
    return yaml.safe_load((SCENARIO / "inventory" / "group_vars" / "all.yml").read_text())


def password(email):
    for user in inventory_vars()["mailsql_users"]:
        if user["email"] == email:
            return user["password"]
    raise KeyError(email)


def inventory_address(name):
    """The fixed address of container *name* (molecule.yml: etc_hosts, ipv4_address)."""
    subnet = os.environ.get("VMAIL_CLUSTER_SUBNET", "172.30.50")
    return f"{subnet}.{ {'db1': 11, 'db2': 12, 'db3': 13, 'mail1': 21, 'mail2': 22}[name] }"


def fqdn(name):
    return f"{name}.cluster.test"


def node(name):
    """The testinfra host of a container (db1 ... mail2)."""
    return testinfra.get_host(f"docker://{PREFIX}-{name}")


def container(name):
    return f"{PREFIX}-{name}"


def docker(*args, check=True):
    return subprocess.run(["docker", *args], capture_output=True, text=True, check=check, timeout=300)


def wait_for(predicate, timeout=TIMEOUT, interval=1.0, what="condition"):
    """Poll *predicate* until it returns a true value; return that value or fail naming *what*."""
    deadline = time.time() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.time() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def sql(db, query):
    """Run *query* as root over the local socket of DB node *db*; return the rows (lists of str)."""
    out = node(db).check_output("mysql -N -B -e %s", query)
    return [line.split("\t") for line in out.splitlines() if line]


def wsrep(db, name):
    rows = sql(db, f"SHOW GLOBAL STATUS LIKE '{name}'")
    return rows[0][1] if rows else None


def cluster_ready(db, size=3):
    """True when *db* is Synced in a Primary component of *size* nodes."""
    try:
        return (wsrep(db, "wsrep_cluster_status") == "Primary"
                and wsrep(db, "wsrep_local_state_comment") == "Synced"
                and int(wsrep(db, "wsrep_cluster_size") or 0) == size)
    except AssertionError:
        return False


def new_token():
    return f"vmail-cluster-{uuid.uuid4().hex}"


def send(via, mail_node, rcpt, token, sender="someone@outside.test", timeout=TIMEOUT):
    """Send one message from container *via* to *mail_node*:25 as an outside MTA would.

    postscreen tells a client seen for the first time 450 at RCPT (deep protocol
    tests), and a real MTA retries; so does this, until the server answers 250 after
    DATA. Returns swaks' transcript of the accepting session.
    """
    cmd = ("swaks --silent 1 --server %s --port 25 --helo client.outside.test --from %s --to %s "
           "--header %s --body %s")
    args = (fqdn(mail_node), sender, rcpt, f"Subject: {token}", f"Test message {token}")

    def attempt():
        result = node(via).run(cmd, *args)
        if result.rc == 0:
            return result.stdout or "ok"
        if re.search(r"<\*\* 5\d\d", result.stdout + result.stderr):
            raise AssertionError(f"refused permanently: {result.stdout}{result.stderr}")
        return None
    return wait_for(attempt, timeout=timeout, interval=2, what=f"{mail_node} to accept mail for {rcpt}")


def maildir_count(mail_node, email, token):
    """How many messages in *email*'s Maildir (new, cur) on *mail_node* hold *token*."""
    local, domain = email.split("@")
    path = f"/var/mail/vhosts/{domain}/{local}"
    out = node(mail_node).run("grep -rlF -- %s %s/new %s/cur 2>/dev/null", token, path, path).stdout
    return len(out.split())


def wait_delivered(mail_node, email, token, timeout=TIMEOUT):
    return wait_for(lambda: maildir_count(mail_node, email, token), timeout=timeout,
                    what=f"{token} in {email}'s Maildir on {mail_node}")


_IMAP_SCRIPT = r'''
import imaplib, ssl, sys
server, user, password, token = sys.argv[1:5]
ctx = ssl.create_default_context()
ctx.load_verify_locations(cadata=sys.stdin.read())
ctx.check_hostname = False
imap = imaplib.IMAP4(server, 143, timeout=30)
imap.starttls(ssl_context=ctx)
imap.login(user, password)
imap.select("INBOX", readonly=True)
typ, data = imap.search(None, "SUBJECT", '"%s"' % token)
print(len(data[0].split()))
imap.logout()
'''


def imap_count(via, mail_node, email, token):
    """Log in as *email* over IMAP (STARTTLS, the node's certificate trusted) on *mail_node*
    from container *via*; return how many INBOX messages have *token* in their subject.
    The client asks for the node name, which is also the public name in this scenario, so the
    node may show its public certificate or its internal one (signed by the mail nodes' CA,
    issue #20): both are trusted, nothing else."""
    host = node(mail_node)
    cert = (host.file("/etc/vmail/tls/mail.crt").content_string
            + host.file("/etc/dovecot/vmail-nodes-ca.pem").content_string)
    script = base64.b64encode(_IMAP_SCRIPT.encode()).decode()
    result = node(via).run(
        "printf '%%s' %s | python3 -c \"import base64;exec(base64.b64decode('%s'))\" %s %s %s %s",
        cert, script, fqdn(mail_node), email, password(email), token)
    assert result.rc == 0, f"IMAP on {mail_node} as {email} from {via}: {result.stderr[-1500:]}"
    return int(result.stdout.strip())


def queue(mail_node):
    """Postfix's queue on *mail_node* as a list of postqueue -j records."""
    out = node(mail_node).check_output("postqueue -j")
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def wait_services(name, units, timeout=TIMEOUT):
    host = node(name)
    return wait_for(lambda: all(host.service(u).is_running for u in units), timeout=timeout,
                    what=f"{', '.join(units)} running on {name}")


def run_playbook(playbook, *args, timeout=1200):
    """ansible-playbook against the scenario's Molecule inventory; the CompletedProcess."""
    ephemeral = os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]
    env = dict(os.environ)
    env["ANSIBLE_COLLECTIONS_PATH"] = f"{PROJECT_DIR}/.cache/collections:{env.get('HOME', '/root')}/.ansible/collections"
    env["ANSIBLE_CONFIG"] = str(PROJECT_DIR / "ansible.cfg")
    env["ANSIBLE_NOCOLOR"] = "1"
    cmd = ["ansible-playbook", "-i", str(pathlib.Path(ephemeral) / "inventory"), str(playbook), *args]
    return subprocess.run(cmd, cwd=str(PROJECT_DIR), env=env, capture_output=True, text=True,
                          timeout=timeout, check=False)


def wait_auth(mail_node, email, timeout=TIMEOUT):
    """Wait until Dovecot on *mail_node* authenticates *email*: after every DB node was down its
    SQL connections reconnect with a back-off, and the first lookups answer temp_fail meanwhile."""
    host = node(mail_node)
    return wait_for(lambda: host.run("doveadm auth test %s %s", email, password(email)).rc == 0,
                    timeout=timeout, interval=2, what=f"Dovecot on {mail_node} to authenticate {email}")
