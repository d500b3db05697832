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
version_added: "0.5.0"
description:
  - Adds or removes a row of C(virtual_domains) in the mail database (the schema of the Linode guide
    "Email with Postfix, Dovecot, and MySQL"), which makes Postfix accept mail for the domain
    (C(virtual_mailbox_domains)).
  - Works on a database created with the guide's literal SQL; the C(virtual_domains.name) column has
    no unique index there, so duplicate rows are tolerated (the lowest id is used) and never created.
  - I(active), I(default_quota) and I(alias_of) need schema version 4 (the columns of the same names,
    added by M(vmail.mailserver.mail_schema), which the mailsql role runs). On an older database the module
    keeps working without them, and setting one of them fails naming migration 4; nothing is written.
  - I(host) needs schema version 5 (column C(virtual_domains.host)); on an older database setting it fails naming
    migration 5 and writes nothing.
  - An option that is not set leaves the stored value alone (a new domain gets the column default).
  - With I(dns) (and I(state=present); it is ignored with I(state=absent)) the module also returns the DNS records
    the domain should publish (RV(dns_records), RV(dns_rrsets), RV(mta_sts_policy)); computing them writes nothing
    and does not change C(changed). Invalid I(dns) options fail before the database is read. For an alias domain
    (I(alias_of), or the stored value when it is not set) the MX, SPF, DKIM, DMARC, MTA-STS and TLS-RPT records are
    returned, since mail to it reaches the same servers and may be signed and sent as it; the I(dns.autoconfig)
    records are not, since nobody signs in with its addresses. In check mode the records of a domain that would be
    created are returned too.
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
  active:
    description:
      - Whether the domain is enabled (C(virtual_domains.active)). A disabled domain stays in the database with its
        mailboxes and aliases; the Postfix and Dovecot queries of this collection treat it as absent. Setting it
        back to C(true) restores everything.
      - Not set (the default) leaves the stored value; a new domain is created enabled.
    type: bool
    version_added: "0.5.0"
  default_quota:
    description:
      - Quota in bytes copied into I(quota) of mailboxes created later in this domain by
        M(vmail.mailserver.mail_user) or M(vmail.mailserver.mail_accounts) when they give no quota of their own.
        Existing mailboxes are not changed.
      - An integer number of bytes or a size with a binary unit such as C(2G), C(500M) or C(1.5G)
        (parsed with Ansible's C(human_to_bytes); C(1K) = 1024 bytes). C(0) means unlimited, as in Dovecot's
        quota plugin (U(https://doc.dovecot.org/main/core/plugins/quota.html)).
      - A negative, fractional or unparsable value fails; nothing is written.
      - Not set leaves the stored value; a new domain gets C(0).
    type: raw
    version_added: "0.5.0"
  alias_of:
    description:
      - Makes this domain an alias domain of the named domain (C(virtual_domains.alias_of) holds that domain's id),
        so that mail to C(user@this) is delivered as mail to C(user@target), including the target's aliases and
        catch-all.
      - The target must exist (create it first) and must itself be a normal domain. Fails, writing nothing, when the
        target is unknown, is this domain, is an alias domain itself, when other domains are alias domains of this
        one, or when this domain has mailboxes of its own.
      - An empty string makes an alias domain a normal domain again. Not set leaves the stored value.
      - The foreign key is C(ON DELETE CASCADE), so removing the target removes its alias domains;
        M(vmail.mailserver.mail_domain) refuses that without I(force=true).
    type: str
    version_added: "0.5.0"
  host:
    description:
      - The mail node that stores the mail of this domain's mailboxes (C(virtual_domains.host)) when the mail service
        runs on several nodes; a mailbox's own I(host) (M(vmail.mailserver.mail_user)) overrides it. NULL on both
        means the only (local) node.
      - Every other node relays mail for these mailboxes to that node by LMTP (port 24) and proxies their IMAP,
        POP3 and ManageSieve logins to it; it compares the value with its C(postfix_node_name)/C(dovecot_node_name).
      - A host name, not an IP address; lowercased and converted to A-labels like I(name), a single label is
        allowed, 255 characters at most.
      - An empty string clears it. Not set leaves the stored value; a new domain gets NULL.
    type: str
    version_added: "0.5.0"
extends_documentation_fragment:
  - vmail.mailserver.vmail_db
  - vmail.mailserver.vmail_dns
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

- name: A domain whose new mailboxes get 2 GiB by default
  vmail.mailserver.mail_domain:
    name: example.com
    default_quota: 2G
    config_file: /etc/vmail/mailsql-admin.cnf

- name: example.net delivers to the same local parts of example.com
  vmail.mailserver.mail_domain:
    name: example.net
    alias_of: example.com
    config_file: /etc/vmail/mailsql-admin.cnf

- name: Disable a domain without deleting anything
  vmail.mailserver.mail_domain:
    name: old.example
    active: false
    config_file: /etc/vmail/mailsql-admin.cnf

- name: A domain and the DNS records it should publish (see docs/dns.md to send them to a DNS server)
  vmail.mailserver.mail_domain:
    name: example.com
    config_file: /etc/vmail/mailsql-admin.cnf
    dns:
      mx: [mail.example.com]
      spf:
        mechanisms: ["ip6:2001:db8::25"]
      dkim_keys: "{{ rspamd_dkim_dns_keys | default([]) }}"   # keys of other domains are skipped
      dmarc:
        policy: quarantine
        rua: [dmarc-reports@example.com]
      mta_sts:
        mode: testing
      tls_rpt:
        rua: [tls-reports@example.com]
      autoconfig: {}
  register: domain

- name: Show them
  ansible.builtin.debug:
    msg: "{{ item.name }} {{ item.type }} {{ item.rdata }}"
  loop: "{{ domain.dns_records }}"

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
active:
  description: Whether the domain is enabled after the run; null when absent or the database is below schema version 4.
  returned: always
  type: bool
  sample: true
  version_added: "0.5.0"
default_quota:
  description: The domain's default quota in bytes after the run (0 = unlimited); null when absent or below schema
    version 4.
  returned: always
  type: int
  sample: 2147483648
  version_added: "0.5.0"
alias_of:
  description: Name of the domain this one is an alias domain of after the run; null for a normal domain, when absent
    or below schema version 4.
  returned: always
  type: str
  sample: example.com
  version_added: "0.5.0"
host:
  description: The domain's mail node after the run; null when not set (the only node), absent, or below schema
    version 5.
  returned: always
  type: str
  sample: mail1.example.net
  version_added: "0.5.0"
dns_records:
  description:
    - The DNS records the domain should publish, in the order MX (by priority), SPF, DKIM (by selector), DMARC,
      MTA-STS, TLS-RPT, autoconfig CNAME, SRV. See I(dns) and C(docs/dns.md).
  returned: when I(dns) is given and I(state=present)
  type: list
  elements: dict
  contains:
    type: {description: "The record type: C(MX), C(TXT), C(CNAME) or C(SRV).", type: str, returned: always}
    name: {description: "The owner name: absolute, lowercase A-label form, without the trailing dot.", type: str,
           returned: always}
    value:
      description:
        - The value; the text of a TXT record (unquoted, in one piece however long), the host name of an MX or
          CNAME record (without the trailing dot), C(priority weight port target) of an SRV record.
      type: str
      returned: always
    rdata:
      description:
        - The value in zone file presentation form, as C(nsupdate) and zone files take it; host names end with a
          dot, TXT text is given as quoted strings of at most 255 bytes each.
      type: str
      returned: always
    priority: {description: The MX or SRV priority., type: int, returned: for MX and SRV records}
    value_chunks:
      description: The TXT text split into strings of at most 255 bytes (RFC 1035 section 3.3, RFC 7208 section 3.3),
        for DNS interfaces that want the strings of a long record separately; one string for a short record.
      type: list
      elements: str
      returned: for TXT records
    weight: {description: The SRV weight., type: int, returned: for SRV records}
    port: {description: The SRV port., type: int, returned: for SRV records}
    target: {description: The SRV target host (without the trailing dot)., type: str, returned: for SRV records}
  sample: [{"type": "MX", "name": "example.com", "value": "mail.example.com", "priority": 10,
            "rdata": "10 mail.example.com."},
           {"type": "TXT", "name": "example.com", "value": "v=spf1 mx -all", "value_chunks": ["v=spf1 mx -all"],
            "rdata": "\"v=spf1 mx -all\""},
           {"type": "TXT", "name": "_dmarc.example.com", "value": "v=DMARC1; p=quarantine",
            "value_chunks": ["v=DMARC1; p=quarantine"], "rdata": "\"v=DMARC1; p=quarantine\""}]
  version_added: "0.5.0"
dns_rrsets:
  description:
    - RV(dns_records) grouped by name and type, in the same order. DNS update interfaces such as
      C(community.general.nsupdate) replace all records of a name and type at once, so each element is one update.
  returned: when I(dns) is given and I(state=present)
  type: list
  elements: dict
  contains:
    name: {description: The owner name (no trailing dot)., type: str, returned: always}
    type: {description: The record type., type: str, returned: always}
    rdata: {description: The RV(dns_records) C(rdata) values of this name and type., type: list, elements: str,
            returned: always}
  sample: [{"name": "example.com", "type": "MX", "rdata": ["10 mail.example.com."]}]
  version_added: "0.5.0"
mta_sts_policy:
  description:
    - The MTA-STS policy file (RFC 8461 section 3.2) to serve at C(https://mta-sts.<domain>/.well-known/mta-sts.txt);
      its SHA-256 gives the default id of the C(_mta-sts) record. Null when I(dns.mta_sts) is not given or disabled.
  returned: when I(dns) is given and I(state=present)
  type: str
  sample: "version: STSv1\nmode: testing\nmx: mail.example.com\nmax_age: 604800\n"
  version_added: "0.5.0"
diff:
  description:
    - Before and after state of the domain, when run with C(--diff); with schema version 4 also C(active),
      C(default_quota) and C(alias_of), with version 5 C(host).
  returned: when diff mode is on
  type: dict
  sample: {"before": {}, "after": {"name": "example.com", "active": true, "default_quota": 0, "alias_of": null}}
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.vmail.mailserver.plugins.module_utils.vmail_db import run_and_exit, vmail_db_argument_spec
from ansible_collections.vmail.mailserver.plugins.module_utils import vmail_accounts as accounts
from ansible_collections.vmail.mailserver.plugins.module_utils import vmail_dns


def main():
    argument_spec = vmail_db_argument_spec()
    argument_spec.update(
        name=dict(type='str', required=True, aliases=['domain']),
        state=dict(type='str', default='present', choices=['present', 'absent']),
        force=dict(type='bool', default=False),
        active=dict(type='bool'),
        default_quota=dict(type='raw'),
        alias_of=dict(type='str'),
        host=dict(type='str'),
        dns=vmail_dns.dns_argument_spec(),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    accounts.require_libraries(module, passlib=False)
    p = module.params
    try:
        desired, entry = accounts.normalize_single(domains=[dict(
            (k, p[k]) for k in ('name', 'state', 'force', 'active', 'default_quota', 'alias_of', 'host'))])
    except accounts.AccountsError as exc:
        module.fail_json(msg=str(exc))
    name, key = entry['name'], accounts.fold(entry['name'])
    want_dns = p['dns'] is not None and p['state'] == accounts.PRESENT
    if want_dns:
        try:  # before the database is touched: bad DNS options fail with nothing written
            vmail_dns.dns_result(name, p['dns'])
        except vmail_dns.DnsError as exc:
            module.fail_json(msg=str(exc))

    def work(cursor, widths):
        targets = [entry['alias_of']] if entry['alias_of'] else []
        outcome = accounts.run_single(cursor, widths, desired, check_mode=module.check_mode,
                                      scope=dict(domains=[name], targets=targets, aliased_by=True,
                                                 members=p['state'] == accounts.ABSENT or bool(targets)))
        for warning in outcome.plan.warnings:
            module.warn(warning)
        change = outcome.plan.domains.get(key)
        exists = key in outcome.state.domains
        current = accounts.domain_attributes(outcome.state, outcome.plan, key, after=False)
        final = accounts.domain_attributes(outcome.state, outcome.plan, key, after=True)
        result = dict(changed=change is not None, name=name, id=None, active=None, default_quota=None, alias_of=None,
                      host=None)
        before = dict(name=name, **current) if exists else {}
        after = dict(name=name, **final) if p['state'] == accounts.PRESENT else {}
        if p['state'] == accounts.PRESENT:
            result.update(final)
            if not (module.check_mode and change is not None and change['action'] == accounts.CREATE):
                result['id'] = outcome.domain_ids.get(key)
            if want_dns:
                result.update(vmail_dns.dns_result(name, p['dns'], alias_domain=final.get('alias_of') is not None))
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
