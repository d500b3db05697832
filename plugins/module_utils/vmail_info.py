# -*- coding: utf-8 -*-
# Copyright: vmail.mailserver developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What mail_info reads and reports: rows with the optional columns, quota usage and last logins.

The reads follow the one schema description (:mod:`vmail_schema`): the
optional columns (``active``, ``quota``, ``default_quota``, ``alias_of``,
``host``) are read only when they exist, and the tables Dovecot writes
(``vmail_quota_usage``, ``vmail_last_login``) only when schema migration 4
created them, so a version-3 database reports without the new keys.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import datetime

from ansible_collections.vmail.mailserver.plugins.module_utils import vmail_schema as schema

DAY = 86400


def iso_utc(seconds):
    """Return Unix ``seconds`` as an ISO 8601 UTC string (``2026-11-22T07:30:00Z``); None for None or 0 (never)."""
    if not seconds:
        return None
    return datetime.datetime.fromtimestamp(int(seconds), tz=datetime.timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ')


def is_inactive(last_login, days, now):
    """True when ``last_login`` (Unix seconds, None or 0 = never) is at least ``days`` days before ``now``."""
    return not last_login or int(last_login) <= now - days * DAY


def existing_stats_tables(cursor):
    """Return the names of :data:`vmail_schema.STATS_TABLES` that exist in the current database."""
    names = [t.name for t in schema.STATS_TABLES]
    cursor.execute('SELECT TABLE_NAME AS t FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() '
                   'AND TABLE_NAME IN (%s)' % ', '.join(['%s'] * len(names)), names)
    return set(r['t'] for r in cursor.fetchall())


def read_rows(cursor, widths):
    """Read every domain, mailbox and alias row with the optional columns that exist.

    Returns (domains, users, aliases, columns) where ``columns`` is {kind:
    [optional column names read]}; rows are dicts as selected by
    ``vmail_schema.select_sql`` (domains ordered by name then id).
    """
    columns = dict((t.kind, [c.name for c in schema.available_columns(t, widths)]) for t in schema.SCHEMA)
    out = []
    for table in schema.SCHEMA:
        cursor.execute(schema.select_sql(table, extra=columns[table.kind]))
        out.append(list(cursor.fetchall()))
    domains, users, aliases = out
    domains.sort(key=lambda r: (r['name'], r['id']))
    return domains, users, aliases, columns


def read_stats(cursor, tables):
    """Return ({email: (bytes, messages)}, {email: last_login seconds}) from the Dovecot tables in ``tables``."""
    usage, logins = {}, {}
    if schema.QUOTA_USAGE.name in tables:
        cursor.execute('SELECT `email`, `bytes`, `messages` FROM `vmail_quota_usage`')
        usage = dict((r['email'].lower(), (int(r['bytes']), int(r['messages']))) for r in cursor.fetchall())
    if schema.LAST_LOGIN.name in tables:
        cursor.execute('SELECT `email`, `last_login` FROM `vmail_last_login`')
        logins = dict((r['email'].lower(), int(r['last_login'])) for r in cursor.fetchall())
    return usage, logins


def user_details(row, usage, logins, columns, tables):
    """The account-model keys of one mailbox: ``quota`` (bytes), ``active``, ``usage_bytes``,
    ``usage_messages`` (None when Dovecot has not reported), ``last_login`` (ISO 8601 UTC or None).

    Keys whose column or table does not exist are left out.
    """
    out = {}
    if 'quota' in columns.get('users', ()):
        out['quota'] = int(row['quota'])
    if 'active' in columns.get('users', ()):
        out['active'] = bool(row['active'])
    if 'host' in columns.get('users', ()):
        out['host'] = row['host']
    key = row['email'].lower()
    if schema.QUOTA_USAGE.name in tables:
        used = usage.get(key)
        out['usage_bytes'], out['usage_messages'] = used if used else (None, None)
    if schema.LAST_LOGIN.name in tables:
        out['last_login'] = iso_utc(logins.get(key))
    return out


def domain_details(row, names, columns):
    """The account-model keys of one domain (``active``, ``default_quota``, ``alias_of`` as a name, ``host``)
    that exist."""
    out = {}
    for name in columns.get('domains', ()):
        value = row[name]
        if name == 'active':
            value = bool(value)
        elif name == 'alias_of':
            value = names.get(value) if value is not None else None
        elif schema.DOMAINS.column(name).kind == 'host':
            pass
        else:
            value = int(value)
        out[name] = value
    return out
