# -*- coding: utf-8 -*-
"""mail_accounts (and mail_info format=accounts) against a real MariaDB (scripts/test-modules.sh)."""

import json
import multiprocessing
import time

import pytest

from conftest import ADMIN_PW, GUIDE_ROWS, PORT, ansible_adhoc, run_module
from test_modules import BAD_INPUTS

BLF = '{BLF-CRYPT}$2y$05$0123456789012345678901XLgcBRV2VJxYNMW3n1xuX9Z2ch2/RDi'


def ok(result):
    assert result.rc == 0 and not result.get('failed'), result
    return result


def failed(result, *messages):
    assert result.rc != 0 and result.get('failed'), result
    for message in messages:
        assert message in result['msg'], result['msg']
    assert 'Traceback' not in result.raw
    return result


def checksums(db):
    """CHECKSUM TABLE of the three tables (content-based; changes with any write that changes a row)."""
    rows = db.query('CHECKSUM TABLE virtual_domains, virtual_users, virtual_aliases EXTENDED')
    return dict((r['Table'], r['Checksum']) for r in rows)


def state(db):
    """The account data as sets: domains, {email: password}, {(source, destination)}."""
    return (set(r['name'] for r in db.query('SELECT name FROM virtual_domains')),
            dict((r['email'], r['password']) for r in db.query('SELECT email, password FROM virtual_users')),
            set((r['source'], r['destination']) for r in db.query('SELECT source, destination FROM virtual_aliases')))


BASE = {
    'domains': [{'name': 'Example.COM'}, {'name': 'bücher.example'}],
    'users': [{'email': 'Alice@example.com', 'password': 'pw-alice'},
              {'email': 'bob@example.com', 'password': 'pw-bob', 'password_scheme': 'SHA256-CRYPT'},
              {'email': 'carol@xn--bcher-kva.example', 'password_hash': BLF}],
    'aliases': [{'source': 'postmaster@example.com', 'destination': 'alice@example.com'},
                {'source': 'sales@example.com', 'destination': ['alice@example.com', 'bob@example.com',
                                                                'ext@partner.example']},
                {'source': '@bücher.example', 'destination': 'carol@xn--bcher-kva.example'}],
}


def test_create_unchanged_update(db):
    r = ok(run_module('mail_accounts', BASE))
    assert r['changed']
    assert r['domains']['created'] == ['example.com', 'xn--bcher-kva.example']
    assert r['users']['created'] == ['alice@example.com', 'bob@example.com', 'carol@xn--bcher-kva.example']
    assert r['aliases']['created'] == ['postmaster@example.com', 'sales@example.com', '@xn--bcher-kva.example']
    assert r['users']['created_count'] == 3 and not r['users']['truncated']
    domains, users, aliases = state(db)
    assert domains == {'example.com', 'xn--bcher-kva.example'}
    assert users['alice@example.com'].startswith('$6$') and users['bob@example.com'].startswith('{SHA256-CRYPT}$5$')
    assert users['carol@xn--bcher-kva.example'] == BLF
    assert ('sales@example.com', 'ext@partner.example') in aliases and len(aliases) == 5
    rows = db.query('SELECT u.email, d.name FROM virtual_users u JOIN virtual_domains d ON d.id = u.domain_id')
    assert all(row['email'].endswith('@' + row['name']) for row in rows)
    # second run: nothing written (passwords verified, not rehashed)
    before = (db.snapshot(), checksums(db))
    r = ok(run_module('mail_accounts', BASE))
    assert not r['changed'] and r['users'] == {'created': [], 'updated': [], 'removed': [], 'created_count': 0,
                                               'updated_count': 0, 'removed_count': 0, 'truncated': False}
    assert (db.snapshot(), checksums(db)) == before
    # update: a new password, a scheme change, an added destination, a removed mailbox
    new = json.loads(json.dumps(BASE))
    new['users'][0]['password'] = 'pw-alice-2'
    new['users'][1]['password_scheme'] = 'SHA512-CRYPT'
    new['users'].append({'email': 'carol@xn--bcher-kva.example', 'state': 'absent'})
    del new['users'][2]
    new['aliases'][0]['destination'] = ['alice@example.com', 'bob@example.com']
    new['aliases'][2]['state'] = 'absent'
    r = ok(run_module('mail_accounts', new, diff=True))
    assert r['users']['updated'] == ['alice@example.com', 'bob@example.com']
    assert r['users']['removed'] == ['carol@xn--bcher-kva.example']
    assert r['aliases']['updated'] == ['postmaster@example.com'] and r['aliases']['removed'] == ['@xn--bcher-kva.example']
    assert '~ user alice@example.com: password' in r['diff']['prepared']
    domains, users2, aliases = state(db)
    assert users2['alice@example.com'] != users['alice@example.com'] and users2['bob@example.com'].startswith('$6$')
    assert 'carol@xn--bcher-kva.example' not in users2 and ('postmaster@example.com', 'bob@example.com') in aliases
    assert not ok(run_module('mail_accounts', new))['changed']


def test_update_password_modes(db):
    ok(run_module('mail_accounts', BASE))
    before = db.snapshot()
    other = json.loads(json.dumps(BASE))
    for user in other['users'][:2]:
        user['password'] = 'something-else'
    # on_create: existing mailboxes are not verified or rewritten
    assert not ok(run_module('mail_accounts', dict(other, update_password='on_create')))['changed']
    assert db.snapshot() == before
    # the per-entry option wins over the top-level default
    other['users'][0]['update_password'] = 'always'
    r = ok(run_module('mail_accounts', dict(other, update_password='on_create')))
    assert r['users']['updated'] == ['alice@example.com']
    # a mailbox without password is left alone, and a missing one cannot be created without one
    assert not ok(run_module('mail_accounts', {'users': [{'email': 'bob@example.com'}]}))['changed']
    failed(run_module('mail_accounts', {'users': [{'email': 'new@example.com'}]}),
           'users[0] (new@example.com)', 'password or password_hash is required')


def test_check_mode_writes_nothing_and_reports_the_same(db):
    ok(run_module('mail_domain', {'name': 'old.example'}))
    ok(run_module('mail_user', {'email': 'x@old.example', 'password': 'pw'}))
    scenarios = [dict(BASE), dict(BASE, purge=True)]
    changed = json.loads(json.dumps(BASE))
    changed['users'][0]['password'] = 'pw-new'
    changed['aliases'][1]['exclusive'] = True
    changed['aliases'][1]['destination'] = 'bob@example.com'
    scenarios += [changed, dict(changed, purge=True)]
    for args in scenarios:
        before = (db.snapshot(), checksums(db))
        check = ok(run_module('mail_accounts', args, check=True, diff=True))
        assert (db.snapshot(), checksums(db)) == before
        real = ok(run_module('mail_accounts', args, diff=True))
        assert check['changed'] == real['changed']
        for kind in ('domains', 'users', 'aliases'):
            assert check[kind] == real[kind], kind
        assert check['diff'] == real['diff']
        # and once applied, check mode reports no change
        assert not ok(run_module('mail_accounts', args, check=True))['changed']


def test_diff_readable_capped_and_without_secrets(db):
    users = [{'email': 'u%03d@example.com' % i, 'password': 'Secret-%03d' % i} for i in range(300)]
    args = {'domains': [{'name': 'example.com'}], 'users': users}
    r = ok(run_module('mail_accounts', args, check=True, diff=True))
    text = r['diff']['prepared']
    lines = text.splitlines()
    assert lines[0] == 'domains: 1 to create, 0 to update, 0 to remove' and lines[1] == '+ domain example.com'
    assert lines[2] == 'users: 300 to create, 0 to update, 0 to remove'
    assert lines[3].startswith('+ user u000@example.com (password (hidden)')
    assert len(lines) == 200 and lines[-1] == '... 105 more line(s) not shown'
    assert 'Secret-' not in json.dumps(r) and '$6$' not in json.dumps(r)
    assert db.query('SELECT * FROM virtual_users') == []
    ok(run_module('mail_accounts', {'domains': [{'name': 'example.com'}], 'users': users[:2]}))
    r = ok(run_module('mail_accounts', {'users': [{'email': 'u000@example.com', 'password': 'Changed-pw'}],
                                        'aliases': [{'source': 'a@example.com', 'destination': 'u001@example.com'}]},
                      diff=True))
    assert r['diff']['prepared'] == ('domains: 0 to create, 0 to update, 0 to remove\n'
                                     'users: 0 to create, 1 to update, 0 to remove\n'
                                     '~ user u000@example.com: password\n'
                                     'aliases: 1 to create, 0 to update, 0 to remove\n'
                                     '+ alias a@example.com -> u001@example.com\n')


def test_result_lists_are_capped(db):
    users = [{'email': 'u%04d@example.com' % i, 'password_hash': BLF} for i in range(1100)]
    r = ok(run_module('mail_accounts', {'domains': [{'name': 'example.com'}], 'users': users}, check=True))
    assert r['users']['created_count'] == 1100 and len(r['users']['created']) == 1000 and r['users']['truncated']
    assert r['domains']['truncated'] is False


def _seed_extra(db):
    """Accounts outside BASE: a domain with a mailbox and an alias, a mailbox and alias rows in example.com."""
    ok(run_module('mail_accounts', BASE))
    ok(run_module('mail_accounts', {
        'domains': [{'name': 'old.example'}],
        'users': [{'email': 'x@old.example', 'password': 'pw'}, {'email': 'dave@example.com', 'password': 'pw'}],
        'aliases': [{'source': 'y@old.example', 'destination': 'x@old.example'},
                    {'source': 'sales@example.com', 'destination': 'dave@example.com'},
                    {'source': 'info@example.com', 'destination': 'dave@example.com'}]}))


def test_purge(db):
    _seed_extra(db)
    before = db.snapshot()
    # without purge nothing undeclared goes away
    assert not ok(run_module('mail_accounts', BASE))['changed']
    assert db.snapshot() == before
    r = ok(run_module('mail_accounts', dict(BASE, purge=True), diff=True))
    assert r['domains']['removed'] == ['old.example']
    assert sorted(r['users']['removed']) == ['dave@example.com', 'x@old.example']
    assert r['aliases']['removed'] == ['info@example.com', 'y@old.example']
    assert r['aliases']['updated'] == ['sales@example.com']
    assert '- domain old.example (with 1 mailbox(es) and 1 alias(es))' in r['diff']['prepared']
    assert '~ alias sales@example.com: -dave@example.com' in r['diff']['prepared']
    domains, users, aliases = state(db)
    assert domains == {'example.com', 'xn--bcher-kva.example'} and set(users) == {
        'alice@example.com', 'bob@example.com', 'carol@xn--bcher-kva.example'}
    assert len(aliases) == 5
    assert not ok(run_module('mail_accounts', dict(BASE, purge=True)))['changed']
    # purge with an empty declaration empties the database
    r = ok(run_module('mail_accounts', {'purge': True}))
    assert r['domains']['removed_count'] == 2 and r['users']['removed_count'] == 3
    assert db.snapshot() == {'virtual_domains': [], 'virtual_users': [], 'virtual_aliases': []}


def test_absent_domain_needs_force(db):
    _seed_extra(db)
    before = db.snapshot()
    failed(run_module('mail_accounts', {'domains': [{'name': 'old.example', 'state': 'absent'}]}),
           'domains[0] (old.example)', 'still has 1 mailbox(es) and 1 alias(es)', 'force=true')
    assert db.snapshot() == before
    # removing its contents in the same task is enough
    r = ok(run_module('mail_accounts', {'domains': [{'name': 'old.example', 'state': 'absent'}],
                                        'users': [{'email': 'x@old.example', 'state': 'absent'}],
                                        'aliases': [{'source': 'y@old.example', 'state': 'absent'}]}, check=True))
    assert r['domains']['removed'] == ['old.example'] and db.snapshot() == before
    r = ok(run_module('mail_accounts', {'domains': [{'name': 'old.example', 'state': 'absent', 'force': True}]}))
    assert r['users']['removed'] == ['x@old.example'] and r['aliases']['removed'] == ['y@old.example']
    assert 'old.example' not in state(db)[0]


CONFLICTS = [
    ({'domains': [{'name': 'a.example'}, {'name': 'A.example.'}]},
     ['domains[0] and domains[1] (a.example)', 'declared twice']),
    ({'domains': [{'name': 'a.example'}, {'name': 'a.example', 'state': 'absent'}]},
     ['domains[0] and domains[1] (a.example)', 'state present and absent']),
    ({'users': [{'email': 'a@example.com', 'password': 'x'}, {'email': 'A@example.com', 'state': 'absent'}]},
     ['users[0] and users[1] (a@example.com)', 'state present and absent']),
    ({'users': [{'email': 'a@example.com', 'password': 'x'}, {'email': 'a@example.com', 'password': 'x'}]},
     ['users[0] and users[1] (a@example.com)', 'declared twice']),
    ({'aliases': [{'source': 's@example.com', 'destination': 'a@x.example'},
                  {'source': 's@example.com', 'destination': 'b@x.example', 'exclusive': True}]},
     ['aliases[0] and aliases[1] (s@example.com)', 'exclusive false and true']),
    ({'aliases': [{'source': 's@example.com', 'destination': 'a@x.example'},
                  {'source': 's@example.com', 'state': 'absent'}]},
     ['aliases[0] and aliases[1] (s@example.com)', 'state present and absent']),
    ({'domains': [{'name': 'example.com', 'state': 'absent'}], 'users': [{'email': 'a@example.com', 'password': 'x'}]},
     ['users[0] (a@example.com) and domains[0] (example.com)', 'declared absent']),
    ({'domains': [{'name': 'example.com', 'state': 'absent'}],
      'aliases': [{'source': '@example.com', 'destination': 'a@x.example'}]},
     ['aliases[0] (@example.com) and domains[0] (example.com)', 'declared absent']),
]


@pytest.mark.parametrize('args, messages', CONFLICTS, ids=[str(i) for i in range(len(CONFLICTS))])
def test_duplicates_and_contradictions(db, args, messages):
    db.add_domain('example.com')
    before = db.snapshot()
    failed(run_module('mail_accounts', dict(args, users=args.get('users', []) + [
        {'email': 'good@example.com', 'password': 'pw'}])), *messages)
    assert db.snapshot() == before


def test_merged_alias_entries(db):
    ok(run_module('mail_accounts', {'domains': [{'name': 'example.com'}]}))
    r = ok(run_module('mail_accounts', {'aliases': [{'source': 's@example.com', 'destination': 'a@x.example'},
                                                    {'source': 'S@example.com', 'destination': ['b@x.example',
                                                                                                'a@x.example']}]}))
    assert r['aliases']['created'] == ['s@example.com']
    assert state(db)[2] == {('s@example.com', 'a@x.example'), ('s@example.com', 'b@x.example')}


def _entry(module, args):
    """Translate a single module's arguments into a mail_accounts list entry."""
    kind = {'mail_user': 'users', 'mail_domain': 'domains', 'mail_alias': 'aliases'}[module]
    return kind, dict(args)


LIST_BAD = [(m, a, e) for m, a, e in BAD_INPUTS
            if m != 'mail_info' and not any(k.startswith('login') or k == 'connect_timeout' for k in a)]


@pytest.mark.parametrize('module, args, message', LIST_BAD, ids=['%s-%d' % (m, i) for i, (m, a, e) in enumerate(LIST_BAD)])
def test_bad_entry_inside_lists(db, module, args, message):
    """The single modules' bad-input table, one bad entry among good ones: the error names it, nothing is written."""
    db.add_domain('example.com')
    before = db.snapshot()
    good = {'domains': [{'name': 'good.example'}],
            'users': [{'email': 'u1@good.example', 'password': 'pw'}],
            'aliases': [{'source': 'a1@good.example', 'destination': 'u1@good.example'}]}
    kind, entry = _entry(module, args)
    good[kind].append(entry)
    r = failed(run_module('mail_accounts', good), message)
    assert '%s[1] (' % kind in r['msg'], r['msg']
    assert db.snapshot() == before


def test_many_errors_are_listed_together(db):
    r = failed(run_module('mail_accounts', {'users': [{'email': 'bad%d' % i, 'password': 'pw'} for i in range(30)]}),
               'users[0] (bad0)', 'users[19] (bad19)', 'and 10 more problem(s)')
    assert len(r['errors']) == 20 and r['errors'][1]['entry'] == 'users[1] (bad1)'


def test_alias_rules_against_the_final_state(db):
    db.add_domain('example.com')
    # a destination created in the same run is not a typo, in any list order
    ok(run_module('mail_accounts', {'aliases': [{'source': 'a@example.com', 'destination': 'new@example.com'}],
                                    'users': [{'email': 'new@example.com', 'password': 'pw'}]}))
    before = db.snapshot()
    failed(run_module('mail_accounts', {'aliases': [{'source': 'b@example.com', 'destination': 'nwe@example.com'}]}),
           'aliases[0] (b@example.com)', 'typo')
    failed(run_module('mail_accounts', {'aliases': [{'source': 'new@example.com', 'destination': 'a@example.com'}]}),
           'would create a loop')
    failed(run_module('mail_accounts', {'aliases': [{'source': 'x@example.com', 'destination': 'y@example.com'},
                                                    {'source': 'y@example.com', 'destination': 'x@example.com'}]}),
           'would create a loop')
    failed(run_module('mail_accounts', {'aliases': [{'source': 'a@nowhere.example', 'destination': 'new@example.com'}]}),
           'domain nowhere.example')
    assert db.snapshot() == before
    # removing a mailbox that aliases still deliver to warns
    r = ok(run_module('mail_accounts', {'users': [{'email': 'new@example.com', 'state': 'absent'}]}))
    assert 'aliases still deliver to new@example.com: a@example.com' in json.dumps(r.get('warnings'))


def test_guide_literal_sql_is_adopted(db):
    for stmt in GUIDE_ROWS:
        db.execute(stmt)
    before = (db.snapshot(), checksums(db))
    args = {'domains': [{'name': 'example.com'}, {'name': 'hostname.example.com'}, {'name': 'localhost.example.com'}],
            'users': [{'email': 'email1@example.com', 'password': 'password'},
                      {'email': 'email2@example.com', 'password': 'password'}],
            'aliases': [{'source': 'alias@example.com', 'destination': 'email1@example.com'}]}
    r = ok(run_module('mail_accounts', args, diff=True))
    assert not r['changed'], r['diff']
    assert (db.snapshot(), checksums(db)) == before
    # the guide's single-label domain "hostname" can only go by purge
    r = ok(run_module('mail_accounts', dict(args, purge=True), check=True))
    assert r['domains']['removed'] == ['hostname'] and r['users']['removed'] == []
    assert (db.snapshot(), checksums(db)) == before


def _export(**over):
    return ok(run_module('mail_info', dict({'format': 'accounts'}, **over)))


def test_export_and_reapply_roundtrip(db):
    ok(run_module('mail_accounts', BASE))
    ok(run_module('mail_accounts', {'users': [{'email': 'dave@example.com', 'password': 'pw'}],
                                    'aliases': [{'source': 'dave.alias@example.com', 'destination': 'dave@example.com'}]}))
    first = _export()
    assert [d['name'] for d in first['domains']] == ['example.com', 'xn--bcher-kva.example']
    assert first['users'][0]['email'] == 'alice@example.com' and first['users'][0]['password_hash'].startswith('$6$')
    assert {'source': 'sales@example.com',
            'destination': ['alice@example.com', 'bob@example.com', 'ext@partner.example']} in first['aliases']
    assert first['counts'] == {'domains': 2, 'users': 4, 'aliases': 4}
    export = dict((k, first[k]) for k in ('domains', 'users', 'aliases'))
    # re-applied where it came from: no change
    assert not ok(run_module('mail_accounts', dict(export, purge=True)))['changed']
    # applied to an empty database with purge, then exported again: identical
    db.execute('DELETE FROM virtual_domains')
    ok(run_module('mail_domain', {'name': 'stray.example'}))
    r = ok(run_module('mail_accounts', dict(export, purge=True)))
    assert r['changed'] and r['domains']['removed'] == ['stray.example']
    second = _export()
    assert dict((k, second[k]) for k in ('domains', 'users', 'aliases')) == export
    # the default output still has no hashes
    assert '$6$' not in json.dumps(ok(run_module('mail_info', {})))
    assert _export(domain=['example.com'])['domains'] == [{'name': 'example.com'}]


def _accounts_run(job):
    if job == 'accounts':
        users = [{'email': 'bulk%03d@example.com' % i, 'password': 'pw-%d' % i} for i in range(150)]
        return run_module('mail_accounts', {'users': users, 'aliases': [{'source': 'team@example.com',
                                                                          'destination': 'bulk000@example.com'}]})
    return run_module('mail_user', {'email': 'single@example.com', 'password': 'pw'})


def test_concurrent_with_single_module(db):
    db.add_domain('example.com')
    with multiprocessing.get_context('spawn').Pool(2) as pool:
        results = pool.map(_accounts_run, ['accounts', 'user'])
    for r in results:
        assert ok(r)['changed']
    domains, users, aliases = state(db)
    assert len(users) == 151 and 'single@example.com' in users and aliases == {('team@example.com',
                                                                                  'bulk000@example.com')}


def test_scale_thousands(db):
    n = 2500
    args = {'domains': [{'name': 'd%02d.example' % i} for i in range(25)],
            'users': [{'email': 'u%05d@d%02d.example' % (i, i % 25), 'password_hash': BLF} for i in range(n)]
            + [{'email': 'p%03d@d00.example' % i, 'password': 'pw-%d' % i} for i in range(100)],
            'aliases': [{'source': 'a%05d@d%02d.example' % (i, i % 25), 'destination': 'u%05d@d%02d.example'
                         % (i, i % 25)} for i in range(n)]}
    start = time.monotonic()
    r = ok(run_module('mail_accounts', args))
    first = time.monotonic() - start
    assert r['users']['created_count'] == n + 100 and r['aliases']['created_count'] == n
    assert db.query('SELECT COUNT(*) AS n FROM virtual_users')[0]['n'] == n + 100
    start = time.monotonic()
    r = ok(run_module('mail_accounts', dict(args, update_password='on_create', purge=True)))
    again = time.monotonic() - start
    assert not r['changed']
    # generous bounds for a loaded 2-core machine; the per-item modules need about 0.3 s per item
    assert first < 90 and again < 30, (first, again)


def test_ansible_adhoc_no_log(db):
    db.add_domain('example.com')
    args = {'users': [{'email': 'z@example.com', 'password': 'Sup3r-Secret-Value'}], 'login_host': '127.0.0.1',
            'login_port': PORT, 'login_user': 'mailadmin', 'login_password': ADMIN_PW, 'config_file': '/nonexistent'}
    rc, out = ansible_adhoc('mail_accounts', args, check=True, diff=True, verbosity=3)
    assert rc == 0, out
    assert '+ user z@example.com (password (hidden)' in out and 'CHANGED' in out
    assert 'Sup3r-Secret-Value' not in out and ADMIN_PW not in out
    rc, out = ansible_adhoc('mail_accounts', args, verbosity=3)
    assert rc == 0 and 'CHANGED' in out and 'Sup3r-Secret-Value' not in out, out
    rc, out = ansible_adhoc('mail_accounts', args)
    assert rc == 0 and 'SUCCESS' in out, out
