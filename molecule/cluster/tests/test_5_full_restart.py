"""A full cluster restart (every DB node stopped) recovered by the procedure in
roles/mailsql/README.md ("Recovering a stopped cluster"), with no row lost."""

from clustertest import DB_NODES, cluster_ready, inventory_vars, node, sql, wait_auth, wait_for

TABLES = ("virtual_domains", "virtual_users", "virtual_aliases")


def _counts(db):
    return {t: sql(db, f"SELECT COUNT(*) FROM mailserver.{t}")[0][0] for t in TABLES}


def test_full_cluster_restart_loses_no_row():
    before = _counts("db1")
    assert int(before["virtual_users"]) >= len(inventory_vars()["mailsql_users"])
    for db in reversed(DB_NODES):  # db3, db2, then db1: db1 stops last
        node(db).check_output("systemctl stop mariadb")
    # The documented procedure: bootstrap the node whose grastate.dat says safe_to_bootstrap: 1
    # (the last one stopped), then start the others.
    safe = [db for db in DB_NODES
            if "safe_to_bootstrap: 1" in node(db).file("/var/lib/mysql/grastate.dat").content_string]
    assert safe == ["db1"], safe
    node(safe[0]).check_output("galera_new_cluster")
    for db in DB_NODES:
        if db not in safe:
            node(db).check_output("systemctl start mariadb")
    for db in DB_NODES:
        wait_for(lambda db=db: cluster_ready(db, 3), timeout=240, what=f"{db} synced in a cluster of 3")
        assert _counts(db) == before, db
    # the mail nodes use it again: a lookup and a login
    wait_auth("mail1", "alice@example.com")
