"""Every DB node crashes at once (containers killed, no clean shutdown: seqno -1, no node
safe to bootstrap): re-running playbooks/site.yml recovers each node's last position
(galera_recovery), bootstraps the most advanced one and lets the others join, with no row lost."""

from clustertest import (DB_NODES, MAIL_NODES, PROJECT_DIR, cluster_ready, container, docker, node,
                         password, run_playbook, sql, wait_for)

TABLES = ("virtual_domains", "virtual_users", "virtual_aliases")


def _counts(db):
    return {t: sql(db, f"SELECT COUNT(*) FROM mailserver.{t}")[0][0] for t in TABLES}


def _mariadb_settled(db):
    """MariaDB on *db* gave up (no primary component to join) or never started: not activating."""
    state = node(db).run("systemctl is-active mariadb").stdout.strip()
    return state in ("failed", "inactive")


def test_site_yml_recovers_a_crashed_cluster():
    before = _counts("db2")
    docker("kill", *[container(db) for db in DB_NODES])
    docker("start", *[container(db) for db in DB_NODES])
    # Each node boots, finds no primary component and gives up (pc.wait_prim_timeout).
    for db in DB_NODES:
        wait_for(lambda db=db: _mariadb_settled(db), timeout=240, what=f"MariaDB on {db} to give up")
        assert "safe_to_bootstrap: 0" in node(db).file("/var/lib/mysql/grastate.dat").content_string
    result = run_playbook(PROJECT_DIR / "playbooks" / "site.yml", "--limit", "mail_db")
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    for db in DB_NODES:
        assert cluster_ready(db, 3), db
        assert _counts(db) == before, db
    for mail in MAIL_NODES:
        result = node(mail).run("doveadm auth test alice@example.com %s", password("alice@example.com"))
        assert result.rc == 0, (mail, result.stdout, result.stderr)
