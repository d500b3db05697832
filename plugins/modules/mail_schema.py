#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: vmail.mailserver developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
---
module: mail_schema
short_description: Create the mail database schema and apply its migrations
version_added: "0.5.0"
description:
  - Creates the missing tables of the Linode guide schema (C(virtual_domains), C(virtual_users),
    C(virtual_aliases)) and the version table C(vmail_schema), reads the recorded schema version and applies
    the pending migrations in order, recording each version as it is applied.
  - "Versions: 1 = the guide schema; 2 = C(UNIQUE) index on C(virtual_domains(name)); 3 = C(UNIQUE) index on
    C(virtual_aliases(source, destination)); 4 = the account model: columns C(active) (C(TINYINT(1) NOT NULL
    DEFAULT 1)) on all three tables, C(quota) (C(BIGINT UNSIGNED NOT NULL DEFAULT 0), bytes, 0 = unlimited) on
    C(virtual_users), C(default_quota) (the same type) and C(alias_of) (C(INT(11) NULL), foreign key to
    C(virtual_domains(id)) C(ON DELETE CASCADE)) on C(virtual_domains), and the tables C(vmail_quota_usage)
    (C(email), C(bytes), C(messages)) and C(vmail_last_login) (C(email), C(last_login) in Unix seconds) that
    Dovecot writes."
  - Every migration first checks the data and fails naming the offending rows (for example two rows of the same
    domain name before the unique index) or the incompatible existing columns. No row or column is ever dropped
    or rewritten. A column or index that already exists in a compatible form (for example an C(active) column an
    admin added by hand as C(TINYINT)) is adopted as it is; its values are checked like the data.
  - Existing tables, for example from a server built by hand with the guide's SQL, are never dropped or recreated.
  - MariaDB/MySQL DDL is not transactional; each statement commits on its own. A failure leaves the migrations
    before it applied and recorded, and a re-run continues from there (it adopts what a half-applied
    migration added).
  - A database whose recorded version is newer than this collection knows makes the module fail (upgrade the
    collection); it is never downgraded.
  - The mailsql role runs this module in its schema step.
options: {}
extends_documentation_fragment:
  - vmail.mailserver.vmail_db
attributes:
  check_mode:
    support: full
    description:
      - Reads the schema and runs the data checks of the pending migrations (so check mode fails where a real run
        would), but runs no DDL and records nothing. C(changed) is what a real run would report.
  diff_mode:
    support: full
    description: The planned steps with their checks and SQL statements.
notes:
  - The account needs C(SELECT), C(INSERT), C(UPDATE), C(DELETE), C(CREATE), C(ALTER), C(INDEX) and C(REFERENCES)
    on the mail database (the mailsql role connects with its provisioning login, by default C(root) through the
    unix socket). The C(mailadmin) account of the role has only the first four and cannot migrate.
  - Runs under the same named lock as the account modules (C(vmail.mailserver:<database>)), so account
    changes wait until the migration is done.
author:
  - vmail.mailserver developers (@vmail)
seealso:
  - module: vmail.mailserver.mail_info
  - module: vmail.mailserver.mail_accounts
  - name: Dovecot quota plugin
    description: The meaning of the quota columns (0 = no limit).
    link: https://doc.dovecot.org/main/core/plugins/quota.html
'''

EXAMPLES = r'''
- name: Bring the mail database to the latest schema version (as root through the unix socket)
  vmail.mailserver.mail_schema:
    login_user: root
    login_unix_socket: /run/mysqld/mysqld.sock
    login_db: mailserver
  register: schema

- name: Show what was applied
  ansible.builtin.debug:
    msg: "schema version {{ schema.version_before }} -> {{ schema.version }}: {{ schema.migrations | map(attribute='description') }}"

- name: Preview the migrations of a server built with the guide's SQL
  vmail.mailserver.mail_schema:
    config_file: /root/.my.cnf
  check_mode: true
  diff: true
'''

RETURN = r'''
version_before:
  description: The schema version recorded before the run; null when none was recorded (a new database or the guide's
    literal schema, which the module records as version 1).
  returned: always
  type: int
  sample: 3
version:
  description: The schema version after the run (in check mode, what it would be).
  returned: always
  type: int
  sample: 4
latest:
  description: The newest schema version this collection knows.
  returned: always
  type: int
  sample: 4
migrations:
  description: The migrations applied (in check mode, that would be applied), in order.
  returned: always
  type: list
  elements: dict
  contains:
    version: {description: The version the migration records., type: int, returned: always}
    description: {description: What the migration adds., type: str, returned: always}
  sample: [{"version": 4, "description": "account model: active, quota, default_quota and alias_of columns; tables vmail_quota_usage and vmail_last_login"}]
created_tables:
  description: Guide tables that did not exist and were (or would be) created.
  returned: always
  type: list
  elements: str
  sample: []
adopted:
  description: Existing columns and indexes taken over as they are by the applied migrations.
  returned: always
  type: list
  elements: str
  sample: ["column virtual_users.active (tinyint(1))"]
diff:
  description: With C(--diff), the planned steps (C(prepared)), each with its checks, adopted objects and SQL.
  returned: when diff mode is on
  type: dict
  sample: {"prepared": "migration 4: account model ...\n  sql: ALTER TABLE `virtual_users` ADD COLUMN ...\n"}
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.vmail.mailserver.plugins.module_utils import vmail_db
from ansible_collections.vmail.mailserver.plugins.module_utils import vmail_migrations as migrations


def main():
    module = AnsibleModule(argument_spec=vmail_db.vmail_db_argument_spec(), supports_check_mode=True)
    conn = vmail_db.connect(module)
    try:
        result = vmail_db.run_locked(module, conn, lambda cursor: migrate(module, cursor))
    finally:
        conn.close()
    module.exit_json(**result)


def migrate(module, cursor):
    """Read, plan and apply (or, in check mode, check only); return the module result."""
    cursor.execute('SELECT DATABASE() AS db')
    database = cursor.fetchone()['db']
    catalog = migrations.read_catalog(cursor)
    plan = migrations.plan_schema(catalog, database=database)
    done = migrations.apply_schema(cursor, plan, catalog.tables, check_mode=module.check_mode)
    result = dict(changed=plan.changed, version_before=plan.version_before, version=plan.version,
                  latest=migrations.LATEST, migrations=plan.migrations, created_tables=plan.created_tables,
                  adopted=[a for step in done for a in step.adopted])
    if module._diff:
        result['diff'] = dict(prepared=plan.diff_text())
    return result


if __name__ == '__main__':
    main()
