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
        parse(text, disabled='fail')
    assert parse(text, disabled='skip')['users'] == [{'email': 'a@example.com', 'password': 'pa;ss\nword'}]
    assert parse(text)['aliases'] == [{'source': 'x@example.com', 'destination': ['a@example.com'],
                                       'exclusive': True, 'active': False}]


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
    ('\n\nrelaydomain;relay.example;mx.example;25;relay;true;false', {}, r'^line 3: relaydomain lines'),
    ('forward;a@example.com;b@example.com', {}, r"^line 1: unknown or unsupported object type 'forward'; "
     r"supported: domain, domainalias, account, alias"),
    ('domain;example.com;0;0', {}, r'^line 1: domain lines have 5 fields, this one has 4'),
    ('domain;example.com;0;0;true;extra', {}, r'^line 1: domain lines have 5 fields, this one has 6'),
    ('domain;example.com;100;0;true', {}, r'^line 1: domain quota 100 MB of example.com cannot be represented: '
     r'quotas here are per mailbox only .*domain_quota=ignore.*ignore_quota=true'),
    ('domain;example.com;100;10;true', {'domain_quota': 'fail'}, r'^line 1: domain quota 100 MB'),
    ('domain;example.com;0;-10;true', {}, r'^line 1: default mailbox quota -10 is negative'),
    ('domain;example.com;0;ten;true', {}, r"^line 1: default mailbox quota 'ten' is not an integer"),
    ('domain;example.com;0;%d;true' % (2 ** 44), {}, r'^line 1: default mailbox quota 17592186044416 MB is larger'),
    ('domain;example.com;lots;0;true', {'ignore_quota': True}, r"^line 1: domain quota 'lots' is not an integer"),
    ('domain;example.com;-1;0;true', {'ignore_quota': True}, r'^line 1: domain quota -1 is negative'),
    ('domain;example.com;0;0;false', {'disabled': 'fail'}, r'^line 1: domain example.com is disabled; use '
     r'disabled=keep .* or disabled=skip'),
    ('domain;bad_domain!;0;0;true', {}, r'^line 1: domain: '),
    ('domain;example.com;0;0;true\ndomain;EXAMPLE.com.;0;0;true', {},
     r'^line 2: domain example.com was already given on line 1'),
    ('account;a@example.com;pw;;;true', {}, r'^line 1: account lines have at least 7 fields, this one has 6'),
    ('account;a@example.com;;;;true;SimpleUsers;a@example.com', {}, r'^line 1: the account has no password'),
    ('account;a;pw;;;true;SimpleUsers;not-an-address', {}, r'^line 1: account address: '),
    ('account;a@example.com;pw;;;no;SimpleUsers;a@example.com', {'disabled': 'fail'},
     r'^line 1: account a@example.com is disabled'),
    ('account;a@example.com;pw;;;true;SimpleUsers;a@example.com;5GB', {'ignore_quota': True},
     r"^line 1: mailbox quota '5GB' is not an integer"),
    ('account;a@example.com;pw;;;true;SimpleUsers;a@example.com;-1', {}, r'^line 1: mailbox quota -1 is negative'),
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
    ('domain;example.com;0;0;true', {'disabled': 'absent'}, r'^disabled must be one of keep, skip, fail'),
    ('domain;example.com;0;0;true', {'domain_quota': 'share'}, r'^domain_quota must be one of fail, ignore'),
    ('domainalias;example.net;example.com', {}, r'^line 1: domainalias lines have 4 fields, this one has 3'),
    ('domainalias;example.net;example.com;true;x', {}, r'^line 1: domainalias lines have 4 fields, this one has 5'),
    ('domainalias;bad_domain!;example.com;true', {}, r'^line 1: domain alias: '),
    ('domainalias;example.net;bad_domain!;true', {}, r'^line 1: domain alias target: '),
    ('domainalias;Example.NET;example.net.;true', {}, r'^line 1: domain alias example.net cannot be an alias of itself'),
    ('domainalias;example.net;example.com;false', {'disabled': 'fail'}, r'^line 1: domain alias example.net is disabled'),
    ('domain;example.com;0;0;true\ndomainalias;Example.com;example.org;true', {},
     r'^line 2: domain example.com was already given on line 1'),
    ('domainalias;example.net;example.com;true\ndomain;example.net;0;0;true', {},
     r'^line 2: domain example.net was already given on line 1'),
    ('domain;example.com;0;0;true\ndomainalias;example.net;example.com;true\ndomainalias;example.org;example.net;true',
     {}, r'^line 3: domain alias example.org points to example.net, which is itself a domain alias \(line 2\); '
         r'point it to example.com instead'),
])
def test_bad_lines_fail_with_their_line_number(text, kwargs, message):
    with pytest.raises(mc.ModoboaCsvError, match=message):
        parse(text, **kwargs)


def test_line_numbers_count_physical_lines_of_multi_line_records():
    text = 'account;a@example.com;"two\nlines";;;true;SimpleUsers;a@example.com\nrelaydomain;x'
    with pytest.raises(mc.ModoboaCsvError, match=r'^line 3: relaydomain'):
        parse(text)


def test_options_drop_quota_and_disabled_objects():
    """ignore_quota + disabled=skip: the result fits a database below schema version 4."""
    text = ('domain;example.com;100;10;true\ndomain;old.example;0;0;false\n'
            'account;a@example.com;pw;;;true;SimpleUsers;a@example.com;500\n'
            'account;b@example.com;pw;;;false;SimpleUsers;b@example.com\n'
            'account;c@example.com;pw;;;true;SimpleUsers;c@example.com;0\n')
    result = parse(text, ignore_quota=True, disabled='skip')
    assert result['domains'] == [{'name': 'example.com'}]
    assert result['users'] == [{'email': 'a@example.com', 'password': 'pw'}, {'email': 'c@example.com', 'password': 'pw'}]


def test_skipped_lines_do_not_count_as_duplicates():
    text = ('account;a@example.com;old;;;false;SimpleUsers;a@example.com\n'
            'account;a@example.com;new;;;true;SimpleUsers;a@example.com\n')
    assert parse(text, disabled='skip')['users'] == [{'email': 'a@example.com', 'password': 'new'}]


def test_errors_never_contain_passwords():
    secret = 'Very-Secret-Password-42'
    line = 'account;a@example.com;%s;;;true;SimpleUsers;a@example.com' % secret
    cases = [
        ('account;a@example.com;%s;;;true' % secret, {}),  # too few fields
        (line + '\n' + line, {}),  # duplicate
        (line.replace(';true;', ';false;'), {'disabled': 'fail'}),  # disabled
        ('domain;example.com;100;0;true\n' + line, {}),  # domain quota
        (line + ';-5', {}),  # negative quota
        (line + ';lots', {}),  # not a number
        (line, {'passwords': 'hashed'}),  # not a hash
        (line.replace('a@example.com', 'a@@example.com'), {}),  # bad address
    ]
    for text, kwargs in cases:
        with pytest.raises(AnsibleFilterError) as info:
            mc.modoboa_csv(text, **kwargs)
        assert 'line ' in str(info.value)
        assert secret not in str(info.value)


def test_filter_wraps_errors_and_rejects_non_text():
    with pytest.raises(AnsibleFilterError, match=r'^modoboa_csv: line 1: relaydomain'):
        mc.modoboa_csv('relaydomain;relay.example;mx.example;25;relay;true;false')
    with pytest.raises(AnsibleFilterError, match=r'^modoboa_csv: line 1: account a@example.com is disabled'):
        mc.modoboa_csv('account;a@example.com;pw;;;false;SimpleUsers;a@example.com', disabled='fail')
    with pytest.raises(AnsibleFilterError, match=r'^modoboa_csv: line 1: domain quota 1 MB'):
        mc.modoboa_csv('domain;example.com;1;0;true')
    with pytest.raises(AnsibleFilterError, match='expects the text of a CSV file'):
        mc.modoboa_csv(['domain;example.com;0;0;true'])


# ------------------------------------------------------------ the account model (schema version 4)

MIB = 1024 * 1024

# Features of a Modoboa server: quotas in MB (MiB), disabled objects, domain aliases.
MODEL = '''domain; example.com; 0; 2048; True
domainalias; Example.NET; example.com; True
domainalias; old-alias.example; example.com; False
domain; old.example; 0; 0; False
domain; free.example; 0; 0; True
account; alice@example.com; {SHA512-CRYPT}%s; Alice; ; True; SimpleUsers; alice@example.com; 2048
account; bob@example.com; Bob-Initial-1; Bob; ; False; SimpleUsers; bob@example.com; 500
account; carol@example.com; Carol-Initial-3; Carol; ; True; SimpleUsers; carol@example.com; 0
account; dave@example.com; Dave-Initial-4; Dave; ; True; SimpleUsers; dave@example.com
account; erin@free.example; Erin-Initial-5; Erin; ; True; SimpleUsers; erin@free.example; 0
account; frank@old.example; Frank-Initial-6; Frank; ; True; SimpleUsers; frank@old.example; 1
alias; sales@example.com; True; alice@example.com; bob@example.com
alias; info@example.com; False; alice@example.com
alias; @old.example; True; alice@example.com
''' % SHA512


def test_account_model_mapping():
    """Every feature with the default options: bytes, active: false only when disabled, alias_of."""
    result = parse(MODEL)
    assert result['domains'] == [
        {'name': 'example.com', 'default_quota': 2048 * MIB},
        {'name': 'example.net', 'alias_of': 'example.com'},
        {'name': 'old-alias.example', 'alias_of': 'example.com', 'active': False},
        {'name': 'old.example', 'active': False},
        {'name': 'free.example'},
    ]
    assert result['users'] == [
        {'email': 'alice@example.com', 'password_hash': SHA512, 'quota': 2147483648},
        {'email': 'bob@example.com', 'password': 'Bob-Initial-1', 'quota': 524288000, 'active': False},
        # 0 = unlimited in Modoboa; example.com's default would apply to a new mailbox without quota
        {'email': 'carol@example.com', 'password': 'Carol-Initial-3', 'quota': 0},
        # no quota field: the domain's default, as Modoboa does for a new mailbox
        {'email': 'dave@example.com', 'password': 'Dave-Initial-4'},
        # 0 in a domain without default quota: the column default, no key
        {'email': 'erin@free.example', 'password': 'Erin-Initial-5'},
        {'email': 'frank@old.example', 'password': 'Frank-Initial-6', 'quota': MIB},
    ]
    assert result['aliases'] == [
        {'source': 'sales@example.com', 'destination': ['alice@example.com', 'bob@example.com'], 'exclusive': True},
        {'source': 'info@example.com', 'destination': ['alice@example.com'], 'exclusive': True, 'active': False},
        {'source': '@old.example', 'destination': ['alice@example.com'], 'exclusive': True},
    ]
    assert parse(MODEL, disabled='keep') == result


def test_account_model_result_is_accepted_by_mail_accounts():
    """The keys and values are those the mail_accounts options take (its own validation)."""
    from ansible_collections.vmail.mailserver.plugins.module_utils import vmail_accounts as acc

    desired = acc.normalize_input(**parse(MODEL))
    assert desired.users['bob@example.com']['quota'] == 500 * MIB
    assert desired.users['bob@example.com']['active'] is False
    assert desired.users['dave@example.com']['quota'] is None
    assert desired.domains['example.net']['alias_of'] == 'example.com'
    assert desired.domains['example.com']['default_quota'] == 2 * 1024 * MIB
    assert desired.aliases['info@example.com']['active'] is False


@pytest.mark.parametrize('megabytes, expected', [
    ('1', 1048576), ('500', 524288000), ('2048', 2147483648),  # Dovecot: *:bytes=2048M -> bytes=2147483648
    ('+3', 3 * MIB), ('%d' % (2 ** 31 - 1), (2 ** 31 - 1) * MIB),  # Modoboa's PositiveIntegerField maximum
])
def test_quotas_are_mebibytes(megabytes, expected):
    text = 'domain;example.com;0;%s;true\naccount;a@example.com;pw;;;true;SimpleUsers;a@example.com;%s' % (
        megabytes, megabytes)
    result = parse(text)
    assert result['domains'] == [{'name': 'example.com', 'default_quota': expected}]
    assert result['users'] == [{'email': 'a@example.com', 'password': 'pw', 'quota': expected}]


def test_unlimited_quota_under_a_default_does_not_depend_on_line_order():
    text = ('account;a@example.com;pw;;;true;SimpleUsers;a@example.com;0\n'
            'account;b@other.example;pw;;;true;SimpleUsers;b@other.example;0\n'
            'domain;example.com;0;100;true\n')
    users = parse(text)['users']
    assert users == [{'email': 'a@example.com', 'password': 'pw', 'quota': 0},
                     {'email': 'b@other.example', 'password': 'pw'}]  # other.example: not in the file
    assert parse(text, ignore_quota=True)['users'] == [{'email': 'a@example.com', 'password': 'pw'},
                                                       {'email': 'b@other.example', 'password': 'pw'}]


@pytest.mark.parametrize('kwargs, domain, user', [
    ({'domain_quota': 'ignore'}, {'name': 'example.com', 'default_quota': 10 * MIB},
     {'email': 'a@example.com', 'password': 'pw', 'quota': 5 * MIB}),
    ({'ignore_quota': True}, {'name': 'example.com'}, {'email': 'a@example.com', 'password': 'pw'}),
    ({'ignore_quota': True, 'domain_quota': 'fail'}, {'name': 'example.com'}, {'email': 'a@example.com', 'password': 'pw'}),
])
def test_domain_quota_is_dropped_only_when_asked(kwargs, domain, user):
    text = 'domain;example.com;100;10;true\naccount;a@example.com;pw;;;true;SimpleUsers;a@example.com;5'
    with pytest.raises(mc.ModoboaCsvError, match=r'^line 1: domain quota 100 MB'):
        parse(text)
    result = parse(text, **kwargs)
    assert result['domains'] == [domain] and result['users'] == [user]


def test_disabled_skip_leaves_out_the_objects_and_the_contents_of_skipped_domains():
    result = parse(MODEL, disabled='skip')
    assert [d['name'] for d in result['domains']] == ['example.com', 'example.net', 'free.example']
    assert [u['email'] for u in result['users']] == ['alice@example.com', 'carol@example.com', 'dave@example.com',
                                                     'erin@free.example']
    assert [a['source'] for a in result['aliases']] == ['sales@example.com']
    assert not any('active' in e for kind in result.values() for e in kind)
    # a domain alias of a skipped domain goes with it, in any line order
    text = 'domainalias;example.net;old.example;true\ndomain;old.example;0;0;false\n'
    assert parse(text, disabled='skip')['domains'] == []
    assert parse(text)['domains'] == [{'name': 'example.net', 'alias_of': 'old.example'},
                                      {'name': 'old.example', 'active': False}]


@pytest.mark.parametrize('line, what', [
    ('domain;example.com;0;0;no', 'domain example.com'),
    ('domainalias;example.net;example.com;0', 'domain alias example.net'),
    ('account;a@example.com;pw;;;False;SimpleUsers;a@example.com', 'account a@example.com'),
    ('alias;a@example.com;n;b@example.com', 'alias a@example.com'),
])
def test_disabled_fail_names_every_kind(line, what):
    with pytest.raises(mc.ModoboaCsvError, match=r'^line 1: %s is disabled' % what):
        parse(line, disabled='fail')
    kind = parse(line)
    entries = [e for entries in kind.values() for e in entries]
    assert len(entries) == 1 and entries[0]['active'] is False
    assert parse(line, disabled='skip') == {'domains': [], 'users': [], 'aliases': []}


def test_domain_alias_target_outside_the_file_is_passed_on():
    """mail_accounts checks the target against the database (and fails naming it, nothing written)."""
    result = parse('domainalias;Bücher.example;EXAMPLE.org;yes')
    assert result == {'domains': [{'name': 'xn--bcher-kva.example', 'alias_of': 'example.org'}],
                      'users': [], 'aliases': []}


def test_the_default_output_fits_an_old_schema_when_nothing_needs_the_model():
    """No active, quota or default_quota key for enabled objects and 0 quotas (docs: below schema 4)."""
    result = parse(EXPORT)
    keys = set(k for entries in result.values() for e in entries for k in e)
    assert keys == {'name', 'email', 'password', 'password_hash', 'source', 'destination', 'exclusive'}
    model_keys = set(k for entries in parse(MODEL).values() for e in entries for k in e)
    assert {'active', 'quota', 'default_quota', 'alias_of'} <= model_keys


def test_disabled_skip_takes_skipped_addresses_out_of_alias_recipients():
    """mail_accounts refuses a destination in a managed domain that is no mailbox or alias (typo protection)."""
    text = ('domain;example.com;0;0;true\n'
            'account;a@example.com;pw;;;true;SimpleUsers;a@example.com\n'
            'account;b@example.com;pw;;;false;SimpleUsers;b@example.com\n'
            'alias;team@example.com;true;a@example.com;b@example.com;x@outside.test\n'
            'alias;only-b@example.com;true;b@example.com\n'
            'alias;chain@example.com;true;only-b@example.com\n'
            'alias;off@example.com;false;a@example.com\n'
            'alias;to-off@example.com;true;off@example.com;a@example.com\n')
    result = parse(text, disabled='skip')
    assert [u['email'] for u in result['users']] == ['a@example.com']
    assert result['aliases'] == [
        {'source': 'team@example.com', 'destination': ['a@example.com', 'x@outside.test'], 'exclusive': True},
        {'source': 'to-off@example.com', 'destination': ['a@example.com'], 'exclusive': True},
    ]
    # keep: nothing is taken out
    assert [len(a['destination']) for a in parse(text)['aliases']] == [3, 1, 1, 1, 2]


def test_modoboa_formula_escape_is_undone_except_in_passwords():
    """Modoboa >= 2.9.1 exports '@example.com for a catch-all (modoboa/lib/csvutils.py escape_csv_cell)."""
    text = ("domain;example.com;'+0;'-0;True\n"
            "account;'-bob@example.com;'-Pass-word;'=cmd;'+x;True;SimpleUsers;'-bob@example.com;'+5\n"
            "alias;'@example.com;True;'-bob@example.com;\"'\tcarol@outside.test\"\n"
            "alias;'x@example.com;True;'-bob@example.com\n")
    result = parse(text)
    assert result['domains'] == [{'name': 'example.com'}]
    assert result['users'] == [{'email': '-bob@example.com', 'password': "'-Pass-word", 'quota': 5 * MIB}]
    assert result['aliases'] == [
        {'source': '@example.com', 'destination': ['-bob@example.com', 'carol@outside.test'], 'exclusive': True},
        {'source': "'x@example.com", 'destination': ['-bob@example.com'], 'exclusive': True},  # not an escape
    ]
