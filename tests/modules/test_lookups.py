# -*- coding: utf-8 -*-
"""The Postfix and Dovecot lookup queries (vmail_lookups) run against a real MariaDB.

The queries are expanded the way Postfix's mysql_table(5) and Dovecot's SQL driver expand them
(values SQL-quoted, a Postfix query with %d skipped for a key without '@'), then run on accounts
written by mail_accounts, on the guide schema and on the account model (schema version 4).
"""

import pymysql
import pytest

from conftest import DB, ROOT_PW, SOCKET, run_module
from test_mail_accounts import ok

from ansible_collections.vmail.mailserver.plugins.module_utils import vmail_lookups

ROOT = dict(login_unix_socket=SOCKET, login_user='root', login_password=ROOT_PW, login_db=DB,
            config_file='/nonexistent.cnf')
DISABLED = vmail_lookups.DISABLED_ACTION

ACCOUNTS = {
    'domains': [{'name': 'example.com'}, {'name': 'alias.example', 'alias_of': 'example.com'},
                {'name': 'off.example', 'active': False}, {'name': 'offalias.example', 'alias_of': 'off.example'},
                {'name': 'other.example'}],
    'users': [{'email': 'alice@example.com', 'password': 'pw-alice'},
              {'email': 'bob@example.com', 'password': 'pw-bob', 'active': False},
              {'email': 'carol@off.example', 'password': 'pw-carol'},
              {'email': 'dave@other.example', 'password': 'pw-dave'}],
    'aliases': [{'source': 'info@example.com', 'destination': ['alice@example.com', 'bob@example.com']},
                {'source': 'bobonly@example.com', 'destination': ['bob@example.com']},
                {'source': 'sales@example.com', 'destination': ['alice@example.com'], 'active': False},
                {'source': 'ext@example.com', 'destination': ['someone@elsewhere.example']},
                {'source': '@other.example', 'destination': ['dave@other.example']}],
}


def expand(query, key):
    """Expand %s/%u/%d like mysql_table(5); None when Postfix skips the query.

    mysql_table(5): %u is the local part ("If the localpart is empty, the query is suppressed"),
    %d the domain ("If the input key is not of the form user@domain, or if the domain is empty,
    the query is suppressed").
    """
    local, at, domain = key.rpartition('@')
    if not at:
        local, domain = key, None
    if ('%d' in query and not domain) or ('%u' in query and local == ''):
        return None
    quote = pymysql.converters.escape_string
    return query.replace('%s', quote(key)).replace('%u', quote(local)).replace('%d', quote(domain or ''))


class Lookup(object):
    def __init__(self, version, node_name=None):
        self.conn = pymysql.connect(unix_socket=SOCKET, user='root', password=ROOT_PW, database=DB, autocommit=True)
        self.postfix = vmail_lookups.postfix_queries(version, node_name)
        self.version = version
        self.node_name = node_name

    def __call__(self, table, key):
        sql = expand(self.postfix[table], key)
        if sql is None:
            return []
        with self.conn.cursor() as cur:
            cur.execute(sql)
            return sorted(str(r[0]) for r in cur.fetchall())

    def login(self, email, dovecot_version, fields=False):
        """The passdb rows for ``email``: the user names, or with ``fields`` {field: value} without NULLs
        (Dovecot ignores a NULL field)."""
        query = vmail_lookups.dovecot_queries(self.version, dovecot_version, self.node_name)['password_query']
        value = "'%s'" % pymysql.converters.escape_string(email)
        sql = query.replace("'%u'", value).replace("'%{user}'", value)
        with self.conn.cursor(pymysql.cursors.DictCursor if fields else None) as cur:
            cur.execute(sql)
            if fields:
                return [dict((k, v) for k, v in r.items() if v is not None and k != 'password') for r in cur.fetchall()]
            return [r[0] for r in cur.fetchall()]


@pytest.fixture
def model(db):
    r = run_module('mail_schema', dict(ROOT), login=False)
    assert r.rc == 0 and r['version'] == 5, r
    ok(run_module('mail_accounts', ACCOUNTS))
    return Lookup(4)


def test_domains_obey_active_and_alias_targets(model):
    assert model('domains', 'example.com') == ['1']
    assert model('domains', 'alias.example') == ['1']
    assert model('domains', 'off.example') == []
    assert model('domains', 'offalias.example') == []     # its target is disabled
    assert model('domains', 'unknown.example') == []


def test_mailboxes_and_email2email_only_active(model):
    assert model('mailboxes', 'alice@example.com') == ['1']
    assert model('email2email', 'alice@example.com') == ['alice@example.com']
    for key in ('bob@example.com', 'carol@off.example', 'alice@alias.example'):
        assert model('mailboxes', key) == [] and model('email2email', key) == [], key


def test_aliases_skip_disabled_aliases_and_disabled_destinations(model):
    assert model('aliases', 'info@example.com') == ['alice@example.com']
    assert model('aliases', 'bobonly@example.com') == []   # nothing left: unknown, refused at RCPT
    assert model('aliases', 'sales@example.com') == []
    assert model('aliases', 'ext@example.com') == ['someone@elsewhere.example']
    assert model('aliases', '@other.example') == ['dave@other.example']


def test_alias_domain_rewrites_only_what_the_target_has(model):
    assert model('alias_domains', 'alice@alias.example') == ['alice@example.com']
    assert model('alias_domains', 'info@alias.example') == ['info@example.com']
    assert model('alias_domains', 'nobody@alias.example') == []
    assert model('alias_domains', 'bob@alias.example') == []       # disabled mailbox
    assert model('alias_domains', 'sales@alias.example') == []     # disabled alias
    assert model('alias_domains', '@alias.example') == []          # the catch-all step of Postfix
    assert model('alias_domains', 'alice@example.com') == []       # not an alias domain
    assert model('alias_domains', 'carol@offalias.example') == []  # disabled target domain
    assert model('alias_domains', 'alice') is not None and model('alias_domains', 'alice') == []


def test_alias_domain_reaches_the_targets_catch_all(model):
    ok(run_module('mail_domain', {'name': 'alias2.example', 'alias_of': 'other.example'}))
    assert model('alias_domains', 'anyone@alias2.example') == ['anyone@other.example']
    assert model('aliases', '@other.example') == ['dave@other.example']


def senders(model, key):
    """Postfix's smtpd_sender_login_maps: the first of the two tables that answers."""
    return model('sender_login', key) or model('alias_domain_senders', key)


def test_sender_login_accepts_the_alias_domain_form(model):
    assert senders(model, 'alice@example.com') == ['alice@example.com']
    assert senders(model, 'alice@alias.example') == ['alice@example.com']
    assert senders(model, 'info@alias.example') == ['alice@example.com', 'bob@example.com']
    assert senders(model, 'sales@example.com') == []        # disabled alias
    assert senders(model, 'sales@alias.example') == []
    assert senders(model, 'nobody@alias.example') == []
    assert senders(model, 'dave@other.example') == ['dave@other.example']


def test_sender_login_keeps_the_catch_all_owner(model):
    """Postfix's '@domain' step must still find the owner of a catch-all (the guide's behaviour)."""
    assert model('sender_login', '@other.example') == ['dave@other.example']
    assert model('alias_domain_senders', '@alias.example') == []   # skipped by Postfix, not an error


def test_recipient_access_refuses_disabled_mailboxes_and_domains(model):
    assert model('recipient_access', 'bob@example.com') == [DISABLED]
    assert model('recipient_access', 'carol@off.example') == [DISABLED]
    assert model('recipient_access', 'off.example') == [DISABLED]     # the domain step of access(5)
    for key in ('alice@example.com', 'example.com', 'info@example.com', 'nobody@example.com', 'alice@'):
        assert model('recipient_access', key) == [], key
    assert DISABLED.split()[0] == '550' and DISABLED.split()[1] == '5.2.1'


@pytest.mark.parametrize('dovecot_version', ['2.3', '2.4'])
def test_password_query_only_active_accounts(model, dovecot_version):
    assert model.login('alice@example.com', dovecot_version) == ['alice@example.com']
    assert model.login('bob@example.com', dovecot_version) == []      # disabled mailbox
    assert model.login('carol@off.example', dovecot_version) == []    # disabled domain
    assert model.login("x' OR '1'='1", dovecot_version) == []


def test_reenabling_restores_every_lookup(model):
    ok(run_module('mail_user', {'email': 'bob@example.com', 'active': True}))
    ok(run_module('mail_domain', {'name': 'off.example', 'active': True}))
    assert model('mailboxes', 'bob@example.com') == ['1']
    assert model('aliases', 'bobonly@example.com') == ['bob@example.com']
    assert model('recipient_access', 'bob@example.com') == []
    assert model('domains', 'offalias.example') == ['1']
    assert model('alias_domains', 'carol@offalias.example') == ['carol@off.example']
    assert model.login('carol@off.example', '2.4') == ['carol@off.example']


def test_guide_queries_on_the_guide_schema(db):
    """Below the account model the guide's own queries run on the guide's literal tables."""
    db.execute("INSERT INTO virtual_domains (name) VALUES ('example.com')")
    db.execute("INSERT INTO virtual_users (domain_id, password, email) VALUES (1, 'x', 'alice@example.com')")
    db.execute("INSERT INTO virtual_aliases (domain_id, source, destination) VALUES (1, 'info@example.com', "
               "'alice@example.com')")
    guide = Lookup(1)
    assert set(guide.postfix) == {'domains', 'mailboxes', 'aliases', 'email2email', 'sender_login'}
    assert guide('domains', 'example.com') == ['1'] and guide('mailboxes', 'alice@example.com') == ['1']
    assert guide('aliases', 'info@example.com') == ['alice@example.com']
    assert guide('sender_login', 'info@example.com') == ['alice@example.com']
    assert guide.login('alice@example.com', '2.3') == ['alice@example.com']


def test_bad_versions():
    with pytest.raises(ValueError):
        vmail_lookups.postfix_queries(0)
    with pytest.raises(ValueError):
        vmail_lookups.dovecot_queries(0, '2.4')


def _dict_write(conn, dict_map, key, user, value):
    """Write ``value`` for dict ``key`` the way Dovecot's dict-sql does (INSERT ... ON DUPLICATE KEY UPDATE)."""
    pattern = dict_map['pattern']
    cols, vals = [], []
    if dict_map['username_field']:
        assert key == pattern and pattern.startswith('priv/'), (key, pattern)
        cols.append(dict_map['username_field'])
        vals.append(user)
    else:
        prefix = pattern.split('$', 1)[0]
        assert pattern.startswith('shared/') and key.startswith(prefix), (key, pattern)
        variables = {'$user': key[len(prefix):]}
        for column, variable in dict_map['fields']:
            cols.append(column)
            vals.append(variables[variable])
    cols.append(dict_map['value_field'])
    vals.append(int(value))
    sql = 'INSERT INTO `%s` (%s) VALUES (%s) ON DUPLICATE KEY UPDATE `%s` = VALUES(`%s`)' % (
        dict_map['table'], ', '.join('`%s`' % c for c in cols), ', '.join(['%s'] * len(vals)),
        dict_map['value_field'], dict_map['value_field'])
    with conn.cursor() as cur:
        cur.execute(sql, vals)


@pytest.mark.parametrize('dovecot_version', ['2.3', '2.4'])
def test_dict_maps_write_what_mail_info_reads(model, dovecot_version):
    """The dict maps point at the tables and columns migration 4 created, and what Dovecot writes
    through them (last login, then quota usage twice) is what mail_info reports."""
    from ansible_collections.vmail.mailserver.plugins.module_utils import vmail_info

    spec = vmail_lookups.dovecot_dict_maps(dovecot_version)
    maps = dict((m['pattern'], m) for m in spec['maps'])
    assert set(maps) == {'shared/last-login/$user', 'priv/quota/storage', 'priv/quota/messages'}
    # The plugin's key, once Dovecot has put the user name in, matches the shared map.
    user_var = '%u' if dovecot_version == '2.3' else '%{user}'
    assert spec['last_login_key'] == 'last-login/' + user_var
    key = 'shared/' + spec['last_login_key'].replace(user_var, 'alice@example.com')
    _dict_write(model.conn, maps['shared/last-login/$user'], key, None, 1700000000)
    for bytes_, messages in ((1000, 1), (5432, 3)):  # a later copy replaces the earlier one
        _dict_write(model.conn, maps['priv/quota/storage'], 'priv/quota/storage', 'alice@example.com', bytes_)
        _dict_write(model.conn, maps['priv/quota/messages'], 'priv/quota/messages', 'alice@example.com', messages)
    with model.conn.cursor(pymysql.cursors.DictCursor) as cur:
        tables = vmail_info.existing_stats_tables(cur)
        usage, logins = vmail_info.read_stats(cur, tables)
    assert usage == {'alice@example.com': (5432, 3)}
    assert logins == {'alice@example.com': 1700000000}


def test_dict_maps_follow_the_schema_description(monkeypatch):
    """Table and column names come from vmail_schema: a renamed column fails instead of drifting."""
    from ansible_collections.vmail.mailserver.plugins.module_utils import vmail_schema

    spec = vmail_lookups.dovecot_dict_maps('2.3')
    assert {m['table'] for m in spec['maps']} == {vmail_schema.LAST_LOGIN.name, vmail_schema.QUOTA_USAGE.name}
    renamed = vmail_schema.StatsTable('vmail_last_login', (('seen', 'INT UNSIGNED NOT NULL DEFAULT 0', ()),), since=4)
    monkeypatch.setattr(vmail_lookups, 'LAST_LOGIN', renamed)
    with pytest.raises(KeyError):
        vmail_lookups.dovecot_dict_maps('2.4')


FULL = vmail_lookups.QUOTA_FULL_ACTION


def _usage(conn, email, nbytes):
    """Write a mailbox's usage the way Dovecot's quota_clone does (through the dict maps)."""
    maps = dict((m['pattern'], m) for m in vmail_lookups.dovecot_dict_maps('2.4')['maps'])
    _dict_write(conn, maps['priv/quota/storage'], 'priv/quota/storage', email, nbytes)


def test_quota_access_refuses_aliases_that_only_reach_full_mailboxes(model):
    """552 5.2.2 at RCPT for an alias whose every destination is full, never for one with room left."""
    ok(run_module('mail_user', {'email': 'alice@example.com', 'quota': 10000}))
    ok(run_module('mail_user', {'email': 'erin@example.com', 'password': 'pw-erin', 'quota': 10000}))
    ok(run_module('mail_alias', {'source': 'full@example.com', 'destination': ['alice@example.com']}))
    ok(run_module('mail_alias', {'source': 'mixed@example.com',
                                 'destination': ['alice@example.com', 'erin@example.com']}))
    ok(run_module('mail_alias', {'source': 'outside@example.com',
                                 'destination': ['alice@example.com', 'someone@elsewhere.example']}))
    for key in ('full@example.com', 'mixed@example.com', 'alice@alias.example'):
        assert model('quota_access', key) == [], key   # no usage recorded yet
    _usage(model.conn, 'alice@example.com', 9999)
    assert model('quota_access', 'full@example.com') == []          # one byte left
    _usage(model.conn, 'alice@example.com', 10000)
    assert model('quota_access', 'full@example.com') == [FULL]
    assert model('quota_access', 'alice@alias.example') == [FULL]   # the alias-domain form
    assert model('quota_access', 'mixed@example.com') == []         # erin still has room
    assert model('quota_access', 'outside@example.com') == []       # a remote destination has room
    _usage(model.conn, 'erin@example.com', 20000)
    assert model('quota_access', 'mixed@example.com') == [FULL]
    # The mailbox itself is Dovecot's quota-status service's answer, not this table's; domain keys,
    # disabled aliases and unknown addresses never match.
    for key in ('alice@example.com', 'example.com', 'alias.example', 'nobody@example.com', 'nobody@alias.example'):
        assert model('quota_access', key) == [], key
    ok(run_module('mail_alias', {'source': 'full@example.com', 'destination': ['alice@example.com'],
                                 'active': False}))
    assert model('quota_access', 'full@example.com') == []
    # Unlimited (quota 0) is never full, whatever the usage.
    ok(run_module('mail_user', {'email': 'alice@example.com', 'quota': 0}))
    assert model('quota_access', 'alice@alias.example') == []
    assert model('quota_access', 'mixed@example.com') == []
    assert FULL.split()[:2] == ['552', '5.2.2']


@pytest.mark.parametrize('dovecot_version', ['2.3', '2.4'])
def test_userdb_returns_each_mailboxs_quota(model, dovecot_version):
    """The SQL userdb gives Dovecot the limit in bytes (0 = unlimited) for every mailbox, active or not."""
    queries = vmail_lookups.dovecot_queries(4, dovecot_version)
    ok(run_module('mail_user', {'email': 'alice@example.com', 'quota': '2M'}))

    def value(email):
        return "'%s'" % pymysql.converters.escape_string(email)

    rows = {}
    for email in ('alice@example.com', 'bob@example.com', 'dave@other.example', "x' OR '1'='1"):
        sql = queries['user_query'].replace("'%u'", value(email)).replace("'%{user}'", value(email))
        with model.conn.cursor(pymysql.cursors.DictCursor) as cur:
            cur.execute(sql)
            rows[email] = list(cur.fetchall())
    field = queries['quota_field']
    if dovecot_version == '2.3':
        assert field == 'quota_rule'
        assert rows['alice@example.com'] == [{field: '*:bytes=2097152'}]
        assert rows['dave@other.example'] == [{field: '*:bytes=0'}]
    else:
        assert field == 'quota_storage_size'
        assert rows['alice@example.com'] == [{field: '2097152B'}]
        assert rows['dave@other.example'] == [{field: '0B'}]
    assert len(rows['bob@example.com']) == 1          # disabled, still known to the userdb
    assert rows["x' OR '1'='1"] == []
    with model.conn.cursor() as cur:
        cur.execute(queries['iterate_query'])
        assert sorted(r[0] for r in cur.fetchall()) == sorted(u['email'] for u in ACCOUNTS['users'])
    assert queries['quota_status_overquota'] == FULL


def test_guide_schema_has_no_userdb_queries():
    """Below the account model the dovecot role keeps its static userdb (the guide has no quota column)."""
    for version in (1, 2, 3):
        assert set(vmail_lookups.dovecot_queries(version, '2.3')) == {'password_query'}
        assert 'quota_access' not in vmail_lookups.postfix_queries(version)


# ---------------------------------------------------------------- mail nodes (schema version 5)

NODES = {
    'domains': [{'name': 'example.com', 'host': 'm1.example.net'}, {'name': 'two.example', 'host': 'm2.example.net'},
                {'name': 'plain.example'}, {'name': 'alias.example', 'alias_of': 'two.example'}],
    'users': [{'email': 'home@example.com', 'password': 'pw'},                            # domain's node m1
              {'email': 'away@example.com', 'password': 'pw', 'host': 'm2.example.net'},  # own node m2
              {'email': 'back@two.example', 'password': 'pw', 'host': 'm1.example.net'},  # back on m1
              {'email': 'bo@two.example', 'password': 'pw'},                              # domain's node m2
              {'email': 'solo@plain.example', 'password': 'pw'},                          # no node at all
              {'email': 'far@plain.example', 'password': 'pw', 'host': 'm3'}],
    'aliases': [{'source': 'team@example.com', 'destination': ['home@example.com', 'away@example.com']}],
}


@pytest.fixture
def nodes(db):
    assert ok(run_module('mail_schema', dict(ROOT), login=False))['version'] == 5
    ok(run_module('mail_accounts', NODES))
    return Lookup(5, 'm1.example.net')


def test_transport_sends_mailboxes_of_other_nodes_there(nodes):
    assert nodes('transport', 'away@example.com') == ['lmtp-nodes:inet:m2.example.net:24']
    assert nodes('transport', 'bo@two.example') == ['lmtp-nodes:inet:m2.example.net:24']    # the domain's node
    assert nodes('transport', 'far@plain.example') == ['lmtp-nodes:inet:m3:24']
    assert nodes('transport', 'AWAY@Example.com') == ['lmtp-nodes:inet:m2.example.net:24']  # as MariaDB compares
    # this node's mailboxes, mailboxes without a node, domains and unknown keys: the default transport
    for key in ('home@example.com', 'back@two.example', 'solo@plain.example', 'nobody@two.example',
                'two.example', '@two.example', 'team@example.com', "x' OR '1'='1"):
        assert nodes('transport', key) == [], key


def test_transport_on_the_other_node_and_without_a_node_name(nodes):
    m2 = Lookup(5, 'm2.example.net')
    assert m2('transport', 'home@example.com') == ['lmtp-nodes:inet:m1.example.net:24']
    assert m2('transport', 'back@two.example') == ['lmtp-nodes:inet:m1.example.net:24']
    assert m2('transport', 'away@example.com') == [] and m2('transport', 'bo@two.example') == []
    assert 'transport' not in Lookup(5).postfix                     # one node: no transport table
    assert 'transport' not in vmail_lookups.postfix_queries(4, 'm1.example.net')
    assert set(vmail_lookups.postfix_queries(4)) == set(Lookup(5).postfix)
    assert 'host' not in vmail_lookups.dovecot_queries(4, '2.3', 'm1.example.net')['password_query']


@pytest.mark.parametrize('dovecot_version', ['2.3', '2.4'])
def test_passdb_proxies_logins_of_other_nodes(nodes, dovecot_version):
    assert nodes.login('away@example.com', dovecot_version, fields=True) == [
        {'user': 'away@example.com', 'proxy': 'Y', 'host': 'm2.example.net', 'starttls': 'yes'}]
    assert nodes.login('bo@two.example', dovecot_version, fields=True) == [
        {'user': 'bo@two.example', 'proxy': 'Y', 'host': 'm2.example.net', 'starttls': 'yes'}]
    for email in ('home@example.com', 'back@two.example', 'solo@plain.example'):
        assert nodes.login(email, dovecot_version, fields=True) == [{'user': email}], email
    m2 = Lookup(5, 'm2.example.net')
    assert m2.login('away@example.com', dovecot_version, fields=True) == [{'user': 'away@example.com'}]
    assert m2.login('home@example.com', dovecot_version, fields=True) == [
        {'user': 'home@example.com', 'proxy': 'Y', 'host': 'm1.example.net', 'starttls': 'yes'}]
    assert Lookup(5).login('away@example.com', dovecot_version, fields=True) == [{'user': 'away@example.com'}]


def test_moving_a_mailbox_changes_its_transport_and_proxy(nodes):
    ok(run_module('mail_user', {'email': 'home@example.com', 'host': 'm2.example.net'}))
    assert nodes('transport', 'home@example.com') == ['lmtp-nodes:inet:m2.example.net:24']
    assert nodes.login('home@example.com', '2.4', fields=True)[0]['host'] == 'm2.example.net'
    ok(run_module('mail_user', {'email': 'home@example.com', 'host': ''}))          # back to the domain's node
    ok(run_module('mail_domain', {'name': 'two.example', 'host': ''}))              # the domain on no node
    assert nodes('transport', 'home@example.com') == [] and nodes('transport', 'bo@two.example') == []


@pytest.mark.parametrize('bad', ["m1' OR '1'='1", 'm1 example', '10.0.0.1', ''])
def test_node_name_is_validated(bad):
    if bad == '':
        assert 'transport' not in vmail_lookups.postfix_queries(5, bad)
        return
    with pytest.raises(ValueError, match='host name'):
        vmail_lookups.postfix_queries(5, bad)
    with pytest.raises(ValueError, match='host name'):
        vmail_lookups.dovecot_queries(5, '2.3', bad)
