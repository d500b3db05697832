# -*- coding: utf-8 -*-
"""Send-as (issue #20): which logins Postfix's smtpd_sender_login_maps lets use an address.

The ``sender_login`` and ``alias_domain_senders`` queries run on an SQLite copy of the tables
(``CONCAT`` given as a function), looked up the way Postfix looks up a sender address in
``smtpd_sender_login_maps`` (mysql_table(5), access(5)): each table with the full address, then
with ``@domain``; the first answer wins.
"""

import sqlite3

import pytest

from ansible_collections.vmail.mailserver.plugins.module_utils import vmail_lookups

DOMAINS = [(1, 'example.com', None), (2, 'alias.example', 1), (3, 'example.net', None)]
USERS = ['alice@example.com', 'asst@example.com', 'bob@example.com', 'carol@example.net', 'dave@example.net']
ALIASES = [
    ('alice@example.com', 'alice@example.com'),     # a copy of alice's mail to her assistant:
    ('alice@example.com', 'asst@example.com'),      # the source is a mailbox, so no send-as
    ('sales@example.com', 'alice@example.com'),     # a shared address: both may send as it
    ('sales@example.com', 'bob@example.com'),
    ('@example.net', 'carol@example.net'),          # catch-all
]


def database(schema_version):
    db = sqlite3.connect(':memory:')
    db.create_function('CONCAT', -1, lambda *parts: ''.join(parts))
    if schema_version < vmail_lookups.ACCOUNT_MODEL:
        db.execute('CREATE TABLE virtual_users (email TEXT)')
        db.execute('CREATE TABLE virtual_aliases (source TEXT, destination TEXT)')
        db.executemany('INSERT INTO virtual_users VALUES (?)', [(u,) for u in USERS])
        db.executemany('INSERT INTO virtual_aliases VALUES (?, ?)', ALIASES)
        return db
    db.execute('CREATE TABLE virtual_domains (id INTEGER, name TEXT, alias_of INTEGER, active INTEGER)')
    db.execute('CREATE TABLE virtual_users (email TEXT, domain_id INTEGER, active INTEGER)')
    db.execute('CREATE TABLE virtual_aliases (source TEXT, destination TEXT, active INTEGER)')
    db.executemany('INSERT INTO virtual_domains VALUES (?, ?, ?, 1)', DOMAINS)
    db.executemany('INSERT INTO virtual_users VALUES (?, 1, 1)', [(u,) for u in USERS])
    db.executemany('INSERT INTO virtual_aliases VALUES (?, ?, 1)', ALIASES)
    return db


def owners(db, queries, address):
    """The logins allowed to send as *address*, as Postfix's smtpd_sender_login_maps answers."""
    local, domain = address.split('@')
    for table in ('sender_login', 'alias_domain_senders'):
        if table not in queries:
            continue
        for key in (address, '@' + domain):
            query = queries[table]
            if '%u' in query and key.startswith('@'):
                continue        # mysql_table(5): a query with %u is skipped for a key without a local part
            sql = query.replace('%s', key).replace('%u', local).replace('%d', domain)
            rows = sorted(row[0] for row in db.execute(sql))
            if rows:
                return rows
    return []


@pytest.fixture(params=[1, vmail_lookups.ACCOUNT_MODEL])
def lookup(request):
    db = database(request.param)
    queries = vmail_lookups.postfix_queries(request.param)
    return lambda address: owners(db, queries, address)


def test_a_mailbox_is_sent_as_by_its_owner_only(lookup):
    # Not by asst@, although alice@ is also an alias with asst@ among its destinations.
    assert lookup('alice@example.com') == ['alice@example.com']
    assert lookup('bob@example.com') == ['bob@example.com']


def test_an_alias_that_is_not_a_mailbox_is_sent_as_by_its_destinations(lookup):
    assert lookup('sales@example.com') == ['alice@example.com', 'bob@example.com']


def test_a_catch_all_grants_the_addresses_that_are_not_mailboxes(lookup):
    assert lookup('anything@example.net') == ['carol@example.net']
    assert lookup('dave@example.net') == ['dave@example.net']


def test_nobody_owns_an_unknown_address(lookup):
    assert lookup('ceo@example.com') == []


def test_alias_domain_forms_follow_their_target():
    db = database(vmail_lookups.ACCOUNT_MODEL)
    queries = vmail_lookups.postfix_queries(vmail_lookups.ACCOUNT_MODEL)
    assert owners(db, queries, 'alice@alias.example') == ['alice@example.com']
    assert owners(db, queries, 'sales@alias.example') == ['alice@example.com', 'bob@example.com']
    assert owners(db, queries, 'ceo@alias.example') == []


def test_a_disabled_alias_grants_nothing():
    db = database(vmail_lookups.ACCOUNT_MODEL)
    db.execute("UPDATE virtual_aliases SET active = 0 WHERE source = 'sales@example.com'")
    queries = vmail_lookups.postfix_queries(vmail_lookups.ACCOUNT_MODEL)
    assert owners(db, queries, 'sales@example.com') == []
    assert owners(db, queries, 'sales@alias.example') == []
