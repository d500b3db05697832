"""Every DB node crashes at once (containers killed, no clean shutdown) and comes back: Galera's
own primary-component recovery (pc.recovery, gvwstate.dat) re-forms the cluster, no row lost."""

from clustertest import DB_NODES, cluster_ready, container, docker, sql, wait_auth, wait_for

TABLES = ("virtual_domains", "virtual_users", "virtual_aliases")


def counts(db):
    return {t: sql(db, f"SELECT COUNT(*) FROM mailserver.{t}")[0][0] for t in TABLES}


def test_crashed_cluster_reforms_by_itself():
    before = counts("db2")
    docker("kill", *[container(db) for db in DB_NODES])
    docker("start", *[container(db) for db in DB_NODES])
    for db in DB_NODES:
        wait_for(lambda db=db: cluster_ready(db, 3), timeout=240, what=f"{db} synced in a cluster of 3")
        assert counts(db) == before, db
    wait_auth("mail1", "alice@example.com")
