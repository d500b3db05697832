#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: vmail.mailserver developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
---
module: mail_alias
short_description: Manage virtual alias rows (forwardings) in the Postfix/Dovecot SQL schema
version_added: "0.1.0"
description:
  - Adds or removes rows of C(virtual_aliases) (the schema of the Linode guide "Email with Postfix,
    Dovecot, and MySQL"), which Postfix reads as C(virtual_alias_maps), one row per source/destination pair.
  - The guide schema has no unique index on the alias table; this module never creates a duplicate pair
    and serializes concurrent writers with a database lock.
options:
  source:
    description:
      - The address that is forwarded, or C(@domain) for a catch-all of the domain
        (see postfix virtual(5); Postfix prefers more specific entries and mailboxes listed in
        C(virtual-email2email) when the guide's map files are used).
      - Normalized like I(email) of M(vmail.mailserver.mail_user). Its domain must exist in C(virtual_domains).
    type: str
    required: true
  destination:
    description:
      - One address or a list of addresses the source forwards to.
      - A destination in a domain managed in this database must exist as a mailbox or as an alias source
        (protection against typos); destinations in other domains are allowed.
      - "An alias to itself and a loop of two (C(a -> b) while C(b -> a) exists) are rejected."

      - Required with I(state=present). With I(state=absent) and no destination all rows of I(source) are removed.
    type: list
    elements: str
  exclusive:
    description:
      - With I(state=present), remove every destination of I(source) that is not listed, so that the
        source's destinations become exactly I(destination).
    type: bool
    default: false
  state:
    description:
      - C(present) adds the listed destinations; C(absent) removes them (or all of the source's rows).
    type: str
    choices: [ present, absent ]
    default: present
extends_documentation_fragment:
  - vmail.mailserver.vmail_db
  - vmail.mailserver.vmail_db.address
author:
  - vmail.mailserver developers (@vmail)
seealso:
  - module: vmail.mailserver.mail_user
  - name: Postfix virtual(5)
    description: How Postfix resolves virtual aliases and catch-alls.
    link: https://www.postfix.org/virtual.5.html
'''

EXAMPLES = r'''
- name: postmaster goes to alice
  vmail.mailserver.mail_alias:
    source: postmaster@example.com
    destination: alice@example.com
    config_file: /etc/vmail/mailsql-admin.cnf

- name: sales goes to exactly these two, any other destination is removed
  vmail.mailserver.mail_alias:
    source: sales@example.com
    destination:
      - alice@example.com
      - bob@partner.example
    exclusive: true
    config_file: /etc/vmail/mailsql-admin.cnf

- name: Catch-all for the domain
  vmail.mailserver.mail_alias:
    source: "@example.com"
    destination: alice@example.com
    config_file: /etc/vmail/mailsql-admin.cnf

- name: Remove all forwardings of an address
  vmail.mailserver.mail_alias:
    source: old@example.com
    state: absent
    config_file: /etc/vmail/mailsql-admin.cnf
'''

RETURN = r'''
source:
  description: The normalized source.
  returned: always
  type: str
  sample: sales@example.com
destinations:
  description: Destinations of the source after the run (in check mode, what they would be).
  returned: always
  type: list
  elements: str
  sample: ["alice@example.com", "bob@partner.example"]
added:
  description: Destinations added (or that would be added in check mode).
  returned: always
  type: list
  elements: str
  sample: ["bob@partner.example"]
removed:
  description: Destinations removed (or that would be removed in check mode).
  returned: always
  type: list
  elements: str
  sample: []
diff:
  description: Before and after destinations of the source, when run with C(--diff).
  returned: when diff mode is on
  type: dict
  sample: {"before": {}, "after": {"source": "sales@example.com", "destinations": ["alice@example.com"]}}
'''

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.vmail.mailserver.plugins.module_utils.vmail_db import (
    VmailDbError, find_domain, run_and_exit, vmail_db_argument_spec)
from ansible_collections.vmail.mailserver.plugins.module_utils.vmail_address import (
    AddressError, HAS_IDNA, IDNA_IMPORT_ERROR, domain_of, normalize_address)
from ansible_collections.vmail.mailserver.plugins.module_utils.vmail_planner import plan_members


def main():
    argument_spec = vmail_db_argument_spec()
    argument_spec.update(
        source=dict(type='str', required=True),
        destination=dict(type='list', elements='str'),
        exclusive=dict(type='bool', default=False),
        state=dict(type='str', default='present', choices=['present', 'absent']),
        lowercase_local_part=dict(type='bool', default=True),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True,
                           required_if=[('state', 'present', ('destination',))])
    if not HAS_IDNA:
        module.fail_json(msg=missing_required_lib('idna (Debian package python3-idna)'), exception=str(IDNA_IMPORT_ERROR))
    p = module.params
    state, lower = p['state'], p['lowercase_local_part']
    try:
        source = normalize_address(p['source'], lowercase_local_part=lower, allow_catchall=True)
        destinations = [normalize_address(d, lowercase_local_part=lower) for d in (p['destination'] or [])]
    except AddressError as exc:
        module.fail_json(msg=str(exc))
    if state == 'present' and not destinations:
        module.fail_json(msg='destination must list at least one address with state=present')
    if source in destinations:
        module.fail_json(msg='an alias from %s to itself would be a mail loop' % source)
    source_domain = domain_of(source)

    def work(cursor, widths):
        normalize_address(source, max_length=widths[('virtual_aliases', 'source')], allow_catchall=True)
        for dest in destinations:
            normalize_address(dest, max_length=widths[('virtual_aliases', 'destination')])
        domains = find_domain(cursor, source_domain, lock=True)
        if not domains and state == 'present':
            raise VmailDbError('domain %s of alias source %s does not exist in virtual_domains; create it first '
                               'with vmail.mailserver.mail_domain' % (source_domain, source))
        cursor.execute('SELECT id, destination FROM virtual_aliases WHERE source = %s ORDER BY id FOR UPDATE', (source,))
        rows = cursor.fetchall()
        current = [r['destination'] for r in rows]
        change = plan_members(source, current, destinations, state, exclusive=p['exclusive'],
                              member_name='destinations')
        for dest in change.add:
            cursor.execute('SELECT 1 FROM virtual_aliases WHERE source = %s AND destination = %s LIMIT 1', (dest, source))
            if cursor.fetchone():
                raise VmailDbError('alias %s -> %s would create a loop: %s already forwards to %s'
                                   % (source, dest, dest, source))
            dest_domain = domain_of(dest)
            if find_domain(cursor, dest_domain):
                cursor.execute('SELECT 1 FROM virtual_users WHERE email = %s UNION ALL '
                               'SELECT 1 FROM virtual_aliases WHERE source = %s LIMIT 1', (dest, dest))
                if not cursor.fetchone():
                    raise VmailDbError('destination %s is in the managed domain %s but is neither a mailbox nor an '
                                       'alias; create it first (typo protection)' % (dest, dest_domain))
        if not module.check_mode:
            for dest in change.remove:
                cursor.execute('DELETE FROM virtual_aliases WHERE source = %s AND destination = %s', (source, dest))
            for dest in change.add:
                cursor.execute('INSERT INTO virtual_aliases (domain_id, source, destination) VALUES (%s, %s, %s)',
                               (domains[0]['id'], source, dest))
        result = dict(changed=change.changed, source=source, added=change.add, removed=change.remove,
                      destinations=change.after.get('destinations', []))
        if module._diff:
            result['diff'] = change.diff()
        return result

    run_and_exit(module, work)


if __name__ == '__main__':
    main()
