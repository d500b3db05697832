# -*- coding: utf-8 -*-
"""Behaviour tests of the account modules against a real MariaDB (scripts/test-modules.sh)."""

import json
import multiprocessing

import pytest

from conftest import ADMIN_PW, GUIDE_ROWS, PORT, ansible_adhoc, run_module

SQLI = "x'); DROP TABLE virtual_users;--@example.com"


def ok(result):
    assert result.rc == 0 and not result.get('failed'), result
    return result


def failed(result, message):
    assert result.rc != 0 and result.get('failed'), result
    assert message in result['msg'], result['msg']
    assert 'Traceback' not in result.raw
    return result


# ---------------------------------------------------------------- mail_domain

def test_domain_lifecycle(db):
    before = db.snapshot()
    r = ok(run_module('mail_domain', {'name': 'Example.ORG.'}, check=True, diff=True))
    assert r['changed'] and r['diff'] == {'before': {}, 'after': {'name': 'example.org'}}
    assert db.snapshot() == before  # check mode wrote nothing
    r = ok(run_module('mail_domain', {'name': 'Example.ORG.'}, diff=True))
    assert r['changed'] and r['name'] == 'example.org'
    assert db.query('SELECT id, name FROM virtual_domains') == [{'id': r['id'], 'name': 'example.org'}]
    assert ok(run_module('mail_domain', {'name': 'example.org'}))['changed'] is False
    r = ok(run_module('mail_domain', {'name': 'example.org', 'state': 'absent'}, check=True, diff=True))
    assert r['changed'] and r['diff']['after'] == {} and len(db.query('SELECT * FROM virtual_domains')) == 1
    assert ok(run_module('mail_domain', {'name': 'example.org', 'state': 'absent'}))['changed']
    assert db.query('SELECT * FROM virtual_domains') == []
    assert ok(run_module('mail_domain', {'name': 'example.org', 'state': 'absent'}))['changed'] is False


def test_domain_idn_stored_as_alabel(db):
    ok(run_module('mail_domain', {'name': 'Bücher.example'}))
    assert db.query('SELECT name FROM virtual_domains') == [{'name': 'xn--bcher-kva.example'}]
    assert ok(run_module('mail_domain', {'name': 'xn--bcher-kva.example'}))['changed'] is False


def test_domain_absent_refuses_without_force(db):
    did = db.add_domain('example.com')
    db.execute("INSERT INTO virtual_users (domain_id, password, email) VALUES (%s, 'x', 'a@example.com')", (did,))
    before = db.snapshot()
    failed(run_module('mail_domain', {'name': 'example.com', 'state': 'absent'}), '1 mailbox(es) and 0 alias(es)')
    assert db.snapshot() == before
    r = ok(run_module('mail_domain', {'name': 'example.com', 'state': 'absent', 'force': True}))
    assert r['mailboxes_removed'] == 1
    assert db.query('SELECT * FROM virtual_users') == []


# ---------------------------------------------------------------- mail_user

def test_user_lifecycle(db):
    db.add_domain('example.com')
    args = {'email': 'Alice@Example.com', 'password': 'pw-one'}
    before = db.snapshot()
    r = ok(run_module('mail_user', args, check=True, diff=True))
    assert r['changed'] and r['password_changed'] and db.snapshot() == before
    r = ok(run_module('mail_user', args, diff=True))
    assert r['changed'] and r['email'] == 'alice@example.com'
    assert r['diff']['after'] == {'email': 'alice@example.com', 'domain': 'example.com', 'password': '(hidden)',
                                  'password_scheme': 'SHA512-CRYPT', 'password_changed': True}
    assert 'pw-one' not in json.dumps(r)
    stored = db.query('SELECT password FROM virtual_users')[0]['password']
    assert stored.startswith('$6$') and len(stored) == 106 and stored not in json.dumps(r)
    # second run: unchanged, hash not rewritten
    r = ok(run_module('mail_user', args, diff=True))
    assert not r['changed'] and not r['password_changed']
    assert db.query('SELECT password FROM virtual_users')[0]['password'] == stored
    # update
    before = db.snapshot()
    r = ok(run_module('mail_user', dict(args, password='pw-two'), check=True, diff=True))
    assert r['changed'] and r['password_changed'] and db.snapshot() == before
    assert r['diff']['before']['password'] == '(hidden)' and r['diff']['after']['password_changed'] is True
    assert ok(run_module('mail_user', dict(args, password='pw-two')))['changed']
    assert db.query('SELECT password FROM virtual_users')[0]['password'] != stored
    assert not ok(run_module('mail_user', dict(args, password='pw-two')))['changed']
    # on_create leaves the password alone
    assert not ok(run_module('mail_user', dict(args, password='other', update_password='on_create')))['changed']
    # absent
    r = ok(run_module('mail_user', {'email': 'alice@example.com', 'state': 'absent'}, check=True, diff=True))
    assert r['changed'] and r['diff']['after'] == {} and len(db.query('SELECT * FROM virtual_users')) == 1
    assert ok(run_module('mail_user', {'email': 'alice@example.com', 'state': 'absent'}))['changed']
    assert db.query('SELECT * FROM virtual_users') == []
    assert not ok(run_module('mail_user', {'email': 'alice@example.com', 'state': 'absent'}))['changed']


def test_user_scheme_change_rewrites(db):
    db.add_domain('example.com')
    ok(run_module('mail_user', {'email': 'a@example.com', 'password': 'pw'}))
    r = ok(run_module('mail_user', {'email': 'a@example.com', 'password': 'pw', 'password_scheme': 'SHA256-CRYPT'},
                      diff=True))
    assert r['changed'] and r['password_changed'] and r['password_scheme'] == 'SHA256-CRYPT'
    assert db.query('SELECT password FROM virtual_users')[0]['password'].startswith('{SHA256-CRYPT}$5$')
    assert not ok(run_module('mail_user', {'email': 'a@example.com', 'password': 'pw',
                                           'password_scheme': 'SHA256-CRYPT'}))['changed']


def test_user_password_hash(db):
    db.add_domain('example.com')
    h = '{BLF-CRYPT}$2y$05$0123456789012345678901XLgcBRV2VJxYNMW3n1xuX9Z2ch2/RDi'
    assert ok(run_module('mail_user', {'email': 'a@example.com', 'password_hash': h}))['changed']
    assert db.query('SELECT password FROM virtual_users')[0]['password'] == h
    assert not ok(run_module('mail_user', {'email': 'a@example.com', 'password_hash': h}))['changed']


def test_guide_literal_sql_is_adopted(db):
    """Rows made with the guide's literal SQL (ENCRYPT()) verify; nothing is lost or rewritten."""
    for stmt in GUIDE_ROWS:
        db.execute(stmt)
    before = db.snapshot()
    assert before['virtual_users'][0]['password'].startswith('$6$')
    for email in ('email1@example.com', 'email2@example.com'):
        r = ok(run_module('mail_user', {'email': email, 'password': 'password'}, diff=True))
        assert not r['changed'] and r['password_scheme'] == 'SHA512-CRYPT'
    assert not ok(run_module('mail_domain', {'name': 'example.com'}))['changed']
    assert not ok(run_module('mail_alias', {'source': 'alias@example.com',
                                            'destination': 'email1@example.com'}))['changed']
    assert db.snapshot() == before
    info = ok(run_module('mail_info', {}))
    assert info['counts'] == {'domains': 4, 'mailboxes': 2, 'aliases': 1}
    assert '$6$' not in json.dumps(info)


# ---------------------------------------------------------------- mail_alias

def test_alias_lifecycle(db):
    db.add_domain('example.com')
    for u in ('alice', 'bob'):
        ok(run_module('mail_user', {'email': u + '@example.com', 'password': 'pw'}))
    src = {'source': 'Sales@Example.com', 'destination': ['alice@example.com', 'ext@partner.example']}
    before = db.snapshot()
    r = ok(run_module('mail_alias', src, check=True, diff=True))
    assert r['changed'] and db.snapshot() == before
    assert r['diff']['after'] == {'source': 'sales@example.com',
                                  'destinations': ['alice@example.com', 'ext@partner.example']}
    assert ok(run_module('mail_alias', src))['changed']
    assert not ok(run_module('mail_alias', src))['changed']
    assert not ok(run_module('mail_alias', {'source': 'sales@example.com', 'destination': 'alice@example.com'}))['changed']
    r = ok(run_module('mail_alias', {'source': 'sales@example.com', 'destination': 'bob@example.com', 'exclusive': True},
                      diff=True))
    assert r['removed'] == ['alice@example.com', 'ext@partner.example'] and r['added'] == ['bob@example.com']
    assert db.query('SELECT destination FROM virtual_aliases') == [{'destination': 'bob@example.com'}]
    ok(run_module('mail_alias', {'source': '@example.com', 'destination': 'alice@example.com'}))
    assert ok(run_module('mail_alias', {'source': 'sales@example.com', 'state': 'absent'}))['changed']
    assert db.query('SELECT source FROM virtual_aliases') == [{'source': '@example.com'}]
    assert not ok(run_module('mail_alias', {'source': 'sales@example.com', 'state': 'absent'}))['changed']


def test_alias_loops_and_typos(db):
    db.add_domain('example.com')
    ok(run_module('mail_user', {'email': 'a@example.com', 'password': 'pw'}))
    ok(run_module('mail_alias', {'source': 'b@example.com', 'destination': 'a@example.com'}))
    before = db.snapshot()
    failed(run_module('mail_alias', {'source': 'a@example.com', 'destination': 'a@example.com'}), 'to itself')
    failed(run_module('mail_alias', {'source': 'a@example.com', 'destination': 'b@example.com'}), 'loop')
    failed(run_module('mail_alias', {'source': 'c@example.com', 'destination': 'alcie@example.com'}), 'typo')
    failed(run_module('mail_alias', {'source': 'c@unknown.example', 'destination': 'a@example.com'}),
           'domain unknown.example')
    assert db.snapshot() == before


# ---------------------------------------------------------------- mail_info

def test_info_filter(db):
    for d in ('a.example', 'b.example'):
        db.add_domain(d)
        ok(run_module('mail_user', {'email': 'u@' + d, 'password': 'pw'}))
    r = ok(run_module('mail_info', {'domain': ['B.example', 'c.example']}, check=True))
    assert [d['name'] for d in r['domains']] == ['b.example'] and r['missing_domains'] == ['c.example']
    assert r['mailboxes'] == [{'email': 'u@b.example', 'domain': 'b.example', 'password_scheme': 'SHA512-CRYPT'}]
    assert r['counts'] == {'domains': 1, 'mailboxes': 1, 'aliases': 0} and not r['changed']


# ---------------------------------------------------------------- bad input, DB unchanged

BAD_INPUTS = [
    ('mail_user', {'email': SQLI, 'password': 'pw'}, 'not a valid e-mail address'),
    ('mail_user', {'email': "o'brien@nowhere.example", 'password': 'pw'}, 'domain nowhere.example'),
    ('mail_user', {'email': 'x' * 65 + '@example.com', 'password': 'pw'}, 'at most 64'),
    ('mail_user', {'email': 'x' * 60 + '@' + 'y' * 40 + '.example.com', 'password': 'pw'}, 'holds at most 100'),
    ('mail_user', {'email': 'a@example.com', 'password': ''}, 'must not be empty'),
    ('mail_user', {'email': 'a@example.com'}, 'password or password_hash is required'),
    ('mail_user', {'email': 'a@example.com', 'password_hash': 'plain'}, 'not a recognised hash'),
    ('mail_user', {'email': 'a@example.com', 'password': 'p', 'password_hash': '$6$a$b'}, 'mutually exclusive'),
    ('mail_user', {'email': 'ünï@example.com', 'password': 'pw'}, 'non-ASCII'),
    ('mail_user', {'email': 'a@exa mple.com', 'password': 'pw'}, 'address'),
    ('mail_user', {'email': 'a@example.com', 'password': 'pw', 'login_password': 'wrong'}, 'Access denied'),
    ('mail_user', {'email': 'a@example.com', 'password': 'pw', 'login_unix_socket': None,
                   'login_host': '127.0.0.1', 'login_port': 1, 'connect_timeout': 3}, 'Unable to connect'),
    ('mail_domain', {'name': "x'); DROP TABLE virtual_users;--"}, 'not a valid host name'),
    ('mail_domain', {'name': 'a' * 64 + '.example'}, 'at most 63'),
    ('mail_domain', {'name': 'b' * 50 + '.example'}, 'holds at most 50'),
    ('mail_domain', {'name': 'x_y.example'}, 'not a valid host name'),
    ('mail_domain', {'name': 'bad\u2603\u00df--.example'}, 'internationalized'),
    ('mail_alias', {'source': SQLI, 'destination': 'a@example.com'}, 'not a valid e-mail address'),
    ('mail_alias', {'source': 's@example.com', 'destination': SQLI}, 'not a valid e-mail address'),
    ('mail_alias', {'source': 's@example.com'}, 'destination'),
    ('mail_info', {'domain': ['bad_domain']}, 'not a valid host name'),
]


@pytest.mark.parametrize('module, args, message', BAD_INPUTS,
                         ids=['%s-%d' % (m, i) for i, (m, a, e) in enumerate(BAD_INPUTS)])
def test_bad_input(db, module, args, message):
    db.add_domain('example.com')
    before = db.snapshot()
    r = failed(run_module(module, args), message)
    assert ADMIN_PW not in r.raw and 'wrong' not in r['msg']
    assert db.snapshot() == before
    assert db.query("SHOW TABLES LIKE 'virtual_users'")


def test_sql_metacharacters_are_data(db):
    db.add_domain('example.com')
    ok(run_module('mail_user', {'email': "o'brien@example.com", 'password': "p'w\";--"}))
    assert db.query('SELECT email FROM virtual_users') == [{'email': "o'brien@example.com"}]
    assert not ok(run_module('mail_user', {'email': "O'Brien@example.com", 'password': "p'w\";--"}))['changed']


# ---------------------------------------------------------------- concurrency

def _create(kind):
    if kind == 'user':
        return run_module('mail_user', {'email': 'race@example.com', 'password': 'pw'})
    return run_module('mail_alias', {'source': 'race@example.com', 'destination': 'ext@partner.example'})


@pytest.mark.parametrize('kind', ['user', 'alias'])
def test_concurrent_creation(db, kind):
    db.add_domain('example.com')
    with multiprocessing.get_context('spawn').Pool(2) as pool:
        results = pool.map(_create, [kind, kind])
    for r in results:
        ok(r)
    assert sorted(r['changed'] for r in results) == [False, True]
    table = 'virtual_users' if kind == 'user' else 'virtual_aliases'
    assert len(db.query('SELECT * FROM %s' % table)) == 1


# ---------------------------------------------------------------- through ansible itself

def test_ansible_adhoc_check_diff_and_no_log(db):
    db.add_domain('example.com')
    args = {'email': 'z@example.com', 'password': 'Sup3r-Secret-Value', 'login_host': '127.0.0.1',
            'login_port': PORT, 'login_user': 'mailadmin', 'login_password': ADMIN_PW, 'config_file': '/nonexistent'}
    rc, out = ansible_adhoc('mail_user', args, check=True, diff=True, verbosity=3)
    assert rc == 0, out
    assert 'CHANGED' in out and '(hidden)' in out and 'password_changed' in out
    assert 'Sup3r-Secret-Value' not in out and ADMIN_PW not in out
    assert db.query('SELECT * FROM virtual_users') == []
    rc, out = ansible_adhoc('mail_user', args)
    assert rc == 0 and 'CHANGED' in out, out
    rc, out = ansible_adhoc('mail_user', args)
    assert rc == 0 and 'SUCCESS' in out, out


def test_login_host_list_fails_over(db):
    # 127.0.0.2 refuses at once (the test server listens on 127.0.0.1 only): the next host answers.
    db.add_domain('example.com')
    r = ok(run_module('mail_info', {'login_unix_socket': None, 'login_host': ['127.0.0.2', '127.0.0.1'],
                                    'login_port': PORT, 'connect_timeout': 5}))
    assert r['counts']['domains'] == 1
    r = run_module('mail_info', {'login_unix_socket': None, 'login_host': ['127.0.0.2', '127.0.0.3'],
                                 'login_port': PORT, 'connect_timeout': 5})
    assert r.get('failed') and '127.0.0.2:%d, 127.0.0.3:%d' % (PORT, PORT) in r['msg'], r


def test_remote_login_host_without_tls_writes_nothing(db):
    # Issue #20 item 6: a login_host that is not this host, without ca_cert, fails before connecting.
    db.add_domain('example.com')
    args = {'email': 'z@example.com', 'password': 'Sup3r-Secret-Value', 'login_unix_socket': None,
            'login_host': ['127.0.0.1', 'db.invalid'], 'login_port': PORT, 'connect_timeout': 3}
    r = run_module('mail_user', args)
    assert r.get('failed') and 'login_host db.invalid is not on this host and no ca_cert' in r['msg'], r
    assert 'login_tls_required=false' in r['msg'] and 'Sup3r-Secret-Value' not in json.dumps(r)
    assert db.query('SELECT * FROM virtual_users') == []
    # Said explicitly: the first host (this one) serves and the mailbox is written.
    r = ok(run_module('mail_user', dict(args, login_tls_required=False)))
    assert r['changed'] and len(db.query('SELECT * FROM virtual_users')) == 1


def test_config_file(db, tmp_path):
    db.add_domain('example.com')
    cnf = tmp_path / 'admin.cnf'
    cnf.write_text('[client]\nuser = mailadmin\npassword = "%s"\nhost = 127.0.0.1\nport = %d\ndatabase = mailserver\n'
                   % (ADMIN_PW, PORT))
    cnf.chmod(0o600)
    r = ok(run_module('mail_info', {'config_file': str(cnf)}, login=False))
    assert r['counts']['domains'] == 1
