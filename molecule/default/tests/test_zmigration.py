"""Schema migrations check the data first (issue #4, fault 4).

A scratch database with the guide's tables and a duplicate domain (the guide
schema allows it): the mailsql role's migration must stop, name both rows and
change nothing; once the duplicate is gone it applies and records version 3.
"""

import pytest

from vmailtest import run_playbook

DB = "vmail_migtest"

GUIDE_SQL = f"""
DROP DATABASE IF EXISTS {DB};
CREATE DATABASE {DB};
USE {DB};
CREATE TABLE `virtual_domains` (`id` int(11) NOT NULL auto_increment, `name` varchar(50) NOT NULL,
  PRIMARY KEY (`id`)) ENGINE=InnoDB DEFAULT CHARSET=utf8;
CREATE TABLE `virtual_users` (`id` int(11) NOT NULL auto_increment, `domain_id` int(11) NOT NULL,
  `password` varchar(106) NOT NULL, `email` varchar(100) NOT NULL, PRIMARY KEY (`id`), UNIQUE KEY `email` (`email`),
  FOREIGN KEY (domain_id) REFERENCES virtual_domains(id) ON DELETE CASCADE) ENGINE=InnoDB DEFAULT CHARSET=utf8;
CREATE TABLE `virtual_aliases` (`id` int(11) NOT NULL auto_increment, `domain_id` int(11) NOT NULL,
  `source` varchar(100) NOT NULL, `destination` varchar(100) NOT NULL, PRIMARY KEY (`id`),
  FOREIGN KEY (domain_id) REFERENCES virtual_domains(id) ON DELETE CASCADE) ENGINE=InnoDB DEFAULT CHARSET=utf8;
INSERT INTO virtual_domains (id, name) VALUES (1, 'example.com'), (2, 'example.org'), (3, 'example.com');
INSERT INTO virtual_aliases (id, domain_id, source, destination) VALUES (1, 2, 'a@example.org', 'b@example.org');
"""


def _sql(host, query):
    res = host.run("mariadb -N -B -e %s", query)
    assert res.rc == 0, res.stderr
    return res.stdout.strip()


@pytest.fixture
def scratch_db(host):
    _sql(host, GUIDE_SQL)
    yield DB
    _sql(host, f"DROP DATABASE IF EXISTS {DB}")


def test_migration_stops_on_conflicting_rows_and_keeps_them(host, scratch_db):
    proc = run_playbook(host, "molecule/default/migration-check.yml", "-e", f"mailsql_db_name={scratch_db}")
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0, "the migration went ahead over duplicate domains"
    assert "Conflicting rows" in output and "id 1" in output and "id 3" in output, output[-3000:]
    assert _sql(host, f"SELECT GROUP_CONCAT(CONCAT(id, '=', name) ORDER BY id) FROM {DB}.virtual_domains") == \
        "1=example.com,2=example.org,3=example.com", "rows were changed or dropped"
    indexes = _sql(host, "SELECT COUNT(*) FROM information_schema.statistics "
                         f"WHERE table_schema='{DB}' AND table_name='virtual_domains' AND non_unique=0 "
                         "AND column_name='name'")
    assert indexes == "0", "the unique index was added despite the conflict"

    # Resolved by the admin: the migration then applies, and the data is kept.
    _sql(host, f"DELETE FROM {DB}.virtual_domains WHERE id = 3")
    proc = run_playbook(host, "molecule/default/migration-check.yml", "-e", f"mailsql_db_name={scratch_db}")
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    assert _sql(host, f"SELECT MAX(version) FROM {DB}.vmail_schema") == "5"
    assert _sql(host, f"SELECT COUNT(*) FROM {DB}.virtual_aliases") == "1"
