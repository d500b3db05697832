# -*- coding: utf-8 -*-
"""Unit tests of the pure account functions: schema SQL, validation, comparison, planning, reporting."""

from email.headerregistry import Address

import pytest

from ansible_collections.vmail.mailserver.plugins.module_utils import vmail_accounts as acc
from ansible_collections.vmail.mailserver.plugins.module_utils import vmail_address as addr
from ansible_collections.vmail.mailserver.plugins.module_utils import vmail_hashing as hashing
from ansible_collections.vmail.mailserver.plugins.module_utils import vmail_schema as schema

BLF = '{BLF-CRYPT}$2y$05$0123456789012345678901XLgcBRV2VJxYNMW3n1xuX9Z2ch2/RDi'
SHA = '$6$saltsaltsaltsalt$' + 'x' * 86


# ------------------------------------------------------------------ schema

def test_schema_sql_is_built_from_the_description():
    assert schema.TABLES == ('virtual_domains', 'virtual_users', 'virtual_aliases')
    assert schema.GUIDE_WIDTHS[('virtual_users', 'password')] == 106
    assert schema.select_sql(schema.USERS) == 'SELECT `id`, `domain_id`, `email`, `password` FROM `virtual_users` ORDER BY `id`'
    assert schema.select_sql(schema.ALIASES, [('source', 2), ('domain_id', 1)], lock=True) == (
        'SELECT `id`, `domain_id`, `source`, `destination` FROM `virtual_aliases` WHERE `source` IN (%s, %s) '
        'OR `domain_id` IN (%s) ORDER BY `id` FOR UPDATE')
    assert schema.insert_sql(schema.USERS) == 'INSERT INTO `virtual_users` (`domain_id`, `email`, `password`) VALUES (%s, %s, %s)'
    assert schema.update_sql(schema.USERS, ['domain_id', 'password']) == (
        'UPDATE `virtual_users` SET `domain_id` = %s, `password` = %s WHERE `id` = %s')
    assert schema.delete_sql(schema.DOMAINS, 3) == 'DELETE FROM `virtual_domains` WHERE `id` IN (%s, %s, %s)'


def test_schema_rejects_bad_identifiers_and_empty_lists():
    with pytest.raises(ValueError):
        schema.Column('x`; DROP TABLE y')
    with pytest.raises(KeyError):
        schema.update_sql(schema.USERS, ['nonexistent'])
    with pytest.raises(ValueError):
        schema.delete_sql(schema.USERS, 0)


def test_optional_columns_follow_the_database():
    table = schema.Table('users', 'virtual_users', 'email', [schema.Column('email', 100)],
                         optional=[schema.Column('quota', since=4)], parent='domain_id')
    assert schema.available_columns(table, {('virtual_users', 'email'): 100}) == []
    assert [c.name for c in schema.available_columns(table, {('virtual_users', 'quota'): None})] == ['quota']
    assert table.column('quota').since == 4


# ------------------------------------------------------------------ addresses

@pytest.mark.parametrize('address', ['a@example.com', "o'brien+x@sub.example.com", 'A.B-c_d@X_Y.example',
                                     'x{y}@example.com', '#!$%&*+/=?^`|~@example.com'])
def test_address_fast_path_equals_the_stdlib_parser(address):
    parsed = Address(addr_spec=address)
    assert addr.split_address(address) == (parsed.username, parsed.domain)


@pytest.mark.parametrize('address', ['"quoted"@example.com', 'a@[1.2.3.4]', 'a..b@example.com', '.a@example.com',
                                     'a(comment)@example.com'])
def test_address_other_forms_still_go_to_the_parser(address):
    with pytest.raises(addr.AddressError):
        addr.normalize_address(address)


# ------------------------------------------------------------------ validation

def test_normalize_input_normalizes_like_the_single_modules():
    d = acc.normalize_input(domains=[{'name': 'Bücher.example.'}],
                            users=[{'email': 'Alice@Example.COM', 'password': 'x', 'update_password': None}],
                            aliases=[{'source': '@Example.com', 'destination': 'Bob@Example.com'}],
                            update_password='on_create')
    assert list(d.domains) == ['xn--bcher-kva.example']
    user = d.users['alice@example.com']
    assert (user['email'], user['domain'], user['scheme'], user['update_password']) == (
        'alice@example.com', 'example.com', 'SHA512-CRYPT', 'on_create')
    assert d.aliases['@example.com']['destinations'] == ['bob@example.com']
    keep = acc.normalize_input(users=[{'email': 'Alice@example.com', 'password': 'x'}], lowercase_local_part=False)
    assert keep.users['alice@example.com']['email'] == 'Alice@example.com'


@pytest.mark.parametrize('kinds, expected', [
    (dict(users=[{'email': 'a@example.com', 'password': ''}]), 'users[0] (a@example.com): password must not be empty'),
    (dict(users=[{'email': 'a@example.com', 'password': 'x', 'password_hash': SHA}]), 'mutually exclusive'),
    (dict(users=[{'email': 'a@example.com', 'password_hash': 'plain'}]), 'not a recognised hash'),
    (dict(users=[{'email': 'a@example.com', 'password': 'x', 'password_scheme': 'MD5'}]), 'unsupported password scheme'),
    (dict(users=['a@example.com']), 'users[0]: must be a dict'),
    (dict(domains=[{'name': 'x_y.example'}]), 'domains[0] (x_y.example): domain name'),
    (dict(aliases=[{'source': 's@example.com'}]), 'destination must list at least one address'),
    (dict(aliases=[{'source': 's@example.com', 'destination': 'S@example.com'}]), 'to itself'),
    (dict(aliases=[{'source': 's@example.com', 'destination': 5}]), 'destination must be an address'),
    (dict(domains=[{'name': 'a.example', 'state': 'gone'}]), 'state must be one of'),
])
def test_normalize_input_rejects(kinds, expected):
    with pytest.raises(acc.AccountsError) as info:
        acc.normalize_input(**kinds)
    assert expected in str(info.value)


def test_duplicates_and_contradictions_name_both_entries():
    with pytest.raises(acc.AccountsError) as info:
        acc.normalize_input(
            domains=[{'name': 'a.example'}, {'name': 'b.example', 'state': 'absent'}, {'name': 'A.example', 'force': True}],
            users=[{'email': 'u@a.example', 'password': 'x'}, {'email': 'v@b.example', 'password': 'x'},
                   {'email': 'U@a.example', 'state': 'absent'}],
            aliases=[{'source': 's@a.example', 'destination': 'u@a.example'},
                     {'source': 's@a.example', 'destination': 'x@a.example', 'exclusive': True}])
    errors = dict(info.value.errors)
    assert errors['domains[0] and domains[2] (a.example)'] == 'declared twice (force false and true); list each entry once'
    assert 'state present and absent' in errors['users[0] and users[2] (u@a.example)']
    assert 'exclusive false and true' in errors['aliases[0] and aliases[1] (s@a.example)']
    assert 'declared absent' in errors['users[1] (v@b.example) and domains[1] (b.example)']
    assert len(info.value.errors) == 4


def test_alias_entries_that_only_add_are_merged():
    d = acc.normalize_input(aliases=[{'source': 's@a.example', 'destination': ['x@b.example']},
                                     {'source': 'S@a.example', 'destination': ['y@b.example', 'X@b.example']}])
    assert d.aliases['s@a.example']['destinations'] == ['x@b.example', 'y@b.example']
    assert d.aliases['s@a.example']['index'] == 0


def test_error_message_is_capped():
    err = acc.AccountsError([('users[%d]' % i, 'bad') for i in range(25)])
    assert str(err).count('bad') == acc.MAX_ERRORS and str(err).endswith('and 5 more problem(s)')
    assert err.messages().count('bad') == 25


def test_check_widths_uses_the_database_widths():
    d = acc.normalize_input(domains=[{'name': 'a' * 20 + '.example'}],
                            users=[{'email': 'u@example.com', 'password_hash': BLF}])
    acc.check_widths(d, schema.GUIDE_WIDTHS)
    with pytest.raises(acc.AccountsError) as info:
        acc.check_widths(d, {('virtual_domains', 'name'): 10, ('virtual_users', 'email'): 100,
                             ('virtual_users', 'password'): 20})
    text = str(info.value)
    assert 'domains[0] (' in text and 'holds at most 10' in text and 'users[0] (u@example.com)' in text


# ------------------------------------------------------------------ comparison and planning

def test_compare_keys_is_the_purge_rule():
    assert acc.compare_keys({'a', 'b', 'c'}, ['a'], ['b'], purge=False) == ({'a', 'c'}, {'b'})
    assert acc.compare_keys({'a', 'b', 'c'}, ['a'], ['b'], purge=True) == ({'a'}, {'b', 'c'})
    assert acc.compare_keys(set(), ['a'], ['b'], purge=True) == (set(), set())


def make_state(domains=(), users=(), aliases=()):
    state = acc.State()
    for i, name in enumerate(domains, 1):
        state.add_domain({'id': i, 'name': name})
    for i, (email, domain_id, password) in enumerate(users, 1):
        state.add_user({'id': i, 'domain_id': domain_id, 'email': email, 'password': password})
    for i, (source, domain_id, dest) in enumerate(aliases, 1):
        state.add_alias({'id': i, 'domain_id': domain_id, 'source': source, 'destination': dest})
    return state


def actions(plan):
    return dict((kind, dict((k, c['action']) for k, c in getattr(plan, kind).items()))
                for kind in ('domains', 'users', 'aliases'))


def test_plan_create_update_nothing():
    state = make_state(['a.example'], [('u@a.example', 1, SHA), ('Old@a.example', 1, SHA)],
                       [('s@a.example', 1, 'u@a.example')])
    desired = acc.normalize_input(
        domains=[{'name': 'a.example'}, {'name': 'b.example'}],
        users=[{'email': 'u@a.example', 'password_hash': SHA}, {'email': 'old@a.example'},
               {'email': 'n@b.example', 'password': 'pw'}],
        aliases=[{'source': 's@a.example', 'destination': ['u@a.example', 'n@b.example']}])
    plan = acc.plan_accounts(desired, state)
    assert actions(plan) == {'domains': {'b.example': 'create'},
                             'users': {'old@a.example': 'update', 'n@b.example': 'create'},
                             'aliases': {'s@a.example': 'update'}}
    assert plan.users['old@a.example']['fields'] == ['email'] and not plan.users['old@a.example']['password_changed']
    assert plan.aliases['s@a.example']['add'] == ['n@b.example']
    assert plan.changed


def test_plan_passwords_follow_update_password():
    state = make_state(['a.example'], [('u@a.example', 1, SHA), ('v@a.example', 1, '{SHA256-CRYPT}$5$x$y')])
    users = [{'email': 'u@a.example', 'password': 'pw'}, {'email': 'v@a.example', 'password': 'pw'}]
    desired = acc.normalize_input(users=users, update_password='on_create')
    assert acc.verify_jobs(desired, state) == []
    assert not acc.plan_accounts(desired, state).changed
    desired = acc.normalize_input(users=users)
    # only the mailbox with the same scheme is verified; the other is rewritten in the declared scheme
    assert acc.verify_jobs(desired, state) == [('u@a.example', 'pw', SHA)]
    plan = acc.plan_accounts(desired, state, verified={'u@a.example': True})
    assert actions(plan)['users'] == {'v@a.example': 'update'}
    plan = acc.plan_accounts(desired, state, verified={'u@a.example': False})
    assert plan.users['u@a.example']['fields'] == ['password']


def test_plan_purge_and_force():
    state = make_state(['a.example', 'old.example'],
                       [('u@a.example', 1, SHA), ('x@a.example', 1, SHA), ('y@old.example', 2, SHA)],
                       [('s@a.example', 1, 'u@a.example'), ('s@a.example', 1, 'x@a.example'),
                        ('t@old.example', 2, 'y@old.example')])
    desired = acc.normalize_input(domains=[{'name': 'a.example'}], users=[{'email': 'u@a.example'}],
                                  aliases=[{'source': 's@a.example', 'destination': 'u@a.example'}])
    assert not acc.plan_accounts(desired, state).changed
    plan = acc.plan_accounts(desired, state, purge=True)
    assert actions(plan) == {'domains': {'old.example': 'remove'},
                             'users': {'x@a.example': 'remove', 'y@old.example': 'remove'},
                             'aliases': {'s@a.example': 'update', 't@old.example': 'remove'}}
    assert (plan.domains['old.example']['users'], plan.domains['old.example']['aliases']) == (1, 1)
    assert plan.aliases['s@a.example']['removed'] == ['x@a.example']
    absent = acc.normalize_input(domains=[{'name': 'old.example', 'state': 'absent'}])
    with pytest.raises(acc.AccountsError, match='still has 1 mailbox'):
        acc.plan_accounts(absent, state)
    forced = acc.normalize_input(domains=[{'name': 'old.example', 'state': 'absent', 'force': True}])
    assert actions(acc.plan_accounts(forced, state))['users'] == {'y@old.example': 'remove'}
    emptied = acc.normalize_input(domains=[{'name': 'old.example', 'state': 'absent'}],
                                  users=[{'email': 'y@old.example', 'state': 'absent'}],
                                  aliases=[{'source': 't@old.example', 'state': 'absent'}])
    assert actions(acc.plan_accounts(emptied, state))['domains'] == {'old.example': 'remove'}


def test_plan_errors_are_collected():
    state = make_state(['a.example'], [('u@a.example', 1, SHA)], [('b@a.example', 1, 'u@a.example')])
    desired = acc.normalize_input(users=[{'email': 'n@a.example'}, {'email': 'm@zz.example', 'password': 'x'}],
                                  aliases=[{'source': 'u@a.example', 'destination': 'b@a.example'},
                                           {'source': 'c@a.example', 'destination': 'typo@a.example'}])
    with pytest.raises(acc.AccountsError) as info:
        acc.plan_accounts(desired, state)
    text = str(info.value)
    for part in ('users[0] (n@a.example): mailbox n@a.example does not exist; password or password_hash',
                 'users[1] (m@zz.example): domain zz.example', 'aliases[0] (u@a.example): alias u@a.example -> '
                 'b@a.example would create a loop', 'aliases[1] (c@a.example): destination typo@a.example'):
        assert part in text


def test_plan_is_linear():
    """Planning 20,000 entries against 20,000 rows takes well under a second (dict lookups, no per-item scans)."""
    import time
    n = 10000
    state = make_state(['d%d.example' % i for i in range(100)],
                       [('u%d@d%d.example' % (i, i % 100), i % 100 + 1, SHA) for i in range(n)],
                       [('a%d@d%d.example' % (i, i % 100), i % 100 + 1, 'u%d@d%d.example' % (i, i % 100))
                        for i in range(n)])
    desired = acc.normalize_input(
        domains=[{'name': 'd%d.example' % i} for i in range(100)],
        users=[{'email': 'u%d@d%d.example' % (i, i % 100)} for i in range(n)],
        aliases=[{'source': 'a%d@d%d.example' % (i, i % 100), 'destination': 'u%d@d%d.example' % (i, i % 100)}
                 for i in range(n)])
    start = time.perf_counter()
    plan = acc.plan_accounts(desired, state, purge=True)
    assert not plan.changed
    assert time.perf_counter() - start < 2.0


# ------------------------------------------------------------------ workers, hashing, reporting

def test_run_parallel_matches_serial():
    items = [('pw%d' % i, 'SHA256-CRYPT') for i in range(6)]
    hashes = acc.run_parallel(acc._hash_job, items, threshold=2, processes=2)
    assert all(hashing.verify_password('pw%d' % i, h) for i, h in enumerate(hashes))
    jobs = [('k%d' % i, 'pw%d' % (i % 3), hashes[i]) for i in range(6)]
    assert acc.verify_passwords(jobs, threshold=2) == dict(('k%d' % i, i % 3 == i) for i in range(6))
    assert acc.run_parallel(len, ['a', 'bb'], threshold=64) == [1, 2]


def test_hash_passwords_skipped_in_check_mode():
    state = make_state(['a.example'])
    desired = acc.normalize_input(users=[{'email': 'n@a.example', 'password': 'pw'}])
    plan = acc.plan_accounts(desired, state)
    acc.hash_passwords(plan, check_mode=True)
    assert plan.users['n@a.example']['hash'] is None
    acc.hash_passwords(plan, schema.GUIDE_WIDTHS)
    assert hashing.verify_password('pw', plan.users['n@a.example']['hash'])
    plan = acc.plan_accounts(desired, state)
    with pytest.raises(acc.AccountsError, match='password column holds only 50'):
        acc.hash_passwords(plan, {('virtual_users', 'password'): 50})


def test_summary_and_diff():
    state = make_state(['a.example'], [('gone@a.example', 1, SHA)])
    desired = acc.normalize_input(domains=[{'name': 'a.example'}],
                                  users=[{'email': 'u%d@a.example' % i, 'password': 'Secret%d' % i} for i in range(5)],
                                  aliases=[{'source': 's@a.example', 'destination': 'u0@a.example'}])
    plan = acc.plan_accounts(desired, state, purge=True)
    summary = acc.summarize(plan, cap=3)
    assert summary['users'] == {'created': ['u0@a.example', 'u1@a.example', 'u2@a.example'], 'created_count': 5,
                                'updated': [], 'updated_count': 0, 'removed': ['gone@a.example'], 'removed_count': 1,
                                'truncated': True}
    assert summary['domains'] == {'created': [], 'created_count': 0, 'updated': [], 'updated_count': 0, 'removed': [],
                                  'removed_count': 0, 'truncated': False}
    text = acc.diff_text(plan, max_lines=5)
    assert text.splitlines()[-1] == '... 6 more line(s) not shown' and len(text.splitlines()) == 5
    full = acc.diff_text(plan)
    assert '+ user u0@a.example (password (hidden), SHA512-CRYPT)' in full and '- user gone@a.example' in full
    assert 'Secret' not in full


def test_scrub_masks_secrets():
    out = acc.scrub({'a': ['x', 'Secret1'], 'msg': 'value Secret1 here\n'}, {'Secret1'})
    assert out == {'a': ['x', acc.NO_LOG_MASK], 'msg': 'value ******** here\n'}
