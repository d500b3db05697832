# -*- coding: utf-8 -*-
# Copyright: vmail.mailserver developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Schema versions of the mail database and the migrations between them.

Version 1 is the guide schema (:data:`vmail_schema.GUIDE_TABLES`), recorded in
the one-row table ``vmail_schema``. Each later version is a :class:`Migration`
here: a data and precondition check that names the offending rows or the
incompatible existing columns, then the DDL, then the version record. Nothing
is ever dropped or rewritten: a column or index that already exists in a
compatible form is adopted, an incompatible one stops the migration naming it.

The steps, each a function:

1. :func:`read_catalog` reads tables, columns, unique indexes, foreign keys
   and the recorded version from ``information_schema`` into a :class:`Catalog`.
2. :func:`plan_schema` (pure) decides the steps: the tables to create, the
   version record, the pending migrations with their checks and DDL. It
   raises :class:`MigrationError` for a schema newer than this collection or
   an incompatible existing column.
3. :func:`apply_schema` runs each step's checks (also in check mode) and,
   unless in check mode, its DDL and version record. MariaDB/MySQL DDL is not
   transactional, so each statement is committed on its own; every step is
   written so that re-running it after a failure adopts what was already done.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from ansible_collections.vmail.mailserver.plugins.module_utils import vmail_schema as schema
from ansible_collections.vmail.mailserver.plugins.module_utils.vmail_schema import _ident

# Offending rows shown per check.
MAX_ROWS = 20
# What an adopted host column may hold (the modules store lowercase A-labels, vmail_address.normalize_host).
HOST_REGEXP = '^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$'


class MigrationError(ValueError):
    """A migration cannot be applied; the message names the rows or columns and says what to do."""


class Catalog(object):
    """What ``information_schema`` says about the mail database.

    ``tables``: set of table names; ``columns``: {(table, column): dict(type
    (DATA_TYPE), column_type (COLUMN_TYPE), nullable)}; ``unique``: {table:
    {index name: tuple of columns}}; ``foreign``: {(table, column):
    (referenced table, referenced column)}; ``version``: the highest recorded
    version or None; ``version_rows``: number of rows in ``vmail_schema``.
    """

    def __init__(self, tables=(), columns=None, unique=None, foreign=None, version=None, version_rows=0):
        self.tables = set(tables)
        self.columns = dict(columns or {})
        self.unique = dict(unique or {})
        self.foreign = dict(foreign or {})
        self.version = version
        self.version_rows = version_rows

    def has_unique(self, table, columns):
        """True when ``table`` has a unique index on exactly ``columns`` (in that order)."""
        return tuple(columns) in self.unique.get(table, {}).values()


class Check(object):
    """A query whose rows are problems: each row has ``rows_found`` (text naming the rows); none = fine.

    ``table``: the table read (the check is skipped while the table does not
    exist yet: a table created by the plan is empty); ``what``: the problem in
    words; ``hint``: what the admin should do.
    """

    def __init__(self, table, sql, what, hint):
        self.table = table
        self.sql = sql
        self.what = what
        self.hint = hint


class Step(object):
    """One planned step: ``kind`` (``create_table``, ``record_version`` or ``migration``), ``version``,
    ``description``, ``checks`` (:class:`Check` list), ``ddl`` (statements) and ``adopted`` (existing
    columns or indexes taken over as they are)."""

    def __init__(self, kind, version, description, checks=(), ddl=(), adopted=()):
        self.kind = kind
        self.version = version
        self.description = description
        self.checks = list(checks)
        self.ddl = list(ddl)
        self.adopted = list(adopted)

    def lines(self):
        """Readable lines for ``--diff``."""
        out = ['%s' % self.description]
        out += ['  check: %s' % c.what for c in self.checks]
        out += ['  adopt: %s' % a for a in self.adopted]
        out += ['  sql: %s' % s for s in self.ddl]
        return out


class SchemaPlan(object):
    """The outcome of :func:`plan_schema`: ``version_before`` (None = nothing recorded), ``version``
    (after the plan), ``steps`` and ``created_tables``."""

    def __init__(self, version_before, version, steps, created_tables):
        self.version_before = version_before
        self.version = version
        self.steps = steps
        self.created_tables = created_tables

    @property
    def changed(self):
        """True when applying the plan writes anything."""
        return bool(self.steps)

    @property
    def migrations(self):
        """The migration steps, as dicts (version, description)."""
        return [dict(version=s.version, description=s.description) for s in self.steps if s.kind == 'migration']

    def diff_text(self):
        """The planned steps, one block per step."""
        lines = []
        for step in self.steps:
            lines += step.lines()
        return '\n'.join(lines) + '\n' if lines else ''


def _rows_sql(table, where, show):
    """Return a check query naming each row of ``table`` matching ``where`` (``show``: SQL of the text)."""
    return 'SELECT %s AS rows_found FROM %s WHERE %s ORDER BY `id` LIMIT %d' % (
        show, _ident(table), where, MAX_ROWS + 1)


class Migration(object):
    """A schema version: ``version``, ``description`` and :meth:`plan` (checks, DDL, adopted)."""

    version = None
    description = None

    def plan(self, catalog):
        """Return a :class:`Step` for ``catalog``; raise :class:`MigrationError` for incompatible columns."""
        raise NotImplementedError


class UniqueIndex(Migration):
    """A UNIQUE index on ``columns`` of ``table``, added after a check for rows that would conflict."""

    def __init__(self, version, table, index, columns, hint):
        self.version = version
        self.table = table
        _ident(index)
        self.index = index
        self.columns = tuple(columns)
        self.hint = hint
        self.description = 'UNIQUE index on %s(%s)' % (table, ', '.join(columns))

    def conflicts_sql(self):
        """Groups of rows with equal values (compared as the index will); ``rows_found`` names their ids."""
        cols = ', '.join(_ident(c) for c in self.columns)
        shown = ", ' -> ', ".join('QUOTE(%s)' % _ident(c) for c in self.columns)
        return ("SELECT CONCAT(COUNT(*), ' rows: ', GROUP_CONCAT(CONCAT('id ', `id`, ' = ', %s) ORDER BY `id` "
                "SEPARATOR ', ')) AS rows_found FROM %s GROUP BY %s HAVING COUNT(*) > 1 ORDER BY %s LIMIT %d"
                % (shown, _ident(self.table), cols, cols, MAX_ROWS + 1))

    def plan(self, catalog):
        step = Step('migration', self.version, 'migration %d: %s' % (self.version, self.description),
                    checks=[Check(self.table, self.conflicts_sql(), 'rows that would conflict in the new index',
                                  self.hint)])
        if catalog.has_unique(self.table, self.columns):
            step.adopted.append('an equal unique index on %s(%s)' % (self.table, ', '.join(self.columns)))
        else:
            step.ddl.append('ALTER TABLE %s ADD UNIQUE KEY %s (%s)' % (
                _ident(self.table), _ident(self.index), ', '.join(_ident(c) for c in self.columns)))
        return step


class AddColumns(Migration):
    """A version that adds the optional columns of :mod:`vmail_schema` whose ``since`` is this version.

    A missing column is added with its ``ddl``; an existing compatible one is
    adopted and its values checked (:func:`_adopted_checks`); an incompatible
    one stops the migration naming it. Subclasses add more with
    :meth:`extra` (checks, DDL, errors).
    """

    def __init__(self, version, description):
        self.version = version
        self.description = description

    def plan(self, catalog):
        step = Step('migration', self.version, 'migration %d: %s' % (self.version, self.description))
        errors = []
        for table in schema.SCHEMA:
            adds = []
            for col in table.optional:
                if col.since != self.version:
                    continue
                key = (table.name, col.name)
                info = catalog.columns.get(key)
                if info is None:
                    adds.append('ADD COLUMN %s %s' % (_ident(col.name), col.ddl))
                else:
                    problem = _incompatible(catalog, table.name, col, info)
                    if problem:
                        errors.append(problem)
                        continue
                    step.adopted.append('column %s.%s (%s)' % (table.name, col.name, info['column_type']))
                    step.checks.extend(_adopted_checks(table.name, col, info))
                if col.references:
                    fk = catalog.foreign.get(key)
                    if fk is None:
                        adds.append('ADD CONSTRAINT %s FOREIGN KEY (%s) REFERENCES %s (%s) ON DELETE CASCADE' % (
                            _ident('fk_%s_%s' % (table.name, col.name)), _ident(col.name),
                            _ident(col.references[0]), _ident(col.references[1])))
                    elif fk != tuple(col.references):
                        errors.append('column %s.%s already has a foreign key to %s.%s, not %s.%s'
                                      % ((table.name, col.name) + tuple(fk) + tuple(col.references)))
            if adds:
                step.ddl.append('ALTER TABLE %s %s' % (_ident(table.name), ', '.join(adds)))
        self.extra(catalog, step, errors)
        if errors:
            raise MigrationError('Schema migration %d (%s) cannot be applied: incompatible existing columns: %s. '
                                 'Nothing was changed or dropped; rename or convert these columns by hand, then '
                                 'run again.' % (self.version, self.description, '; '.join(errors)))
        return step

    def extra(self, catalog, step, errors):
        """Add this version's own checks and DDL to ``step`` (and problems to ``errors``)."""


class AccountModel(AddColumns):
    """Version 4: the optional columns of :mod:`vmail_schema` (enabled flags, quotas, alias domains) and the
    tables Dovecot writes (:data:`vmail_schema.STATS_TABLES`)."""

    def __init__(self):
        super(AccountModel, self).__init__(schema.ACCOUNT_MODEL, 'account model: active, quota, default_quota and '
                                           'alias_of columns; tables vmail_quota_usage and vmail_last_login')

    def extra(self, catalog, step, errors):
        if ('virtual_domains', 'alias_of') in catalog.columns:
            step.checks.extend(_alias_domain_checks())
        for stats in schema.STATS_TABLES:
            if stats.name not in catalog.tables:
                step.ddl.append(stats.create_sql())
                continue
            adds = []
            if (stats.name, 'email') not in catalog.columns:
                errors.append('table %s exists but has no column email' % stats.name)
            for name, ddl, types in stats.columns:
                info = catalog.columns.get((stats.name, name))
                if info is None:
                    adds.append('ADD COLUMN %s %s' % (_ident(name), ddl))
                elif info['type'] not in types:
                    errors.append('column %s.%s exists as %s; migration %d needs one of %s'
                                  % (stats.name, name, info['column_type'], self.version, ', '.join(types)))
                else:
                    step.adopted.append('column %s.%s (%s)' % (stats.name, name, info['column_type']))
            if adds:
                step.ddl.append('ALTER TABLE %s %s' % (_ident(stats.name), ', '.join(adds)))


def _incompatible(catalog, table, col, info):
    """Return why an existing column cannot be adopted as ``col``, or None."""
    if info['type'] not in col.types:
        return 'column %s.%s exists as %s; migration %d needs %s (or one of the types %s)' % (
            table, col.name, info['column_type'], col.since, col.ddl, ', '.join(col.types))
    if col.references:
        ref = catalog.columns.get(tuple(col.references))
        if ref is not None and ref['column_type'] != info['column_type']:
            return 'column %s.%s exists as %s but must have the type of %s.%s (%s) for its foreign key' % (
                table, col.name, info['column_type'], col.references[0], col.references[1], ref['column_type'])
    return None


def _adopted_checks(table, col, info):
    """Checks of the values in a column that existed before the migration."""
    name = _ident(col.name)
    checks = []
    if col.default is not None and info['nullable']:
        checks.append(Check(table, _rows_sql(table, '%s IS NULL' % name, "CONCAT('id ', `id`)"),
                            'rows of %s with %s NULL' % (table, col.name),
                            'set %s.%s on these rows (%s) by hand, then run again' % (table, col.name, col.ddl)))
    if col.name == 'active':
        checks.append(Check(table, _rows_sql(table, '%s NOT IN (0, 1)' % name,
                                             "CONCAT('id ', `id`, ' = ', %s)" % name),
                            'rows of %s with %s other than 0 or 1' % (table, col.name),
                            'set %s.%s to 0 or 1 on these rows by hand, then run again' % (table, col.name)))
    elif col.kind == 'host':
        checks.append(Check(table, _rows_sql(table, "%s IS NOT NULL AND %s NOT REGEXP '%s'" % (name, name, HOST_REGEXP),
                                             "CONCAT('id ', `id`, ' = ', QUOTE(%s))" % name),
                            'rows of %s whose %s is not a host name' % (table, col.name),
                            'set %s.%s of these rows to a host name (letters, digits, dots and hyphens) or NULL '
                            'by hand, then run again' % (table, col.name)))
    elif col.default == 0:
        checks.append(Check(table, _rows_sql(table, '%s < 0' % name, "CONCAT('id ', `id`, ' = ', %s)" % name),
                            'rows of %s with a negative %s' % (table, col.name),
                            'set %s.%s (bytes, 0 = unlimited) on these rows by hand, then run again'
                            % (table, col.name)))
    return checks


def _alias_domain_checks():
    """Checks of an existing ``virtual_domains.alias_of``: every alias domain must point to a normal domain."""
    show = "CONCAT('id ', d.`id`, ' = ', QUOTE(d.`name`), ' alias_of ', d.`alias_of`)"
    base = 'SELECT %s AS rows_found FROM `virtual_domains` d %%s ORDER BY d.`id` LIMIT %d' % (show, MAX_ROWS + 1)
    hint = 'correct virtual_domains.alias_of of these rows by hand (NULL = a normal domain), then run again'
    return [
        Check('virtual_domains', base % ('LEFT JOIN `virtual_domains` t ON t.`id` = d.`alias_of` '
                                         'WHERE d.`alias_of` IS NOT NULL AND (t.`id` IS NULL OR t.`id` = d.`id` '
                                         'OR t.`alias_of` IS NOT NULL)'),
              'alias domains that point to a missing domain, to themselves or to another alias domain', hint),
        Check('virtual_domains', base % ('WHERE d.`alias_of` IS NOT NULL AND EXISTS (SELECT 1 FROM `virtual_users` u '
                                         'WHERE u.`domain_id` = d.`id`)'),
              'alias domains that have mailboxes of their own',
              'move the mailboxes to the target domain or set alias_of to NULL by hand, then run again'),
    ]


MIGRATIONS = (
    UniqueIndex(2, 'virtual_domains', 'uq_virtual_domains_name', ['name'],
                'virtual_domains has several rows for the same domain name (compared case-insensitively, as the '
                'index will). Move the users/aliases of the extra ids to one id (UPDATE virtual_users/virtual_aliases '
                'SET domain_id=...) and delete the extra rows by hand, then run again.'),
    UniqueIndex(3, 'virtual_aliases', 'uq_virtual_aliases_source_destination', ['source', 'destination'],
                'virtual_aliases has the same source -> destination pair more than once. Delete the extra ids by '
                'hand (keep one), then run again.'),
    AccountModel(),
    AddColumns(schema.NODES, 'mail nodes: host columns of virtual_domains and virtual_users (NULL = the domain\'s '
                             'node, or the only node)'),
)
LATEST = MIGRATIONS[-1].version


def read_catalog(cursor):
    """Read the :class:`Catalog` of the current database through ``cursor`` (a DictCursor)."""
    cursor.execute('SELECT TABLE_NAME AS t FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE()')
    tables = set(r['t'] for r in cursor.fetchall())
    cursor.execute('SELECT TABLE_NAME AS t, COLUMN_NAME AS c, DATA_TYPE AS dt, COLUMN_TYPE AS ct, IS_NULLABLE AS n '
                   'FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE()')
    columns = dict(((r['t'], r['c']), dict(type=_text(r['dt']).lower(), column_type=_text(r['ct']).lower(),
                                           nullable=_text(r['n']) == 'YES')) for r in cursor.fetchall())
    cursor.execute('SELECT TABLE_NAME AS t, INDEX_NAME AS i, '
                   "GROUP_CONCAT(COLUMN_NAME ORDER BY SEQ_IN_INDEX SEPARATOR ',') AS cols "
                   'FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = DATABASE() AND NON_UNIQUE = 0 '
                   'GROUP BY TABLE_NAME, INDEX_NAME')
    unique = {}
    for r in cursor.fetchall():
        unique.setdefault(r['t'], {})[r['i']] = tuple(_text(r['cols']).split(','))
    cursor.execute('SELECT TABLE_NAME AS t, COLUMN_NAME AS c, REFERENCED_TABLE_NAME AS rt, '
                   'REFERENCED_COLUMN_NAME AS rc FROM information_schema.KEY_COLUMN_USAGE '
                   'WHERE TABLE_SCHEMA = DATABASE() AND REFERENCED_TABLE_NAME IS NOT NULL')
    foreign = dict(((r['t'], r['c']), (r['rt'], r['rc'])) for r in cursor.fetchall())
    version, rows = None, 0
    if schema.VERSION_TABLE in tables:
        cursor.execute('SELECT COUNT(*) AS n, MAX(`version`) AS v FROM %s' % _ident(schema.VERSION_TABLE))
        row = cursor.fetchone()
        rows, version = int(row['n']), (int(row['v']) if row['v'] is not None else None)
    return Catalog(tables, columns, unique, foreign, version, rows)


def _text(value):
    if isinstance(value, bytes):
        return value.decode('utf-8')
    return value if value is not None else ''


def plan_schema(catalog, migrations=MIGRATIONS, database='the database'):
    """Return the :class:`SchemaPlan` that brings ``catalog`` to the latest version of ``migrations``.

    Missing guide tables are created (existing ones are never altered except
    by a migration); version 1 is recorded when nothing (or more than one
    row) is recorded; then every migration above the recorded version is
    planned in order. Raises :class:`MigrationError` when the recorded
    version is newer than this collection knows or a migration meets an
    incompatible existing column.
    """
    latest = migrations[-1].version if migrations else 1
    before = catalog.version
    if before is not None and before > latest:
        raise MigrationError('Database %s has schema version %d, but this version of vmail.mailserver only knows '
                             'versions up to %d. Upgrade the collection.' % (database, before, latest))
    steps, created = [], []
    for name, sql in schema.GUIDE_TABLES:
        if name not in catalog.tables:
            created.append(name)
            steps.append(Step('create_table', None, 'create table %s' % name, ddl=[sql]))
    current = before if before is not None and catalog.version_rows == 1 else None
    if current is None or current < 1:
        steps.append(Step('record_version', 1, 'record schema version 1 (guide schema)',
                          ddl=['DELETE FROM %s' % _ident(schema.VERSION_TABLE),
                               'INSERT INTO %s (`version`) VALUES (1)' % _ident(schema.VERSION_TABLE)]))
        current = 1
    view = Catalog(catalog.tables | set(created), catalog.columns, catalog.unique, catalog.foreign)
    for migration in migrations:
        if migration.version <= current:
            continue
        step = migration.plan(view)
        step.ddl.append('UPDATE %s SET `version` = %d' % (_ident(schema.VERSION_TABLE), migration.version))
        step.checks = [c for c in step.checks if c.table not in created]
        steps.append(step)
        current = migration.version
    return SchemaPlan(before, max(current, before or 0), steps, created)


def check_rows(cursor, step, catalog_tables):
    """Run the checks of ``step`` on the tables that exist; raise :class:`MigrationError` naming the rows found."""
    problems = []
    for check in step.checks:
        if check.table not in catalog_tables:
            continue
        cursor.execute(check.sql)
        rows = [_text(r['rows_found']) for r in cursor.fetchall()]
        if rows:
            shown = ', '.join('[%s]' % r for r in rows[:MAX_ROWS])
            if len(rows) > MAX_ROWS:
                shown += ' and more'
            problems.append('%s: %s. %s' % (check.what, shown, check.hint))
    if problems:
        raise MigrationError('Schema migration %d (%s) cannot be applied: the schema was not changed and no row was '
                             'changed or dropped. Conflicting rows: %s'
                             % (step.version, step.description.split(': ', 1)[-1], ' '.join(problems)))


def apply_schema(cursor, plan, tables, check_mode=False):
    """Run ``plan`` through ``cursor``: each step's checks, then (unless ``check_mode``) its DDL.

    ``tables``: the tables that exist now (checks on tables the plan creates
    are skipped, and in check mode checks on tables that do not exist yet).
    Every statement is committed as it runs (DDL commits implicitly); a
    failure leaves the steps before it applied and recorded, and a re-run
    continues from there. Returns the steps applied (or, in check mode, that
    would be).
    """
    tables = set(tables)
    done = []
    for step in plan.steps:
        check_rows(cursor, step, tables)
        if not check_mode:
            for sql in step.ddl:
                cursor.execute(sql)
            cursor.connection.commit()
        if step.kind == 'create_table':
            tables.add(step.description.rsplit(' ', 1)[-1])
        done.append(step)
    return done


def create_statements(migrations=MIGRATIONS):
    """All statements that build the latest schema in an empty database (for benchmarks and tests)."""
    plan = plan_schema(Catalog(), migrations)
    return [sql for step in plan.steps for sql in step.ddl]
