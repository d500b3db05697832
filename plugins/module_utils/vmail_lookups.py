# -*- coding: utf-8 -*-
# Copyright: vmail.mailserver developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The lookup queries Postfix and Dovecot run, built from the schema description.

Postfix's ``mysql:`` tables (mysql_table(5)) and Dovecot's SQL passdb/userdb
read the account tables that :mod:`vmail_schema` describes. Their queries are
built here, from the same :class:`~vmail_schema.Table` and
:class:`~vmail_schema.Column` objects the modules use, so a column added by a
migration reaches the servers from one place. The roles call these functions
through the ``vmail.mailserver.lookup_queries`` filter.

Values are never formatted in here: the servers substitute their own
expansions, which they SQL-quote themselves. Postfix: ``%s`` is the whole
lookup key, ``%u`` its local part and ``%d`` its domain part; a query using
``%u`` is not run for a key with an empty local part (``@domain``), one using
``%d`` not for a key without a domain (mysql_table(5)). Dovecot 2.3:
``%u`` is the user name; Dovecot 2.4: ``%{user}`` (doc.dovecot.org, "SQL").

Two levels exist:

- schema version 1 to 3 (the guide's tables, plus unique keys): the guide's
  own queries ("Email with Postfix, Dovecot, and MySQL");
- schema version 4 (the account model, :data:`vmail_schema.ACCOUNT_MODEL`):
  the ``active`` flags of domains, users and aliases are obeyed, alias domains
  (``virtual_domains.alias_of``) rewrite to the target domain, and disabled
  mailboxes are refused at RCPT time;
- schema version 5 (mail nodes, :data:`vmail_schema.NODES`), given the name of
  the node the server runs on: a mailbox whose node (``virtual_users.host``,
  else ``virtual_domains.host``) is another node gets a Postfix transport to
  that node's LMTP service and a Dovecot passdb answer that proxies its logins
  there. The node name is validated as a host name
  (:func:`vmail_address.normalize_host`, letters, digits, dots and hyphens
  only) before it becomes an SQL string literal.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import re

from ansible_collections.vmail.mailserver.plugins.module_utils.vmail_address import normalize_host
from ansible_collections.vmail.mailserver.plugins.module_utils.vmail_schema import (
    ACCOUNT_MODEL, ALIASES, DOMAINS, LAST_LOGIN, NODES, QUOTA_USAGE, SCHEMA, STATS_TABLES, USERS)

# The text of a refusal of a disabled mailbox or domain: RFC 3463 X.2.1 "Mailbox disabled, not
# accepting messages", as an access(5) action (a 5NN code and text reject the recipient).
DISABLED_ACTION = '550 5.2.1 Mailbox disabled, not accepting messages'

# The refusal of mail for a full mailbox: RFC 3463 X.2.2 "Mailbox full" with the 552 reply code of
# RFC 5321 (4.5.3.1.10: 552 for a recipient over its storage allocation). Dovecot's quota-status
# service answers it (quota_status_overquota) and the ``quota_access`` table below does, for aliases.
QUOTA_FULL_ACTION = '552 5.2.2 Mailbox full'

# The Postfix lookup tables, in the order the postfix role writes them.
# Send-as (smtpd_sender_login_maps, the ``sender_login`` and ``alias_domain_senders`` queries): a
# login may use as sender (envelope, and so the From header, which rspamd requires to be the
# envelope sender) its own mailbox address, that address in every alias domain of its domain, and
# every address that is not a mailbox but an active alias with the login among its destinations
# (a catch-all ``@domain`` alias: every address of the domain that is neither a mailbox nor another
# alias). An alias whose source is itself a mailbox (``alice@ -> alice@, asst@``, a copy to an
# assistant) grants nothing: only alice sends as alice@. There is no per-alias flag.
SENDER_LOGIN_NOTE = 'send-as: own mailbox, its alias-domain forms, and aliases whose source is not a mailbox'

POSTFIX_MAPS = ('domains', 'mailboxes', 'aliases', 'email2email', 'alias_domains', 'sender_login',
                'alias_domain_senders', 'recipient_access', 'quota_access')

# Tables only the account model has (the postfix role leaves them out below it).
ACCOUNT_MODEL_MAPS = ('alias_domains', 'alias_domain_senders', 'recipient_access', 'quota_access')

# How a proxy reaches the node that stores a mailbox: STARTTLS on the node's plain ports (IMAP 143,
# POP3 110, ManageSieve 4190), so the password forwarded to the node is encrypted (Dovecot 2.4 refuses
# a cleartext login there even from login_trusted_networks). ``yes`` (not ``any-cert``): the proxy
# verifies the node's certificate against ``ssl_client_ca_file`` and its name against ``host`` (the
# node name), so nobody on the path between the nodes can pose as a node and collect the proxied
# passwords (issue #20). The dovecot role gives each node a certificate for its node name, signed by
# the cluster's internal CA (roles/dovecot/README.md, "Mail nodes").
PROXY_STARTTLS = 'yes'

# The LMTP port of every mail node (Dovecot's inet listener, dovecot_lmtp_inet_listen), where the
# other nodes' Postfix delivers the mail of the mailboxes that node stores.
NODE_LMTP_PORT = 24

# The Postfix transport (master.cf service of the postfix role) that delivers to another node's LMTP
# port: an lmtp(8) client with lmtp_tls_security_level=secure, the internal CA and the node name
# checked against the certificate. The local LMTP over the unix socket (virtual_transport) keeps the
# plain ``lmtp`` service.
NODE_LMTP_TRANSPORT = 'lmtp-nodes'

_DOVECOT_USER = {'2.3': "'%u'", '2.4': "'%{user}'"}

# The userdb field that carries a mailbox's quota limit, per Dovecot version, as SQL over the
# ``quota`` column (bytes, 0 = unlimited). 2.3: ``quota_rule`` with the ``bytes`` limit
# (doc.dovecot.org/2.3, "Quota configuration": a limit of 0 is unlimited); 2.4: the
# ``quota_storage_size`` setting with a ``B`` suffix (doc.dovecot.org, "Quota plugin":
# "Zero is assumed to be unlimited").
_QUOTA_FIELD = {'2.3': ("CONCAT('*:bytes=', {quota})", 'quota_rule'),
                '2.4': ("CONCAT({quota}, 'B')", 'quota_storage_size')}

# The dict keys Dovecot's plugins write (below ``shared/`` or ``priv/``): the last_login plugin's
# ``last_login_key`` (its default, in each version's variable syntax) and quota_clone's fixed keys.
_LAST_LOGIN_KEY = {'2.3': 'last-login/%u', '2.4': 'last-login/%{user}'}
_QUOTA_CLONE_KEYS = (('priv/quota/storage', 'bytes'), ('priv/quota/messages', 'messages'))


def _c(table, column):
    """Return ``table.column`` after checking that the description has the column."""
    return '%s.%s' % (table.name, _n(table, column))


def _n(table, column):
    """Return the bare ``column`` name after checking that the description of ``table`` has it."""
    if column not in ('id', table.parent):
        table.column(column)
    return column


def _guide_postfix():
    d, u, a = DOMAINS, USERS, ALIASES
    return {
        'domains': "SELECT 1 FROM %s WHERE %s='%%s'" % (d.name, d.key),
        'mailboxes': "SELECT 1 FROM %s WHERE %s='%%s'" % (u.name, u.key),
        'aliases': "SELECT destination FROM %s WHERE %s='%%s'" % (a.name, a.key),
        'email2email': "SELECT %s FROM %s WHERE %s='%%s'" % (u.key, u.name, u.key),
        # Who may send as an address: its mailbox, or the destinations of an alias of that address
        # unless the address is itself a mailbox (see SENDER_LOGIN_NOTE).
        'sender_login': ("SELECT %s FROM %s WHERE %s='%%s' UNION SELECT destination FROM %s WHERE %s='%%s' "
                         "AND NOT EXISTS (SELECT 1 FROM %s x WHERE x.%s='%%s')"
                         % (u.key, u.name, u.key, a.name, a.key, u.name, u.key)),
    }


def _model_postfix():
    d, u, a = DOMAINS, USERS, ALIASES
    # A domain is live when it is active and, for an alias domain, when its target is active too.
    domain_live = ("{active} = 1 AND ({alias_of} IS NULL OR EXISTS (SELECT 1 FROM {dom} t WHERE t.id = {alias_of} "
                   "AND t.active = 1))").format(active=_c(d, 'active'), alias_of=_c(d, 'alias_of'), dom=d.name)
    # A mailbox is live when it and its domain are active.
    user_join = 'JOIN {dom} ON {dom}.id = {uid}'.format(dom=d.name, uid=_c(u, 'domain_id'))
    user_live = '%s = 1 AND %s = 1' % (_c(u, 'active'), _c(d, 'active'))
    # The target domain's address with the looked-up local part (Postfix skips these queries for '@domain').
    target = "CONCAT('%u', '@', t.name)"
    return {
        'domains': "SELECT 1 FROM {dom} WHERE {name} = '%s' AND {live}".format(
            dom=d.name, name=_c(d, 'name'), live=domain_live),
        'mailboxes': "SELECT 1 FROM {usr} {join} WHERE {email} = '%s' AND {live}".format(
            usr=u.name, join=user_join, email=_c(u, 'email'), live=user_live),
        # A disabled alias does not expand; a destination that is a disabled local mailbox is left out
        # (an alias with nothing else left is then unknown: refused at RCPT, no bounce later).
        'aliases': ("SELECT {dest} FROM {ali} JOIN {dom} ON {dom}.id = {aid} WHERE {src} = '%s' "
                    "AND {aact} = 1 AND {dact} = 1 AND NOT EXISTS (SELECT 1 FROM {usr} x "
                    "WHERE x.email = {dest} AND x.active = 0)").format(
            dest=_c(a, 'destination'), ali=a.name, dom=d.name, aid=_c(a, 'domain_id'), src=_c(a, 'source'),
            aact=_c(a, 'active'), dact=_c(d, 'active'), usr=u.name),
        'email2email': "SELECT {email} FROM {usr} {join} WHERE {email} = '%s' AND {live}".format(
            usr=u.name, join=user_join, email=_c(u, 'email'), live=user_live),
        # user@alias.example -> user@example.com, only when the target domain has that mailbox, that
        # alias or a catch-all (so an unknown local part stays unknown and is refused with 550).
        'alias_domains': (
            "SELECT {target} FROM {dom} JOIN {dom} t ON t.id = {alias_of} WHERE {name} = '%d' "
            "AND {dact} = 1 AND t.active = 1 AND (EXISTS (SELECT 1 FROM {usr} x WHERE x.email = {target} "
            "AND x.active = 1) OR EXISTS (SELECT 1 FROM {ali} y WHERE y.source IN ({target}, CONCAT('@', t.name)) "
            "AND y.active = 1))").format(
            target=target, dom=d.name, alias_of=_c(d, 'alias_of'), name=_c(d, 'name'), dact=_c(d, 'active'),
            usr=u.name, ali=a.name),
        # Who may send as an address: the mailbox itself and the destinations of an active alias (the
        # guide's query, which also answers Postfix's '@domain' step for a catch-all's owners).
        # Who may send as an address (smtpd_sender_login_maps): the mailbox of that address, else the
        # destinations of an active alias of it; an alias of an address that is a mailbox grants nothing
        # (SENDER_LOGIN_NOTE).
        'sender_login': (
            "SELECT {email} FROM {usr} WHERE {email} = '%s' "
            "UNION SELECT {dest} FROM {ali} WHERE {src} = '%s' AND {aact} = 1 "
            "AND NOT EXISTS (SELECT 1 FROM {usr} x WHERE x.email = '%s')").format(
            email=_c(u, 'email'), usr=u.name, dest=_c(a, 'destination'), ali=a.name, src=_c(a, 'source'),
            aact=_c(a, 'active')),
        # The same in the alias-domain form (user@alias.example for user@example.com). A table of its own:
        # Postfix skips a query using %u or %d for a key without a local part (mysql_table(5)), which
        # would hide the catch-all owners of the query above.
        'alias_domain_senders': (
            "SELECT x.email FROM {dom} JOIN {dom} t ON t.id = {alias_of} JOIN {usr} x ON x.email = {target} "
            "WHERE {name} = '%d' "
            "UNION SELECT y.destination FROM {dom} JOIN {dom} t ON t.id = {alias_of} "
            "JOIN {ali} y ON y.source = {target} WHERE {name} = '%d' AND y.active = 1 "
            "AND NOT EXISTS (SELECT 1 FROM {usr} z WHERE z.email = {target})").format(
            dom=d.name, alias_of=_c(d, 'alias_of'), usr=u.name, target=target, name=_c(d, 'name'), ali=a.name),
        # check_recipient_access: a disabled mailbox (or one of a disabled domain) and a disabled
        # domain are refused at RCPT with 550 5.2.1 instead of falling through to a catch-all.
        'recipient_access': (
            "SELECT '{action}' FROM {usr} {join} WHERE {email} = '%s' AND ({uact} = 0 OR {dact} = 0) "
            "UNION SELECT '{action}' FROM {dom} WHERE {name} = '%s' AND {dact} = 0").format(
            action=DISABLED_ACTION, usr=u.name, join=user_join, email=_c(u, 'email'), uact=_c(u, 'active'),
            dact=_c(d, 'active'), dom=d.name, name=_c(d, 'name')),
        # check_recipient_access after reject_unlisted_recipient: 552 5.2.2 for an address that only
        # reaches full mailboxes, so mail to it is refused at RCPT instead of being accepted and then
        # returned (backscatter). Dovecot's quota-status answers for the mailboxes themselves; it does
        # not know aliases or alias domains. "Full": a quota and a usage at or over it, as Dovecot's
        # quota_clone last wrote it into vmail_quota_usage. Two cases:
        # - an active alias whose every active destination is a full mailbox (an alias with one
        #   destination that still has room is accepted; the full mailbox's copy is deferred by
        #   Dovecot's quota_full_tempfail and waits in the queue);
        # - the alias-domain form of a full mailbox (user@alias.example for user@example.com).
        # Postfix skips a query using %u for a key without a local part (mysql_table(5)); this
        # table has no rule for such keys.
        'quota_access': (
            "SELECT '{action}' FROM {ali} WHERE {src} = '%s' AND {aact} = 1 AND NOT EXISTS ("
            "SELECT 1 FROM {ali} b WHERE b.source = {src} AND b.active = 1 AND NOT EXISTS ("
            "SELECT 1 FROM {usr} x JOIN {qu} q ON q.email = x.email WHERE x.email = b.destination "
            "AND x.{quota} > 0 AND q.{qbytes} >= x.{quota})) "
            "UNION SELECT '{action}' FROM {dom} JOIN {dom} t ON t.id = {alias_of} JOIN {usr} x ON x.email = {target} "
            "JOIN {qu} q ON q.email = x.email WHERE {name} = '%d' AND x.{quota} > 0 AND q.{qbytes} >= x.{quota}"
        ).format(action=QUOTA_FULL_ACTION, ali=a.name, src=_c(a, 'source'), aact=_c(a, 'active'), usr=u.name,
                 qu=QUOTA_USAGE.name, quota=_n(u, 'quota'), qbytes=_stats_column(QUOTA_USAGE, 'bytes'),
                 dom=d.name, alias_of=_c(d, 'alias_of'), target=target, name=_c(d, 'name')),
    }


def _node_sql(node_name):
    """Return (effective node SQL, condition SQL: the node is set and is not ``node_name``).

    The effective node of a mailbox is its own ``host``, else its domain's (both NULL: the only
    node). Needs ``virtual_users`` joined with ``virtual_domains``.
    """
    node = normalize_host(node_name)
    effective = 'COALESCE(%s, %s)' % (_c(USERS, 'host'), _c(DOMAINS, 'host'))
    return effective, "%s IS NOT NULL AND %s <> '%s'" % (effective, effective, node)


def _transport(node_name):
    """The ``transport`` table (transport_maps): ``lmtp-nodes:inet:<node>:24`` for a mailbox stored on another node."""
    effective, remote = _node_sql(node_name)
    return ("SELECT CONCAT('{transport}:inet:', {node}, ':{port}') FROM {usr} JOIN {dom} ON {dom}.id = {uid} "
            "WHERE {email} = '%s' AND {remote}").format(
        transport=NODE_LMTP_TRANSPORT, node=effective, port=NODE_LMTP_PORT, usr=USERS.name, dom=DOMAINS.name, uid=_c(USERS, 'domain_id'),
        email=_c(USERS, 'email'), remote=remote)


def postfix_queries(schema_version, node_name=None):
    """Return {map name: query} of the Postfix ``mysql:`` tables for a database at ``schema_version``.

    ``schema_version`` (int): below :data:`vmail_schema.ACCOUNT_MODEL` the guide's queries
    (keys ``domains``, ``mailboxes``, ``aliases``, ``email2email``, ``sender_login``); from it on
    also ``alias_domains`` (a ``virtual_alias_maps`` table), ``alias_domain_senders`` (a second
    ``smtpd_sender_login_maps`` table), ``recipient_access`` (a ``check_recipient_access``
    table whose result is an access(5) action: 550 5.2.1 for disabled mailboxes and domains) and
    ``quota_access`` (another one: :data:`QUOTA_FULL_ACTION` for an alias whose every destination
    is a full mailbox and for the alias-domain form of a full mailbox). From :data:`vmail_schema.NODES`
    on, with ``node_name`` (the name of the node this Postfix runs on, as stored in the ``host``
    columns) also ``transport`` (a ``transport_maps`` table: ``lmtp-nodes:inet:<node>:24`` for a final
    recipient whose mailbox is stored on another node, nothing otherwise, so the default
    ``virtual_transport`` delivers locally). Raises ValueError for a version below 1 or an invalid
    ``node_name``.
    """
    if int(schema_version) < 1:
        raise ValueError('schema version must be 1 or more, got %r' % (schema_version,))
    if int(schema_version) < ACCOUNT_MODEL:
        return _guide_postfix()
    queries = _model_postfix()
    if int(schema_version) >= NODES and node_name:
        queries['transport'] = _transport(node_name)
    return queries


# A node name for :func:`postfix_columns`: the transport query's columns do not depend on it (the
# name is only an SQL string literal there).
_ANY_NODE = 'node.invalid'
# What the column derivation reads of a query: SQL string literals (dropped first, so '%s' or
# '550 5.2.1 ...' are not taken for names), the tables after FROM and JOIN with their optional
# alias, ``qualifier.column`` references and the remaining bare words.
_SQL_STRING_RE = re.compile(r"'(?:[^'\\]|\\.|'')*'")
_SOURCE_RE = re.compile(r'\b(?:FROM|JOIN)\s+([A-Za-z_][A-Za-z0-9_]*)'
                        r'(?:\s+(?!(?:JOIN|WHERE|ON|UNION|AS|LEFT|INNER|GROUP|ORDER)\b)([A-Za-z_][A-Za-z0-9_]*))?',
                        re.IGNORECASE)
_QUALIFIED_RE = re.compile(r'\b([A-Za-z_][A-Za-z0-9_]*)\.([A-Za-z_][A-Za-z0-9_]*)\b')
_WORD_RE = re.compile(r'\b[A-Za-z_][A-Za-z0-9_]*\b')


def _columns_at(schema_version):
    """Return {table name: set of column names} of every table the schema has at ``schema_version``."""
    out = {}
    for table in SCHEMA:
        cols = set(['id'] + ([table.parent] if table.parent else []) + [c.name for c in table.columns])
        cols.update(c.name for c in table.optional if (c.since or 0) <= schema_version)
        out[table.name] = cols
    for table in STATS_TABLES:
        if table.since <= schema_version:
            out[table.name] = set(['email'] + [c[0] for c in table.columns])
    return out


def query_columns(query, schema_version):
    """Return {table name: set of column names} that the SQL ``query`` reads, at ``schema_version``.

    Reads the lookup queries of this module (not SQL at large): tables come after ``FROM`` or
    ``JOIN``, optionally followed by an alias; ``alias.column`` and ``table.column`` name the
    column of that table; a bare word that is a column of a table the query reads counts for each
    such table (so an ambiguous bare name is granted on all of them, never on none). Raises
    ValueError for a table, alias or qualified column the schema does not have at that version,
    and for an alias that names two tables, so a query this reading would misread fails instead
    of yielding a short list.
    """
    known = _columns_at(int(schema_version))
    text = _SQL_STRING_RE.sub("''", query)
    names = {}
    for table, alias in _SOURCE_RE.findall(text):
        if table not in known:
            raise ValueError('the query reads table %s, which schema version %s does not have: %s'
                             % (table, schema_version, query))
        for name in (table, alias):
            if name and names.setdefault(name, table) != table:
                raise ValueError('%s names both %s and %s in: %s' % (name, names[name], table, query))
    used = dict((table, set()) for table in names.values())

    def qualified(match):
        prefix, column = match.group(1), match.group(2)
        if prefix not in names:
            raise ValueError('%s.%s: %s is no table or alias of the query: %s' % (prefix, column, prefix, query))
        if column not in known[names[prefix]]:
            raise ValueError('%s.%s: schema version %s has no column %s in %s'
                             % (prefix, column, schema_version, column, names[prefix]))
        used[names[prefix]].add(column)
        return ' '

    rest = _QUALIFIED_RE.sub(qualified, text)
    for word in _WORD_RE.findall(rest):
        if word not in names:
            for table in used:
                if word in known[table]:
                    used[table].add(word)
    return used


def postfix_columns(schema_version):
    """Return {table name: sorted column names} that Postfix's lookup queries read, for a database at ``schema_version``.

    The union over every query of :func:`postfix_queries` for each version from 1 to
    ``schema_version`` (the postfix role may be configured for an older version than the
    database has), with a node name so that the transport table counts. This is what the
    Postfix DB account is granted (column-level SELECT): the ``password`` column is not among
    it. Raises ValueError for a version below 1 or a query :func:`query_columns` cannot read.
    """
    version = int(schema_version)
    if version < 1:
        raise ValueError('schema version must be 1 or more, got %r' % (schema_version,))
    out = {}
    for at in range(1, version + 1):
        for query in postfix_queries(at, _ANY_NODE).values():
            for table, columns in query_columns(query, version).items():
                out.setdefault(table, set()).update(columns)
    return dict((table, sorted(columns)) for table, columns in sorted(out.items()) if columns)


def dovecot_queries(schema_version, dovecot_version, node_name=None):
    """Return the queries of Dovecot's SQL passdb and userdb for ``schema_version``.

    ``dovecot_version``: ``'2.3'`` or ``'2.4'`` (their variable syntax differs; anything
    starting with 2.3 counts as 2.3, anything newer as 2.4). Keys:

    - ``password_query``: the passdb, returning ``user`` and ``password``; from the account
      model on only for an active mailbox of an active domain, so a disabled account cannot log
      in over IMAP, POP3, ManageSieve or SMTP AUTH (Postfix asks Dovecot's auth service);
    - from the account model on, ``user_query`` and ``iterate_query`` for an SQL userdb: the
      user query returns the mailbox's quota limit (``quota_field``: ``quota_rule`` on 2.3,
      ``quota_storage_size`` on 2.4; 0 bytes = unlimited) for every mailbox, active or not (so
      doveadm and delivery checks still see a disabled mailbox's mail); uid, gid and home stay
      in the configuration (userdb ``default_fields`` on 2.3, ``fields`` on 2.4). The iterate
      query lists every mailbox for ``doveadm -A``;
    - ``quota_status_overquota``: the reply of Dovecot's quota-status service for a full
      mailbox (:data:`QUOTA_FULL_ACTION`, the same text as Postfix's ``quota_access`` table).

    From :data:`vmail_schema.NODES` on, with ``node_name`` (the node this Dovecot runs on), the
    passdb also returns ``proxy`` (``Y``), ``host`` (the mailbox's node) and ``starttls``
    (:data:`PROXY_STARTTLS`) for a mailbox stored on another node, so that IMAP, POP3 and ManageSieve logins are proxied there (the password is
    checked here and again by that node); both are NULL, which Dovecot ignores, otherwise.

    Below the account model the guide's passdb query only (the guide's tables have no quota;
    the dovecot role keeps a static userdb there). Raises ValueError for a version below 1 or an
    invalid ``node_name``.
    """
    if int(schema_version) < 1:
        raise ValueError('schema version must be 1 or more, got %r' % (schema_version,))
    family = '2.3' if str(dovecot_version).startswith('2.3') else '2.4'
    user = _DOVECOT_USER[family]
    u, d = USERS, DOMAINS
    if int(schema_version) < ACCOUNT_MODEL:
        password = 'SELECT %s AS user, password FROM %s WHERE %s = %s' % (u.key, u.name, u.key, user)
        return {'password_query': password}
    proxy = ''
    if int(schema_version) >= NODES and node_name:
        effective, remote = _node_sql(node_name)
        proxy = (", IF({remote}, 'Y', NULL) AS proxy, IF({remote}, {node}, NULL) AS host, "
                 "IF({remote}, '{starttls}', NULL) AS starttls").format(
                     remote=remote, node=effective, starttls=PROXY_STARTTLS)
    password = ('SELECT {email} AS user, {pw} AS password{proxy} FROM {usr} JOIN {dom} ON {dom}.id = {uid} '
                'WHERE {email} = {user} AND {uact} = 1 AND {dact} = 1').format(
        email=_c(u, 'email'), pw=_c(u, 'password'), proxy=proxy, usr=u.name, dom=d.name, uid=_c(u, 'domain_id'),
        user=user, uact=_c(u, 'active'), dact=_c(d, 'active'))
    expr, field = _QUOTA_FIELD[family]
    user_query = 'SELECT {expr} AS {field} FROM {usr} WHERE {email} = {user}'.format(
        expr=expr.format(quota=_c(u, 'quota')), field=field, usr=u.name, email=_c(u, 'email'), user=user)
    iterate = 'SELECT {email} AS user FROM {usr}'.format(email=_c(u, 'email'), usr=u.name)
    return {'password_query': password, 'user_query': user_query, 'iterate_query': iterate,
            'quota_field': field, 'quota_status_overquota': QUOTA_FULL_ACTION}


def _stats_column(table, name):
    """Return ``name`` after checking that the :class:`~vmail_schema.StatsTable` ``table`` has that column."""
    if name not in [c[0] for c in table.columns]:
        raise KeyError('%s has no column %s' % (table.name, name))
    return name


def dovecot_dict_maps(dovecot_version):
    """Return the SQL dict maps of Dovecot's dict server and the ``last_login_key`` that matches them.

    Returns {'last_login_key': key, 'maps': [map, ...]}. ``last_login_key`` is the key the
    ``last_login`` plugin writes below ``shared/`` (``last-login/%u`` on 2.3, ``last-login/%{user}``
    on 2.4; ``dovecot_version`` as for :func:`dovecot_queries`). Each map is a dict with
    ``pattern`` (the dict key, ``$user`` a variable), ``table``, ``value_field``, ``value_type``
    (``uint``), ``username_field`` (the column of the user name for a ``priv/`` key, else None)
    and ``fields`` (a list of [column, variable] for a ``shared/`` key):

    - ``shared/last-login/$user``: the ``last_login`` plugin's Unix time of the last login into
      :data:`vmail_schema.LAST_LOGIN` (``vmail_last_login.last_login``, keyed by ``email``);
    - ``priv/quota/storage`` and ``priv/quota/messages``: the ``quota_clone`` plugin's copy of the
      quota usage (bytes, messages) into :data:`vmail_schema.QUOTA_USAGE` (``vmail_quota_usage``).

    Dovecot's dict-sql turns a write into ``INSERT ... ON DUPLICATE KEY UPDATE`` on these tables
    (they exist from schema version 4; the lookup account may INSERT, UPDATE and DELETE on them).
    """
    family = '2.3' if str(dovecot_version).startswith('2.3') else '2.4'
    maps = [{'pattern': 'shared/last-login/$user', 'table': LAST_LOGIN.name,
             'value_field': _stats_column(LAST_LOGIN, 'last_login'), 'value_type': 'uint',
             'username_field': None, 'fields': [['email', '$user']]}]
    for pattern, column in _QUOTA_CLONE_KEYS:
        maps.append({'pattern': pattern, 'table': QUOTA_USAGE.name,
                     'value_field': _stats_column(QUOTA_USAGE, column), 'value_type': 'uint',
                     'username_field': 'email', 'fields': []})
    return {'last_login_key': _LAST_LOGIN_KEY[family], 'maps': maps}
