# -*- coding: utf-8 -*-
"""Unit tests of the account model rules (quota, active, default_quota, alias_of) in the shared plan functions."""

import pytest

from ansible_collections.vmail.mailserver.plugins.module_utils import vmail_accounts as acc
from ansible_collections.vmail.mailserver.plugins.module_utils import vmail_info as info

SHA = '$6$saltsaltsaltsalt$' + 'x' * 86
GIB = 1024 ** 3
V4 = {'domains': ['active', 'default_quota', 'alias_of'], 'users': ['active', 'quota'], 'aliases': ['active']}
WIDTHS4 = dict((('virtual_' + ('domains' if k == 'domains' else k), c), None) for k, cols in V4.items() for c in cols)


def state4(domains=(), users=(), aliases=()):
    """domains: (name, active, default_quota, alias_of id); users: (email, domain_id, quota, active);
    aliases: (source, domain_id, destination, active). Ids count from 1."""
    state = acc.State(V4)
    for i, (name, active, default_quota, alias_of) in enumerate(domains, 1):
        state.add_domain({'id': i, 'name': name, 'active': active, 'default_quota': default_quota, 'alias_of': alias_of})
    for i, (email, domain_id, quota, active) in enumerate(users, 1):
        state.add_user({'id': i, 'domain_id': domain_id, 'email': email, 'password': SHA, 'quota': quota,
                        'active': active})
    for i, (source, domain_id, dest, active) in enumerate(aliases, 1):
        state.add_alias({'id': i, 'domain_id': domain_id, 'source': source, 'destination': dest, 'active': active})
    return state


def plan(state, **kinds):
    return acc.plan_accounts(acc.normalize_input(**kinds), state)


def plan_error(state, **kinds):
    with pytest.raises(acc.AccountsError) as err:
        plan(state, **kinds)
    return str(err.value)


@pytest.mark.parametrize('value, expected', [
    (None, None), (0, 0), (1024, 1024), ('1024', 1024), ('2G', 2 * GIB), ('500M', 500 * 1024 ** 2), (' 1.5G ', GIB * 3 // 2),
    ('2GB', 2 * GIB), (2 ** 64 - 1, 2 ** 64 - 1)])
def test_parse_quota(value, expected):
    assert acc.parse_quota(value) == expected


@pytest.mark.parametrize('value, message', [
    (-1, 'must not be negative'), ('-1', 'must not be negative'), ('-2G', 'must not be negative'),
    ('lots', 'is not a number of bytes'), ('', 'is not a number of bytes'), ('2KiB', 'is not a number of bytes'),
    (1.5, 'must be a number of bytes'), (True, 'must be a number of bytes'), ([1], 'must be a number of bytes'),
    (2 ** 64, 'larger than the column holds')])
def test_parse_quota_rejects(value, message):
    with pytest.raises(ValueError, match=message):
        acc.parse_quota(value)


def test_normalize_new_options_and_conflicts():
    d = acc.normalize_input(domains=[{'name': 'A.example', 'alias_of': 'B.Example.', 'default_quota': '1G',
                                      'active': False}],
                            users=[{'email': 'u@b.example', 'quota': '2G', 'active': True}],
                            aliases=[{'source': 's@b.example', 'destination': 'u@b.example', 'active': False},
                                     {'source': 's@b.example', 'destination': 'v@b.example'}])
    assert d.domains['a.example']['alias_of'] == 'b.example' and d.domains['a.example']['default_quota'] == GIB
    assert d.users['u@b.example']['quota'] == 2 * GIB
    alias = d.aliases['s@b.example']
    assert alias['active'] is False and alias['destinations'] == ['u@b.example', 'v@b.example']
    with pytest.raises(acc.AccountsError, match='alias domain of itself'):
        acc.normalize_input(domains=[{'name': 'a.example', 'alias_of': 'A.example'}])
    with pytest.raises(acc.AccountsError, match='declared twice'):
        acc.normalize_input(aliases=[{'source': 's@b.example', 'destination': 'u@b.example', 'active': False},
                                     {'source': 's@b.example', 'destination': 'v@b.example', 'active': True}])
    with pytest.raises(acc.AccountsError, match=r'users\[0\] \(u@b.example\): active must be true or false'):
        acc.normalize_input(users=[{'email': 'u@b.example', 'active': 'yes'}])


def test_check_columns_names_the_migration_on_old_databases():
    d = acc.normalize_input(users=[{'email': 'u@b.example', 'quota': 0}, {'email': 'v@b.example'}],
                            domains=[{'name': 'b.example', 'alias_of': ''}])
    errors = acc.check_columns(d, {})
    assert [label for label, msg in errors] == ['domains[0] (b.example)', 'users[0] (u@b.example)']
    assert 'quota needs schema migration 4 (column virtual_users.quota)' in errors[1][1]
    assert 'vmail.mailserver.mailsql role' in errors[1][1] and 'mail_schema' in errors[1][1]
    assert acc.check_columns(d, WIDTHS4) == []


def test_unset_options_leave_stored_values_and_create_uses_defaults():
    state = state4([('b.example', 1, 5 * GIB, None)], [('u@b.example', 1, 7, 0)], [('s@b.example', 1, 'u@b.example', 0)])
    p = plan(state, domains=[{'name': 'b.example'}], users=[{'email': 'u@b.example'}],
             aliases=[{'source': 's@b.example', 'destination': 'u@b.example'}])
    assert not p.changed
    p = plan(state, users=[{'email': 'n@b.example', 'password': 'pw'},
                           {'email': 'm@b.example', 'password': 'pw', 'quota': 1}])
    assert p.users['n@b.example']['values'] == {'active': 1, 'quota': 5 * GIB}  # the domain's default_quota
    assert p.users['m@b.example']['values'] == {'active': 1, 'quota': 1}
    # a new destination of a disabled source is disabled too
    p = plan(state, aliases=[{'source': 's@b.example', 'destination': 'x@elsewhere.example'}])
    assert p.aliases['s@b.example']['active'] == 0 and p.aliases['s@b.example']['toggle'] == []


def test_default_quota_of_a_domain_declared_in_the_same_run():
    p = plan(state4(), domains=[{'name': 'b.example', 'default_quota': '3G'}],
             users=[{'email': 'n@b.example', 'password': 'pw'}])
    assert p.domains['b.example']['values'] == {'active': 1, 'default_quota': 3 * GIB, 'alias_of': None}
    assert p.users['n@b.example']['values']['quota'] == 3 * GIB


def test_updates_of_the_new_options():
    state = state4([('b.example', 1, 0, None)], [('u@b.example', 1, 0, 1)],
                   [('s@b.example', 1, 'u@b.example', 1), ('s@b.example', 1, 'v@b.example', 0)])
    p = plan(state, domains=[{'name': 'b.example', 'active': False, 'default_quota': '1G'}],
             users=[{'email': 'u@b.example', 'quota': '2G', 'active': False}],
             aliases=[{'source': 's@b.example', 'destination': 'u@b.example', 'active': True}])
    assert p.domains['b.example']['action'] == 'update' and p.domains['b.example']['fields'] == ['active', 'default_quota']
    assert p.users['u@b.example']['fields'] == ['active', 'quota']
    assert p.aliases['s@b.example']['action'] == 'update' and p.aliases['s@b.example']['toggle'] == [2]
    text = acc.diff_text(p)
    assert '~ domain b.example: active=false, default_quota=1073741824' in text
    assert '~ user u@b.example: active=false, quota=2147483648' in text
    assert '~ alias s@b.example: active=true' in text
    assert acc.summarize(p)['domains']['updated'] == ['b.example']


def test_alias_domain_rules():
    state = state4([('b.example', 1, 0, None), ('alias.example', 1, 0, 1), ('c.example', 1, 0, None)],
                   [('u@c.example', 3, 0, 1)])
    p = plan(state, domains=[{'name': 'new.example', 'alias_of': 'b.example'}])
    assert p.domains['new.example']['values']['alias_of'] == 'b.example'
    assert 'alias_of names the domain nowhere.example, which does not exist' in plan_error(
        state, domains=[{'name': 'new.example', 'alias_of': 'nowhere.example'}])
    assert 'itself an alias domain of b.example' in plan_error(
        state, domains=[{'name': 'new.example', 'alias_of': 'alias.example'}])
    assert 'alias.example is an alias domain of it' in plan_error(
        state, domains=[{'name': 'b.example', 'alias_of': 'c.example'}])
    assert 'it has 1 mailbox(es) of its own (u@c.example)' in plan_error(
        state, domains=[{'name': 'c.example', 'alias_of': 'b.example'}])
    assert 'alias domain of b.example and has no mailboxes of its own' in plan_error(
        state, users=[{'email': 'x@alias.example', 'password': 'pw'}])
    # the mailbox moves away in the same run: then c.example may become an alias domain
    p = plan(state, domains=[{'name': 'c.example', 'alias_of': 'b.example'}],
             users=[{'email': 'u@c.example', 'state': 'absent'}])
    assert p.domains['c.example']['fields'] == ['alias_of']
    # back to a normal domain
    p = plan(state, domains=[{'name': 'alias.example', 'alias_of': ''}])
    assert p.domains['alias.example']['values']['alias_of'] is None
    assert acc.domain_attributes(state, p, 'alias.example', after=False)['alias_of'] == 'b.example'


def test_removing_a_target_takes_its_alias_domains_only_with_force():
    state = state4([('b.example', 1, 0, None), ('alias.example', 1, 0, 1)])
    assert 'has the alias domain alias.example' in plan_error(state, domains=[{'name': 'b.example', 'state': 'absent'}])
    p = plan(state, domains=[{'name': 'b.example', 'state': 'absent', 'force': True}])
    assert sorted(k for k, c in p.domains.items() if c['action'] == 'remove') == ['alias.example', 'b.example']
    assert 'is declared present but is an alias domain of b.example' in plan_error(
        state, domains=[{'name': 'b.example', 'state': 'absent', 'force': True}, {'name': 'alias.example'}])


class RecordingCursor(object):
    def __init__(self):
        self.calls = []

    def executemany(self, sql, rows):
        self.calls.append((sql, list(rows)))

    def execute(self, sql, args=None):
        self.calls.append((sql, list(args or [])))

    def fetchall(self):
        return [{'id': 10, 'name': 'b.example'}, {'id': 11, 'name': 'alias.example'}]


def test_apply_writes_the_new_columns():
    p = plan(state4(), domains=[{'name': 'b.example', 'default_quota': 5}, {'name': 'alias.example',
                                                                            'alias_of': 'b.example'}],
             users=[{'email': 'u@b.example', 'password_hash': SHA, 'active': False}],
             aliases=[{'source': 's@b.example', 'destination': 'u@b.example', 'active': False}])
    cursor = RecordingCursor()
    acc.apply_plan(cursor, p)
    calls = dict((sql.split(' (')[0] if sql.startswith('INSERT') else sql, rows) for sql, rows in cursor.calls)
    assert calls['INSERT INTO `virtual_domains`'] == [('b.example', 1, 5), ('alias.example', 1, 0)]
    assert calls['UPDATE `virtual_domains` SET `active` = %s, `default_quota` = %s, `alias_of` = %s WHERE `id` = %s'] \
        == [(1, 0, 10, 11)]
    assert calls['INSERT INTO `virtual_users`'] == [(10, 'u@b.example', SHA, 0, 5)]
    assert calls['INSERT INTO `virtual_aliases`'] == [(10, 's@b.example', 'u@b.example', 0)]


def test_info_helpers():
    assert info.iso_utc(0) is None and info.iso_utc(None) is None
    assert info.iso_utc(1700000000) == '2023-11-14T22:13:20Z'
    now = 1795000000
    assert info.is_inactive(None, 30, now) and info.is_inactive(0, 30, now)
    assert info.is_inactive(now - 30 * 86400, 30, now) and not info.is_inactive(now - 30 * 86400 + 1, 30, now)
    row = {'email': 'A@b.example', 'quota': 5, 'active': 0}
    assert info.user_details(row, {'a@b.example': (7, 1)}, {}, V4, {'vmail_quota_usage', 'vmail_last_login'}) == {
        'quota': 5, 'active': False, 'usage_bytes': 7, 'usage_messages': 1, 'last_login': None}
    assert info.user_details(row, {}, {}, {}, set()) == {}
    assert info.domain_details({'active': 1, 'default_quota': 0, 'alias_of': 3}, {3: 'b.example'}, V4) == {
        'active': True, 'default_quota': 0, 'alias_of': 'b.example'}
