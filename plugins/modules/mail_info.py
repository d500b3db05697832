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
version_added: "0.5.0"
description:
  - Reads C(virtual_domains), C(virtual_users) and C(virtual_aliases) in one consistent snapshot and
    returns them with counts, for audits and drift checks in CI pipelines.
  - With the default I(format=summary), password hashes are never returned; only the Dovecot scheme of each
    stored password.
  - With I(format=accounts), it returns RV(domains), RV(users) and RV(aliases) in exactly the input structure of
    M(vmail.mailserver.mail_accounts), including each mailbox's stored hash as C(password_hash), so a server's
    accounts can be exported and re-applied elsewhere.
  - On a database with schema version 4 (see M(vmail.mailserver.mail_schema)) it also reports each mailbox's quota,
    enabled flag, quota usage (bytes and messages, as Dovecot's C(quota_clone) plugin writes it into
    C(vmail_quota_usage)) and last login (as Dovecot's C(last_login) plugin writes it into C(vmail_last_login)),
    and each domain's C(active), C(default_quota) and C(alias_of). On an older database (version 3 or the guide's
    literal schema) those keys are left out, and I(inactive_days) fails naming migration 4.
  - On a database with schema version 5 it also reports the C(host) (mail node) of each domain and mailbox.
  - With I(dns), each element of RV(domains) also holds the DNS records that domain should publish (C(dns_records),
    C(dns_rrsets), C(mta_sts_policy), as M(vmail.mailserver.mail_domain) returns them); alias domains get no
    I(dns.autoconfig) records. I(dns) needs I(format=summary); invalid I(dns) options fail before the database is
    read.
  - Never changes anything; C(check_mode) is supported.
options:
  format:
    description:
      - C(summary) returns RV(domains) with counts, RV(mailboxes) without hashes, RV(aliases) one row per
        destination, RV(counts) and RV(missing_domains).
      - C(accounts) returns RV(domains), RV(users) and RV(aliases) as M(vmail.mailserver.mail_accounts) takes them
        (plus RV(counts) and RV(missing_domains)). The result then contains password hashes; Ansible cannot mark
        return values C(no_log), so set C(no_log) on the task and keep the registered variable out of logs and
        world-readable files. A hash that M(vmail.mailserver.mail_accounts) does not recognise (not a crypt
        string or Dovecot C({SCHEME}) value) makes the re-apply fail for that mailbox.
    type: str
    choices: [ summary, accounts ]
    default: summary
    version_added: "0.5.0"
  domain:
    description:
      - Only report these domains (and their mailboxes and aliases). Names are normalized like
        I(name) of M(vmail.mailserver.mail_domain). Unknown domains are listed in RV(missing_domains).
      - Default is all domains.
    type: list
    elements: str
    default: []
  inactive_days:
    description:
      - Also return RV(inactive), the mailboxes (of the reported domains) with no successful login in the last
        I(inactive_days) days, by the C(vmail_last_login) table that Dovecot's C(last_login) plugin fills. A mailbox
        that never logged in (no row, or C(0)) counts as inactive.
      - C(0) lists every mailbox. A negative value fails.
      - Needs schema version 4 (the table C(vmail_last_login)); fails naming the migration otherwise.
    type: int
    version_added: "0.5.0"
extends_documentation_fragment:
  - vmail.mailserver.vmail_db
  - vmail.mailserver.vmail_dns
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

- name: Mailboxes nobody logged into for half a year
  vmail.mailserver.mail_info:
    inactive_days: 180
    config_file: /etc/vmail/mailsql-admin.cnf
  register: stale

- name: Disable them (a cleanup playbook; nothing is deleted)
  vmail.mailserver.mail_user:
    email: "{{ item.email }}"
    active: false
    config_file: /etc/vmail/mailsql-admin.cnf
  loop: "{{ stale.inactive }}"

- name: The DNS records of every domain, DKIM keys from the rspamd role (each applies to its domain)
  vmail.mailserver.mail_info:
    config_file: /etc/vmail/mailsql-admin.cnf
    dns:
      mx: [mail.example.com]
      dkim_keys: "{{ rspamd_dkim_dns_keys }}"
      dmarc:
        rua: [dmarc-reports@example.com]
  register: mail_dns

- name: Print them as zone file lines
  ansible.builtin.debug:
    msg: "{{ item.1.name }}. IN {{ item.1.type }} {{ item.1.rdata }}"
  loop: "{{ mail_dns.domains | subelements('dns_records') }}"

- name: Mailboxes above 90 % of their quota
  ansible.builtin.debug:
    msg: "{{ item.email }}: {{ item.usage_bytes }} of {{ item.quota }} bytes"
  loop: "{{ mail.mailboxes | selectattr('quota', 'gt', 0) | rejectattr('usage_bytes', 'none') }}"
  when: item.usage_bytes >= item.quota * 0.9
'''

RETURN = r'''
domains:
  description:
    - Domains, sorted by name.
    - With I(format=accounts), each element holds only C(name), as M(vmail.mailserver.mail_accounts) takes it.
  returned: always
  type: list
  elements: dict
  contains:
    name: {description: Domain name as stored (A-label form)., type: str, returned: always}
    id: {description: C(virtual_domains.id)., type: int, returned: always}
    mailboxes: {description: Number of mailboxes of the domain., type: int, returned: always}
    aliases: {description: Number of alias rows of the domain., type: int, returned: always}
    active: {description: Whether the domain is enabled., type: bool, returned: with schema version 4}
    default_quota:
      description: Quota in bytes given to mailboxes created later in the domain (0 = unlimited).
      type: int
      returned: with schema version 4
    alias_of:
      description:
        - Name of the domain this one is an alias domain of; null for a normal domain.
        - With I(format=accounts) only present for alias domains.
      type: str
      returned: with schema version 4
    host:
      description:
        - The domain's mail node (C(virtual_domains.host)); null when not set (the only node).
        - With I(format=accounts) only present when set.
      type: str
      returned: with schema version 5
      version_added: "0.5.0"
    dns_records:
      description:
        - The DNS records the domain should publish, each with C(type), C(name), C(value), C(rdata) and, by type,
          C(priority), C(value_chunks), C(weight), C(port), C(target); the same list as RV(vmail.mailserver.mail_domain#module:dns_records).
      type: list
      elements: dict
      returned: when I(dns) is given
      version_added: "0.5.0"
    dns_rrsets:
      description: C(dns_records) grouped by name and type (C(name), C(type), C(rdata) a list), one element per DNS update.
      type: list
      elements: dict
      returned: when I(dns) is given
      version_added: "0.5.0"
    mta_sts_policy:
      description: The MTA-STS policy file text; null when I(dns.mta_sts) is not given or disabled.
      type: str
      returned: when I(dns) is given
      version_added: "0.5.0"
  sample: [{"name": "example.com", "id": 1, "mailboxes": 2, "aliases": 1, "active": true, "default_quota": 0,
            "alias_of": null}]
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
    quota: {description: Quota in bytes (0 = unlimited)., type: int, returned: with schema version 4}
    active: {description: Whether the mailbox is enabled., type: bool, returned: with schema version 4}
    host:
      description: The mailbox's own mail node (C(virtual_users.host)); null when not set (its domain's node).
      type: str
      returned: with schema version 5
      version_added: "0.5.0"
    usage_bytes:
      description: Bytes stored, as Dovecot last reported into C(vmail_quota_usage); null when it has not reported.
      type: int
      returned: with schema version 4
    usage_messages:
      description: Messages stored, from the same row; null when Dovecot has not reported.
      type: int
      returned: with schema version 4
    last_login:
      description: Time of the last successful login (ISO 8601, UTC, for example C(2026-11-22T07:30:00Z)) from
        C(vmail_last_login); null when the mailbox never logged in since the table exists.
      type: str
      returned: with schema version 4
  sample: [{"email": "alice@example.com", "domain": "example.com", "password_scheme": "SHA512-CRYPT", "quota": 2147483648,
            "active": true, "usage_bytes": 1048576, "usage_messages": 12, "last_login": "2026-11-22T07:30:00Z"}]
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
    active:
      description: Whether the alias row (with I(format=accounts), any row of the source) is enabled.
      type: bool
      returned: with schema version 4
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
    quota: {description: Quota in bytes., type: int, returned: with schema version 4}
    active: {description: Whether the mailbox is enabled., type: bool, returned: with schema version 4}
    host: {description: The mailbox's own mail node; only present when set., type: str, returned: with schema version 5,
           version_added: "0.5.0"}
  sample: [{"email": "alice@example.com", "password_hash": "$6$...", "quota": 0, "active": true}]
inactive:
  description: Mailboxes with no login in the last I(inactive_days) days (never logged in included), sorted by address.
  returned: when I(inactive_days) is set
  type: list
  elements: dict
  contains:
    email: {description: The address., type: str, returned: always}
    last_login: {description: Last login (ISO 8601 UTC) or null when never., type: str, returned: always}
  sample: [{"email": "old@example.com", "last_login": "2025-01-10T08:00:00Z"}, {"email": "new@example.com", "last_login": null}]
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

import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.vmail.mailserver.plugins.module_utils.vmail_db import run_and_exit, vmail_db_argument_spec
from ansible_collections.vmail.mailserver.plugins.module_utils.vmail_address import AddressError, normalize_domain
from ansible_collections.vmail.mailserver.plugins.module_utils import vmail_accounts as accounts
from ansible_collections.vmail.mailserver.plugins.module_utils import vmail_dns
from ansible_collections.vmail.mailserver.plugins.module_utils import vmail_hashing as hashing
from ansible_collections.vmail.mailserver.plugins.module_utils import vmail_info as info
from ansible_collections.vmail.mailserver.plugins.module_utils import vmail_schema as schema


def export_accounts(domains, users, aliases, columns=None, names=None):
    """Return {domains, users, aliases, counts} in the input structure of mail_accounts.

    ``domains``: rows (id, name, optional columns); ``users``: rows (email,
    password, optional columns); ``aliases``: dicts (source, destination,
    active when the column exists). Sorted by key; destinations sorted; a
    domain name stored twice is listed once (its lowest id's row). The
    account-model keys (``active``, ``default_quota``, ``alias_of`` of
    domains; ``quota``, ``active`` of users and aliases) are included when
    their columns exist; ``alias_of`` only for alias domains, ``host`` (of
    domains and users) only when set.
    """
    columns = columns or {}
    names = names or {}
    first = {}
    for row in sorted(domains, key=lambda r: r['id']):
        first.setdefault(row['name'], row)
    out_domains = []
    for name in sorted(first):
        entry = dict(name=name)
        details = info.domain_details(first[name], names, columns)
        for name in ('alias_of', 'host'):
            if details.get(name) is None:
                details.pop(name, None)
        entry.update(details)
        out_domains.append(entry)
    out_users = []
    for row in sorted(users, key=lambda r: r['email']):
        entry = dict(email=row['email'], password_hash=row['password'])
        entry.update(info.user_details(row, {}, {}, columns, ()))
        if entry.get('host') is None:
            entry.pop('host', None)
        out_users.append(entry)
    by_source = {}
    for row in aliases:
        item = by_source.setdefault(row['source'], {'destination': set(), 'active': False})
        item['destination'].add(row['destination'])
        item['active'] = item['active'] or bool(row.get('active'))
    out_aliases = []
    for source in sorted(by_source):
        entry = dict(source=source, destination=sorted(by_source[source]['destination']))
        if 'active' in columns.get('aliases', ()):
            entry['active'] = by_source[source]['active']
        out_aliases.append(entry)
    out = dict(domains=out_domains, users=out_users, aliases=out_aliases)
    out['counts'] = dict(domains=len(out['domains']), users=len(out['users']), aliases=len(out['aliases']))
    return out


def main():
    argument_spec = vmail_db_argument_spec()
    argument_spec.update(domain=dict(type='list', elements='str', default=[]),
                         format=dict(type='str', default='summary', choices=['summary', 'accounts']),
                         inactive_days=dict(type='int'),
                         dns=vmail_dns.dns_argument_spec())
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    accounts.require_libraries(module)
    days = module.params['inactive_days']
    if days is not None and days < 0:
        module.fail_json(msg='inactive_days must be 0 or more, got %d' % days)
    try:
        wanted = sorted(set(normalize_domain(d) for d in module.params['domain']))
    except AddressError as exc:
        module.fail_json(msg=str(exc))
    dns = module.params['dns']
    if dns is not None:
        if module.params['format'] != 'summary':
            module.fail_json(msg='dns needs format=summary (the format=accounts structure has no place for records)')
        try:
            vmail_dns.check_options(dns)
        except vmail_dns.DnsError as exc:
            module.fail_json(msg=str(exc))

    def work(cursor, widths):
        all_domains, all_users, all_aliases, columns = info.read_rows(cursor, widths)
        tables = info.existing_stats_tables(cursor)
        if days is not None and schema.LAST_LOGIN.name not in tables:
            module.fail_json(msg='inactive_days needs the table %s of schema migration 4, which this database does not '
                                 'have yet; run the vmail.mailserver.mailsql role or the vmail.mailserver.mail_schema '
                                 'module first' % schema.LAST_LOGIN.name)
        usage, logins = info.read_stats(cursor, tables)
        all_names = dict((d['id'], d['name']) for d in all_domains)
        domains = [d for d in all_domains if not wanted or d['name'] in wanted]
        names = dict((d['id'], d['name']) for d in domains)
        users = [r for r in sorted(all_users, key=lambda r: r['email']) if r['domain_id'] in names]
        mailboxes = []
        for r in users:
            box = dict(email=r['email'], domain=names[r['domain_id']], password_scheme=hashing.identify(r['password']))
            box.update(info.user_details(r, usage, logins, columns, tables))
            mailboxes.append(box)
        alias_rows = sorted((r for r in all_aliases if r['domain_id'] in names),
                            key=lambda r: (r['source'], r['destination'], r['id']))
        aliases = []
        for r in alias_rows:
            item = dict(source=r['source'], destination=r['destination'], domain=names[r['domain_id']])
            if 'active' in columns['aliases']:
                item['active'] = bool(r['active'])
            aliases.append(item)
        per_domain = {}
        for item in mailboxes + aliases:
            counts = per_domain.setdefault(item['domain'], {'mailboxes': 0, 'aliases': 0})
            counts['mailboxes' if 'email' in item else 'aliases'] += 1
        out = []
        for d in domains:
            counts = per_domain.get(d['name'], {'mailboxes': 0, 'aliases': 0})
            entry = dict(name=d['name'], id=d['id'], mailboxes=counts['mailboxes'], aliases=counts['aliases'])
            entry.update(info.domain_details(d, all_names, columns))
            if dns is not None:
                entry.update(domain_dns(module, d['name'], dns, entry.get('alias_of') is not None))
            out.append(entry)
        found = set(d['name'] for d in domains)
        missing = [w for w in wanted if w not in found]
        extra = {}
        if days is not None:
            now = module_time()
            extra['inactive'] = [dict(email=r['email'], last_login=info.iso_utc(logins.get(r['email'].lower())))
                                 for r in users if info.is_inactive(logins.get(r['email'].lower()), days, now)]
        if module.params['format'] == 'accounts':
            result = dict(changed=False, missing_domains=missing, **extra)
            result.update(export_accounts(domains, users, alias_rows, columns, all_names))
            return result
        return dict(changed=False, domains=out, mailboxes=mailboxes, aliases=aliases,
                    counts=dict(domains=len(out), mailboxes=len(mailboxes), aliases=len(aliases)),
                    missing_domains=missing, **extra)

    run_and_exit(module, work, write=False)


def domain_dns(module, name, dns, alias_domain):
    """The DNS keys of one reported domain; a stored name that is no DNS name gets none, with a warning."""
    try:
        normalize_domain(name)
    except AddressError as exc:
        module.warn('no DNS records for the stored domain %r: %s' % (name, exc))
        return dict(dns_records=[], dns_rrsets=[], mta_sts_policy=None)
    try:
        return vmail_dns.dns_result(name, dns, alias_domain=alias_domain)
    except vmail_dns.DnsError as exc:
        module.fail_json(msg='%s: %s' % (name, exc))


def module_time():
    """Now, in Unix seconds (a function so that tests can read the module's notion of now)."""
    return int(time.time())


if __name__ == '__main__':
    main()
