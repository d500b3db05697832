# -*- coding: utf-8 -*-
"""Unit tests of module_utils/vmail_dns.py: the DNS records of a mail domain, computed without I/O."""

import base64
import hashlib

import pytest

from ansible_collections.vmail.mailserver.plugins.module_utils import vmail_dns as dns
from ansible_collections.vmail.mailserver.plugins.module_utils.vmail_dns import DnsError, dns_records

# Test key material: public keys only (openssl genpkey; the private halves were thrown away).
RSA_B64 = ('MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAs+IZ6SqcJd/L7Ov5ycjYz0UmzIVojQ+NxETr13F+3M0oqN+dHvXqCuTg'
           'olQg0tiYloLN2kZ0513TiDybY7zfEDCc6T7zdvews7Yz3Vl3Cc4yyyixOflDyhvifRp25G5EmLEOFfCLQMVfEcpA0cJ25nd8mh96'
           'ZXlp6RHEaaHpgzpYuMTb7j83fRsjc5l2oqwYLyIINdht70O3QsDHmzGkpS/VpXXOmbR7Hlu7wGs9FGz5IiCWd9ecT/pHy0BdoqZC'
           'EIcLd6tVKlt3qG5+7EIQohSu5EtsEDP3fte3pkVm3tAmDDkFmoiLKhLml8SUu/tHLQOjE75L86/0MmsyfwquiwIDAQAB')
RSA_PEM = '-----BEGIN PUBLIC KEY-----\n%s\n-----END PUBLIC KEY-----\n' % '\n'.join(
    RSA_B64[i:i + 64] for i in range(0, len(RSA_B64), 64))
RSA_512_B64 = ('MFwwDQYJKoZIhvcNAQEBBQADSwAwSAJBAKXe/0DLKMEZqmY/q5MkteS1Zv8dYkSVULabJLAmL4eLRLTxFk2ebgbnXNpjWHhOLNRf'
               'jLW+S6Q1N7i1VXhFrVkCAwEAAQ==')
ED_PEM = '-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEAJVom4tefx2xTAz3tSMQ3JbNzZ4fj2EwIMkgfDAKQ++M=\n-----END PUBLIC KEY-----\n'
ED_RAW_B64 = 'JVom4tefx2xTAz3tSMQ3JbNzZ4fj2EwIMkgfDAKQ++M='
# What `rspamadm dkim_keygen -s dkim -d example.com` prints for the public half (zone file syntax).
RSPAMD_TXT = ('dkim._domainkey IN TXT ( "v=DKIM1; k=rsa; "\n\t"p=%s"\n\t"%s" ) ;\n' % (RSA_B64[:200], RSA_B64[200:]))
RSPAMD_ED_TXT = 'ed._domainkey IN TXT ( "v=DKIM1; k=ed25519; "\n\t"p=%s" ) ;\n' % ED_RAW_B64

MX = ['mail.example.com']


def by_name(records, name, rtype):
    found = [r for r in records if r['name'] == name and r['type'] == rtype]
    assert found, (name, rtype, records)
    return found


def one(records, name, rtype):
    found = by_name(records, name, rtype)
    assert len(found) == 1, found
    return found[0]


# ------------------------------------------------------------------ defaults and order

def test_defaults_mx_spf_dmarc_only():
    records = dns_records('example.com', dict(mx=MX))
    assert [(r['type'], r['name']) for r in records] == [
        ('MX', 'example.com'), ('TXT', 'example.com'), ('TXT', '_dmarc.example.com')]
    assert records[0] == dict(type='MX', name='example.com', value='mail.example.com', priority=10,
                              rdata='10 mail.example.com.')
    assert records[1] == dict(type='TXT', name='example.com', value='v=spf1 mx -all',
                              value_chunks=['v=spf1 mx -all'], rdata='"v=spf1 mx -all"')
    assert records[2]['value'] == 'v=DMARC1; p=quarantine'


def test_full_order():
    options = dict(mx=['mx2.example.com', 'mail.example.com'],
                   dkim_keys=[dict(selector='s2', public_key=RSA_B64), dict(selector='a1', public_key=ED_PEM)],
                   mta_sts={}, tls_rpt=dict(rua=['tls@example.com']), autoconfig={})
    names = [(r['type'], r['name']) for r in dns_records('example.com', options)]
    assert names == [
        ('MX', 'example.com'), ('MX', 'example.com'), ('TXT', 'example.com'),
        ('TXT', 'a1._domainkey.example.com'), ('TXT', 's2._domainkey.example.com'),
        ('TXT', '_dmarc.example.com'), ('TXT', '_mta-sts.example.com'), ('TXT', '_smtp._tls.example.com'),
        ('CNAME', 'autoconfig.example.com'), ('SRV', '_submissions._tcp.example.com'),
        ('SRV', '_imaps._tcp.example.com'), ('SRV', '_submission._tcp.example.com')]


def test_output_does_not_depend_on_key_order():
    keys = [dict(selector='b', public_key=RSA_B64), dict(selector='a', public_key=ED_PEM, algorithm='ed25519')]
    assert dns_records('example.com', dict(mx=MX, dkim_keys=keys)) == \
        dns_records('example.com', dict(mx=MX, dkim_keys=list(reversed(keys))))


# ------------------------------------------------------------------ MX

def test_mx_priorities_in_list_order_and_explicit():
    records = dns_records('example.com', dict(mx=['a.example.com', {'host': 'b.example.com', 'priority': 5},
                                                  'C.Example.com.']))
    mx = by_name(records, 'example.com', 'MX')
    expected = [(5, 'b.example.com'), (10, 'a.example.com'), (30, 'c.example.com')]
    assert [(r['priority'], r['value']) for r in mx] == expected
    assert mx[0]['rdata'] == '5 b.example.com.'


def test_mx_priority_zero_and_string_digits():
    mx = by_name(dns_records('example.com', dict(mx=[{'host': 'a.example.com', 'priority': '0'}])),
                 'example.com', 'MX')
    assert mx[0]['priority'] == 0


def test_idna_domain_and_hosts():
    records = dns_records('Bücher.Example.', dict(mx=['mx.bücher.example'], autoconfig={}))
    assert records[0]['name'] == 'xn--bcher-kva.example'
    assert records[0]['value'] == 'mx.xn--bcher-kva.example'
    assert one(records, '_dmarc.xn--bcher-kva.example', 'TXT')
    assert one(records, 'autoconfig.xn--bcher-kva.example', 'CNAME')['value'] == 'mx.xn--bcher-kva.example'


# ------------------------------------------------------------------ SPF

@pytest.mark.parametrize('spf, expected', [
    (None, 'v=spf1 mx -all'),
    (dict(mechanisms=['ip4:192.0.2.10', 'ip6:2001:db8::/64', 'a:relay.example.net', 'include:_spf.example.net']),
     'v=spf1 mx ip4:192.0.2.10 ip6:2001:db8::/64 a:relay.example.net include:_spf.example.net -all'),
    (dict(all='~all'), 'v=spf1 mx ~all'),
    (dict(mechanisms=['-ptr', 'exp=explain.example.com'], all='?all'), 'v=spf1 mx -ptr exp=explain.example.com ?all'),
    (dict(record='v=spf1 include:_spf.provider.example ~all', mechanisms=['ip4:192.0.2.1']),
     'v=spf1 include:_spf.provider.example ~all'),
])
def test_spf(spf, expected):
    assert one(dns_records('example.com', dict(mx=MX, spf=spf)), 'example.com', 'TXT')['value'] == expected


# ------------------------------------------------------------------ DKIM

@pytest.mark.parametrize('public_key', [RSA_B64, RSA_PEM, RSA_PEM.replace('\n', '\r\n'), RSPAMD_TXT,
                                        'v=DKIM1; k=rsa; p=' + RSA_B64, 'p=' + RSA_B64, ' %s\n' % RSA_B64])
def test_dkim_rsa_forms(public_key):
    record = one(dns_records('example.com', dict(mx=MX, dkim_keys=[dict(selector='dkim', public_key=public_key)])),
                 'dkim._domainkey.example.com', 'TXT')
    assert record['value'] == 'v=DKIM1; k=rsa; p=' + RSA_B64


@pytest.mark.parametrize('public_key, algorithm', [(ED_PEM, 'ed25519'), (ED_PEM, None), (ED_RAW_B64, 'ed25519'),
                                                   (RSPAMD_ED_TXT, None), (RSPAMD_ED_TXT, 'ed25519')])
def test_dkim_ed25519_is_the_bare_32_bytes(public_key, algorithm):
    key = dict(selector='ed', public_key=public_key, algorithm=algorithm)
    record = one(dns_records('example.com', dict(mx=MX, dkim_keys=[key])), 'ed._domainkey.example.com', 'TXT')
    assert record['value'] == 'v=DKIM1; k=ed25519; p=' + ED_RAW_B64
    assert len(base64.b64decode(ED_RAW_B64)) == 32


def test_dkim_keys_of_other_domains_are_skipped():
    keys = [dict(domain='example.com', selector='a', public_key=RSA_B64, algorithm='rsa'),
            dict(domain='other.example', selector='b', public_key=RSA_B64, algorithm='rsa'),
            dict(selector='all', public_key=ED_PEM, algorithm='ed25519')]
    names = [r['name'] for r in dns_records('Example.COM', dict(mx=MX, dkim_keys=keys)) if '_domainkey' in r['name']]
    assert names == ['a._domainkey.example.com', 'all._domainkey.example.com']


def test_dkim_idn_key_domain_matches_alabel():
    keys = [dict(domain='bücher.example', selector='s', public_key=RSA_B64)]
    records = dns_records('xn--bcher-kva.example', dict(mx=MX, dkim_keys=keys))
    assert one(records, 's._domainkey.xn--bcher-kva.example', 'TXT')


# ------------------------------------------------------------------ chunking

def test_long_txt_is_chunked_at_255_bytes():
    record = one(dns_records('example.com', dict(mx=MX, dkim_keys=[dict(selector='s', public_key=RSA_PEM)])),
                 's._domainkey.example.com', 'TXT')
    value = record['value']
    assert len(value) > 255
    assert [len(c) for c in record['value_chunks']] == [255, len(value) - 255]
    assert ''.join(record['value_chunks']) == value
    assert record['rdata'] == '"%s" "%s"' % tuple(record['value_chunks'])


@pytest.mark.parametrize('length, sizes', [(0, [0]), (1, [1]), (255, [255]), (256, [255, 1]), (511, [255, 255, 1])])
def test_chunks(length, sizes):
    parts = dns.chunks('x' * length)
    assert [len(p) for p in parts] == sizes


# ------------------------------------------------------------------ DMARC

@pytest.mark.parametrize('dmarc, expected', [
    (None, 'v=DMARC1; p=quarantine'),
    (dict(policy='reject'), 'v=DMARC1; p=reject'),
    (dict(policy='none', rua=['dmarc@example.com', 'mailto:Reports@Other.Example']),
     'v=DMARC1; p=none; rua=mailto:dmarc@example.com,mailto:reports@other.example'),
    (dict(policy='reject', subdomain_policy='quarantine', pct=25, adkim='strict', aspf='relaxed'),
     'v=DMARC1; p=reject; sp=quarantine; pct=25; adkim=s; aspf=r'),
    (dict(pct=0), 'v=DMARC1; p=quarantine; pct=0'),
])
def test_dmarc(dmarc, expected):
    assert one(dns_records('example.com', dict(mx=MX, dmarc=dmarc)), '_dmarc.example.com', 'TXT')['value'] == expected


# ------------------------------------------------------------------ MTA-STS and TLS-RPT

def test_mta_sts_id_is_hash_of_policy_and_stable():
    options = dict(mx=['b.example.com', 'a.example.com'], mta_sts=dict(mode='enforce', max_age=86400))
    policy = dns.mta_sts_policy('example.com', options)
    assert policy == 'version: STSv1\nmode: enforce\nmx: b.example.com\nmx: a.example.com\nmax_age: 86400\n'
    record = one(dns_records('example.com', options), '_mta-sts.example.com', 'TXT')
    assert record['value'] == 'v=STSv1; id=' + hashlib.sha256(policy.encode()).hexdigest()[:20]
    assert dns_records('example.com', options) == dns_records('example.com', options)
    changed = dict(options, mta_sts=dict(mode='testing', max_age=86400))
    assert one(dns_records('example.com', changed), '_mta-sts.example.com', 'TXT')['value'] != record['value']


def test_mta_sts_defaults_explicit_id_patterns_and_disabled():
    options = dict(mx=MX, mta_sts=dict(id='20260101T1', mx=['*.example.com', 'mail.example.net']))
    assert one(dns_records('example.com', options), '_mta-sts.example.com', 'TXT')['value'] == 'v=STSv1; id=20260101T1'
    assert dns.mta_sts_policy('example.com', options) == (
        'version: STSv1\nmode: testing\nmx: *.example.com\nmx: mail.example.net\nmax_age: 604800\n')
    off = dict(mx=MX, mta_sts=dict(enabled=False), autoconfig=dict(enabled=False))
    assert len(dns_records('example.com', off)) == 3
    assert dns.mta_sts_policy('example.com', off) is None
    assert dns.mta_sts_policy('example.com', dict(mx=MX)) is None


def test_tls_rpt():
    options = dict(mx=MX, tls_rpt=dict(rua=['tls@example.com', 'https://reports.example.net/tlsrpt']))
    assert one(dns_records('example.com', options), '_smtp._tls.example.com', 'TXT')['value'] == \
        'v=TLSRPTv1; rua=mailto:tls@example.com,https://reports.example.net/tlsrpt'
    assert not [r for r in dns_records('example.com', dict(mx=MX, tls_rpt=dict(rua=[]))) if '_tls' in r['name']]


# ------------------------------------------------------------------ autoconfig

def test_autoconfig_defaults_to_first_mx_and_srv_format():
    options = dict(mx=['mx2.example.com', {'host': 'mx1.example.com', 'priority': 1}], autoconfig={})
    records = dns_records('example.com', options)
    assert one(records, 'autoconfig.example.com', 'CNAME') == dict(
        type='CNAME', name='autoconfig.example.com', value='mx1.example.com', rdata='mx1.example.com.')
    assert one(records, '_submissions._tcp.example.com', 'SRV') == dict(
        type='SRV', name='_submissions._tcp.example.com', value='0 1 465 mx1.example.com', priority=0, weight=1,
        port=465, target='mx1.example.com', rdata='0 1 465 mx1.example.com.')
    assert one(records, '_imaps._tcp.example.com', 'SRV')['port'] == 993
    assert one(records, '_submission._tcp.example.com', 'SRV')['port'] == 587
    assert not [r for r in records if r['name'].startswith('_pop3s')]


def test_autoconfig_host_and_pop3():
    records = dns_records('example.com', dict(mx=MX, autoconfig=dict(host='imap.example.com', pop3=True)))
    assert one(records, '_pop3s._tcp.example.com', 'SRV')['value'] == '0 1 995 imap.example.com'
    assert one(records, 'autoconfig.example.com', 'CNAME')['value'] == 'imap.example.com'


def test_alias_domain_gets_no_autoconfig():
    options = dict(mx=MX, autoconfig={}, mta_sts={})
    records = dns_records('alias.example', options, alias_domain=True)
    assert [r['type'] for r in records] == ['MX', 'TXT', 'TXT', 'TXT']
    assert len(dns_records('alias.example', options)) == 8


# ------------------------------------------------------------------ rrsets and result

def test_rrsets_group_by_name_and_type():
    records = dns_records('example.com', dict(mx=['a.example.com', 'b.example.com'], autoconfig={}))
    rrsets = dns.dns_rrsets(records)
    assert rrsets[0] == dict(name='example.com', type='MX', rdata=['10 a.example.com.', '20 b.example.com.'])
    assert rrsets[1] == dict(name='example.com', type='TXT', rdata=['"v=spf1 mx -all"'])
    assert len(rrsets) == len(records) - 1
    assert sum(len(r['rdata']) for r in rrsets) == len(records)


def test_dns_result_keys():
    result = dns.dns_result('example.com', dict(mx=MX, mta_sts={}))
    assert sorted(result) == ['dns_records', 'dns_rrsets', 'mta_sts_policy']
    assert result['mta_sts_policy'].startswith('version: STSv1\n')


def test_argument_spec_defaults_match_function_defaults():
    spec = dns.dns_argument_spec()['options']
    assert spec['dmarc']['options']['policy']['default'] == 'quarantine'
    assert spec['spf']['options']['all']['default'] == '-all'
    assert spec['mta_sts']['options']['mode']['default'] == 'testing'
    assert spec['dkim_keys']['options']['public_key']['no_log'] is False
    # what Ansible passes for `dmarc: {}` (defaults applied) gives the same record as no dmarc at all
    applied = dict(mx=MX, dmarc=dict(policy='quarantine', subdomain_policy=None, rua=[], pct=None, adkim=None,
                                     aspf=None),
                   spf=dict(mechanisms=[], all='-all', record=None),
                   mta_sts=None, tls_rpt=None, autoconfig=None, dkim_keys=[])
    assert dns_records('example.com', applied) == dns_records('example.com', dict(mx=MX))


# ------------------------------------------------------------------ bad input

BAD = [
    (dict(mx=[]), 'dns.mx must list at least one'),
    (dict(), 'dns.mx must list at least one'),
    (dict(mx='mail.example.com'), 'dns.mx must list at least one'),
    (dict(mx=['192.0.2.1']), 'is an IP address'),
    (dict(mx=['[2001:db8::1]']), 'is an IP address'),
    (dict(mx=['mail_host.example.com']), 'dns.mx[0]'),
    (dict(mx=['localhost']), 'at least two labels'),
    (dict(mx=['a.example.com', 'A.example.com.']), 'listed twice'),
    (dict(mx=[{'priority': 10}]), 'host is required'),
    (dict(mx=[{'host': 'a.example.com', 'prio': 10}]), 'unknown keys prio'),
    (dict(mx=[{'host': 'a.example.com', 'priority': 70000}]), 'priority must be an integer from 0 to 65535'),
    (dict(mx=[{'host': 'a.example.com', 'priority': -1}]), 'priority must be an integer'),
    (dict(mx=MX, spf=dict(mechanisms=['ip4:300.1.1.1'])), 'not a valid ip4 network'),
    (dict(mx=MX, spf=dict(mechanisms=['ip4:2001:db8::1'])), 'not an IPv4 address'),
    (dict(mx=MX, spf=dict(mechanisms=['include'])), 'include needs a domain'),
    (dict(mx=MX, spf=dict(mechanisms=['+all'])), 'with dns.spf.all'),
    (dict(mx=MX, spf=dict(mechanisms=['foo:bar'])), 'is not an SPF mechanism'),
    (dict(mx=MX, spf=dict(mechanisms=['include:%d.example' % i for i in range(10)])), 'needs 11 DNS lookups'),
    (dict(mx=MX, spf=dict(all='+all')), 'dns.spf.all must be one of'),
    (dict(mx=MX, spf=dict(record='v=spf2 mx -all')), 'must start with "v=spf1"'),
    (dict(mx=MX, spf=dict(record='v=spf1 "quoted" -all')), 'printable ASCII'),
    (dict(mx=MX, dkim_keys=[dict(selector='s', public_key='not base64!')]), 'not valid base64'),
    (dict(mx=MX, dkim_keys=[dict(selector='s', public_key=RSA_B64[:-1])]), 'not valid base64'),
    (dict(mx=MX, dkim_keys=[dict(selector='s', public_key='')]), 'non-empty string'),
    (dict(mx=MX, dkim_keys=[dict(selector='s', public_key='v=DKIM1; k=rsa; p=')]), 'revokes a key'),
    (dict(mx=MX, dkim_keys=[dict(selector='s', public_key='v=DKIM1; xp=AAAA')]), 'no p= tag'),
    (dict(mx=MX, dkim_keys=[dict(selector='s', public_key=RSA_B64, algorithm='dsa')]), 'algorithm must be one of'),
    (dict(mx=MX, dkim_keys=[dict(selector='s', public_key=RSA_B64, algorithm='ed25519')]), 'Ed25519 public key is 32'),
    (dict(mx=MX, dkim_keys=[dict(selector='s', public_key=ED_RAW_B64)]), 'not a DER-encoded RSA public key'),
    (dict(mx=MX, dkim_keys=[dict(selector='s', public_key=ED_PEM, algorithm='rsa')]), 'set algorithm: ed25519'),
    (dict(mx=MX, dkim_keys=[dict(selector='s', public_key=RSA_512_B64)]), 'shorter than 1024 bits'),
    (dict(mx=MX, dkim_keys=[dict(selector='s', public_key=RSPAMD_ED_TXT, algorithm='rsa')]), 'key text says k=ed25519'),
    (dict(mx=MX, dkim_keys=[dict(selector='s', public_key='-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----')]),
     'a PUBLIC KEY is required'),
    (dict(mx=MX, dkim_keys=[dict(selector='bad_selector', public_key=RSA_B64)]), 'selector'),
    (dict(mx=MX, dkim_keys=[dict(selector='', public_key=RSA_B64)]), 'selector must be a non-empty string'),
    (dict(mx=MX, dkim_keys=[dict(selector='s', public_key=RSA_B64), dict(selector='S', public_key=ED_PEM)]),
     'given twice'),
    (dict(mx=MX, dkim_keys=[dict(selector='s', public_key=RSA_B64, domain='not a domain')]), 'dkim_keys[0].domain'),
    (dict(mx=MX, dkim_keys=['s']), 'must be a dictionary'),
    (dict(mx=MX, dmarc=dict(policy='block')), 'dns.dmarc.policy must be one of'),
    (dict(mx=MX, dmarc=dict(subdomain_policy='drop')), 'dns.dmarc.subdomain_policy must be one of'),
    (dict(mx=MX, dmarc=dict(pct=101)), 'pct must be an integer from 0 to 100'),
    (dict(mx=MX, dmarc=dict(rua=['not-an-address'])), 'dns.dmarc.rua[0]'),
    (dict(mx=MX, dmarc=dict(adkim='s')), 'dns.dmarc.adkim must be one of'),
    (dict(mx=MX, dmarc='reject'), 'dns.dmarc must be a dictionary'),
    (dict(mx=MX, mta_sts=dict(mode='on')), 'dns.mta_sts.mode must be one of'),
    (dict(mx=MX, mta_sts=dict(max_age=31557601)), 'max_age must be 0 to 31557600'),
    (dict(mx=MX, mta_sts=dict(id='with-dash')), '1 to 32 letters and digits'),
    (dict(mx=MX, mta_sts=dict(id='x' * 33)), '1 to 32 letters and digits'),
    (dict(mx=MX, mta_sts=dict(mx=['*.*.example.com'])), 'dns.mta_sts.mx[0]'),
    (dict(mx=MX, tls_rpt=dict(rua=['https://'])), 'not a valid https URI'),
    (dict(mx=MX, tls_rpt=dict(rua=['ftp://x.example'])), 'dns.tls_rpt.rua[0]'),
    (dict(mx=MX, autoconfig=dict(host='192.0.2.1')), 'dns.autoconfig.host'),
    (dict(mx=MX, autoconfig=dict(host='autoconfig.example.com')), 'CNAME to itself'),
]


@pytest.mark.parametrize('options, message', BAD)
def test_bad_input_raises(options, message):
    with pytest.raises(DnsError) as err:
        dns_records('example.com', options)
    assert message in str(err.value)
    assert isinstance(err.value, ValueError)


def test_bad_domain_raises():
    with pytest.raises(DnsError, match='domain'):
        dns_records('not_a_domain', dict(mx=MX))


def test_private_key_is_refused_and_not_shown():
    secret = 'MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC-not-a-real-key'
    pem = '-----BEGIN PRIVATE KEY-----\n%s\n-----END PRIVATE KEY-----\n' % secret
    with pytest.raises(DnsError) as err:
        dns_records('example.com', dict(mx=MX, dkim_keys=[dict(selector='s', public_key=pem)]))
    assert 'private key' in str(err.value)
    assert secret[:20] not in str(err.value)


def test_check_options_validates_keys_of_any_domain():
    dns.check_options(dict(mx=MX, dkim_keys=[dict(domain='a.example', selector='s', public_key=RSA_B64),
                                             dict(domain='b.example', selector='s', public_key=RSA_B64)]))
    with pytest.raises(DnsError, match='not valid base64'):
        dns.check_options(dict(mx=MX, dkim_keys=[dict(domain='other.example', selector='s', public_key='x!')]))
    with pytest.raises(DnsError, match='dns.mx'):
        dns.check_options(dict(mx=[]))
