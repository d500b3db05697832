# -*- coding: utf-8 -*-
"""Unit tests of the schema migration plans (vmail_migrations) without a database."""

import pytest

from ansible_collections.vmail.mailserver.plugins.module_utils import vmail_migrations as mig
from ansible_collections.vmail.mailserver.plugins.module_utils import vmail_schema as schema

GUIDE = ('virtual_domains', 'virtual_users', 'virtual_aliases')


def col(data_type, column_type=None, nullable=False):
    return dict(type=data_type, column_type=column_type or data_type, nullable=nullable)


def guide_columns():
    cols = {('virtual_domains', 'id'): col('int', 'int(11)'), ('virtual_domains', 'name'): col('varchar', 'varchar(50)')}
    for table in ('virtual_users', 'virtual_aliases'):
        cols[(table, 'id')] = col('int', 'int(11)')
        cols[(table, 'domain_id')] = col('int', 'int(11)')
    return cols


def catalog(version=None, extra_tables=(), columns=None, unique=None, foreign=None, rows=None):
    tables = set(GUIDE) | set(extra_tables)
    if version is not None:
        tables.add('vmail_schema')
    cols = guide_columns()
    cols.update(columns or {})
    return mig.Catalog(tables, cols, unique, foreign, version, 1 if rows is None and version is not None else (rows or 0))


def kinds(plan):
    return [(s.kind, s.version) for s in plan.steps]


def test_empty_database_creates_everything_in_order():
    plan = mig.plan_schema(mig.Catalog())
    assert plan.version_before is None and plan.version == mig.LATEST == 5
    assert plan.created_tables == ['virtual_domains', 'virtual_users', 'virtual_aliases', 'vmail_schema']
    assert kinds(plan)[4:] == [('record_version', 1), ('migration', 2), ('migration', 3), ('migration', 4),
                               ('migration', 5)]
    # the tables are created empty: no data check is planned for them
    assert all(not s.checks for s in plan.steps)
    statements = mig.create_statements()
    assert statements[-1] == 'UPDATE `vmail_schema` SET `version` = 5'
    assert statements[-3:-1] == ['ALTER TABLE `virtual_domains` ADD COLUMN `host` VARCHAR(255) NULL DEFAULT NULL',
                                 'ALTER TABLE `virtual_users` ADD COLUMN `host` VARCHAR(255) NULL DEFAULT NULL']
    assert any('ADD COLUMN `quota` BIGINT UNSIGNED NOT NULL DEFAULT 0' in s for s in statements)
    assert any('FOREIGN KEY (`alias_of`) REFERENCES `virtual_domains` (`id`) ON DELETE CASCADE' in s
               for s in statements)


def test_guide_schema_records_version_1_and_checks_the_data():
    plan = mig.plan_schema(catalog())
    assert plan.created_tables == ['vmail_schema']
    assert kinds(plan) == [('create_table', None), ('record_version', 1), ('migration', 2), ('migration', 3),
                           ('migration', 4), ('migration', 5)]
    step2 = plan.steps[2]
    assert [c.table for c in step2.checks] == ['virtual_domains']
    assert 'GROUP BY `name` HAVING COUNT(*) > 1' in step2.checks[0].sql


def test_version_3_plans_only_migration_4_and_nothing_at_4():
    plan = mig.plan_schema(catalog(version=3))
    assert plan.version_before == 3 and kinds(plan) == [('migration', 4), ('migration', 5)]
    assert plan.migrations[0]['version'] == 4
    assert 'ALTER TABLE `virtual_users` ADD COLUMN `active`' in plan.diff_text()
    plan = mig.plan_schema(catalog(version=5))
    assert not plan.changed and plan.steps == [] and plan.version == 5 and plan.diff_text() == ''


def test_several_version_rows_are_recorded_again():
    plan = mig.plan_schema(catalog(version=3, rows=2))
    assert kinds(plan)[0] == ('record_version', 1) and [v for k, v in kinds(plan)] == [1, 2, 3, 4, 5]


def test_newer_schema_is_refused():
    with pytest.raises(mig.MigrationError, match='schema version 7, but this version of vmail.mailserver only '
                                                 'knows versions up to 5. Upgrade the collection'):
        mig.plan_schema(catalog(version=7), database='mailserver')


def test_existing_unique_index_is_adopted():
    plan = mig.plan_schema(catalog(version=1, unique={'virtual_domains': {'name_idx': ('name',)}}))
    step2 = plan.steps[0]
    assert step2.version == 2 and step2.adopted and step2.ddl == ['UPDATE `vmail_schema` SET `version` = 2']
    assert step2.checks  # the data are still checked


def test_compatible_existing_column_is_adopted_with_value_checks():
    columns = {('virtual_users', 'active'): col('tinyint', 'tinyint(1)', True),
               ('virtual_users', 'quota'): col('bigint', 'bigint(20)')}
    plan = mig.plan_schema(catalog(version=3, columns=columns))
    step = plan.steps[0]
    assert 'column virtual_users.active (tinyint(1))' in step.adopted
    users_ddl = [s for s in step.ddl if s.startswith('ALTER TABLE `virtual_users`')]
    assert users_ddl == []  # both columns exist: nothing added to virtual_users
    whats = [c.what for c in step.checks]
    assert 'rows of virtual_users with active NULL' in whats
    assert 'rows of virtual_users with active other than 0 or 1' in whats
    assert 'rows of virtual_users with a negative quota' in whats
    assert 'rows of virtual_users with quota NULL' not in whats  # NOT NULL column


@pytest.mark.parametrize('columns, message', [
    ({('virtual_users', 'quota'): col('varchar', 'varchar(20)')}, 'virtual_users.quota exists as varchar(20)'),
    ({('virtual_domains', 'active'): col('datetime')}, 'virtual_domains.active exists as datetime'),
    ({('virtual_domains', 'alias_of'): col('int', 'int(10) unsigned')}, 'must have the type of virtual_domains.id'),
    ({('vmail_last_login', 'email'): col('varchar'), ('vmail_last_login', 'last_login'): col('datetime')},
     'vmail_last_login.last_login exists as datetime'),
])
def test_incompatible_existing_column_fails_naming_it(columns, message):
    tables = set(t for t, c in columns)
    with pytest.raises(mig.MigrationError) as err:
        mig.plan_schema(catalog(version=3, extra_tables=tables, columns=columns))
    assert message in str(err.value) and 'Nothing was changed or dropped' in str(err.value)


def test_foreign_key_elsewhere_fails_and_existing_one_is_kept():
    cols = {('virtual_domains', 'alias_of'): col('int', 'int(11)', True)}
    with pytest.raises(mig.MigrationError, match='already has a foreign key to virtual_users.id'):
        mig.plan_schema(catalog(version=3, columns=cols, foreign={('virtual_domains', 'alias_of'):
                                                                  ('virtual_users', 'id')}))
    plan = mig.plan_schema(catalog(version=3, columns=cols, foreign={('virtual_domains', 'alias_of'):
                                                                     ('virtual_domains', 'id')}))
    assert 'FOREIGN KEY' not in plan.diff_text()
    assert 'alias domains that point to a missing domain, to themselves or to another alias domain' in plan.diff_text()


def test_existing_stats_table_gets_missing_columns():
    cols = {('vmail_quota_usage', 'email'): col('varchar'), ('vmail_quota_usage', 'bytes'): col('bigint')}
    plan = mig.plan_schema(catalog(version=3, extra_tables=['vmail_quota_usage'], columns=cols))
    ddl = plan.steps[0].ddl
    assert 'ALTER TABLE `vmail_quota_usage` ADD COLUMN `messages` BIGINT NOT NULL DEFAULT 0' in ddl
    assert not any(s.startswith('CREATE TABLE `vmail_quota_usage`') for s in ddl)
    assert any(s.startswith('CREATE TABLE `vmail_last_login`') for s in ddl)


class FakeCursor(object):
    """Records statements; returns the rows given for queries containing a key."""

    def __init__(self, answers=None):
        self.answers = answers or {}
        self.executed = []
        self.rows = []
        self.connection = self
        self.commits = 0

    def execute(self, sql, args=None):
        self.executed.append(sql)
        self.rows = next((rows for key, rows in self.answers.items() if key in sql), [])

    def fetchall(self):
        return self.rows

    def commit(self):
        self.commits += 1


def test_apply_runs_checks_then_ddl_and_check_mode_runs_no_ddl():
    plan = mig.plan_schema(catalog(version=3))
    cursor = FakeCursor()
    mig.apply_schema(cursor, plan, catalog(version=3).tables, check_mode=True)
    assert cursor.executed == []  # migrations 4 and 5 on fresh columns have no data check
    plan = mig.plan_schema(catalog(version=1))
    cursor = FakeCursor()
    mig.apply_schema(cursor, plan, catalog(version=1).tables, check_mode=True)
    assert cursor.executed and all(s.startswith('SELECT') for s in cursor.executed)
    cursor = FakeCursor()
    done = mig.apply_schema(cursor, plan, catalog(version=1).tables)
    assert [s.version for s in done] == [2, 3, 4, 5] and cursor.commits == 4
    assert cursor.executed[-1] == 'UPDATE `vmail_schema` SET `version` = 5'


def test_apply_stops_naming_conflicting_rows_before_any_ddl():
    plan = mig.plan_schema(catalog(version=1))
    cursor = FakeCursor({'FROM `virtual_domains` GROUP BY': [{'rows_found': "2 rows: id 1 = 'a.example', "
                                                                            "id 3 = 'A.example'"}]})
    with pytest.raises(mig.MigrationError) as err:
        mig.apply_schema(cursor, plan, catalog(version=1).tables)
    text = str(err.value)
    assert "Conflicting rows" in text and "id 1 = 'a.example', id 3 = 'A.example'" in text and 'migration 2' in text
    assert not any(s.startswith('ALTER') or s.startswith('UPDATE') for s in cursor.executed)


def test_schema_description_of_the_account_model():
    assert [c.name for c in schema.USERS.optional] == ['active', 'quota', 'host']
    assert [c.name for c in schema.DOMAINS.optional] == ['active', 'default_quota', 'alias_of', 'host']
    assert all(c.since == (5 if c.name == 'host' else 4) for t in schema.SCHEMA for c in t.optional)
    assert schema.insert_sql(schema.USERS, ['active', 'quota']) == (
        'INSERT INTO `virtual_users` (`domain_id`, `email`, `password`, `active`, `quota`) VALUES (%s, %s, %s, %s, %s)')
    assert schema.select_sql(schema.ALIASES, extra=['active']).startswith(
        'SELECT `id`, `domain_id`, `source`, `destination`, `active` FROM')
