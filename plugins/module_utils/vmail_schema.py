# -*- coding: utf-8 -*-
# Copyright: vmail.mailserver developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one description of the account schema and the SQL built from it.

The tables are those of the Linode guide "Email with Postfix, Dovecot, and
MySQL" (``virtual_domains``, ``virtual_users``, ``virtual_aliases``; their
literal CREATE TABLEs are :data:`GUIDE_TABLES`), plus the columns and tables
that schema migrations add (:mod:`vmail_migrations`, run by the
``mail_schema`` module and the mailsql role).
Every statement the account modules run is built here from these constant
descriptions; values always travel as parameters (``%s``), and identifiers
come only from this file, never from user input.

An account attribute added by a schema migration (the ``active``, ``quota``,
``default_quota`` and ``alias_of`` columns of migration 4, ``host`` of
migration 5) is one
:class:`Column` with ``since`` in the table's ``optional`` tuple below (its
definition, default and the types an existing column may have to be adopted);
the migration adds it, and the modules read the columns that really exist from
``information_schema`` at run time (:func:`available_columns`), so a database
that has not been migrated yet keeps working without the new attribute.
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
    sub-option the column is set from (defaults to ``name``); ``ddl``: the
    column definition a migration adds (``TINYINT(1) NOT NULL DEFAULT 1``);
    ``default``: the value of ``ddl``'s DEFAULT (what a new row gets when
    the option is not set); ``types``: the ``information_schema`` DATA_TYPEs
    an existing column may have to be adopted by the migration;
    ``references``: (table, column) of a foreign key the migration adds
    (``ON DELETE CASCADE``), or None; ``kind``: the kind of value, ``int``
    (numbers and flags, compared as integers) or ``host`` (a mail node's
    host name, compared as text, NULL when not set).
    """

    def __init__(self, name, width=None, since=None, option=None, ddl=None, default=None, types=(),
                 references=None, kind='int'):
        _ident(name)
        self.name = name
        self.width = width
        self.since = since
        self.option = option or name
        self.ddl = ddl
        self.default = default
        self.types = tuple(types)
        self.references = references
        self.kind = kind

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


INTEGER_TYPES = ('tinyint', 'smallint', 'mediumint', 'int', 'bigint')
# The account model (schema version 4, docs/modules.md): enabled flags, quotas in bytes, alias domains.
ACCOUNT_MODEL = 4
# Several mail nodes (schema version 5): the node holding a domain's or a mailbox's mail.
NODES = 5


def _active():
    return Column('active', since=ACCOUNT_MODEL, ddl='TINYINT(1) NOT NULL DEFAULT 1', default=1, types=INTEGER_TYPES)


def _bytes(name):
    return Column(name, since=ACCOUNT_MODEL, ddl='BIGINT UNSIGNED NOT NULL DEFAULT 0', default=0, types=('bigint',))


def _host():
    """The mail node (host name) that stores the mail; NULL: a mailbox's domain's node, or the only node."""
    return Column('host', width=255, since=NODES, ddl='VARCHAR(255) NULL DEFAULT NULL', default=None,
                  types=('varchar',), kind='host')


DOMAINS = Table('domains', 'virtual_domains', key='name',
                columns=(Column('name', width=50),),
                optional=(_active(), _bytes('default_quota'),
                          Column('alias_of', since=ACCOUNT_MODEL, ddl='INT(11) NULL DEFAULT NULL', default=None,
                                 types=('int',), references=('virtual_domains', 'id')), _host()))
USERS = Table('users', 'virtual_users', key='email',
              columns=(Column('email', width=100), Column('password', width=106)),
              optional=(_active(), _bytes('quota'), _host()),
              parent='domain_id')
ALIASES = Table('aliases', 'virtual_aliases', key='source',
                columns=(Column('source', width=100), Column('destination', width=100)),
                optional=(_active(),),
                parent='domain_id')
SCHEMA = (DOMAINS, USERS, ALIASES)
TABLES = tuple(t.name for t in SCHEMA)
BY_KIND = dict((t.kind, t) for t in SCHEMA)

# (table, column): guide width, for the text columns that must exist.
GUIDE_WIDTHS = dict(((t.name, c.name), c.width) for t in SCHEMA for c in t.columns if c.width)

# The table that records the schema version (one row).
VERSION_TABLE = 'vmail_schema'

# The guide's CREATE TABLEs (literal, as docs/design.md) and the version table: created when missing
# (the guide schema = version 1); later versions come from vmail_migrations.
GUIDE_TABLES = (
    ('virtual_domains',
     'CREATE TABLE virtual_domains (id int(11) NOT NULL auto_increment, '
     'name varchar(50) NOT NULL, PRIMARY KEY (id)) ENGINE=InnoDB DEFAULT CHARSET=utf8'),
    ('virtual_users',
     'CREATE TABLE virtual_users (id int(11) NOT NULL auto_increment, '
     'domain_id int(11) NOT NULL, password varchar(106) NOT NULL, '
     'email varchar(100) NOT NULL, PRIMARY KEY (id), UNIQUE KEY email (email), '
     'FOREIGN KEY (domain_id) REFERENCES virtual_domains(id) ON DELETE CASCADE) '
     'ENGINE=InnoDB DEFAULT CHARSET=utf8'),
    ('virtual_aliases',
     'CREATE TABLE virtual_aliases (id int(11) NOT NULL auto_increment, '
     'domain_id int(11) NOT NULL, source varchar(100) NOT NULL, '
     'destination varchar(100) NOT NULL, PRIMARY KEY (id), '
     'FOREIGN KEY (domain_id) REFERENCES virtual_domains(id) ON DELETE CASCADE) '
     'ENGINE=InnoDB DEFAULT CHARSET=utf8'),
    (VERSION_TABLE,
     'CREATE TABLE vmail_schema (version int NOT NULL) ENGINE=InnoDB DEFAULT CHARSET=utf8'),
)


class StatsTable(object):
    """A table written by Dovecot (through a dict) and read by mail_info, keyed by ``email``.

    ``columns``: ((name, ddl, compatible DATA_TYPEs), ...) after the key;
    ``since``: the migration that creates it.
    """

    def __init__(self, name, columns, since):
        _ident(name)
        for col in columns:
            _ident(col[0])
        self.name = name
        self.columns = tuple(columns)
        self.since = since

    def create_sql(self):
        """Return the CREATE TABLE of this table."""
        cols = ['`email` VARCHAR(100) NOT NULL'] + ['%s %s' % (_ident(c[0]), c[1]) for c in self.columns]
        return 'CREATE TABLE %s (%s, PRIMARY KEY (`email`)) ENGINE=InnoDB DEFAULT CHARSET=utf8' % (
            _ident(self.name), ', '.join(cols))


# Dovecot's quota_clone plugin writes usage here; its last_login plugin the time of the last login.
QUOTA_USAGE = StatsTable('vmail_quota_usage', (('bytes', 'BIGINT NOT NULL DEFAULT 0', INTEGER_TYPES),
                                               ('messages', 'BIGINT NOT NULL DEFAULT 0', INTEGER_TYPES)),
                         since=ACCOUNT_MODEL)
LAST_LOGIN = StatsTable('vmail_last_login', (('last_login', 'INT UNSIGNED NOT NULL DEFAULT 0', INTEGER_TYPES),),
                        since=ACCOUNT_MODEL)
STATS_TABLES = (QUOTA_USAGE, LAST_LOGIN)


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


def select_sql(table, where=None, lock=False, extra=()):
    """Return a SELECT of ``id``, the parent key and the guide columns of ``table``.

    ``where`` is a list of (column, number of values) pairs combined with OR,
    each as ``column IN (%s, ...)``; None selects every row. ``lock`` appends
    ``FOR UPDATE``. ``extra``: names of optional columns to select too.
    Rows come ordered by ``id``.
    """
    cols = ['id'] + ([table.parent] if table.parent else []) + [c.name for c in table.columns]
    cols += [table.column(name).name for name in extra]
    sql = 'SELECT %s FROM %s' % (', '.join(_ident(c) for c in cols), _ident(table.name))
    if where:
        sql += ' WHERE ' + ' OR '.join('%s IN (%s)' % (_ident(col), _marks(n)) for col, n in where)
    sql += ' ORDER BY `id`'
    if lock:
        sql += ' FOR UPDATE'
    return sql


def insert_sql(table, extra=()):
    """Return an INSERT of the parent key, the guide columns and the optional columns ``extra`` (values in that order)."""
    cols = ([table.parent] if table.parent else []) + [c.name for c in table.columns]
    cols += [table.column(name).name for name in extra]
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
