# -*- coding: utf-8 -*-
"""The columns Postfix's DB account is granted (vmail_lookups.postfix_columns, filter postfix_columns).

The grant is derived from Postfix's queries: every column a query reads must be granted, the
password hashes never, and a query the derivation cannot read must fail rather than yield a short list.
"""

import re

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.vmail.mailserver.plugins.filter.postfix_columns import postfix_columns as column_filter
from ansible_collections.vmail.mailserver.plugins.module_utils import vmail_lookups, vmail_migrations, vmail_schema

VERSIONS = range(1, vmail_migrations.LATEST + 1)
NODE = 'm1.example.net'


def _granted_pairs(version):
    return set((t, c) for t, cols in vmail_lookups.postfix_columns(version).items() for c in cols)


def _naive_references(query):
    """Every ``qualifier.column`` and bare word of ``query`` (string literals dropped), read independently of
    the derivation: a second, cruder reading to hold it against."""
    text = re.sub(r"'[^']*'", "''", query)
    qualified = re.findall(r'\b([a-z_]+)\.([a-z_]+)\b', text)
    bare = re.findall(r'\b[a-z_]+\b', re.sub(r'\b[a-z_]+\.[a-z_]+\b', ' ', text))
    return qualified, bare


@pytest.mark.parametrize('version', VERSIONS)
def test_password_is_never_granted(version):
    cols = vmail_lookups.postfix_columns(version)
    assert 'password' not in cols[vmail_schema.USERS.name]
    assert all('password' not in c for c in cols.values())
    # Postfix reads no last-login times and not the version table either.
    assert set(cols) <= {'virtual_domains', 'virtual_users', 'virtual_aliases', 'vmail_quota_usage'}


@pytest.mark.parametrize('version', VERSIONS)
@pytest.mark.parametrize('node_name', [None, NODE])
def test_every_column_each_query_reads_is_granted(version, node_name):
    """Cross-check with a cruder reading: for each query, resolve ``alias.column`` through the
    query's own FROM/JOIN list and every bare word that is a column of a table the query reads."""
    granted = _granted_pairs(version)
    all_columns = dict((t.name, set(['id', t.parent] + [c.name for c in t.columns + t.optional]) - {None})
                       for t in vmail_schema.SCHEMA)
    all_columns.update((t.name, set(['email'] + [c[0] for c in t.columns])) for t in vmail_schema.STATS_TABLES)
    for name, query in vmail_lookups.postfix_queries(version, node_name).items():
        sources = re.findall(r'(?:FROM|JOIN) ([a-z_]+)(?: (?!JOIN|WHERE|ON|UNION)([a-z_]+))?', query)
        alias = {}
        for table, short in sources:
            alias[table] = table
            if short:
                alias[short] = table
        qualified, bare = _naive_references(query)
        assert qualified or bare, name
        for prefix, column in qualified:
            assert (alias[prefix], column) in granted, (version, name, prefix, column)
        read = set(alias.values())
        for word in bare:
            for table in read:
                if word in all_columns[table]:
                    assert (table, word) in granted, (version, name, table, word)


def test_known_grants():
    guide = {'virtual_aliases': ['destination', 'source'], 'virtual_domains': ['name'], 'virtual_users': ['email']}
    for version in (1, 2, 3):
        assert vmail_lookups.postfix_columns(version) == guide
    assert vmail_lookups.postfix_columns(5) == {
        'virtual_aliases': ['active', 'destination', 'domain_id', 'source'],
        'virtual_domains': ['active', 'alias_of', 'host', 'id', 'name'],
        'virtual_users': ['active', 'domain_id', 'email', 'host', 'quota'],
        'vmail_quota_usage': ['bytes', 'email'],
    }
    # the node column only from schema version 5 (the transport table)
    assert 'host' not in vmail_lookups.postfix_columns(4)['virtual_users']


def test_grants_grow_with_the_version():
    for version in VERSIONS[1:]:
        assert _granted_pairs(version - 1) <= _granted_pairs(version)


def test_derivation_follows_the_queries(monkeypatch):
    """A column added to a Postfix query is granted: the list is derived, not written down."""
    real = vmail_lookups.postfix_queries

    def leaky(version, node_name=None):
        queries = real(version, node_name)
        queries['mailboxes'] = "SELECT x.password FROM virtual_users x WHERE x.email = '%s'"
        return queries

    monkeypatch.setattr(vmail_lookups, 'postfix_queries', leaky)
    assert 'password' in vmail_lookups.postfix_columns(4)['virtual_users']


@pytest.mark.parametrize('query,match', [
    ("SELECT 1 FROM virtual_mailboxes WHERE email = '%s'", 'virtual_mailboxes'),
    ("SELECT z.email FROM virtual_users x WHERE x.email = '%s'", 'z is no table or alias'),
    ("SELECT x.nickname FROM virtual_users x WHERE x.email = '%s'", 'no column nickname'),
    ("SELECT 1 FROM virtual_users t JOIN virtual_domains t ON t.id = 1", 't names both'),
    ("SELECT 1 FROM virtual_users x WHERE x.host = '%s'", 'no column host'),          # host only from version 5
])
def test_unreadable_queries_fail(query, match):
    with pytest.raises(ValueError, match=match):
        vmail_lookups.query_columns(query, 4)


def test_string_literals_are_not_names():
    got = vmail_lookups.query_columns("SELECT 'password' FROM virtual_users WHERE email = 'x.password'", 4)
    assert got == {'virtual_users': {'email'}}


def test_filter():
    assert column_filter(5) == vmail_lookups.postfix_columns(5)
    assert column_filter('3') == vmail_lookups.postfix_columns(3)
    with pytest.raises(AnsibleFilterError, match='postfix_columns: schema version must be 1 or more'):
        column_filter(0)
    with pytest.raises(AnsibleFilterError, match='postfix_columns'):
        column_filter('five')
