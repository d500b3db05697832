# -*- coding: utf-8 -*-
# Copyright: vmail.mailserver developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
---
name: lookup_queries
short_description: The SQL lookup queries of Postfix and Dovecot for a schema version
version_added: "0.5.0"
description:
  - Returns the queries Postfix's C(mysql:) tables (mysql_table(5)) or Dovecot's SQL passdb run against the
    account tables, built from the collection's one description of the schema
    (C(plugins/module_utils/vmail_schema.py), the queries in C(vmail_lookups.py)); the postfix and dovecot
    roles render their configuration from it.
  - Below schema version 4 the queries are the guide's ("Email with Postfix, Dovecot, and MySQL").
    From version 4 (the account model) they obey the C(active) flags of domains, mailboxes and aliases,
    rewrite alias domains (C(alias_of)) to their target domain when the target has that mailbox, alias or a
    catch-all, let a user send as the alias-domain form of the addresses it may send as, and refuse a disabled
    mailbox or domain at RCPT time with C(550 5.2.1) (RFC 3463 "Mailbox disabled, not accepting messages").
  - O(server=dovecot_dict) returns the maps of Dovecot's SQL dict (the dict server the C(last_login) and
    C(quota_clone) plugins write through), which put the last login into C(vmail_last_login) and the quota usage
    into C(vmail_quota_usage), tables of schema version 4.
  - From schema version 5 (mail nodes), given O(node_name), Postfix gets a C(transport) table and Dovecot's passdb
    proxies logins of mailboxes stored on another node (see RV(_value)).
  - The queries contain no values except O(node_name), which must be a valid host name (letters, digits, dots and
    hyphens); Postfix and Dovecot substitute and SQL-quote C(%s), C(%u), C(%d)
    (Postfix) and C(%u) (Dovecot 2.3) or C(%{user}) (Dovecot 2.4) themselves.
options:
  _input:
    description: The schema version of the database (the C(version) returned by M(vmail.mailserver.mail_schema)).
    type: int
    required: true
  server:
    description: Whose queries to return.
    type: str
    choices: [ postfix, dovecot, dovecot_dict ]
    required: true
  dovecot_version:
    description:
      - The Dovecot version (C(2.3) or C(2.4)); their variable syntax differs. Only for O(server=dovecot) and
        O(server=dovecot_dict).
    type: str
    default: "2.4"
  node_name:
    description:
      - The name of the mail node the server runs on, as the C(host) columns of C(virtual_domains) and
        C(virtual_users) name it (C(postfix_node_name), C(dovecot_node_name)). Only used from schema version 5;
        empty or not given leaves out what depends on it (one node).
    type: str
    version_added: "0.5.0"
'''

EXAMPLES = r'''
- name: Show the query of Postfix's virtual_mailbox_maps for the account model
  ansible.builtin.debug:
    msg: "{{ (4 | vmail.mailserver.lookup_queries('postfix')).mailboxes }}"

- name: Dovecot 2.3's password_query on a guide database that was not migrated
  ansible.builtin.debug:
    msg: "{{ (1 | vmail.mailserver.lookup_queries('dovecot', dovecot_version='2.3')).password_query }}"

- name: The table the last_login plugin writes to
  ansible.builtin.debug:
    msg: "{{ ((4 | vmail.mailserver.lookup_queries('dovecot_dict')).maps | first).table }}"
'''

RETURN = r'''
_value:
  description:
    - For O(server=postfix), a dictionary of table name to query. Keys C(domains) (virtual_mailbox_domains),
      C(mailboxes) (virtual_mailbox_maps), C(aliases), C(email2email) (virtual_alias_maps), C(sender_login)
      (smtpd_sender_login_maps); from schema version 4 also C(alias_domains) (virtual_alias_maps),
      C(alias_domain_senders) (a second smtpd_sender_login_maps table), C(recipient_access)
      (check_recipient_access, the result is an access(5) action, C(550 5.2.1) for a disabled mailbox or
      domain) and C(quota_access) (check_recipient_access, C(552 5.2.2 Mailbox full) for an alias whose every
      destination is a full mailbox and for the alias-domain form of a full mailbox, from C(vmail_quota_usage)).
      From schema version 5 with O(node_name) also C(transport) (transport_maps), C(lmtp-nodes:inet:<node>:24)
      (the postfix role's verified-TLS LMTP service) for a mailbox whose node (C(virtual_users.host), else
      C(virtual_domains.host)) is set and is not O(node_name).
    - For O(server=dovecot), a dictionary with C(password_query); from schema version 4 also C(user_query) and
      C(iterate_query) of an SQL userdb (the user query returns the quota limit in the field named by
      C(quota_field), C(quota_rule) on 2.3, C(quota_storage_size) on 2.4; 0 bytes is unlimited) and
      C(quota_status_overquota), the reply of Dovecot's quota-status service for a full mailbox. From schema
      version 5 with O(node_name) the password query also returns C(proxy) (C(Y)), C(host) and C(starttls)
      (C(yes), the node's certificate is verified) for a mailbox stored on another node (NULL otherwise, which Dovecot ignores).
    - For O(server=dovecot_dict), a dictionary with C(last_login_key) (the key the C(last_login) plugin writes,
      C(last-login/%u) on 2.3, C(last-login/%{user}) on 2.4) and C(maps), a list of the SQL dict maps. Each map
      has C(pattern) (the dict key, C($user) a variable), C(table), C(value_field), C(value_type) (C(uint)),
      C(username_field) (the user name column of a C(priv/) key, else null) and C(fields) (a list of
      [column, variable] pairs of a C(shared/) key). The maps are C(shared/last-login/$user) to
      C(vmail_last_login.last_login) (Unix seconds) and C(priv/quota/storage) and C(priv/quota/messages) to
      C(vmail_quota_usage.bytes) and C(.messages), keyed by C(email). The tables exist from schema version 4;
      a lower version fails.
    - A schema version below 1 or an unknown O(server) fails.
  type: dict
'''

from ansible.errors import AnsibleFilterError

from ansible_collections.vmail.mailserver.plugins.module_utils import vmail_lookups


def lookup_queries(schema_version, server, dovecot_version='2.4', node_name=None):
    """Filter entry point: see :func:`vmail_lookups.postfix_queries`, :func:`vmail_lookups.dovecot_queries`
    and :func:`vmail_lookups.dovecot_dict_maps`."""
    try:
        version = int(schema_version)
        if server == 'postfix':
            return vmail_lookups.postfix_queries(version, node_name)
        if server == 'dovecot':
            return vmail_lookups.dovecot_queries(version, dovecot_version, node_name)
        if server == 'dovecot_dict':
            if version < vmail_lookups.ACCOUNT_MODEL:
                raise ValueError('the dict tables need schema version %d, got %d' % (vmail_lookups.ACCOUNT_MODEL, version))
            return vmail_lookups.dovecot_dict_maps(dovecot_version)
    except (TypeError, ValueError) as exc:
        raise AnsibleFilterError('lookup_queries: %s' % exc)
    raise AnsibleFilterError("lookup_queries: server must be 'postfix', 'dovecot' or 'dovecot_dict', got %r" % (server,))


class FilterModule(object):
    """vmail.mailserver lookup query filter."""

    def filters(self):
        return {'lookup_queries': lookup_queries}
