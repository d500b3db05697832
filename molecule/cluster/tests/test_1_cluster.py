"""Converged cluster: accounts replicated, every DB connection from a mail node over verified TLS
(test_0_galera.py checks the Galera cluster itself)."""

import json

import pytest
from clustertest import DB_NODES, MAIL_NODES, fqdn, inventory_vars, node, sql

MAPS_DIR = "/etc/postfix"


def test_schema_and_accounts_replicated_to_every_node():
    counts = {db: sql(db, "SELECT COUNT(*) FROM mailserver.virtual_users")[0][0] for db in DB_NODES}
    expected = str(len(inventory_vars()["mailsql_users"]))
    assert set(counts.values()) == {expected}, counts


@pytest.mark.parametrize("mail", MAIL_NODES)
def test_postfix_maps_list_every_db_node_and_verify_the_certificate(mail):
    host = node(mail)
    maps = host.check_output("grep -l '^query' %s/mysql-*.cf", MAPS_DIR).split()
    assert maps
    for path in maps:
        text = host.file(path).content_string
        hosts_line = [line for line in text.splitlines() if line.startswith("hosts")][0]
        assert all(fqdn(db) in hosts_line for db in DB_NODES), (path, hosts_line)
        assert "tls_verify_cert = yes" in text, path
        assert "tls_CAfile" in text, path


@pytest.mark.parametrize("mail", MAIL_NODES)
def test_postfix_lookups_answer_over_tls(mail):
    host = node(mail)
    maps = host.check_output("grep -l 'virtual_users' %s/mysql-virtual-mailbox-maps.cf", MAPS_DIR).split()
    assert host.check_output("postmap -q alice@example.com mysql:%s", maps[0]).strip()


@pytest.mark.parametrize("mail", MAIL_NODES)
def test_dovecot_connects_to_every_db_node_with_verified_tls(mail):
    host = node(mail)
    sql_conf = host.file("/etc/dovecot/dovecot-sql.conf.ext").content_string
    connect = [line for line in sql_conf.splitlines() if line.startswith("connect")][0]
    assert all(f"host={fqdn(db)}" in connect for db in DB_NODES), connect
    assert "option_file=/etc/dovecot/vmail-db-client.cnf" in connect, connect
    client = host.file("/etc/dovecot/vmail-db-client.cnf").content_string
    assert "ssl-verify-server-cert" in client and "ssl-enforce" in client and "ssl-ca" in client, client
    users = inventory_vars()["mailsql_users"]
    result = host.run("doveadm auth test %s %s", users[0]["email"], users[0]["password"])
    assert result.rc == 0, result.stdout + result.stderr


_PLAIN = r'''
import json, sys, pymysql
out = {}
for name, ssl in (("plain", None), ("tls", {"ca": sys.argv[3], "check_hostname": True})):
    try:
        conn = pymysql.connect(host=sys.argv[1], user="mailuser", password=sys.argv[2], database="mailserver",
                               ssl=ssl, connect_timeout=10)
        cur = conn.cursor()
        cur.execute("SHOW SESSION STATUS LIKE 'Ssl_version'")
        out[name] = "ok " + (cur.fetchone()[1] or "")
    except pymysql.err.MySQLError as exc:
        out[name] = "error %s" % exc.args[0]
print(json.dumps(out))
'''


@pytest.mark.parametrize("db", DB_NODES)
def test_plaintext_db_connection_from_a_mail_node_is_refused(db):
    """The lookup account from mail1: refused without TLS (1045), accepted with the CA and host name checked."""
    host = node("mail1")
    # the CA file the postfix role wrote from the mailsql role's export
    ca_file = host.check_output("awk -F' *= *' '/^tls_CAfile/ {print $2; exit}' %s/mysql-virtual-mailbox-maps.cf",
                                MAPS_DIR).strip()
    password = inventory_vars()["mailsql_lookup_password"]
    out = json.loads(host.check_output("python3 -c %s %s %s %s", _PLAIN, fqdn(db), password, ca_file))
    assert out["plain"].startswith("error 1045"), out
    assert out["tls"].startswith("ok TLSv1."), out
