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
  - With the default I(format=summary), password hashes are never returned; only the Dovecot scheme of each
    stored password.
  - With I(format=accounts), it returns RV(domains), RV(users) and RV(aliases) in exactly the input structure of
    M(vmail.mailserver.mail_accounts), including each mailbox's stored hash as C(password_hash), so a server's
    accounts can be exported and re-applied elsewhere.
  - Never changes anything; C(check_mode) is supported.
options:
  format:
    description:
      - C(summary) returns RV(domains) with counts, RV(mailboxes) without hashes, RV(aliases) one row per
        destination, RV(counts) and RV(missing_domains).
      - C(accounts) returns RV(domains), RV(users) and RV(aliases) as M(vmail.mailserver.mail_accounts) takes them
        (plus RV(counts) and RV(missing_domains)). The result then contains password hashes: Ansible cannot mark
        return values C(no_log), so set C(no_log) on the task and keep the registered variable out of logs and
        world-readable files. A hash that M(vmail.mailserver.mail_accounts) does not recognise (not a crypt
        string or Dovecot C({SCHEME}) value) makes the re-apply fail for that mailbox.
    type: str
    choices: [ summary, accounts ]
    default: summary
    version_added: "0.2.0"
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

- name: Export all accounts, hashes included (sensitive)
  vmail.mailserver.mail_info:
    format: accounts
    config_file: /etc/vmail/mailsql-admin.cnf
  register: export
  no_log: true

- name: Re-apply the export on another server, removing anything else
  vmail.mailserver.mail_accounts:
    domains: "{{ export.domains }}"
    users: "{{ export.users }}"
    aliases: "{{ export.aliases }}"
    purge: true
    config_file: /etc/vmail/mailsql-admin.cnf
  no_log: true

- name: Only one domain
  vmail.mailserver.mail_info:
    domain: example.com
    config_file: /etc/vmail/mailsql-admin.cnf
'''

RETURN = r'''
domains:
  description:
    - Domains, sorted by name.
    - With I(format=accounts), each element is only C({"name": ...}), as M(vmail.mailserver.mail_accounts) takes it.
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
  returned: when I(format=summary)
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
  description:
    - With I(format=summary), alias rows sorted by source then destination.
    - With I(format=accounts), one element per source, sorted by source, with C(source) and C(destination)
      (a list of addresses, sorted), as M(vmail.mailserver.mail_accounts) takes it.
  returned: always
  type: list
  elements: dict
  contains:
    source: {description: Source address or C(@domain)., type: str, returned: always}
    destination: {description: Destination address (a sorted list with I(format=accounts))., type: raw, returned: always}
    domain: {description: Name of the owning domain., type: str, returned: when I(format=summary)}
  sample: [{"source": "postmaster@example.com", "destination": "alice@example.com", "domain": "example.com"}]
users:
  description:
    - With I(format=accounts), the mailboxes sorted by address, as M(vmail.mailserver.mail_accounts) takes them.
    - B(Sensitive) - contains the stored password hashes. Return values cannot be C(no_log); use C(no_log) on the task.
  returned: when I(format=accounts)
  type: list
  elements: dict
  contains:
    email: {description: The address., type: str, returned: always}
    password_hash: {description: The stored hash (as in C(virtual_users.password))., type: str, returned: always}
  sample: [{"email": "alice@example.com", "password_hash": "$6$..."}]
counts:
  description:
    - Number of domains, mailboxes and aliases returned (with I(format=accounts) the keys are C(domains), C(users)
      and C(aliases), the last counting alias sources).
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


def export_accounts(domains, users, aliases):
    """Return {domains, users, aliases, counts} in the input structure of mail_accounts.

    ``domains``: rows (id, name); ``users``: rows (email, password);
    ``aliases``: dicts (source, destination). Sorted by key; destinations
    sorted; a domain name stored twice is listed once.
    """
    names = sorted(set(d['name'] for d in domains))
    by_source = {}
    for row in aliases:
        by_source.setdefault(row['source'], set()).add(row['destination'])
    out = dict(domains=[dict(name=n) for n in names],
               users=[dict(email=r['email'], password_hash=r['password']) for r in sorted(users, key=lambda r: r['email'])],
               aliases=[dict(source=s, destination=sorted(by_source[s])) for s in sorted(by_source)])
    out['counts'] = dict(domains=len(out['domains']), users=len(out['users']), aliases=len(out['aliases']))
    return out


def main():
    argument_spec = vmail_db_argument_spec()
    argument_spec.update(domain=dict(type='list', elements='str', default=[]),
                         format=dict(type='str', default='summary', choices=['summary', 'accounts']))
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
        users = [r for r in cursor.fetchall() if r['domain_id'] in names]
        mailboxes = [dict(email=r['email'], domain=names[r['domain_id']], password_scheme=hashing.identify(r['password']))
                     for r in users]
        cursor.execute('SELECT domain_id, source, destination FROM virtual_aliases ORDER BY source, destination, id')
        aliases = [dict(source=r['source'], destination=r['destination'], domain=names[r['domain_id']])
                   for r in cursor.fetchall() if r['domain_id'] in names]
        per_domain = {}
        for item in mailboxes + aliases:
            counts = per_domain.setdefault(item['domain'], {'mailboxes': 0, 'aliases': 0})
            counts['mailboxes' if 'email' in item else 'aliases'] += 1
        out = []
        for d in domains:
            counts = per_domain.get(d['name'], {'mailboxes': 0, 'aliases': 0})
            out.append(dict(name=d['name'], id=d['id'], mailboxes=counts['mailboxes'], aliases=counts['aliases']))
        found = set(d['name'] for d in domains)
        missing = [w for w in wanted if w not in found]
        if module.params['format'] == 'accounts':
            return dict(changed=False, missing_domains=missing, **export_accounts(domains, users, aliases))
        return dict(changed=False, domains=out, mailboxes=mailboxes, aliases=aliases,
                    counts=dict(domains=len(out), mailboxes=len(mailboxes), aliases=len(aliases)),
                    missing_domains=missing)

    run_and_exit(module, work, write=False)


if __name__ == '__main__':
    main()
