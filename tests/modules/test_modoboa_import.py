# -*- coding: utf-8 -*-
"""A Modoboa CSV through the modoboa_csv filter into mail_accounts, against a real MariaDB (scripts/test-modules.sh)."""

import pytest

from conftest import DB, ROOT_PW, SOCKET, run_module
from test_mail_accounts import failed, ok

from ansible_collections.vmail.mailserver.plugins.filter.modoboa_csv import parse_modoboa_csv

MIB = 1024 ** 2
ROOT = dict(login_unix_socket=SOCKET, login_user='root', login_password=ROOT_PW, login_db=DB,
            config_file='/nonexistent.cnf')

# A Modoboa export with the account features: quotas in MB, a domain alias, disabled objects.
FEATURES = '''domain; example.com; 0; 1024; True
domainalias; example.net; example.com; True
domain; old.example; 0; 0; False
account; alice@example.com; Alice-Pass-1; Alice; ; True; SimpleUsers; alice@example.com; 500
account; bob@example.com; Bob-Pass-2; Bob; ; False; SimpleUsers; bob@example.com; 1024
account; carol@example.com; Carol-Pass-3; Carol; ; True; SimpleUsers; carol@example.com; 0
account; dave@example.com; Dave-Pass-4; Dave; ; True; SimpleUsers; dave@example.com
alias; sales@example.com; True; alice@example.com; bob@example.com
alias; info@example.com; False; carol@example.com
'''
# Nothing disabled, no quota, no domain alias: usable on the guide schema.
PLAIN = '''domain; example.com; 0; 0; True
account; alice@example.com; Alice-Pass-1; Alice; ; True; SimpleUsers; alice@example.com; 0
alias; sales@example.com; True; alice@example.com
'''


@pytest.fixture
def db4(db):
    """The test database migrated to the latest schema version by mail_schema."""
    assert ok(run_module('mail_schema', dict(ROOT), login=False))['version'] == 5
    return db


def test_modoboa_features_arrive_in_the_account_model(db4):
    accounts = parse_modoboa_csv(FEATURES)
    r = ok(run_module('mail_accounts', accounts))
    assert r['changed']
    rows = db4.query('SELECT id, name, active, default_quota, alias_of FROM virtual_domains')
    names = dict((d['id'], d['name']) for d in rows)
    assert dict((d['name'], (d['active'], d['default_quota'], names.get(d['alias_of']))) for d in rows) == {
        'example.com': (1, 1024 * MIB, None), 'example.net': (1, 0, 'example.com'), 'old.example': (0, 0, None)}
    users = db4.query('SELECT email, quota, active FROM virtual_users')
    assert dict((u['email'], (u['quota'], u['active'])) for u in users) == {
        'alice@example.com': (500 * MIB, 1),
        'bob@example.com': (1024 * MIB, 0),
        'carol@example.com': (0, 1),  # Modoboa's 0 = unlimited, not the domain's default
        'dave@example.com': (1024 * MIB, 1),  # no quota field: the domain's default, as in Modoboa
    }
    assert sorted((a['source'], a['destination'], a['active'])
                  for a in db4.query('SELECT source, destination, active FROM virtual_aliases')) == [
        ('info@example.com', 'carol@example.com', 0),
        ('sales@example.com', 'alice@example.com', 1), ('sales@example.com', 'bob@example.com', 1)]
    assert not ok(run_module('mail_accounts', accounts))['changed']


def test_plain_export_fits_the_guide_schema_and_features_name_migration_4(db):
    ok(run_module('mail_accounts', parse_modoboa_csv(PLAIN)))
    assert [u['email'] for u in db.query('SELECT email FROM virtual_users')] == ['alice@example.com']
    before = db.snapshot()
    failed(run_module('mail_accounts', parse_modoboa_csv(FEATURES)), 'needs schema migration 4')
    assert db.snapshot() == before
    # the documented way for an old schema: leave disabled objects out, drop the quotas
    # (a domain alias needs the model in any case)
    text = ''.join(line for line in FEATURES.splitlines(True) if not line.startswith('domainalias'))
    old = parse_modoboa_csv(text, disabled='skip', ignore_quota=True)
    ok(run_module('mail_accounts', old))
    assert sorted(u['email'] for u in db.query('SELECT email FROM virtual_users')) == [
        'alice@example.com', 'carol@example.com', 'dave@example.com']
