"""One DB node stopped: lookups, deliveries, logins and an account change through the modules
still work; the node rejoins when started and holds the change. The tests run in file order:
the first stops db1, the last starts it again."""

import json
import os
import pathlib
import tempfile

import pytest
from clustertest import (DB_NODES, MAIL_NODES, PREFIX, cluster_ready, fqdn,
                         imap_count, inventory_vars, new_token, node, run_playbook, send, sql,
                         wait_delivered, wait_for)

NEW_USER = "dave@example.com"
NEW_PASSWORD = "Dave-Cluster-Pass-4"
# The CA certificate the mailsql role keeps on every DB node (its export mailsql__tls_ca_cert).
CA_FILE = "/etc/mysql/vmail-tls/ca.pem"


def test_stop_db1():
    node("db1").check_output("systemctl stop mariadb")
    wait_for(lambda: cluster_ready("db2", 2) and cluster_ready("db3", 2),
             what="db2 and db3 in a primary component of 2")


@pytest.mark.parametrize("mail", MAIL_NODES)
def test_lookups_still_answer(mail):
    host = node(mail)
    # postmap opens a new connection each time and Postfix picks a DB host at random:
    # asking a dozen times meets the dead one with near certainty (1 - (2/3)^12 > 99 %).
    for attempt in range(12):
        out = host.check_output("postmap -q bob@example.net mysql:/etc/postfix/mysql-virtual-mailbox-maps.cf")
        assert out.strip(), attempt


@pytest.mark.parametrize("email,home", [("alice@example.com", "mail1"), ("bob@example.net", "mail2")])
def test_delivery_and_login_still_work(email, home):
    token = new_token()
    send("db3", "mail1" if home == "mail2" else "mail2", email, token)
    assert wait_delivered(home, email, token) == 1
    assert imap_count("db3", home, email, token) == 1


def _module_play(target, args):
    return [{"name": "Account change during a DB node outage", "hosts": f"{PREFIX}-{target}",
             "gather_facts": False,
             "tasks": [{"name": "Create a mailbox", "vmail.mailserver.mail_user": args, "no_log": True}]}]


def test_account_change_through_the_modules():
    """mail_user on db2 with every DB node as login_host, db1 first: db1 is down, the module goes on."""
    args = {"email": NEW_USER, "password": NEW_PASSWORD, "state": "present",
            "login_host": [fqdn(db) for db in DB_NODES], "login_user": "mailadmin",
            "login_password": inventory_vars()["mailsql_admin_password"], "ca_cert": CA_FILE}
    with tempfile.NamedTemporaryFile("w", suffix=".yml", dir=os.environ.get("MOLECULE_EPHEMERAL_DIRECTORY"),
                                     delete=False) as handle:
        json.dump(_module_play("db2", args), handle)
    try:
        result = run_playbook(handle.name)
    finally:
        pathlib.Path(handle.name).unlink()
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "changed=1" in result.stdout
    assert NEW_PASSWORD not in result.stdout + result.stderr
    assert sql("db3", f"SELECT COUNT(*) FROM mailserver.virtual_users WHERE email = '{NEW_USER}'") == [["1"]]
    # the new mailbox logs in at once, on its own node and through the other
    for mail in MAIL_NODES:
        result = node(mail).run("doveadm auth test %s %s", NEW_USER, NEW_PASSWORD)
        assert result.rc == 0, (mail, result.stdout, result.stderr)


def test_start_db1_rejoins_and_holds_the_change():
    node("db1").check_output("systemctl start mariadb")
    wait_for(lambda: cluster_ready("db1", 3), timeout=240, what="db1 to rejoin the cluster")
    assert sql("db1", f"SELECT COUNT(*) FROM mailserver.virtual_users WHERE email = '{NEW_USER}'") == [["1"]]
    counts = {db: sql(db, "SELECT COUNT(*) FROM mailserver.virtual_users")[0][0] for db in DB_NODES}
    assert len(set(counts.values())) == 1, counts
