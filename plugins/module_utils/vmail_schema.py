# -*- coding: utf-8 -*-
# Copyright: vmail.mailserver developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one description of the account schema and the SQL built from it.

The tables are those of the Linode guide "Email with Postfix, Dovecot, and
MySQL" (``virtual_domains``, ``virtual_users``, ``virtual_aliases``), created
by the mailsql role (``roles/mailsql/vars/main.yml``, ``__mailsql_tables``).
Every statement the account modules run is built here from these constant
descriptions; values always travel as parameters (``%s``), and identifiers
come only from this file, never from user input.

Adding an account attribute (for example a ``quota`` column added by schema
migration 4) means adding one :class:`Column` with ``since=4`` to the table's
``optional`` tuple below, the module option and its tests; the modules read
the columns that really exist from ``information_schema`` at run time
(:func:`available_columns`), so a database that has not been migrated yet
keeps working without the new attribute.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import re

_IDENT_RE = re.compile(r'^[a-z_][a-z0-9_]*$')


def _ident(name):
    if not _IDENT_RE.match(name):
        raise ValueError('invalid SQL identifier in the schema description: %r' % name)
    return '`%s`' % name


class Column(object):
    """A managed column.

    ``name``: the column name; ``width``: the guide width of a text column
    (characters; used when ``information_schema`` cannot tell) or None;
    ``since``: the schema migration version that adds the column (None for
    the guide's own columns, which must exist); ``option``: the module
    sub-option the column is set from (defaults to ``name``).
    """

    def __init__(self, name, width=None, since=None, option=None):
        _ident(name)
        self.name = name
        self.width = width
        self.since = since
        self.option = option or name

    def __repr__(self):
        return 'Column(%r)' % self.name


class Table(object):
    """A table of the account schema.

    ``kind``: the module option holding its entries (``domains``, ``users``,
    ``aliases``); ``name``: the table; ``key``: the column identifying an
    entry of ``kind``; ``columns``: the guide's managed columns (besides
    ``id`` and ``domain_id``); ``optional``: columns added by later schema
    migrations; ``parent``: the foreign key column to ``virtual_domains.id``
    or None.
    """

    def __init__(self, kind, name, key, columns, optional=(), parent=None):
        _ident(name)
        self.kind = kind
        self.name = name
        self.key = key
        self.columns = tuple(columns)
        self.optional = tuple(optional)
        self.parent = parent

    def column(self, name):
        """Return the :class:`Column` called ``name`` (guide or optional)."""
        for col in self.columns + self.optional:
            if col.name == name:
                return col
        raise KeyError(name)


DOMAINS = Table('domains', 'virtual_domains', key='name',
                columns=(Column('name', width=50),))
USERS = Table('users', 'virtual_users', key='email',
              columns=(Column('email', width=100), Column('password', width=106)),
              # optional=(Column('quota', since=4),),  # example: a later migration adds a column
              parent='domain_id')
ALIASES = Table('aliases', 'virtual_aliases', key='source',
                columns=(Column('source', width=100), Column('destination', width=100)),
                parent='domain_id')
SCHEMA = (DOMAINS, USERS, ALIASES)
TABLES = tuple(t.name for t in SCHEMA)
BY_KIND = dict((t.kind, t) for t in SCHEMA)

# (table, column): guide width, for the text columns that must exist.
GUIDE_WIDTHS = dict(((t.name, c.name), c.width) for t in SCHEMA for c in t.columns if c.width)


def information_schema_sql():
    """Return (sql, args) listing TABLE_NAME t, COLUMN_NAME c, CHARACTER_MAXIMUM_LENGTH w of the schema's tables."""
    marks = ', '.join(['%s'] * len(TABLES))
    return ('SELECT TABLE_NAME AS t, COLUMN_NAME AS c, CHARACTER_MAXIMUM_LENGTH AS w FROM information_schema.COLUMNS '
            'WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME IN (%s)' % marks, TABLES)


def available_columns(table, widths):
    """Return the optional columns of ``table`` that exist (``widths`` as returned by vmail_db.check_schema)."""
    return [c for c in table.optional if (table.name, c.name) in widths]


def _marks(count):
    if count < 1:
        raise ValueError('an IN list needs at least one value')
    return ', '.join(['%s'] * count)


def select_sql(table, where=None, lock=False):
    """Return a SELECT of ``id``, the parent key and the guide columns of ``table``.

    ``where`` is a list of (column, number of values) pairs combined with OR,
    each as ``column IN (%s, ...)``; None selects every row. ``lock`` appends
    ``FOR UPDATE``. Rows come ordered by ``id``.
    """
    cols = ['id'] + ([table.parent] if table.parent else []) + [c.name for c in table.columns]
    sql = 'SELECT %s FROM %s' % (', '.join(_ident(c) for c in cols), _ident(table.name))
    if where:
        sql += ' WHERE ' + ' OR '.join('%s IN (%s)' % (_ident(col), _marks(n)) for col, n in where)
    sql += ' ORDER BY `id`'
    if lock:
        sql += ' FOR UPDATE'
    return sql


def insert_sql(table):
    """Return an INSERT of the parent key and the guide columns of ``table`` (values in that order)."""
    cols = ([table.parent] if table.parent else []) + [c.name for c in table.columns]
    return 'INSERT INTO %s (%s) VALUES (%s)' % (_ident(table.name), ', '.join(_ident(c) for c in cols),
                                                _marks(len(cols)))


def update_sql(table, columns):
    """Return ``UPDATE table SET col = %s, ... WHERE id = %s`` for the column names ``columns``."""
    for name in columns:
        if name != table.parent:
            table.column(name)
    return 'UPDATE %s SET %s WHERE `id` = %%s' % (_ident(table.name),
                                                  ', '.join('%s = %%s' % _ident(c) for c in columns))


def delete_sql(table, count):
    """Return ``DELETE FROM table WHERE id IN (%s, ...)`` for ``count`` ids."""
    return 'DELETE FROM %s WHERE `id` IN (%s)' % (_ident(table.name), _marks(count))
