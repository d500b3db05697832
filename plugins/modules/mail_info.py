#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: vmail.mailserver developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
---
module: mail_info
short_description: Report the virtual domains, mailboxes and aliases of the Postfix/Dovecot SQL schema
version_added: "0.1.0"
description:
  - Reads C(virtual_domains), C(virtual_users) and C(virtual_aliases) in one consistent snapshot and
    returns them with counts, for audits and drift checks in CI pipelines.
  - Password hashes are never returned; only the Dovecot scheme of each stored password.
  - Never changes anything; C(check_mode) is supported.
options:
  domain:
    description:
      - Only report these domains (and their mailboxes and aliases). Names are normalized like
        I(name) of M(vmail.mailserver.mail_domain). Unknown domains are listed in RV(missing_domains).
      - Default is all domains.
    type: list
    elements: str
    default: []
extends_documentation_fragment:
  - vmail.mailserver.vmail_db
attributes:
  check_mode:
    support: full
    description: Read only.
author:
  - vmail.mailserver developers (@vmail)
'''

EXAMPLES = r'''
- name: Read the account database
  vmail.mailserver.mail_info:
    config_file: /etc/vmail/mailsql-admin.cnf
  register: mail

- name: Fail when someone added mailboxes by hand
  ansible.builtin.assert:
    that: mail.mailboxes | map(attribute='email') | difference(mailsql_users | map(attribute='email')) | length == 0

- name: Only one domain
  vmail.mailserver.mail_info:
    domain: example.com
    config_file: /etc/vmail/mailsql-admin.cnf
'''

RETURN = r'''
domains:
  description: Domains, sorted by name.
  returned: always
  type: list
  elements: dict
  contains:
    name: {description: Domain name as stored (A-label form)., type: str, returned: always}
    id: {description: C(virtual_domains.id)., type: int, returned: always}
    mailboxes: {description: Number of mailboxes of the domain., type: int, returned: always}
    aliases: {description: Number of alias rows of the domain., type: int, returned: always}
  sample: [{"name": "example.com", "id": 1, "mailboxes": 2, "aliases": 1}]
mailboxes:
  description: Mailboxes, sorted by address. Hashes are never returned.
  returned: always
  type: list
  elements: dict
  contains:
    email: {description: The address., type: str, returned: always}
    domain: {description: Name of the owning domain., type: str, returned: always}
    password_scheme:
      description: Dovecot scheme of the stored password (C(SHA512-CRYPT), ...), null when unrecognised.
      type: str
      returned: always
  sample: [{"email": "alice@example.com", "domain": "example.com", "password_scheme": "SHA512-CRYPT"}]
aliases:
  description: Alias rows, sorted by source then destination.
  returned: always
  type: list
  elements: dict
  contains:
    source: {description: Source address or C(@domain)., type: str, returned: always}
    destination: {description: Destination address., type: str, returned: always}
    domain: {description: Name of the owning domain., type: str, returned: always}
  sample: [{"source": "postmaster@example.com", "destination": "alice@example.com", "domain": "example.com"}]
counts:
  description: Number of domains, mailboxes and aliases returned.
  returned: always
  type: dict
  sample: {"domains": 1, "mailboxes": 2, "aliases": 1}
missing_domains:
  description: Requested domains that do not exist.
  returned: always
  type: list
  elements: str
  sample: []
'''

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.vmail.mailserver.plugins.module_utils.vmail_db import run_and_exit, vmail_db_argument_spec
from ansible_collections.vmail.mailserver.plugins.module_utils.vmail_address import (
    AddressError, HAS_IDNA, IDNA_IMPORT_ERROR, normalize_domain)
from ansible_collections.vmail.mailserver.plugins.module_utils import vmail_hashing as hashing


def main():
    argument_spec = vmail_db_argument_spec()
    argument_spec.update(domain=dict(type='list', elements='str', default=[]))
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    if not HAS_IDNA:
        module.fail_json(msg=missing_required_lib('idna (Debian package python3-idna)'), exception=str(IDNA_IMPORT_ERROR))
    if not hashing.HAS_PASSLIB:
        module.fail_json(msg=missing_required_lib('passlib (Debian package python3-passlib)'),
                         exception=hashing.PASSLIB_IMPORT_ERROR)
    try:
        wanted = sorted(set(normalize_domain(d) for d in module.params['domain']))
    except AddressError as exc:
        module.fail_json(msg=str(exc))

    def work(cursor, widths):
        cursor.execute('SELECT id, name FROM virtual_domains ORDER BY name, id')
        domains = [d for d in cursor.fetchall() if not wanted or d['name'] in wanted]
        names = dict((d['id'], d['name']) for d in domains)
        cursor.execute('SELECT domain_id, email, password FROM virtual_users ORDER BY email')
        mailboxes = [dict(email=r['email'], domain=names[r['domain_id']], password_scheme=hashing.identify(r['password']))
                     for r in cursor.fetchall() if r['domain_id'] in names]
        cursor.execute('SELECT domain_id, source, destination FROM virtual_aliases ORDER BY source, destination, id')
        aliases = [dict(source=r['source'], destination=r['destination'], domain=names[r['domain_id']])
                   for r in cursor.fetchall() if r['domain_id'] in names]
        out = []
        for d in domains:
            out.append(dict(name=d['name'], id=d['id'],
                            mailboxes=sum(1 for m in mailboxes if m['domain'] == d['name']),
                            aliases=sum(1 for a in aliases if a['domain'] == d['name'])))
        found = set(d['name'] for d in domains)
        return dict(changed=False, domains=out, mailboxes=mailboxes, aliases=aliases,
                    counts=dict(domains=len(out), mailboxes=len(mailboxes), aliases=len(aliases)),
                    missing_domains=[w for w in wanted if w not in found])

    run_and_exit(module, work, write=False)


if __name__ == '__main__':
    main()
