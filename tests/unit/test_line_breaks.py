# -*- coding: utf-8 -*-
"""The line_breaks filter the roles assert on before they change anything (issue #20 item 2)."""

import pytest

from ansible_collections.vmail.mailserver.plugins.filter.line_breaks import line_breaks


def test_single_line_values_pass():
    assert line_breaks({'dovecot_hostname': 'mail.example.com', 'dovecot_quota_warnings': [95, 80],
                        'dovecot_listen': ['*', '::'], 'postfix_main_cf_extra': {'a': 'b c', 'd': ['e', 1]},
                        'x_tab': 'a\tb', 'x_none': None, 'x_bool': True}) == []


@pytest.mark.parametrize('bad', ['a\nb', 'a\rb', 'a\n', '\r\n', 'a\x00b', 'a\x1bb', 'a\x7fb'])
def test_a_control_character_is_named(bad):
    assert line_breaks({'dovecot_hostname': bad, 'dovecot_vmail_user': 'vmail'}) == ['dovecot_hostname']


def test_nested_places_are_named_and_sorted():
    got = line_breaks({'z_list': ['ok', {'name': 'x\ny'}], 'a_map': {'k': 'v\r'}, 'm_key': {'bad\nkey': 'v'}})
    assert got == ['a_map.k', "m_key (key 'bad\\nkey')", 'z_list[1].name']


def test_allowed_multiline_variables_are_skipped():
    pem = '-----BEGIN CERTIFICATE-----\nMII\n-----END CERTIFICATE-----\n'
    assert line_breaks({'dovecot_mysql_tls_ca_cert': pem, 'dovecot_extra_config': 'a\nb'},
                       allow=['dovecot_mysql_tls_ca_cert', 'dovecot_extra_config']) == []
    assert line_breaks({'dovecot_mysql_tls_ca_cert': pem}) == ['dovecot_mysql_tls_ca_cert']


def test_the_value_is_never_in_the_result():
    got = line_breaks({'postfix_mysql_password': 'secret\nvalue'})
    assert got == ['postfix_mysql_password']
    assert 'secret' not in ' '.join(got)
