# -*- coding: utf-8 -*-
"""Unit tests of the vmail.mailserver.modoboa_csv filter (Modoboa import CSV -> mail_accounts structure)."""

import pytest

from ansible.errors import AnsibleFilterError

from ansible_collections.vmail.mailserver.plugins.filter import modoboa_csv as mc
from ansible_collections.vmail.mailserver.plugins.module_utils import vmail_hashing

SHA512 = vmail_hashing.hash_password('Alice-Pass-1', 'SHA512-CRYPT')
SHA256 = vmail_hashing.hash_password('Dave-Pass-4', 'SHA256-CRYPT').split('}', 1)[1]
BLF = vmail_hashing.hash_password('Carol-Pass-3', 'BLF-CRYPT')

# The format of Modoboa's documentation (Moving to Modoboa, Using CSV files), as an
# export writes it: booleans as True/False, passwords as {SCHEME}hash.
EXPORT = '''domain; example.com; 0; 0; True
domain; Bücher.Example; ; ; yes

account; admin; {SHA512-CRYPT}%s; ; ; True; SuperAdmins; ;
account; alice@example.com; {SHA512-CRYPT}%s; Alice; Liddell; True; SimpleUsers; alice@example.com; 0
account; Bob@Example.com; Plain Pass 2; Bob; ; 1; DomainAdmins; Bob@Example.com; 0; example.com; xn--bcher-kva.example
account; carol@xn--bcher-kva.example; %s; Carol; ; Y; SimpleUsers; carol@bücher.example
alias; sales@example.com; True; alice@example.com; Bob@example.com
alias; @bücher.example; true; carol@bücher.example
alias; "forward@example.com"; true; "alice@example.com"; someone@outside.test;
''' % (SHA512, SHA512, BLF)


def parse(text, **kwargs):
    return mc.parse_modoboa_csv(text, **kwargs)


def test_every_supported_line_kind():
    result = parse(EXPORT)
    assert result['domains'] == [{'name': 'example.com'}, {'name': 'xn--bcher-kva.example'}]
    assert result['users'] == [
        {'email': 'alice@example.com', 'password_hash': SHA512},
        {'email': 'bob@example.com', 'password': 'Plain Pass 2'},
        {'email': 'carol@xn--bcher-kva.example', 'password_hash': BLF},
    ]
    assert result['aliases'] == [
        {'source': 'sales@example.com', 'destination': ['alice@example.com', 'bob@example.com'], 'exclusive': True},
        {'source': '@xn--bcher-kva.example', 'destination': ['carol@xn--bcher-kva.example'], 'exclusive': True},
        {'source': 'forward@example.com', 'destination': ['alice@example.com', 'someone@outside.test'],
         'exclusive': True},
    ]


def test_filter_entry_point_and_registration():
    assert mc.FilterModule().filters()['modoboa_csv'] is mc.modoboa_csv
    result = mc.modoboa_csv('domain;example.org;0;0;true\n', exclusive=False)
    assert result == {'domains': [{'name': 'example.org'}], 'users': [], 'aliases': []}
    aliases = mc.modoboa_csv('alias;a@example.org;true;b@example.org', exclusive=False)['aliases']
    assert aliases == [{'source': 'a@example.org', 'destination': ['b@example.org'], 'exclusive': False}]


def test_quoted_fields_may_hold_separators_and_line_breaks():
    text = 'domain;example.com;0;0;true\naccount;"a@example.com";"pa;ss\nword";;;true;SimpleUsers;a@example.com\n' \
           'alias;x@example.com;false;a@example.com\n'
    with pytest.raises(mc.ModoboaCsvError, match=r'^line 4: alias x@example.com is disabled'):
        parse(text)
    assert parse(text, disabled='skip')['users'] == [{'email': 'a@example.com', 'password': 'pa;ss\nword'}]


def test_byte_order_mark_and_blank_lines_are_ignored():
    assert parse('\ufeffdomain;example.com;0;0;true\n\n;;\n') == {
        'domains': [{'name': 'example.com'}], 'users': [], 'aliases': []}


@pytest.mark.parametrize('mode, value, key', [
    ('auto', SHA512, 'password_hash'),
    ('auto', '{SHA256-CRYPT}' + SHA256, 'password_hash'),
    ('auto', BLF, 'password_hash'),
    ('auto', '{PLAIN}x', 'password_hash'),
    ('auto', '{not-a-scheme}pw', 'password'),
    ('auto', 'secret', 'password'),
    ('plain', '{SHA512-CRYPT}' + SHA512, 'password'),
    ('hashed', SHA512, 'password_hash'),
])
def test_password_modes(mode, value, key):
    """Ready hashes are kept as they are (except {SHA512-CRYPT}, below), cleartext goes to password."""
    text = 'account;a@example.com;%s;;;true;SimpleUsers;a@example.com' % value
    assert parse(text, passwords=mode)['users'] == [{'email': 'a@example.com', key: value}]


@pytest.mark.parametrize('mode', ['auto', 'hashed'])
def test_sha512_crypt_prefix_is_dropped_to_fit_the_guide_column(mode):
    """Modoboa exports {SHA512-CRYPT}$6$... (120 characters); the modules store the bare $6$ form (106)."""
    text = 'account;a@example.com;{SHA512-CRYPT}%s;;;true;SimpleUsers;a@example.com' % SHA512
    users = parse(text, passwords=mode)['users']
    assert users == [{'email': 'a@example.com', 'password_hash': SHA512}]
    assert len(users[0]['password_hash']) == 106
    assert vmail_hashing.verify_password('Alice-Pass-1', users[0]['password_hash'])


@pytest.mark.parametrize('text, kwargs, message', [
    ('domain;example.com;0;0;true\ndomainalias;example.net;example.com;true', {},
     r'^line 2: domainalias lines cannot be represented: alias domains'),
    ('\n\nrelaydomain;relay.example;mx.example;25;relay;true;false', {}, r'^line 3: relaydomain lines'),
    ('forward;a@example.com;b@example.com', {}, r"^line 1: unknown or unsupported object type 'forward'"),
    ('domain;example.com;0;0', {}, r'^line 1: domain lines have 5 fields, this one has 4'),
    ('domain;example.com;0;0;true;extra', {}, r'^line 1: domain lines have 5 fields, this one has 6'),
    ('domain;example.com;100;0;true', {}, r'^line 1: domain quota 100 cannot be represented'),
    ('domain;example.com;0;10;true', {}, r'^line 1: default mailbox quota 10 cannot be represented'),
    ('domain;example.com;lots;0;true', {'ignore_quota': True}, r"^line 1: domain quota 'lots' is not an integer"),
    ('domain;example.com;-1;0;true', {'ignore_quota': True}, r'^line 1: domain quota -1 is negative'),
    ('domain;example.com;0;0;false', {}, r'^line 1: domain example.com is disabled'),
    ('domain;bad_domain!;0;0;true', {}, r'^line 1: domain: '),
    ('domain;example.com;0;0;true\ndomain;EXAMPLE.com.;0;0;true', {},
     r'^line 2: domain example.com was already given on line 1'),
    ('account;a@example.com;pw;;;true', {}, r'^line 1: account lines have at least 7 fields, this one has 6'),
    ('account;a@example.com;;;;true;SimpleUsers;a@example.com', {}, r'^line 1: the account has no password'),
    ('account;a;pw;;;true;SimpleUsers;not-an-address', {}, r'^line 1: account address: '),
    ('account;a@example.com;pw;;;no;SimpleUsers;a@example.com', {}, r'^line 1: account a@example.com is disabled'),
    ('account;a@example.com;pw;;;true;SimpleUsers;a@example.com;500', {},
     r'^line 1: mailbox quota 500 cannot be represented'),
    ('account;a@example.com;{SHA512-CRYPT}%s;;;true;SimpleUsers;a@example.com' % SHA256, {},
     r'^line 1: the password field is not a usable hash'),
    ('account;a@example.com;plain;;;true;SimpleUsers;a@example.com', {'passwords': 'hashed'},
     r'^line 1: the password field is not a usable hash'),
    ('domain;example.com;0;0;true\n\naccount;a@example.com;p1;;;true;SimpleUsers;a@example.com\n'
     'account;A@example.com;p2;;;true;SimpleUsers;A@example.com', {},
     r'^line 4: account a@example.com was already given on line 3'),
    ('alias;a@example.com;true', {}, r'^line 1: alias lines have at least 4 fields, this one has 3'),
    ('alias;a@example.com;true;;', {}, r'^line 1: alias a@example.com has no recipient'),
    ('alias;a@example.com;true;x;', {}, r'^line 1: alias recipient: '),
    ('alias;a@example.com;true;b@example.com\nalias;a@example.com;true;c@example.com', {},
     r'^line 2: alias a@example.com was already given on line 1'),
    ('domain;"example.com;0;0;true', {}, r'^line 1: not valid CSV'),
    ('domain;example.com;0;0;true', {'passwords': 'bcrypt'}, r'^passwords must be one of'),
    ('domain;example.com;0;0;true', {'disabled': 'absent'}, r'^disabled must be one of'),
])
def test_bad_lines_fail_with_their_line_number(text, kwargs, message):
    with pytest.raises(mc.ModoboaCsvError, match=message):
        parse(text, **kwargs)


def test_line_numbers_count_physical_lines_of_multi_line_records():
    text = 'account;a@example.com;"two\nlines";;;true;SimpleUsers;a@example.com\nrelaydomain;x'
    with pytest.raises(mc.ModoboaCsvError, match=r'^line 3: relaydomain'):
        parse(text)


def test_options_relax_quota_and_disabled():
    text = ('domain;example.com;100;10;true\ndomain;old.example;0;0;false\n'
            'account;a@example.com;pw;;;true;SimpleUsers;a@example.com;500\n'
            'account;b@example.com;pw;;;false;SimpleUsers;b@example.com\n')
    result = parse(text, ignore_quota=True, disabled='skip')
    assert result['domains'] == [{'name': 'example.com'}]
    assert result['users'] == [{'email': 'a@example.com', 'password': 'pw'}]


def test_skipped_lines_do_not_count_as_duplicates():
    text = ('account;a@example.com;old;;;false;SimpleUsers;a@example.com\n'
            'account;a@example.com;new;;;true;SimpleUsers;a@example.com\n')
    assert parse(text, disabled='skip')['users'] == [{'email': 'a@example.com', 'password': 'new'}]


def test_errors_never_contain_passwords():
    secret = 'Very-Secret-Password-42'
    line = 'account;a@example.com;%s;;;true;SimpleUsers;a@example.com' % secret
    cases = [
        (line + ';500', 'auto'),  # quota
        ('account;a@example.com;%s;;;true' % secret, 'auto'),  # too few fields
        (line + '\n' + line, 'auto'),  # duplicate
        (line.replace(';true;', ';false;'), 'auto'),  # disabled
        (line, 'hashed'),  # not a hash
        (line.replace('a@example.com', 'a@@example.com'), 'auto'),  # bad address
    ]
    for text, passwords in cases:
        with pytest.raises(AnsibleFilterError) as info:
            mc.modoboa_csv(text, passwords=passwords)
        assert 'line ' in str(info.value)
        assert secret not in str(info.value)


def test_filter_wraps_errors_and_rejects_non_text():
    with pytest.raises(AnsibleFilterError, match=r'^modoboa_csv: line 1: domainalias'):
        mc.modoboa_csv('domainalias;a.example;b.example;true')
    with pytest.raises(AnsibleFilterError, match='expects the text of a CSV file'):
        mc.modoboa_csv(['domain;example.com;0;0;true'])
