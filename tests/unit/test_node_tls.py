# -*- coding: utf-8 -*-
"""TLS between mail nodes and to the relay host (issue #20, docs/security.md S20-7 to S20-9).

The roles' defaults and vars are templated here with Ansible's own Templar (the way a play sees
them), and the templates that change (master.cf, dovecot.conf for 2.3 and 2.4) are rendered with
them: the relay host gets ``secure`` with credentials unless ``encrypt`` is chosen, the inter-node
LMTP transport verifies the node's certificate with the nodes' CA, and Dovecot verifies the node
it proxies to and shows its internal certificate on the internal addresses. The Molecule cluster
scenario proves the same on running nodes (``molecule/cluster/tests/test_9_node_tls.py``).
"""

import pathlib

import pytest
import yaml
from ansible.parsing.dataloader import DataLoader
from ansible.template import Templar, trust_as_template

from ansible_collections.vmail.mailserver.plugins.module_utils import vmail_lookups

ROLES = pathlib.Path(__file__).resolve().parents[2] / 'roles'


CA = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----'
FACTS = {'fqdn': 'mail1.example.net', 'domain': 'example.net', 'hostname': 'mail1'}


def _trust(value):
    if isinstance(value, str):
        return trust_as_template(value)
    if isinstance(value, dict):
        return {k: _trust(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_trust(v) for v in value]
    return value


def _templar(role, **inventory):
    variables = {}
    for name in ('defaults/main.yml', 'vars/main.yml'):
        variables.update(_trust(yaml.safe_load((ROLES / role / name).read_text())))
    variables.update(ansible_facts=FACTS, inventory_hostname='mail1', ansible_managed='managed')
    variables.update(_trust(inventory))
    # The collection's lookup_queries filter, called here directly (the roles' vars call it by name).
    schema = inventory.get('%s_mysql_schema_version' % role, 5)
    if role == 'postfix':
        variables['_postfix_map_queries'] = vmail_lookups.postfix_queries(schema, node_name='mail1.example.net')
    else:
        family = inventory['__dovecot_family']
        variables['__dovecot_queries'] = vmail_lookups.dovecot_queries(schema, dovecot_version=family,
                                                                       node_name='mail1.example.net')
        variables['__dovecot_dict'] = vmail_lookups.dovecot_dict_maps(family)
    return Templar(loader=DataLoader(), variables=variables)


def _value(templar, expression):
    return templar.template(trust_as_template('{{ %s }}' % expression))


def _render(templar, role, name):
    return templar.template(trust_as_template((ROLES / role / 'templates' / name).read_text()))


# --- relay host ------------------------------------------------------------------------------------------
@pytest.mark.parametrize('inventory, level', [
    ({'postfix_relayhost': '[smtp.example.net]:587', 'postfix_relayhost_username': 'me'}, 'secure'),
    ({'postfix_relayhost': '[smtp.example.net]:587'}, 'may'),
    ({}, 'may'),
    ({'postfix_relayhost': '[smtp.example.net]:587', 'postfix_relayhost_username': 'me',
      'postfix_smtp_tls_security_level': 'encrypt'}, 'encrypt'),
])
def test_relay_with_credentials_verifies_the_certificate_by_default(inventory, level):
    assert _value(_templar('postfix', **inventory), '_postfix_main_cf_base.smtp_tls_security_level') == level


def test_the_relay_is_verified_against_the_system_cas():
    templar = _templar('postfix', postfix_relayhost='[smtp.example.net]:587', postfix_relayhost_username='me')
    main_cf = _value(templar, '_postfix_main_cf')
    assert main_cf['smtp_tls_CAfile'] == '/etc/ssl/certs/ca-certificates.crt'


# --- LMTP between nodes -------------------------------------------------------------------------------
def _master_cf(**inventory):
    templar = _templar('postfix', postfix_mysql_password='x', **inventory)
    return _render(templar, 'postfix', 'master.cf.j2'), templar


def test_lmtp_to_other_nodes_requires_verified_tls():
    text, templar = _master_cf(postfix_mysql_tls_ca_cert=CA)
    service = text[text.index('\nlmtp-nodes '):].split('\n')[1:9]
    assert service[0].split() == ['lmtp-nodes', 'unix', '-', '-', 'y', '-', '-', 'lmtp']
    options = [line.strip() for line in service[1:] if line.startswith('  -o ')]
    assert '-o lmtp_tls_security_level=secure' in options
    assert '-o lmtp_tls_secure_cert_match=nexthop' in options
    assert '-o lmtp_tls_CAfile=/etc/postfix/vmail-nodes-ca.pem' in options
    assert '-o lmtp_tls_CApath=' in options      # the nodes' CA only, not the system CAs
    files = {f['name']: f for f in _value(templar, '_postfix_managed_files')}
    assert files['vmail-nodes-ca.pem']['mode'] == '0644'
    # the plain lmtp service (the local unix socket, virtual_transport) is unchanged
    assert '\nlmtp      unix  -       -       y       -       -       lmtp\n' in text


def test_the_transport_table_uses_the_verified_service():
    query = vmail_lookups.postfix_queries(5, node_name='mail1.example.net')['transport']
    assert "CONCAT('lmtp-nodes:inet:'" in query
    assert vmail_lookups.NODE_LMTP_TRANSPORT == 'lmtp-nodes'


def test_without_a_ca_the_service_still_verifies_and_defers():
    text, templar = _master_cf()
    assert '-o lmtp_tls_security_level=secure' in text
    assert '-o lmtp_tls_CAfile=\n' in text
    assert 'vmail-nodes-ca.pem' not in [f['name'] for f in _value(templar, '_postfix_managed_files')]


def test_no_node_service_below_schema_version_5():
    text, templar = _master_cf(postfix_mysql_tls_ca_cert=CA, postfix_mysql_schema_version=4)
    assert 'lmtp-nodes' not in text
    assert 'vmail-nodes-ca.pem' not in [f['name'] for f in _value(templar, '_postfix_managed_files')]


# --- Dovecot proxy and the node certificate ------------------------------------------------------------
def test_the_proxy_verifies_the_node():
    for family in ('2.3', '2.4'):
        query = vmail_lookups.dovecot_queries(5, dovecot_version=family, node_name='mail1.example.net')
        assert "'yes', NULL) AS starttls" in query['password_query']
        assert 'any-cert' not in query['password_query']


def _dovecot(family, **inventory):
    templar = _templar('dovecot', __dovecot_family=family, __dovecot_version=family + '.0',
                       __dovecot_config_version=family + '.0', __dovecot_storage_version=family + '.0', __dovecot_mail_store={
                           'home': '/var/mail/vhosts/%d/%n', 'home_v24': '/var/mail/vhosts/%{user|domain}/%{user|username}',
                           'location': 'maildir:~/Maildir', 'mail_path': '~/Maildir', 'settings_v24': []},
                       __dovecot_confdir='/etc/dovecot', __dovecot_cert_file='/etc/vmail/tls/mail.crt',
                       __dovecot_key_file='/etc/vmail/tls/mail.key', dovecot_mysql_password='x',
                       dovecot_node_name='mail1.example.net', **inventory)
    return _render(templar, 'dovecot', 'dovecot-%s.conf.j2' % family), templar


@pytest.mark.parametrize('family, cert, key', [
    ('2.3', 'ssl_cert = </etc/vmail/node-tls/node.crt', 'ssl_key = </etc/vmail/node-tls/node.key'),
    ('2.4', 'ssl_server_cert_file = /etc/vmail/node-tls/node.crt', 'ssl_server_key_file = /etc/vmail/node-tls/node.key'),
])
def test_a_node_shows_its_internal_certificate_to_the_other_nodes(family, cert, key):
    text, templar = _dovecot(family, dovecot_lmtp_inet_listen=['10.0.0.21'], dovecot_mysql_tls_ca_cert=CA)
    assert 'ssl_client_ca_file = /etc/dovecot/vmail-nodes-ca.pem' in text
    # by the node name (the proxies' SNI): a proxy from login_trusted_networks passes the client's addresses
    # (ID x-connected-ip) before STARTTLS, so a local <address> block would not match its connection
    block = text[text.index('\nlocal_name mail1.example.net {\n'):]
    assert block.split('}')[0].split('\n')[2:4] == ['  ' + cert, '  ' + key]
    assert '\nlocal 10.0.0.21' not in text
    lmtp = text[text.index('\nprotocol lmtp {\n  ssl'):]
    assert lmtp.split('}')[0].split('\n')[2:4] == ['  ' + cert, '  ' + key]
    # the public certificate stays the default
    assert '\nssl_cert = </etc/vmail/tls/mail.crt\n' in text or '\nssl_server_cert_file = /etc/vmail/tls/mail.crt\n' in text
    assert _value(templar, '__dovecot_node_ca_config_file.name') == 'vmail-nodes-ca.pem'
    # 2.3's proxies ignore ssl_client_ca_file (chrooted login processes): OpenSSL's default CA file, in the chroot
    env = [line for line in text.split('\n') if line.startswith('import_environment = ')]
    if family == '2.3':
        assert env == ['import_environment = TZ CORE_OUTOFMEM CORE_ERROR LISTEN_PID LISTEN_FDS NOTIFY_SOCKET '
                       'SSL_CERT_FILE=/vmail-nodes-ca.pem']
    else:
        assert env == []


@pytest.mark.parametrize('family', ['2.3', '2.4'])
def test_a_single_node_has_no_internal_certificate(family):
    text, templar = _dovecot(family)
    assert 'local_name' not in text and 'SSL_CERT_FILE' not in text
    assert 'ssl_client_ca_file' not in text
    assert _value(templar, '__dovecot_node_tls') is False


def test_own_node_certificate_files_are_used():
    text, templar = _dovecot('2.3', dovecot_lmtp_inet_listen=['10.0.0.21'], dovecot_node_tls_cert_file='/etc/own/n.crt',
                             dovecot_node_tls_key_file='/etc/own/n.key', dovecot_node_tls_ca_cert=CA)
    assert 'ssl_cert = </etc/own/n.crt' in text and 'ssl_key = </etc/own/n.key' in text
    assert _value(templar, '__dovecot_node_tls_own') is True
