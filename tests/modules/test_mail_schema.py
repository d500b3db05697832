# -*- coding: utf-8 -*-
"""mail_schema against a real MariaDB: create, migrate, adopt, refuse, check mode (scripts/test-modules.sh)."""

import sys

import pytest

from conftest import COLLECTIONS, DB, GUIDE_ROWS, ROOT_PW, SOCKET, run_module
from test_mail_accounts import failed, ok

if COLLECTIONS not in sys.path:
    sys.path.insert(0, COLLECTIONS)

from ansible_collections.vmail.mailserver.plugins.module_utils import vmail_migrations as migrations

ROOT = dict(login_unix_socket=SOCKET, login_user='root', login_password=ROOT_PW, login_db=DB,
            config_file='/nonexistent.cnf')


def schema(check=False, diff=False):
    return run_module('mail_schema', dict(ROOT), check=check, diff=diff, login=False)


def catalog(db):
    """Tables, columns (with types) and indexes: proves that no DDL ran."""
    return (db.query('SELECT TABLE_NAME, COLUMN_NAME, COLUMN_TYPE, IS_NULLABLE, COLUMN_DEFAULT FROM '
                     'information_schema.COLUMNS WHERE TABLE_SCHEMA = %s ORDER BY 1, 2', (DB,)),
            db.query('SELECT TABLE_NAME, INDEX_NAME, COLUMN_NAME FROM information_schema.STATISTICS '
                     'WHERE TABLE_SCHEMA = %s ORDER BY 1, 2, 3', (DB,)))


def data(db):
    out = db.snapshot()
    out['vmail_schema'] = db.query('SELECT * FROM vmail_schema') if ('vmail_schema',) in tables(db) else None
    return out


def tables(db):
    rows = db.query('SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s', (DB,))
    return set((r['TABLE_NAME'],) for r in rows)


def version(db):
    return db.query('SELECT version FROM vmail_schema')


@pytest.fixture
def empty(db):
    for table in ('virtual_aliases', 'virtual_users', 'virtual_domains'):
        db.execute('DROP TABLE %s' % table)
    return db


def make_version3(db):
    """The mailsql role's schema before issue 8: guide tables, unique keys, version 3."""
    for table in ('virtual_aliases', 'virtual_users', 'virtual_domains'):
        db.execute('DROP TABLE %s' % table)
    for sql in migrations.create_statements(migrations.MIGRATIONS[:2]):
        db.execute(sql)
    assert version(db) == [{'version': 3}]


def test_empty_database(empty):
    before = catalog(empty)
    r = ok(schema(check=True, diff=True))
    assert r['changed'] and r['version_before'] is None and r['version'] == 5
    assert [m['version'] for m in r['migrations']] == [2, 3, 4, 5]
    assert 'CREATE TABLE virtual_domains' in r['diff']['prepared']
    assert catalog(empty) == before  # check mode: no DDL
    r = ok(schema())
    assert r['changed'] and r['created_tables'] == ['virtual_domains', 'virtual_users', 'virtual_aliases',
                                                    'vmail_schema']
    assert version(empty) == [{'version': 5}]
    assert {('vmail_quota_usage',), ('vmail_last_login',)} <= tables(empty)
    r = ok(schema())
    assert not r['changed'] and r['version_before'] == 5 and r['migrations'] == []
    assert not ok(schema(check=True))['changed']


def test_guide_schema_with_encrypt_rows_keeps_every_row(db):
    for sql in GUIDE_ROWS:
        db.execute(sql)
    before = db.snapshot()
    r = ok(schema(diff=True))
    assert r['version_before'] is None and r['version'] == 5 and r['created_tables'] == ['vmail_schema']
    assert [m['version'] for m in r['migrations']] == [2, 3, 4, 5]
    after = db.snapshot()
    for table, rows in before.items():
        assert [dict((k, row[k]) for k in rows[0]) for row in after[table]] == rows  # every row, every value kept
    assert all(u['active'] == 1 and u['quota'] == 0 for u in after['virtual_users'])
    assert all(d['alias_of'] is None and d['default_quota'] == 0 for d in after['virtual_domains'])
    assert after['virtual_users'][0]['password'].startswith('$6$')
    assert not ok(schema())['changed']
    # the ENCRYPT() hashes still verify: declaring the guide's password changes nothing
    r = ok(run_module('mail_user', {'email': 'email1@example.com', 'password': 'password'}))
    assert not r['changed'] and r['quota'] == 0 and r['active'] is True


def test_version3_with_data(db):
    make_version3(db)
    did = db.add_domain('example.com')
    db.execute("INSERT INTO virtual_users (domain_id, password, email) VALUES (%s, '$6$x$y', 'a@example.com')", (did,))
    db.execute("INSERT INTO virtual_aliases (domain_id, source, destination) VALUES (%s, 'b@example.com', "
               "'a@example.com')", (did,))
    before, cat = db.snapshot(), catalog(db)
    r = ok(schema(check=True, diff=True))
    assert r['changed'] and r['version_before'] == 3 and r['version'] == 5
    assert 'ADD COLUMN `quota` BIGINT UNSIGNED NOT NULL DEFAULT 0' in r['diff']['prepared']
    assert catalog(db) == cat and version(db) == [{'version': 3}]
    r = ok(schema())
    assert [m['version'] for m in r['migrations']] == [4, 5] and version(db) == [{'version': 5}]
    assert db.query('SELECT email, password, active, quota FROM virtual_users') == [
        {'email': 'a@example.com', 'password': '$6$x$y', 'active': 1, 'quota': 0}]
    assert len(db.snapshot()['virtual_aliases']) == len(before['virtual_aliases'])
    assert not ok(schema())['changed']


def test_duplicate_domains_stop_migration_2_naming_the_rows(db):
    db.execute("INSERT INTO virtual_domains (id, name) VALUES (1, 'example.com'), (2, 'example.org'), "
               "(3, 'Example.com')")
    before = db.snapshot()
    for check in (True, False):
        r = failed(schema(check=check), 'Conflicting rows', 'id 1', 'id 3', 'migration 2')
        assert 'example.org' not in r['msg']
    assert db.snapshot() == before
    assert version(db) == [{'version': 1}]  # the guide schema was recorded, nothing else
    db.execute('DELETE FROM virtual_domains WHERE id = 3')
    assert ok(schema())['version'] == 5


def test_incompatible_existing_column_fails_naming_it(db):
    make_version3(db)
    db.execute('ALTER TABLE virtual_users ADD COLUMN quota VARCHAR(20) NULL')
    cat = catalog(db)
    failed(schema(check=True), 'virtual_users.quota', 'varchar(20)')
    failed(schema(), 'virtual_users.quota', 'varchar(20)', 'migration 4', 'Nothing was changed')
    assert catalog(db) == cat and version(db) == [{'version': 3}]


def test_compatible_existing_column_is_adopted_after_its_data_check(db):
    make_version3(db)
    did = db.add_domain('example.com')
    db.execute('ALTER TABLE virtual_users ADD COLUMN active TINYINT(1) NULL')
    db.execute("INSERT INTO virtual_users (domain_id, password, email, active) VALUES (%s, 'x', 'a@example.com', "
               "NULL), (%s, 'x', 'b@example.com', 0)", (did, did))
    cat = catalog(db)
    r = failed(schema(), 'rows of virtual_users with active NULL', '[id 1]')
    assert 'id 2' not in r['msg'] and catalog(db) == cat
    db.execute('UPDATE virtual_users SET active = 1 WHERE id = 1')
    r = ok(schema())
    assert 'column virtual_users.active (tinyint(1))' in r['adopted']
    assert db.query('SELECT email, active, quota FROM virtual_users ORDER BY id') == [
        {'email': 'a@example.com', 'active': 1, 'quota': 0}, {'email': 'b@example.com', 'active': 0, 'quota': 0}]


def test_newer_schema_is_refused(db):
    make_version3(db)
    db.execute('UPDATE vmail_schema SET version = 99')
    cat = catalog(db)
    failed(schema(), 'schema version 99', 'only knows versions up to 5', 'Upgrade the collection')
    assert catalog(db) == cat and version(db) == [{'version': 99}]


def test_admin_account_cannot_migrate(db):
    r = run_module('mail_schema', {})
    assert r.rc != 0 and 'denied' in r['msg'].lower(), r
