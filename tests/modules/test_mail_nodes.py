# -*- coding: utf-8 -*-
"""The host option (mail nodes, schema version 5) against a real MariaDB (scripts/test-modules.sh).

mail_domain, mail_user and mail_accounts: create, unchanged re-run, update, clear, check mode, diff and bad
values; a version-4 database keeps working and refuses the option naming migration 5; mail_schema applies
migration 5 to a version-4 database with data once; mail_info reports and exports the option.
"""

import sys

import pytest

from conftest import COLLECTIONS, DB, ROOT_PW, SOCKET, run_module
from test_mail_accounts import failed, ok

if COLLECTIONS not in sys.path:
    sys.path.insert(0, COLLECTIONS)

from ansible_collections.vmail.mailserver.plugins.module_utils import vmail_migrations as migrations

ROOT = dict(login_unix_socket=SOCKET, login_user='root', login_password=ROOT_PW, login_db=DB,
            config_file='/nonexistent.cnf')


def hosts(db):
    doms = dict((r['name'], r['host']) for r in db.query('SELECT name, host FROM virtual_domains'))
    users = dict((r['email'], r['host']) for r in db.query('SELECT email, host FROM virtual_users'))
    return doms, users


@pytest.fixture
def db5(db):
    assert ok(run_module('mail_schema', dict(ROOT), login=False))['version'] == 5
    return db


@pytest.fixture
def db4only(db):
    """A database at schema version 4 (the account model, without the host columns)."""
    for table in ('virtual_aliases', 'virtual_users', 'virtual_domains'):
        db.execute('DROP TABLE %s' % table)
    for sql in migrations.create_statements(migrations.MIGRATIONS[:3]):
        db.execute(sql)
    assert db.query('SELECT version FROM vmail_schema') == [{'version': 4}]
    return db


def test_domain_host(db5):
    args = {'name': 'example.com', 'host': 'Mail1.Example.NET.'}
    before = db5.snapshot()
    r = ok(run_module('mail_domain', args, check=True, diff=True))
    assert r['changed'] and r['host'] == 'mail1.example.net' and db5.snapshot() == before
    assert r['diff']['before'] == {} and r['diff']['after']['host'] == 'mail1.example.net'
    r = ok(run_module('mail_domain', args))
    assert r['changed'] and hosts(db5)[0] == {'example.com': 'mail1.example.net'}
    assert not ok(run_module('mail_domain', args))['changed']
    assert not ok(run_module('mail_domain', {'name': 'example.com'}))['changed']   # unset: stored value stays
    r = ok(run_module('mail_domain', {'name': 'example.com', 'host': 'mail2'}, diff=True))
    assert r['changed'] and r['diff']['before']['host'] == 'mail1.example.net' and r['diff']['after']['host'] == 'mail2'
    before = db5.snapshot()
    assert ok(run_module('mail_domain', {'name': 'example.com', 'host': ''}, check=True))['changed']
    assert db5.snapshot() == before
    r = ok(run_module('mail_domain', {'name': 'example.com', 'host': ''}))
    assert r['changed'] and r['host'] is None and hosts(db5)[0] == {'example.com': None}
    assert not ok(run_module('mail_domain', {'name': 'example.com', 'host': ''}))['changed']


def test_user_host(db5):
    ok(run_module('mail_domain', {'name': 'example.com', 'host': 'mail1.example.net'}))
    r = ok(run_module('mail_user', {'email': 'a@example.com', 'password': 'pw'}, diff=True))
    assert r['host'] is None and r['diff']['after']['host'] is None     # a new mailbox follows its domain
    args = {'email': 'a@example.com', 'host': 'mail2.example.net'}
    before = db5.snapshot()
    r = ok(run_module('mail_user', args, check=True, diff=True))
    assert r['changed'] and not r['password_changed'] and db5.snapshot() == before
    assert r['diff']['before']['host'] is None and r['diff']['after']['host'] == 'mail2.example.net'
    assert ok(run_module('mail_user', args))['changed']
    assert hosts(db5)[1] == {'a@example.com': 'mail2.example.net'}
    r = ok(run_module('mail_user', dict(args, password='pw')))
    assert not r['changed'] and r['host'] == 'mail2.example.net'
    assert ok(run_module('mail_user', {'email': 'a@example.com', 'host': ''}))['changed']
    assert hosts(db5)[1] == {'a@example.com': None}
    r = ok(run_module('mail_user', {'email': 'b@example.com', 'password': 'pw', 'host': 'mail3'}))
    assert r['changed'] and hosts(db5)[1]['b@example.com'] == 'mail3'


@pytest.mark.parametrize('host, message', [
    ('10.0.0.2', 'IP addresses are not supported'), ('mail_1.example', 'not a valid host name'),
    ('mail one', 'not a valid host name'), ('[::1]', 'address literals'), ('a' * 64, 'label of 64 octets')])
def test_bad_host_writes_nothing(db5, host, message):
    db5.add_domain('example.com')
    before = db5.snapshot()
    failed(run_module('mail_domain', {'name': 'example.com', 'host': host}), 'host name', message)
    failed(run_module('mail_user', {'email': 'a@example.com', 'password': 'pw', 'host': host}), message)
    r = failed(run_module('mail_accounts', {'users': [{'email': 'a@example.com', 'password': 'pw', 'host': host}]}),
               'users[0] (a@example.com)', message)
    assert 'pw' not in r['msg']
    assert db5.snapshot() == before


def test_accounts_host(db5):
    accounts = {'domains': [{'name': 'example.com', 'host': 'm1.example.net'}, {'name': 'example.org'}],
                'users': [{'email': 'a@example.com', 'password': 'pw'},
                          {'email': 'b@example.org', 'password': 'pw', 'host': 'm2.example.net'}]}
    before = db5.snapshot()
    r = ok(run_module('mail_accounts', accounts, check=True, diff=True))
    assert r['changed'] and db5.snapshot() == before
    assert '+ domain example.com (active=true, alias_of=none, default_quota=0, host=m1.example.net)' in r['diff']['prepared']
    assert 'host=m2.example.net' in r['diff']['prepared']
    ok(run_module('mail_accounts', accounts))
    assert hosts(db5) == ({'example.com': 'm1.example.net', 'example.org': None},
                          {'a@example.com': None, 'b@example.org': 'm2.example.net'})
    assert not ok(run_module('mail_accounts', accounts))['changed']
    moved = {'domains': [{'name': 'example.org', 'host': 'm2.example.net'}],
             'users': [{'email': 'b@example.org', 'host': ''}, {'email': 'a@example.com', 'host': 'm2.example.net'}]}
    r = ok(run_module('mail_accounts', moved, diff=True))
    assert r['domains']['updated'] == ['example.org']
    assert sorted(r['users']['updated']) == ['a@example.com', 'b@example.org']
    assert '~ user b@example.org: host=none' in r['diff']['prepared']
    assert hosts(db5) == ({'example.com': 'm1.example.net', 'example.org': 'm2.example.net'},
                          {'a@example.com': 'm2.example.net', 'b@example.org': None})
    failed(run_module('mail_accounts', {'users': [{'email': 'a@example.com', 'host': 'm1.example.net'},
                                                  {'email': 'A@example.com', 'host': 'm2.example.net'}]}),
           'declared twice (host m1.example.net and m2.example.net)')


def test_info_reports_and_exports_host(db5):
    ok(run_module('mail_accounts', {'domains': [{'name': 'example.com', 'host': 'm1'}, {'name': 'example.org'}],
                                    'users': [{'email': 'a@example.com', 'password': 'pw', 'host': 'm2'},
                                              {'email': 'b@example.com', 'password': 'pw'}]}))
    r = ok(run_module('mail_info', {}))
    assert [(d['name'], d['host']) for d in r['domains']] == [('example.com', 'm1'), ('example.org', None)]
    assert [(m['email'], m['host']) for m in r['mailboxes']] == [('a@example.com', 'm2'), ('b@example.com', None)]
    r = ok(run_module('mail_info', {'format': 'accounts'}))
    assert [d.get('host') for d in r['domains']] == ['m1', None] and 'host' not in r['domains'][1]
    assert [u.get('host') for u in r['users']] == ['m2', None] and 'host' not in r['users'][1]
    # the export re-applies unchanged
    assert not ok(run_module('mail_accounts', dict((k, r[k]) for k in ('domains', 'users', 'aliases'))))['changed']


def test_version_4_database_keeps_working_and_names_migration_5(db4only):
    ok(run_module('mail_domain', {'name': 'example.com', 'active': True}))
    r = ok(run_module('mail_user', {'email': 'a@example.com', 'password': 'pw', 'quota': '1G'}))
    assert r['host'] is None and r['quota'] == 1024 ** 3
    before = db4only.snapshot()
    for module, args in (('mail_domain', {'name': 'example.com', 'host': 'm1'}),
                         ('mail_user', {'email': 'a@example.com', 'host': 'm1'}),
                         ('mail_user', {'email': 'a@example.com', 'host': ''}),
                         ('mail_accounts', {'domains': [{'name': 'example.com', 'host': 'm1'}]})):
        failed(run_module(module, args), 'host needs schema migration 5', 'mail_schema')
    assert db4only.snapshot() == before
    info = ok(run_module('mail_info', {}))
    assert 'host' not in info['domains'][0] and 'host' not in info['mailboxes'][0]


def test_schema_migration_5_on_a_version_4_database_with_data(db4only):
    ok(run_module('mail_accounts', {'domains': [{'name': 'example.com'}],
                                    'users': [{'email': 'a@example.com', 'password': 'pw'}]}))
    before = db4only.snapshot()
    r = ok(run_module('mail_schema', dict(ROOT), check=True, diff=True, login=False))
    assert r['changed'] and [m['version'] for m in r['migrations']] == [5]
    assert 'ALTER TABLE `virtual_users` ADD COLUMN `host` VARCHAR(255) NULL DEFAULT NULL' in r['diff']['prepared']
    assert db4only.query('SELECT version FROM vmail_schema') == [{'version': 4}]
    r = ok(run_module('mail_schema', dict(ROOT), login=False))
    assert r['version_before'] == 4 and r['version'] == 5 and [m['version'] for m in r['migrations']] == [5]
    after = db4only.snapshot()
    for table, rows in before.items():
        assert [dict((k, row[k]) for k in rows[0]) for row in after[table]] == rows  # every row and value kept
    assert all(row['host'] is None for table in ('virtual_domains', 'virtual_users') for row in after[table])
    assert not ok(run_module('mail_schema', dict(ROOT), login=False))['changed']
    assert db4only.query('SELECT version FROM vmail_schema') == [{'version': 5}]


def test_schema_migration_5_adopts_a_host_column_and_checks_it(db4only):
    db4only.execute('ALTER TABLE virtual_users ADD COLUMN host VARCHAR(100) NULL')
    did = db4only.add_domain('example.com')
    db4only.execute("INSERT INTO virtual_users (domain_id, password, email, host) VALUES (%s, 'x', 'a@example.com', "
                    "'mail 2')", (did,))
    r = failed(run_module('mail_schema', dict(ROOT), login=False), 'migration 5', "id 1 = 'mail 2'", 'host name')
    assert db4only.query('SELECT version FROM vmail_schema') == [{'version': 4}] and 'Traceback' not in r['msg']
    db4only.execute("UPDATE virtual_users SET host = 'mail2' WHERE id = 1")
    r = ok(run_module('mail_schema', dict(ROOT), login=False, diff=True))
    assert 'adopt: column virtual_users.host (varchar(100))' in r['diff']['prepared']
    assert db4only.query('SELECT host FROM virtual_users') == [{'host': 'mail2'}]
