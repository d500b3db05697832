# -*- coding: utf-8 -*-
"""The db_connections filter: the connection budget formula (docs/scaling.md) and its defaults."""

import pathlib

import pytest
import yaml
from ansible.errors import AnsibleFilterError

from ansible_collections.vmail.mailserver.plugins.filter.db_connections import DEFAULTS, db_connections

ROLES = pathlib.Path(__file__).resolve().parents[2] / 'roles'


def _spec_defaults(role):
    spec = yaml.safe_load((ROLES / role / 'meta' / 'argument_specs.yml').read_text())
    return {k: v.get('default') for k, v in spec['argument_specs']['main']['options'].items()}


@pytest.mark.parametrize('name', sorted(DEFAULTS))
def test_defaults_are_the_roles_defaults(name):
    role = name.split('_', 1)[0]
    assert _spec_defaults(role)[name] == DEFAULTS[name]


def test_all_in_one_host_with_role_defaults():
    # 4 proxymap processes x 10 tables (schema 5) + (10 auth workers + 4 dict processes) x 1 DB host
    assert db_connections({'mail': {}}, ['mail'], detail=True) == [
        {'host': 'mail', 'postfix': 40, 'dovecot': 14, 'total': 54}]
    assert db_connections({'mail': {}}, ['mail']) == 54


def test_every_host_counts_with_its_own_values_and_db_hosts():
    hostvars = {
        'a': {'postfix_proxymap_process_limit': 2, 'dovecot_auth_worker_process_limit': '5'},
        'b': {'dovecot_mysql_hosts': ['db1', 'db2']},
        'c': {},
    }
    rows = db_connections(hostvars, ['a', 'b', 'c'], db_hosts=3, detail=True)
    assert [r['postfix'] for r in rows] == [20, 40, 40]
    assert [r['dovecot'] for r in rows] == [(5 + 4) * 3, 14 * 2, 14 * 3]
    assert db_connections(hostvars, ['a', 'b', 'c'], db_hosts=3) == sum(r['total'] for r in rows)


def test_schema_version_changes_the_table_count():
    # Guide schema (version 1): 5 tables (the guide's 4 and the sender login map).
    assert db_connections({'m': {'postfix_mysql_schema_version': 1}}, ['m'], detail=True)[0]["postfix"] == 4 * 5


def test_without_proxy_the_bound_is_the_process_limit():
    assert db_connections({'m': {'postfix_mysql_proxy': 'false'}}, ['m'], detail=True)[0]['postfix'] == 300 * 10


@pytest.mark.parametrize('value', ['four', -1, None])
def test_bad_limit_is_refused(value):
    if value is None:  # None counts as unset: the default
        assert db_connections({'m': {'postfix_proxymap_process_limit': None}}, ['m']) == 54
        return
    with pytest.raises(AnsibleFilterError, match='postfix_proxymap_process_limit of m'):
        db_connections({'m': {'postfix_proxymap_process_limit': value}}, ['m'])


def test_unknown_host_and_bad_hosts_are_refused():
    with pytest.raises(AnsibleFilterError, match="no variables for host 'x'"):
        db_connections({}, ['x'])
    with pytest.raises(AnsibleFilterError, match='must be a list'):
        db_connections({}, 'mail')
