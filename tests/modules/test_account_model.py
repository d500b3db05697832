# -*- coding: utf-8 -*-
"""The account model options (schema version 4) against a real MariaDB (scripts/test-modules.sh).

Every option: create, unchanged re-run, update, check mode, diff and bad values; old-schema refusal.
"""

import datetime
import json
import time

import pytest

from conftest import run_module
from test_mail_accounts import failed, ok

GIB = 1024 ** 3
MIB = 1024 ** 2


def users(db):
    return dict((r['email'], (r['quota'], r['active'])) for r in db.query('SELECT email, quota, active FROM virtual_users'))


def domains(db):
    rows = db.query('SELECT id, name, active, default_quota, alias_of FROM virtual_domains ORDER BY id')
    names = dict((r['id'], r['name']) for r in rows)
    return dict((r['name'], (r['active'], r['default_quota'], names.get(r['alias_of']))) for r in rows)


def aliases(db):
    return sorted((r['source'], r['destination'], r['active'])
                  for r in db.query('SELECT source, destination, active FROM virtual_aliases'))


# ---------------------------------------------------------------- mail_user quota / active

def test_user_quota_and_active(db4):
    db4.add_domain('example.com')
    args = {'email': 'alice@example.com', 'password': 'pw-one', 'quota': '2G'}
    before = db4.snapshot()
    r = ok(run_module('mail_user', args, check=True, diff=True))
    assert r['changed'] and r['quota'] == 2 * GIB and r['active'] is True and db4.snapshot() == before
    assert r['diff']['after']['quota'] == 2 * GIB and r['diff']['after']['active'] is True
    r = ok(run_module('mail_user', args))
    assert r['changed'] and users(db4) == {'alice@example.com': (2 * GIB, 1)}
    assert not ok(run_module('mail_user', args))['changed']
    # integers are bytes; an unset option leaves the stored value
    assert not ok(run_module('mail_user', dict(args, quota=2 * GIB)))['changed']
    assert not ok(run_module('mail_user', {'email': 'alice@example.com'}))['changed']
    r = ok(run_module('mail_user', {'email': 'alice@example.com', 'quota': '500M', 'active': False}, diff=True))
    assert r['changed'] and not r['password_changed'] and r['quota'] == 500 * MIB and r['active'] is False
    assert r['diff']['before']['quota'] == 2 * GIB and r['diff']['before']['active'] is True
    assert r['diff']['after']['quota'] == 500 * MIB and r['diff']['after']['active'] is False
    assert users(db4) == {'alice@example.com': (500 * MIB, 0)}
    before = db4.snapshot()
    r = ok(run_module('mail_user', {'email': 'alice@example.com', 'quota': 0, 'active': True}, check=True))
    assert r['changed'] and db4.snapshot() == before
    assert not ok(run_module('mail_user', {'email': 'alice@example.com', 'active': False}))['changed']


@pytest.mark.parametrize('quota, message', [
    (-1, 'must not be negative'), ('-5G', 'must not be negative'), ('abc', 'is not a number of bytes'),
    ('10Mb', 'is not a number of bytes'), (1.5, 'must be a number of bytes'), (True, 'must be a number of bytes'),
    (2 ** 64, 'larger than the column holds')])
def test_user_bad_quota_writes_nothing(db4, quota, message):
    db4.add_domain('example.com')
    before = db4.snapshot()
    failed(run_module('mail_user', {'email': 'a@example.com', 'password': 'pw', 'quota': quota}), message)
    assert db4.snapshot() == before


def test_default_quota_applies_to_mailboxes_created_later(db4):
    ok(run_module('mail_domain', {'name': 'example.com', 'default_quota': '1G'}))
    ok(run_module('mail_user', {'email': 'a@example.com', 'password': 'pw'}))
    ok(run_module('mail_user', {'email': 'b@example.com', 'password': 'pw', 'quota': '3G'}))
    r = ok(run_module('mail_domain', {'name': 'example.com', 'default_quota': '5G'}, diff=True))
    assert r['diff']['before']['default_quota'] == GIB and r['diff']['after']['default_quota'] == 5 * GIB
    ok(run_module('mail_user', {'email': 'c@example.com', 'password': 'pw'}))
    assert users(db4) == {'a@example.com': (GIB, 1), 'b@example.com': (3 * GIB, 1), 'c@example.com': (5 * GIB, 1)}


# ---------------------------------------------------------------- mail_domain active / default_quota / alias_of

def test_domain_active_and_default_quota(db4):
    args = {'name': 'example.com', 'active': False, 'default_quota': '2G'}
    before = db4.snapshot()
    r = ok(run_module('mail_domain', args, check=True, diff=True))
    assert r['changed'] and r['id'] is None and db4.snapshot() == before
    assert r['diff']['after'] == {'name': 'example.com', 'active': False, 'default_quota': 2 * GIB, 'alias_of': None,
                                  'host': None}
    r = ok(run_module('mail_domain', args))
    assert r['changed'] and r['active'] is False and r['default_quota'] == 2 * GIB
    assert domains(db4) == {'example.com': (0, 2 * GIB, None)}
    assert not ok(run_module('mail_domain', args))['changed']
    assert not ok(run_module('mail_domain', {'name': 'example.com'}))['changed']
    r = ok(run_module('mail_domain', {'name': 'example.com', 'active': True}, check=True, diff=True))
    assert r['changed'] and r['id'] is not None and r['diff']['before']['active'] is False
    assert domains(db4) == {'example.com': (0, 2 * GIB, None)}
    ok(run_module('mail_domain', {'name': 'example.com', 'active': True}))
    assert domains(db4) == {'example.com': (1, 2 * GIB, None)}
    failed(run_module('mail_domain', {'name': 'example.com', 'default_quota': '-1'}), 'default_quota must not be negative')


def test_alias_domain_lifecycle(db4):
    ok(run_module('mail_domain', {'name': 'example.com'}))
    ok(run_module('mail_user', {'email': 'a@example.com', 'password': 'pw'}))
    args = {'name': 'example.net', 'alias_of': 'Example.COM'}
    before = db4.snapshot()
    r = ok(run_module('mail_domain', args, check=True, diff=True))
    assert r['changed'] and r['alias_of'] == 'example.com' and db4.snapshot() == before
    r = ok(run_module('mail_domain', args))
    assert r['alias_of'] == 'example.com' and domains(db4)['example.net'] == (1, 0, 'example.com')
    assert not ok(run_module('mail_domain', args))['changed']
    assert not ok(run_module('mail_domain', {'name': 'example.net'}))['changed']
    # an alias domain has no mailboxes of its own
    before = db4.snapshot()
    failed(run_module('mail_user', {'email': 'b@example.net', 'password': 'pw'}), 'alias domain of example.com')
    # no chains: neither an alias of an alias domain, nor a target that becomes an alias domain
    ok(run_module('mail_domain', {'name': 'example.org'}))
    before = db4.snapshot()
    failed(run_module('mail_domain', {'name': 'example.org', 'alias_of': 'example.net'}),
           'itself an alias domain of example.com')
    failed(run_module('mail_domain', {'name': 'example.com', 'alias_of': 'example.org'}),
           'example.net is an alias domain of it', 'mailbox(es) of its own (a@example.com)')
    failed(run_module('mail_domain', {'name': 'example.org', 'alias_of': 'unknown.example'}),
           'unknown.example, which does not exist')
    failed(run_module('mail_domain', {'name': 'example.org', 'alias_of': 'example.org'}), 'alias domain of itself')
    # removing the target takes the alias domain along only with force
    failed(run_module('mail_domain', {'name': 'example.com', 'state': 'absent'}), 'has the alias domain example.net')
    assert db4.snapshot() == before
    # an empty alias_of makes it a normal domain again
    r = ok(run_module('mail_domain', {'name': 'example.net', 'alias_of': ''}, diff=True))
    assert r['changed'] and r['diff']['before']['alias_of'] == 'example.com' and r['diff']['after']['alias_of'] is None
    ok(run_module('mail_domain', args))
    r = ok(run_module('mail_domain', {'name': 'example.com', 'state': 'absent', 'force': True}))
    assert set(domains(db4)) == {'example.org'}


@pytest.mark.parametrize('module, args, message', [
    ('mail_domain', {'name': 'example.org', 'default_quota': -1}, 'default_quota must not be negative'),
    ('mail_domain', {'name': 'example.com', 'default_quota': '-2G'}, 'default_quota must not be negative'),
    ('mail_domain', {'name': 'example.org', 'default_quota': 'lots'}, 'is not a number of bytes'),
    ('mail_domain', {'name': 'example.org', 'active': 'maybe'}, 'active'),
    ('mail_user', {'email': 'a@example.com', 'password': 'pw', 'active': 'maybe'}, 'active'),
    ('mail_user', {'email': 'a@example.com', 'password': 'pw', 'quota': '-1'}, 'must not be negative'),
    ('mail_accounts', {'domains': [{'name': 'example.org', 'default_quota': -1}]}, 'default_quota must not be negative'),
    ('mail_accounts', {'domains': [{'name': 'example.org', 'alias_of': 'example.org'}]}, 'alias domain of itself'),
], ids=lambda v: v if isinstance(v, str) and ' ' not in v else None)
def test_bad_model_values_write_nothing(db4, module, args, message):
    """Negative or unparsable quotas and non-boolean flags fail on every module, the database untouched."""
    db4.add_domain('example.com')
    before = db4.snapshot()
    failed(run_module(module, args), message)
    assert db4.snapshot() == before


# ---------------------------------------------------------------- mail_alias active

def test_alias_active(db4):
    db4.add_domain('example.com')
    ok(run_module('mail_user', {'email': 'a@example.com', 'password': 'pw'}))
    ok(run_module('mail_user', {'email': 'b@example.com', 'password': 'pw'}))
    args = {'source': 'sales@example.com', 'destination': 'a@example.com', 'active': False}
    before = db4.snapshot()
    r = ok(run_module('mail_alias', args, check=True, diff=True))
    assert r['changed'] and r['active'] is False and r['diff']['after']['active'] is False
    assert db4.snapshot() == before
    ok(run_module('mail_alias', args))
    assert aliases(db4) == [('sales@example.com', 'a@example.com', 0)]
    assert not ok(run_module('mail_alias', args))['changed']
    # a new destination of a disabled source is disabled too
    r = ok(run_module('mail_alias', {'source': 'sales@example.com', 'destination': 'b@example.com'}))
    assert r['active'] is False
    assert aliases(db4) == [('sales@example.com', 'a@example.com', 0), ('sales@example.com', 'b@example.com', 0)]
    r = ok(run_module('mail_alias', {'source': 'sales@example.com', 'destination': 'a@example.com', 'active': True},
                      diff=True))
    assert r['changed'] and r['added'] == [] and r['diff']['before']['active'] is False and r['active'] is True
    assert aliases(db4) == [('sales@example.com', 'a@example.com', 1), ('sales@example.com', 'b@example.com', 1)]
    failed(run_module('mail_alias', dict(args, active='maybe')), 'active')


# ---------------------------------------------------------------- mail_accounts

ACCOUNTS = {
    'domains': [{'name': 'example.com', 'default_quota': '1G'},
                {'name': 'example.net', 'alias_of': 'example.com'},
                {'name': 'old.example', 'active': False}],
    'users': [{'email': 'a@example.com', 'password': 'pw-a'},
              {'email': 'b@example.com', 'password': 'pw-b', 'quota': '2G', 'active': False}],
    'aliases': [{'source': 'sales@example.com', 'destination': 'a@example.com', 'active': False}],
}


def test_accounts_with_the_model_options(db4):
    before = db4.snapshot()
    r = ok(run_module('mail_accounts', ACCOUNTS, check=True, diff=True))
    assert r['changed'] and db4.snapshot() == before
    assert '+ domain example.net (active=true, alias_of=example.com, default_quota=0, host=none)' in r['diff']['prepared']
    assert ('+ user b@example.com (password (hidden), SHA512-CRYPT, active=false, host=none, quota=2147483648)'
            in r['diff']['prepared'])
    ok(run_module('mail_accounts', ACCOUNTS))
    assert domains(db4) == {'example.com': (1, GIB, None), 'example.net': (1, 0, 'example.com'),
                            'old.example': (0, 0, None)}
    assert users(db4) == {'a@example.com': (GIB, 1), 'b@example.com': (2 * GIB, 0)}
    assert aliases(db4) == [('sales@example.com', 'a@example.com', 0)]
    assert not ok(run_module('mail_accounts', ACCOUNTS))['changed']
    new = json.loads(json.dumps(ACCOUNTS))
    new['domains'][2]['active'] = True
    new['users'][1].update(quota=0, active=True)
    new['aliases'][0]['active'] = True
    r = ok(run_module('mail_accounts', new, diff=True))
    assert r['domains']['updated'] == ['old.example'] and r['users']['updated'] == ['b@example.com']
    assert r['aliases']['updated'] == ['sales@example.com']
    assert '~ user b@example.com: active=true, quota=0' in r['diff']['prepared']
    assert '~ domain old.example: active=true' in r['diff']['prepared']
    assert users(db4)['b@example.com'] == (0, 1) and aliases(db4)[0][2] == 1


@pytest.mark.parametrize('change, message', [
    (lambda a: a['users'][0].update(quota=-1), 'users[0] (a@example.com): quota must not be negative'),
    (lambda a: a['users'][0].update(quota='lots'), "quota 'lots' is not a number of bytes"),
    (lambda a: a['domains'][1].update(alias_of='nowhere.example'), 'nowhere.example, which does not exist'),
    (lambda a: a['domains'][1].update(alias_of='example.net'), 'alias domain of itself'),
    (lambda a: a['domains'][2].update(alias_of='example.net'), 'itself an alias domain of example.com'),
    (lambda a: a['users'].append({'email': 'x@example.net', 'password': 'pw'}), 'alias domain of example.com'),
    (lambda a: a['domains'][0].update(alias_of='old.example'), 'example.net is an alias domain of it'),
])
def test_accounts_bad_entry_writes_nothing(db4, change, message):
    args = json.loads(json.dumps(ACCOUNTS))
    change(args)
    before = db4.snapshot()
    failed(run_module('mail_accounts', args), message)
    assert db4.snapshot() == before


# ---------------------------------------------------------------- old schema

@pytest.mark.parametrize('module, args', [
    ('mail_user', {'email': 'a@example.com', 'password': 'pw', 'quota': '1G'}),
    ('mail_user', {'email': 'a@example.com', 'password': 'pw', 'active': False}),
    ('mail_domain', {'name': 'example.com', 'default_quota': 0}),
    ('mail_domain', {'name': 'example.org', 'alias_of': 'example.com'}),
    ('mail_alias', {'source': 's@example.com', 'destination': 'x@elsewhere.example', 'active': True}),
    ('mail_accounts', {'users': [{'email': 'a@example.com', 'password': 'pw', 'quota': 5}]}),
])
def test_old_schema_refuses_new_options(db, module, args):
    db.add_domain('example.com')
    before = db.snapshot()
    failed(run_module(module, args), 'needs schema migration 4', 'mailsql role', 'mail_schema')
    assert db.snapshot() == before
    # without the new options the modules keep working on the guide schema
    plain = dict((k, v) for k, v in args.items() if k not in ('quota', 'active', 'default_quota', 'alias_of'))
    if module == 'mail_accounts':
        plain = {'users': [{'email': 'a@example.com', 'password': 'pw'}]}
    r = ok(run_module(module, plain))
    if module == 'mail_user':
        assert r['quota'] is None and r['active'] is None


# ---------------------------------------------------------------- mail_info

def test_info_reports_quota_usage_and_last_login(db4):
    ok(run_module('mail_accounts', ACCOUNTS))
    ok(run_module('mail_user', {'email': 'c@example.com', 'password': 'pw-c'}))
    now = int(time.time())
    db4.execute("INSERT INTO vmail_quota_usage (email, bytes, messages) VALUES ('a@example.com', 1234, 5)")
    db4.execute('INSERT INTO vmail_last_login (email, last_login) VALUES (%s, %s), (%s, %s)',
                ('a@example.com', now - 10, 'b@example.com', now - 200 * 86400))
    r = ok(run_module('mail_info', {}, check=True))
    boxes = dict((m['email'], m) for m in r['mailboxes'])
    a = boxes['a@example.com']
    assert (a['quota'], a['active'], a['usage_bytes'], a['usage_messages']) == (GIB, True, 1234, 5)
    stamp = datetime.datetime.strptime(a['last_login'], '%Y-%m-%dT%H:%M:%SZ').replace(tzinfo=datetime.timezone.utc)
    assert abs(stamp.timestamp() - (now - 10)) < 1
    assert boxes['b@example.com']['usage_bytes'] is None and boxes['b@example.com']['active'] is False
    assert boxes['c@example.com']['last_login'] is None
    doms = dict((d['name'], d) for d in r['domains'])
    assert doms['example.net']['alias_of'] == 'example.com' and doms['example.com']['default_quota'] == GIB
    assert doms['old.example']['active'] is False
    assert [a['active'] for a in r['aliases']] == [False]
    assert 'inactive' not in r
    r = ok(run_module('mail_info', {'inactive_days': 180}))
    assert [i['email'] for i in r['inactive']] == ['b@example.com', 'c@example.com']
    assert r['inactive'][1]['last_login'] is None
    assert len(ok(run_module('mail_info', {'inactive_days': 0}))['inactive']) == 3
    assert [i['email'] for i in ok(run_module('mail_info', {'inactive_days': 365}))['inactive']] == ['c@example.com']
    failed(run_module('mail_info', {'inactive_days': -1}), 'inactive_days must be 0 or more')


def test_info_export_roundtrip_with_the_model(db4):
    ok(run_module('mail_accounts', ACCOUNTS))
    first = ok(run_module('mail_info', {'format': 'accounts'}))
    assert {'name': 'example.net', 'active': True, 'default_quota': 0, 'alias_of': 'example.com'} in first['domains']
    assert {'source': 'sales@example.com', 'destination': ['a@example.com'], 'active': False} in first['aliases']
    b = [u for u in first['users'] if u['email'] == 'b@example.com'][0]
    assert (b['quota'], b['active']) == (2 * GIB, False)
    export = dict((k, first[k]) for k in ('domains', 'users', 'aliases'))
    assert not ok(run_module('mail_accounts', dict(export, purge=True)))['changed']
    db4.execute('DELETE FROM virtual_domains')
    assert ok(run_module('mail_accounts', dict(export, purge=True)))['changed']
    second = ok(run_module('mail_info', {'format': 'accounts'}))
    assert dict((k, second[k]) for k in ('domains', 'users', 'aliases')) == export


def test_info_on_old_schema(db):
    db.add_domain('example.com')
    ok(run_module('mail_user', {'email': 'a@example.com', 'password': 'pw'}))
    r = ok(run_module('mail_info', {}))
    assert r['mailboxes'] == [{'email': 'a@example.com', 'domain': 'example.com', 'password_scheme': 'SHA512-CRYPT'}]
    assert set(r['domains'][0]) == {'name', 'id', 'mailboxes', 'aliases'}
    assert set(ok(run_module('mail_info', {'format': 'accounts'}))['users'][0]) == {'email', 'password_hash'}
    failed(run_module('mail_info', {'inactive_days': 30}), 'vmail_last_login', 'schema migration 4')
