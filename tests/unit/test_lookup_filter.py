# -*- coding: utf-8 -*-
"""The lookup_queries filter: the server names it dispatches and the errors it raises."""

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.vmail.mailserver.plugins.filter.lookup_queries import lookup_queries
from ansible_collections.vmail.mailserver.plugins.module_utils import vmail_lookups


@pytest.mark.parametrize('version', ['2.3', '2.3.19', '2.4', '2.4.1'])
def test_dovecot_dict_returns_the_maps_of_the_version(version):
    got = lookup_queries(4, 'dovecot_dict', dovecot_version=version)
    assert got == vmail_lookups.dovecot_dict_maps(version)
    assert got['last_login_key'] == ('last-login/%u' if version.startswith('2.3') else 'last-login/%{user}')
    assert [m['table'] for m in got['maps']] == ['vmail_last_login', 'vmail_quota_usage', 'vmail_quota_usage']
    assert [m['value_field'] for m in got['maps']] == ['last_login', 'bytes', 'messages']


@pytest.mark.parametrize('version', [1, 3])
def test_dovecot_dict_needs_the_account_model(version):
    with pytest.raises(AnsibleFilterError, match='schema version 4'):
        lookup_queries(version, 'dovecot_dict')


def test_unknown_server_is_refused():
    with pytest.raises(AnsibleFilterError, match='dovecot_dict'):
        lookup_queries(4, 'exim')


def test_node_name_reaches_the_queries_and_is_validated():
    queries = lookup_queries(5, 'postfix', node_name='mail1.example.net')
    assert "<> 'mail1.example.net'" in queries['transport']
    assert 'transport' not in lookup_queries(5, 'postfix') and 'transport' not in lookup_queries(4, 'postfix', 'x', 'm1')
    password = lookup_queries(5, 'dovecot', dovecot_version='2.4', node_name='mail1')['password_query']
    assert "AS proxy" in password and "<> 'mail1'" in password and "'%{user}'" in password
    with pytest.raises(AnsibleFilterError, match='lookup_queries: host name .mail1; DROP.'):
        lookup_queries(5, 'postfix', node_name='mail1; DROP')
