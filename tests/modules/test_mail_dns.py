# -*- coding: utf-8 -*-
"""The dns option of mail_domain and mail_info against a real MariaDB (scripts/test-modules.sh).

Records returned for present domains, unchanged re-runs, check mode, alias domains (schema version 4),
bad DNS options failing with nothing written, and mail_info's per-domain records.
"""

import pytest

from conftest import run_module
from test_modules import failed, ok

ED_PEM = '-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEAJVom4tefx2xTAz3tSMQ3JbNzZ4fj2EwIMkgfDAKQ++M=\n-----END PUBLIC KEY-----\n'
ED_RAW = 'JVom4tefx2xTAz3tSMQ3JbNzZ4fj2EwIMkgfDAKQ++M='
# the shape of the rspamd role's fact rspamd_dkim_dns_keys
KEYS = [dict(domain='example.com', selector='dkim', algorithm='ed25519', public_key=ED_PEM),
        dict(domain='other.example', selector='other', algorithm='ed25519', public_key=ED_PEM)]
DNS = dict(mx=['mail.example.com'], dkim_keys=KEYS, dmarc=dict(policy='reject', rua=['dmarc@example.com']),
           mta_sts=dict(mode='enforce'), tls_rpt=dict(rua=['tls@example.com']), autoconfig={})


def names(records):
    return [(r['type'], r['name']) for r in records]


def test_mail_domain_returns_records_check_mode_and_rerun(db):
    before = db.snapshot()
    r = ok(run_module('mail_domain', {'name': 'Example.COM', 'dns': DNS}, check=True))
    assert r['changed'] and r['id'] is None and db.snapshot() == before
    expected = [('MX', 'example.com'), ('TXT', 'example.com'), ('TXT', 'dkim._domainkey.example.com'),
                ('TXT', '_dmarc.example.com'), ('TXT', '_mta-sts.example.com'), ('TXT', '_smtp._tls.example.com'),
                ('CNAME', 'autoconfig.example.com'), ('SRV', '_submissions._tcp.example.com'),
                ('SRV', '_imaps._tcp.example.com'), ('SRV', '_submission._tcp.example.com')]
    assert names(r['dns_records']) == expected
    created = ok(run_module('mail_domain', {'name': 'example.com', 'dns': DNS}))
    assert created['changed'] and created['id']
    assert created['dns_records'] == r['dns_records'] and created['dns_rrsets'] == r['dns_rrsets']
    again = ok(run_module('mail_domain', {'name': 'example.com', 'dns': DNS}))
    assert not again['changed'] and again['dns_records'] == created['dns_records']
    check_again = ok(run_module('mail_domain', {'name': 'example.com', 'dns': DNS}, check=True, diff=True))
    assert not check_again['changed'] and check_again['dns_records'] == created['dns_records']
    records = dict(((x['type'], x['name']), x) for x in created['dns_records'])
    assert records[('MX', 'example.com')] == dict(type='MX', name='example.com', value='mail.example.com',
                                                  priority=10, rdata='10 mail.example.com.')
    assert records[('TXT', 'dkim._domainkey.example.com')]['value'] == 'v=DKIM1; k=ed25519; p=' + ED_RAW
    assert records[('TXT', '_dmarc.example.com')]['rdata'] == '"v=DMARC1; p=reject; rua=mailto:dmarc@example.com"'
    assert created['mta_sts_policy'] == 'version: STSv1\nmode: enforce\nmx: mail.example.com\nmax_age: 604800\n'
    assert created['dns_rrsets'][0] == dict(name='example.com', type='MX', rdata=['10 mail.example.com.'])
    assert db.query('SELECT name FROM virtual_domains') == [{'name': 'example.com'}]


def test_mail_domain_without_dns_or_absent_returns_no_records(db):
    r = ok(run_module('mail_domain', {'name': 'example.com'}))
    assert 'dns_records' not in r and 'dns_rrsets' not in r
    gone = ok(run_module('mail_domain', {'name': 'example.com', 'state': 'absent', 'dns': DNS}))
    assert gone['changed'] and 'dns_records' not in gone


def test_mail_domain_alias_domain_has_no_autoconfig(db4):
    ok(run_module('mail_domain', {'name': 'example.com'}))
    r = ok(run_module('mail_domain', {'name': 'example.net', 'alias_of': 'example.com', 'dns': DNS}))
    assert r['changed'] and r['alias_of'] == 'example.com'
    assert [x['type'] for x in r['dns_records']] == ['MX', 'TXT', 'TXT', 'TXT', 'TXT']
    # the stored alias_of counts when the option is not given
    again = ok(run_module('mail_domain', {'name': 'example.net', 'dns': DNS}))
    assert not again['changed'] and again['dns_records'] == r['dns_records']
    normal = ok(run_module('mail_domain', {'name': 'example.com', 'dns': DNS}))
    assert ('CNAME', 'autoconfig.example.com') in names(normal['dns_records'])


BAD_DNS = [
    (dict(mx=[]), 'dns.mx must list at least one'),
    (dict(mx=['192.0.2.25']), 'is an IP address'),
    (dict(mx=['mail.example.com'], dkim_keys=[dict(selector='s', public_key='!!notbase64')]), 'not valid base64'),
    (dict(mx=['mail.example.com'], dkim_keys=[dict(selector='s', public_key=ED_PEM, algorithm='dsa')]),
     'algorithm'),
    (dict(mx=['mail.example.com'], dmarc=dict(policy='block')), 'policy'),
    (dict(mx=['mail.example.com'], spf=dict(mechanisms=['ip4:999.0.0.1'])), 'not a valid ip4 network'),
    (dict(mx=['mail.example.com'], bogus=1), 'bogus'),
    (dict(dmarc={}), 'mx'),
]


@pytest.mark.parametrize('dns, message', BAD_DNS, ids=[str(i) for i in range(len(BAD_DNS))])
def test_mail_domain_bad_dns_fails_and_writes_nothing(db, dns, message):
    before = db.snapshot()
    failed(run_module('mail_domain', {'name': 'new.example', 'dns': dns}), message)
    assert db.snapshot() == before


def test_mail_domain_private_key_is_not_echoed(db):
    secret = 'MC4CAQAwBQYDK2VwBCIEIPrivateKeyMaterialNotReal0000000000'
    pem = '-----BEGIN PRIVATE KEY-----\n%s\n-----END PRIVATE KEY-----\n' % secret
    r = failed(run_module('mail_domain', {'name': 'new.example', 'dns': dict(
        mx=['mail.example.com'], dkim_keys=[dict(selector='s', public_key=pem)])}), 'private key')
    assert secret not in r['msg']
    assert db.query('SELECT * FROM virtual_domains') == []


def test_mail_info_returns_records_per_domain(db4):
    for name in ('example.com', 'other.example'):
        ok(run_module('mail_domain', {'name': name}))
    ok(run_module('mail_domain', {'name': 'alias.example', 'alias_of': 'example.com'}))
    r = ok(run_module('mail_info', {'dns': DNS}, check=True))
    assert not r['changed']
    by_domain = dict((d['name'], d) for d in r['domains'])
    assert sorted(by_domain) == ['alias.example', 'example.com', 'other.example']
    com = names(by_domain['example.com']['dns_records'])
    other = names(by_domain['other.example']['dns_records'])
    alias = names(by_domain['alias.example']['dns_records'])
    assert ('TXT', 'dkim._domainkey.example.com') in com and not [n for n in com if 'other._domainkey' in n[1]]
    assert ('TXT', 'other._domainkey.other.example') in other and ('TXT', 'dkim._domainkey.other.example') not in other
    assert ('CNAME', 'autoconfig.example.com') in com and not [n for n in alias if n[0] in ('CNAME', 'SRV')]
    assert ('MX', 'alias.example') in alias and ('TXT', '_dmarc.alias.example') in alias
    assert by_domain['other.example']['mta_sts_policy'].startswith('version: STSv1\nmode: enforce\n')
    # the same records as mail_domain returns for the domain
    single = ok(run_module('mail_domain', {'name': 'other.example', 'dns': DNS}))
    assert single['dns_records'] == by_domain['other.example']['dns_records']
    plain = ok(run_module('mail_info', {}))
    assert 'dns_records' not in plain['domains'][0]


def test_mail_info_guide_rows_and_bad_options(db):
    db.add_domain('example.com')
    db.add_domain('hostname')   # a single-label name as the guide's sample rows have: warned, no records
    r = ok(run_module('mail_info', {'dns': dict(mx=['mail.example.com'])}))
    by_domain = dict((d['name'], d) for d in r['domains'])
    assert by_domain['hostname']['dns_records'] == [] and by_domain['hostname']['mta_sts_policy'] is None
    assert len(by_domain['example.com']['dns_records']) == 3
    assert 'hostname' in str(r.get('warnings')), r
    failed(run_module('mail_info', {'dns': dict(mx=['mail.example.com'], dkim_keys=[
        dict(domain='nowhere.example', selector='s', public_key='x!')])}), 'not valid base64')
    failed(run_module('mail_info', {'format': 'accounts', 'dns': dict(mx=['mail.example.com'])}), 'format=summary')
