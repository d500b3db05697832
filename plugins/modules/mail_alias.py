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
version_added: "0.5.0"
description:
  - Adds or removes rows of C(virtual_aliases) (the schema of the Linode guide "Email with Postfix,
    Dovecot, and MySQL"), which Postfix reads as C(virtual_alias_maps), one row per source/destination pair.
  - The guide schema has no unique index on the alias table; this module never creates a duplicate pair
    and serializes concurrent writers with a database lock.
  - I(active) needs schema version 4 (column C(virtual_aliases.active), added by M(vmail.mailserver.mail_schema),
    which the mailsql role runs). On an older database the module keeps working without it, and setting it fails
    naming migration 4; nothing is written.
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
  active:
    description:
      - Whether the alias is enabled (C(virtual_aliases.active) of every row of I(source)). A disabled alias keeps its
        rows; the Postfix queries of this collection do not expand it. Setting it back to C(true) restores it.
      - Not set leaves the stored value; new rows of a source that already has rows take their value, rows of a
        new source are created enabled.
      - Ignored with I(state=absent).
    type: bool
    version_added: "0.5.0"
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

- name: Disable an alias without removing its destinations
  vmail.mailserver.mail_alias:
    source: sales@example.com
    destination: alice@example.com
    active: false
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
active:
  description:
    - Whether the alias is enabled after the run (true when any of its rows is); null when the source has no rows
      or the database is below schema version 4.
  returned: always
  type: bool
  sample: true
  version_added: "0.5.0"
diff:
  description: Before and after destinations (and, with schema version 4, C(active)) of the source, when run with C(--diff).
  returned: when diff mode is on
  type: dict
  sample: {"before": {}, "after": {"source": "sales@example.com", "destinations": ["alice@example.com"]}}
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.vmail.mailserver.plugins.module_utils.vmail_db import run_and_exit, vmail_db_argument_spec
from ansible_collections.vmail.mailserver.plugins.module_utils.vmail_address import domain_of
from ansible_collections.vmail.mailserver.plugins.module_utils import vmail_accounts as accounts


def main():
    argument_spec = vmail_db_argument_spec()
    argument_spec.update(
        source=dict(type='str', required=True),
        destination=dict(type='list', elements='str'),
        exclusive=dict(type='bool', default=False),
        state=dict(type='str', default='present', choices=list(accounts.STATES)),
        lowercase_local_part=dict(type='bool', default=True),
        active=dict(type='bool'),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True,
                           required_if=[('state', 'present', ('destination',))])
    accounts.require_libraries(module, passlib=False)
    p = module.params
    alias = dict((k, p[k]) for k in ('source', 'destination', 'exclusive', 'state', 'active'))
    try:
        desired, entry = accounts.normalize_single(aliases=[alias], lowercase_local_part=p['lowercase_local_part'])
    except accounts.AccountsError as exc:
        module.fail_json(msg=str(exc))
    source, key, destinations = entry['source'], accounts.fold(entry['source']), entry['destinations']

    def work(cursor, widths):
        scope = dict(domains=sorted(set([entry['domain']] + [domain_of(d) for d in destinations])),
                     users=destinations, aliases=[source] + destinations)
        outcome = accounts.run_single(cursor, widths, desired, scope, check_mode=module.check_mode)
        current = outcome.state.aliases.get(key)
        before = accounts.unique_destinations(r['destination'] for r in current['rows']) if current else []
        change = outcome.plan.aliases.get(key)
        after = change['after'] if change else before
        active_before, active_after = accounts.alias_active(outcome.state, outcome.plan, key)
        result = dict(changed=change is not None, source=source, added=change['add'] if change else [],
                      removed=change['removed'] if change else [], destinations=after, active=active_after)
        if module._diff:
            result['diff'] = dict(before=_view(source, before, active_before), after=_view(source, after, active_after))
        return result

    run_and_exit(module, work)


def _view(source, destinations, active):
    if not destinations:
        return {}
    out = {'source': source, 'destinations': destinations}
    if active is not None:
        out['active'] = active
    return out


if __name__ == '__main__':
    main()
