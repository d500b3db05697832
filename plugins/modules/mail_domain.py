#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: vmail.mailserver developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
---
module: mail_domain
short_description: Manage a virtual mail domain in the Postfix/Dovecot SQL schema
version_added: "0.1.0"
description:
  - Adds or removes a row of C(virtual_domains) in the mail database (the schema of the Linode guide
    "Email with Postfix, Dovecot, and MySQL"), which makes Postfix accept mail for the domain
    (C(virtual_mailbox_domains)).
  - Works on a database created with the guide's literal SQL; the C(virtual_domains.name) column has
    no unique index there, so duplicate rows are tolerated (the lowest id is used) and never created.
options:
  name:
    description:
      - The domain name. It is lowercased and one trailing dot is removed.
      - Internationalized names are stored as A-labels (punycode), converted with the Python
        C(idna) package (IDNA 2008 with UTS 46 mapping), for example C(bücher.example) becomes
        C(xn--bcher-kva.example).
      - Must be a valid host name (RFC 1123) with at least two labels, each of at most 63 octets,
        at most 253 octets in total, and it must fit the C(name) column (50 characters in the guide schema).
    type: str
    required: true
    aliases: [ domain ]
  state:
    description:
      - C(present) makes sure the domain exists, C(absent) removes it.
    type: str
    choices: [ present, absent ]
    default: present
  force:
    description:
      - With I(state=absent), also remove the domain's mailboxes and aliases
        (the schema's C(ON DELETE CASCADE)).
      - Without it, removing a domain that still has mailboxes or aliases fails and lists how many.
      - Mail stored on disk (for example C(/var/mail/vhosts/<domain>)) is never touched.
    type: bool
    default: false
extends_documentation_fragment:
  - vmail.mailserver.vmail_db
author:
  - vmail.mailserver developers (@vmail)
seealso:
  - module: vmail.mailserver.mail_user
  - module: vmail.mailserver.mail_alias
  - module: vmail.mailserver.mail_info
  - name: Postfix virtual mailbox domains
    description: The C(virtual_mailbox_domains) parameter that reads this table.
    link: https://www.postfix.org/postconf.5.html#virtual_mailbox_domains
'''

EXAMPLES = r'''
- name: Add a domain, using the credentials the mailsql role wrote
  vmail.mailserver.mail_domain:
    name: example.com
    config_file: /etc/vmail/mailsql-admin.cnf

- name: Add an internationalized domain (stored as xn--bcher-kva.example)
  vmail.mailserver.mail_domain:
    name: bücher.example
    login_user: mailadmin
    login_password: "{{ mailsql_admin_password }}"

- name: Remove a domain together with its mailboxes and aliases (mail on disk stays)
  vmail.mailserver.mail_domain:
    name: old.example
    state: absent
    force: true
    config_file: /etc/vmail/mailsql-admin.cnf
'''

RETURN = r'''
name:
  description: The normalized domain name (lowercase A-label form).
  returned: always
  type: str
  sample: xn--bcher-kva.example
id:
  description: The C(virtual_domains.id) of the domain; null when it does not exist (after removal or in check mode before creation).
  returned: always
  type: int
  sample: 3
mailboxes_removed:
  description: Number of mailboxes removed with the domain (I(force=true)).
  returned: when I(state=absent)
  type: int
  sample: 0
aliases_removed:
  description: Number of alias rows removed with the domain (I(force=true)).
  returned: when I(state=absent)
  type: int
  sample: 0
diff:
  description: Before and after state of the domain, when run with C(--diff).
  returned: when diff mode is on
  type: dict
  sample: {"before": {}, "after": {"name": "example.com"}}
'''

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.vmail.mailserver.plugins.module_utils.vmail_db import (
    VmailDbError, find_domain, run_and_exit, vmail_db_argument_spec)
from ansible_collections.vmail.mailserver.plugins.module_utils.vmail_address import (
    AddressError, HAS_IDNA, IDNA_IMPORT_ERROR, normalize_domain)
from ansible_collections.vmail.mailserver.plugins.module_utils.vmail_planner import (
    CREATE, DELETE, plan_record)


def main():
    argument_spec = vmail_db_argument_spec()
    argument_spec.update(
        name=dict(type='str', required=True, aliases=['domain']),
        state=dict(type='str', default='present', choices=['present', 'absent']),
        force=dict(type='bool', default=False),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    if not HAS_IDNA:
        module.fail_json(msg=missing_required_lib('idna (Debian package python3-idna)'), exception=str(IDNA_IMPORT_ERROR))
    state = module.params['state']
    try:
        name = normalize_domain(module.params['name'])
    except AddressError as exc:
        module.fail_json(msg=str(exc))

    def work(cursor, widths):
        normalize_domain(name, max_length=widths[('virtual_domains', 'name')])
        rows = find_domain(cursor, name, lock=True)
        current = {'name': name} if rows else None
        change = plan_record(name, current, {'name': name}, state)
        result = dict(changed=change.changed, name=name, id=rows[0]['id'] if rows else None)
        if state == 'absent':
            result.update(mailboxes_removed=0, aliases_removed=0)
        if change.action == CREATE and not module.check_mode:
            cursor.execute('INSERT INTO virtual_domains (name) VALUES (%s)', (name,))
            result['id'] = cursor.lastrowid
        elif change.action == DELETE:
            ids = [r['id'] for r in rows]
            marks = ', '.join(['%s'] * len(ids))
            cursor.execute('SELECT COUNT(*) AS n FROM virtual_users WHERE domain_id IN (%s)' % marks, ids)
            users = cursor.fetchone()['n']
            cursor.execute('SELECT COUNT(*) AS n FROM virtual_aliases WHERE domain_id IN (%s)' % marks, ids)
            aliases = cursor.fetchone()['n']
            if (users or aliases) and not module.params['force']:
                raise VmailDbError('domain %s still has %d mailbox(es) and %d alias(es); remove them first or set '
                                   'force=true to remove them with the domain (mail on disk is not touched)'
                                   % (name, users, aliases))
            change.before.update(mailboxes=users, aliases=aliases)
            result.update(mailboxes_removed=users, aliases_removed=aliases, id=None)
            if not module.check_mode:
                cursor.execute('DELETE FROM virtual_domains WHERE id IN (%s)' % marks, ids)
        if len(rows) > 1 and state == 'present':
            module.warn('virtual_domains holds %d rows named %s (ids %s); the mailsql role migration adds a unique index'
                        % (len(rows), name, ', '.join(str(r['id']) for r in rows)))
        if module._diff:
            result['diff'] = change.diff()
        return result

    run_and_exit(module, work)


if __name__ == '__main__':
    main()
