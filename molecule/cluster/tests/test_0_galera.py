"""Galera cluster and TLS of the mailsql role (issue #10 items 1 and 2), checked on the DB containers.

Self-contained (no conftest needed): the DB containers are reached with
testinfra.get_host('docker://<name>'). Names and server names default to the
cluster scenario's (vmail-cluster-db1..3, db1.cluster.test..); override with
VMAIL_CLUSTER_DB_HOSTS and VMAIL_CLUSTER_DB_NAMES (comma-separated, same order).
"""

import os
import shlex
import uuid

import pytest
import testinfra

DB_HOSTS = os.environ.get("VMAIL_CLUSTER_DB_HOSTS", "vmail-cluster-db1,vmail-cluster-db2,vmail-cluster-db3").split(",")
DB_NAMES = os.environ.get("VMAIL_CLUSTER_DB_NAMES", "db1.cluster.test,db2.cluster.test,db3.cluster.test").split(",")
CA = "/etc/mysql/vmail-tls/ca.pem"


@pytest.fixture(scope="module", params=DB_HOSTS)
def host(request):
    """Each DB node in turn."""
    return testinfra.get_host("docker://" + request.param)


@pytest.fixture(scope="module")
def nodes():
    """Every DB node, in the order of mailsql_cluster_hosts."""
    return [testinfra.get_host("docker://" + name) for name in DB_HOSTS]


def sql(node, query, *args):
    """Run one query as root over the socket; return its output without column names."""
    res = node.run("mariadb -N -B -e " + shlex.quote(query), *args)
    assert res.rc == 0, res.stderr
    return res.stdout.strip()


def status(node, name):
    return sql(node, "SHOW GLOBAL STATUS LIKE '%s'" % name).split("\t")[-1]


def test_node_is_synced_in_a_primary_component_of_all_nodes(host):
    assert status(host, "wsrep_cluster_size") == str(len(DB_HOSTS))
    assert status(host, "wsrep_cluster_status") == "Primary"
    assert status(host, "wsrep_local_state_comment") == "Synced"


def test_replication_and_sst_use_the_node_certificates(host):
    options = sql(host, "SELECT @@wsrep_provider_options")
    assert "socket.ssl = YES" in options or "socket.ssl = yes" in options.lower()
    assert "socket.ssl_ca = %s" % CA in options
    cnf = host.file("/etc/mysql/mariadb.conf.d/61-vmail-galera.cnf").content_string
    assert "ssl-mode = VERIFY_CA" in cnf
    assert sql(host, "SELECT @@binlog_format, @@innodb_autoinc_lock_mode") == "ROW\t2"


def test_server_has_tls_and_keys_are_private(host):
    assert sql(host, "SELECT @@have_ssl") == "YES"
    key = host.file("/etc/mysql/vmail-tls/server.key")
    assert (key.user, key.group, key.mode) == ("root", "mysql", 0o640)


def test_ca_key_only_on_the_first_node(nodes):
    first = nodes[0].file("/etc/vmail/secrets/mailsql-ca.key")
    assert first.exists and (first.user, first.mode) == ("root", 0o600)
    for node in nodes[1:]:
        assert not node.file("/etc/vmail/secrets/mailsql-ca.key").exists


def test_remote_db_accounts_require_ssl_local_ones_do_not(host):
    rows = sql(host, "SELECT user, host, ssl_type FROM mysql.user WHERE user IN ('mailuser', 'mailpostfix', 'mailadmin')")
    rows = [line.split("\t") for line in rows.splitlines()]
    assert rows
    # Postfix's own account (issue #20) comes from the same hosts as the lookup account, replicated.
    assert sorted(h for u, h, _ssl in rows if u == "mailpostfix") == sorted(h for u, h, _ssl in rows if u == "mailuser")
    for user, account_host, ssl_type in rows:
        local = account_host in ("localhost", "127.0.0.1", "::1")
        assert ssl_type == ("" if local else "ANY"), (user, account_host, ssl_type)


def test_postfix_password_is_the_same_on_every_node(nodes):
    """The Postfix account's password is generated on the writer and kept on every node (the next writer
    may be another node)."""
    values = [n.file("/etc/vmail/secrets/postfix_password") for n in nodes]
    assert all(f.exists and (f.user, f.mode) == ("root", 0o600) for f in values)
    assert len({f.content_string.strip() for f in values}) == 1


def test_a_row_written_on_one_node_is_on_every_node(nodes):
    name = "galera-%s.example" % uuid.uuid4().hex[:8]
    sql(nodes[-1], "INSERT INTO mailserver.virtual_domains (name) VALUES ('%s')" % name)
    try:
        for node in nodes:
            assert sql(node, "SELECT COUNT(*) FROM mailserver.virtual_domains WHERE name = '%s'" % name) == "1"
    finally:
        sql(nodes[0], "DELETE FROM mailserver.virtual_domains WHERE name = '%s'" % name)


def test_lookup_account_from_another_node_needs_verified_tls(nodes):
    client, server = nodes[1], DB_NAMES[0]
    password = nodes[0].file("/etc/vmail/secrets/lookup_password").content_string.strip()
    base = "MYSQL_PWD=%s mariadb -N -B -h %s -u mailuser mailserver " % (shlex.quote(password), server)
    ok = client.run(base + "--ssl --ssl-verify-server-cert --ssl-ca=%s -e \"SHOW STATUS LIKE 'Ssl_version'\"" % CA)
    assert ok.rc == 0, ok.stderr
    assert "TLSv1" in ok.stdout
    plain = client.run(base + "--skip-ssl -e 'SELECT 1'")
    assert plain.rc != 0
    assert "Access denied" in plain.stderr
