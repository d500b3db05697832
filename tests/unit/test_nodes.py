# -*- coding: utf-8 -*-
"""Unit tests of the mail nodes (schema migration 5): the host columns, their migration and the host option."""

import pytest

from ansible_collections.vmail.mailserver.plugins.module_utils import vmail_accounts as acc
from ansible_collections.vmail.mailserver.plugins.module_utils import vmail_address as addr
from ansible_collections.vmail.mailserver.plugins.module_utils import vmail_info as info
from ansible_collections.vmail.mailserver.plugins.module_utils import vmail_migrations as mig
from ansible_collections.vmail.mailserver.plugins.module_utils import vmail_schema as schema

from test_migrations import FakeCursor, catalog, col

SHA = '$6$saltsaltsaltsalt$' + 'x' * 86
V5 = {'domains': ['active', 'default_quota', 'alias_of', 'host'], 'users': ['active', 'quota', 'host'],
      'aliases': ['active']}
V4 = {'domains': ['active', 'default_quota', 'alias_of'], 'users': ['active', 'quota'], 'aliases': ['active']}


def widths(columns):
    return dict((('virtual_' + kind, c), 255 if c == 'host' else None) for kind, cols in columns.items() for c in cols)


def state5(domains=(), users=()):
    """domains: (name, host); users: (email, domain_id, host). Ids count from 1."""
    state = acc.State(V5)
    for i, (name, host) in enumerate(domains, 1):
        state.add_domain({'id': i, 'name': name, 'active': 1, 'default_quota': 0, 'alias_of': None, 'host': host})
    for i, (email, domain_id, host) in enumerate(users, 1):
        state.add_user({'id': i, 'domain_id': domain_id, 'email': email, 'password': SHA, 'quota': 0, 'active': 1,
                        'host': host})
    return state


def plan(state, **kinds):
    return acc.plan_accounts(acc.normalize_input(**kinds), state)


# ---------------------------------------------------------------- schema description and migration 5

def test_schema_description_of_the_host_columns():
    for table in (schema.DOMAINS, schema.USERS):
        host = table.column('host')
        assert (host.since, host.ddl, host.default, host.kind, host.width) == (
            5, 'VARCHAR(255) NULL DEFAULT NULL', None, 'host', 255)
    assert [m.version for m in mig.MIGRATIONS] == [2, 3, 4, 5] and mig.LATEST == schema.NODES == 5


def test_version_4_plans_only_migration_5_which_adds_the_columns_once():
    plan = mig.plan_schema(catalog(version=4))
    assert [(s.kind, s.version) for s in plan.steps] == [('migration', 5)]
    assert plan.steps[0].ddl == ['ALTER TABLE `virtual_domains` ADD COLUMN `host` VARCHAR(255) NULL DEFAULT NULL',
                                 'ALTER TABLE `virtual_users` ADD COLUMN `host` VARCHAR(255) NULL DEFAULT NULL',
                                 'UPDATE `vmail_schema` SET `version` = 5']
    assert not any('DROP' in s for s in plan.steps[0].ddl)
    assert not plan.steps[0].checks  # new NULL columns: nothing to check
    cursor = FakeCursor()
    done = mig.apply_schema(cursor, plan, catalog(version=4).tables)
    assert [s.version for s in done] == [5] and cursor.executed == plan.steps[0].ddl
    assert not mig.plan_schema(catalog(version=5)).changed


def test_existing_host_columns_are_adopted_and_their_values_checked():
    columns = {('virtual_users', 'host'): col('varchar', 'varchar(64)', True),
               ('virtual_domains', 'host'): col('varchar', 'varchar(255)', True)}
    step = mig.plan_schema(catalog(version=4, columns=columns)).steps[0]
    assert step.ddl == ['UPDATE `vmail_schema` SET `version` = 5']
    assert 'column virtual_users.host (varchar(64))' in step.adopted
    assert [c.what for c in step.checks] == ['rows of virtual_domains whose host is not a host name',
                                             'rows of virtual_users whose host is not a host name']
    assert "`host` NOT REGEXP '^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$'" in step.checks[0].sql
    cursor = FakeCursor({'FROM `virtual_users` WHERE `host`': [{'rows_found': "id 7 = 'mail 2'"}]})
    with pytest.raises(mig.MigrationError) as err:
        mig.apply_schema(cursor, mig.plan_schema(catalog(version=4, columns=columns)), catalog(version=4).tables)
    assert "migration 5" in str(err.value) and "id 7 = 'mail 2'" in str(err.value)
    assert not any(s.startswith('UPDATE') for s in cursor.executed)


def test_incompatible_host_column_fails_naming_it():
    columns = {('virtual_users', 'host'): col('int', 'int(11)', True)}
    with pytest.raises(mig.MigrationError, match=r'virtual_users.host exists as int\(11\); migration 5 needs '
                                                 r'VARCHAR\(255\) NULL DEFAULT NULL'):
        mig.plan_schema(catalog(version=4, columns=columns))


# ---------------------------------------------------------------- host names

@pytest.mark.parametrize('value, expected', [
    ('mail1.example.net', 'mail1.example.net'), ('Mail2.Example.NET.', 'mail2.example.net'), ('mail1', 'mail1'),
    ('pöst.example', 'xn--pst-sna.example')])
def test_normalize_host(value, expected):
    assert addr.normalize_host(value) == expected


@pytest.mark.parametrize('value, message', [
    ('10.0.0.2', 'IP addresses are not supported'), ('mail_1.example', 'not a valid host name'),
    ('mail 1', 'not a valid host name'), (' mail1', 'white space'), ('[10.0.0.2]', 'address literals'),
    ('a..b', 'empty label'), (5, 'host name must be a non-empty string'), ('x' * 64, 'label of 64 octets')])
def test_normalize_host_rejects(value, message):
    with pytest.raises(addr.AddressError, match=message):
        addr.normalize_host(value)


def test_host_option_normalized_cleared_and_conflicts_named():
    d = acc.normalize_input(domains=[{'name': 'b.example', 'host': 'Mail1.Example.net'}],
                            users=[{'email': 'u@b.example', 'host': ''}, {'email': 'v@b.example'}])
    assert d.domains['b.example']['host'] == 'mail1.example.net'
    assert d.users['u@b.example']['host'] == acc.NO_HOST and d.users['v@b.example']['host'] is None
    with pytest.raises(acc.AccountsError, match=r'users\[0\] \(u@b.example\): host name .10.0.0.2.'):
        acc.normalize_input(users=[{'email': 'u@b.example', 'host': '10.0.0.2'}])
    with pytest.raises(acc.AccountsError, match=r'declared twice \(host m1.example and m2.example\)'):
        acc.normalize_input(users=[{'email': 'u@b.example', 'host': 'm1.example'},
                                   {'email': 'U@b.example', 'host': 'm2.example'}])
    # an adopted narrower column: the width read from the database applies
    narrow = widths(V5)
    narrow[('virtual_domains', 'host')] = 12
    with pytest.raises(acc.AccountsError, match=r"domains\[0\] \(b.example\): host name 'mail1.example.net' is 17 "
                                                r"characters long; the database column holds at most 12"):
        acc.check_widths(acc.normalize_input(domains=[{'name': 'b.example', 'host': 'mail1.example.net'}]), narrow)
    with pytest.raises(acc.AccountsError, match='RFC 1123 allows at most 253'):
        acc.normalize_input(domains=[{'name': 'b.example', 'host': '.'.join(['x' * 63] * 4)}])


def test_host_on_a_version_4_database_names_migration_5():
    d = acc.normalize_input(domains=[{'name': 'b.example', 'host': 'm1.example', 'active': True}],
                            users=[{'email': 'u@b.example', 'host': ''}, {'email': 'v@b.example', 'quota': 1}])
    errors = acc.check_columns(d, widths(V4))
    assert errors == [
        ('domains[0] (b.example)', 'host needs schema migration 5 (column virtual_domains.host), which this database '
                                   'does not have yet; run the vmail.mailserver.mailsql role or the '
                                   'vmail.mailserver.mail_schema module first'),
        ('users[0] (u@b.example)', 'host needs schema migration 5 (column virtual_users.host), which this database '
                                   'does not have yet; run the vmail.mailserver.mailsql role or the '
                                   'vmail.mailserver.mail_schema module first')]
    assert acc.check_columns(d, widths(V5)) == []


# ---------------------------------------------------------------- planning

def test_host_create_unchanged_update_clear():
    state = state5([('b.example', 'm1.example')], [('u@b.example', 1, None), ('w@b.example', 1, 'm2.example')])
    assert not plan(state, domains=[{'name': 'b.example', 'host': 'M1.example'}],
                    users=[{'email': 'u@b.example'}, {'email': 'w@b.example', 'host': 'm2.example'}]).changed
    p = plan(state, domains=[{'name': 'b.example', 'host': 'm2.example'}, {'name': 'c.example', 'host': 'm3'}],
             users=[{'email': 'u@b.example', 'host': 'm3'}, {'email': 'w@b.example', 'host': ''},
                    {'email': 'n@b.example', 'password': 'pw'}])
    assert p.domains['b.example']['fields'] == ['host'] and p.domains['b.example']['values']['host'] == 'm2.example'
    assert p.domains['b.example']['before'] == {'host': 'm1.example'}
    assert p.domains['c.example']['values']['host'] == 'm3'
    assert p.users['u@b.example']['fields'] == ['host'] and p.users['u@b.example']['values']['host'] == 'm3'
    assert p.users['w@b.example']['values']['host'] is None  # '' clears: NULL = the domain's node
    assert p.users['n@b.example']['values']['host'] is None  # a new mailbox follows its domain
    text = acc.diff_text(p)
    assert '~ domain b.example: host=m2.example' in text and '~ user w@b.example: host=none' in text
    assert acc.user_attributes(state, p, 'u@b.example', after=False) == {'active': True, 'quota': 0, 'host': None}
    assert acc.domain_attributes(state, p, 'b.example')['host'] == 'm2.example'


def test_apply_writes_the_host_columns():
    state = state5([('b.example', None)], [('u@b.example', 1, None)])
    p = plan(state, domains=[{'name': 'b.example', 'host': 'm2.example'}],
             users=[{'email': 'u@b.example', 'host': 'm1.example'}, {'email': 'n@b.example', 'password': 'pw'}])
    cursor = FakeCursor()
    many = []
    cursor.executemany = lambda sql, rows: many.append((sql, list(rows)))
    acc.apply_plan(cursor, p)
    assert ('UPDATE `virtual_domains` SET `active` = %s, `default_quota` = %s, `alias_of` = %s, `host` = %s '
            'WHERE `id` = %s', [(1, 0, None, 'm2.example', 1)]) in many
    inserted = [rows for sql, rows in many if sql.startswith('INSERT INTO `virtual_users`')][0]
    assert inserted[0][-1] is None and '`host`' in [sql for sql, rows in many if sql.startswith('INSERT')][0]
    updated = [rows for sql, rows in many if sql.startswith('UPDATE `virtual_users`')][0]
    assert updated[0][-2:] == ('m1.example', 1)


def test_info_reports_host():
    assert info.user_details({'email': 'u@b.example', 'quota': 0, 'active': 1, 'host': 'm2'}, {}, {}, V5, ())['host'] == 'm2'
    assert info.domain_details({'active': 1, 'default_quota': 0, 'alias_of': None, 'host': None}, {}, V5)['host'] is None
    assert 'host' not in info.domain_details({'active': 1, 'default_quota': 0, 'alias_of': None}, {}, V4)
