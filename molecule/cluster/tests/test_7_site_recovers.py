"""Every DB node stopped (a full cluster shutdown: no primary component left, nothing starts by
itself): re-running playbooks/site.yml bootstraps the node marked safe_to_bootstrap and lets the
others join (roles/mailsql/README.md, "Galera cluster"), with no row lost."""

from clustertest import DB_NODES, MAIL_NODES, PROJECT_DIR, cluster_ready, node, run_playbook, wait_auth
from test_6_crash_recovery import counts


def test_site_yml_recovers_a_stopped_cluster():
    before = counts("db1")
    for db in ("db2", "db3", "db1"):  # db1 stops last: the one safe to bootstrap
        node(db).check_output("systemctl stop mariadb")
    assert "safe_to_bootstrap: 1" in node("db1").file("/var/lib/mysql/grastate.dat").content_string
    result = run_playbook(PROJECT_DIR / "playbooks" / "site.yml", "--limit", "mail_db")
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    for db in DB_NODES:
        assert cluster_ready(db, 3), db
        assert counts(db) == before, db
    for mail in MAIL_NODES:
        wait_auth(mail, "alice@example.com")
