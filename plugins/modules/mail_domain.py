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

from ansible_collections.vmail.mailserver.plugins.module_utils.vmail_db import run_and_exit, vmail_db_argument_spec
from ansible_collections.vmail.mailserver.plugins.module_utils.vmail_address import HAS_IDNA, IDNA_IMPORT_ERROR
from ansible_collections.vmail.mailserver.plugins.module_utils import vmail_accounts as accounts


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
    p = module.params
    try:
        desired, entry = accounts.normalize_single(domains=[dict(name=p['name'], state=p['state'], force=p['force'])])
    except accounts.AccountsError as exc:
        module.fail_json(msg=str(exc))
    name, key = entry['name'], accounts.fold(entry['name'])

    def work(cursor, widths):
        outcome = accounts.run_single(cursor, widths, desired, check_mode=module.check_mode,
                                      scope=dict(domains=[name], members=p['state'] == accounts.ABSENT))
        for warning in outcome.plan.warnings:
            module.warn(warning)
        change = outcome.plan.domains.get(key)
        exists = key in outcome.state.domains
        result = dict(changed=change is not None, name=name, id=None)
        before = {'name': name} if exists else {}
        after = {'name': name} if p['state'] == accounts.PRESENT else {}
        if p['state'] == accounts.PRESENT:
            if not (module.check_mode and change is not None):
                result['id'] = outcome.domain_ids.get(key)
        else:
            result.update(mailboxes_removed=change['users'] if change else 0,
                          aliases_removed=change['aliases'] if change else 0)
            if change:
                before.update(mailboxes=change['users'], aliases=change['aliases'])
        if module._diff:
            result['diff'] = dict(before=before, after=after)
        return result

    run_and_exit(module, work)


if __name__ == '__main__':
    main()
