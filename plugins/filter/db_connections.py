# -*- coding: utf-8 -*-
# Copyright: vmail.mailserver developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
---
name: db_connections
short_description: The most database connections the mail hosts of an inventory can open
version_added: "0.5.0"
description:
  - The one rule of the collection's connection budget (docs/scaling.md). Given the variables of every mail
    host (for example C(hostvars) and C(groups['mail_servers'])), returns the number of connections Postfix and
    Dovecot can hold open to the account database at most, whatever the number of SMTP, IMAP or POP3 sessions.
    The mailsql role sets MariaDB's C(max_connections) from it plus C(mailsql_max_connections_headroom).
  - "Per mail host: Postfix C(postfix_proxymap_process_limit) x tables (proxymap(8) holds one connection per
    table and process; 10 tables at schema version 5), plus Dovecot (C(dovecot_auth_worker_process_limit) +
    C(dovecot_dict_process_limit)) x database hosts (Dovecot's MySQL driver connects every process to every
    host of its C(connect) setting)."
  - With C(postfix_mysql_proxy=false) every smtpd, cleanup and trivial-rewrite process holds its own connection
    per table; the filter then counts Postfix's C(default_process_limit) (100) x 3 processes x tables, a bound
    only in name; keep the proxy.
  - A variable the host does not set counts with the role default (the defaults below are checked against the
    roles' argument specs by the unit tests).
options:
  _input:
    description: Variables of every host, by inventory name (C(hostvars)).
    type: dict
    required: true
  hosts:
    description: The inventory names of the mail hosts (C(groups['mail_servers'])).
    type: list
    elements: str
    required: true
  db_hosts:
    description:
      - Number of database hosts a mail host connects to, for hosts that do not set C(dovecot_mysql_hosts)
        (the mailsql role passes the number of its cluster hosts).
    type: int
    default: 1
  detail:
    description: Return a list of per-host dicts (C(host), C(postfix), C(dovecot), C(total)) instead of the sum.
    type: bool
    default: false
'''

EXAMPLES = r'''
- name: Connections the mail hosts may open
  ansible.builtin.debug:
    msg: "{{ hostvars | vmail.mailserver.db_connections(groups['mail_servers']) }}"
'''

RETURN = r'''
_value:
  description: The sum over the hosts (an integer, connections), or with O(detail) one dict per host.
  type: raw
'''

from ansible.errors import AnsibleFilterError
from ansible.module_utils.six import string_types

from ansible_collections.vmail.mailserver.plugins.module_utils.vmail_lookups import postfix_queries

# Role defaults (roles/postfix and roles/dovecot meta/argument_specs.yml; tests/unit checks them).
DEFAULTS = {
    'postfix_mysql_proxy': True,
    'postfix_proxymap_process_limit': 4,
    'postfix_mysql_schema_version': 5,
    'dovecot_auth_worker_process_limit': 10,
    'dovecot_dict_process_limit': 4,
}
# Postfix's default_process_limit and the processes that open tables without proxymap
# (smtpd, cleanup, trivial-rewrite).
UNPROXIED_PROCESSES = 100 * 3


def _int(value, name, host):
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise AnsibleFilterError('db_connections: %s of %s must be an integer, got %r' % (name, host, value))
    if number < 0:
        raise AnsibleFilterError('db_connections: %s of %s must not be negative, got %r' % (name, host, value))
    return number


def _bool(value):
    if isinstance(value, string_types):
        return value.strip().lower() in ('1', 'true', 'yes', 'on')
    return bool(value)


def _hosts_count(hvars, db_hosts):
    hosts = hvars.get('dovecot_mysql_hosts') or []
    if isinstance(hosts, string_types):
        hosts = [hosts]
    return len(hosts) if hosts else max(1, db_hosts)


def host_budget(name, hvars, db_hosts=1):
    """Connections one mail host may hold open to the account database.

    :param name: inventory name (for error messages only)
    :param hvars: the host's variables (a mapping); unset variables count with DEFAULTS
    :param db_hosts: database hosts Dovecot connects to when the host does not set dovecot_mysql_hosts
    :returns: dict with C(host), C(postfix), C(dovecot) and C(total) (integers, connections)
    :raises AnsibleFilterError: a limit that is not a non-negative integer
    """
    def get(key):
        value = hvars.get(key, DEFAULTS[key])
        return DEFAULTS[key] if value is None else value

    version = _int(get('postfix_mysql_schema_version'), 'postfix_mysql_schema_version', name)
    tables = len(postfix_queries(version, node_name='node'))
    if _bool(get('postfix_mysql_proxy')):
        postfix = _int(get('postfix_proxymap_process_limit'), 'postfix_proxymap_process_limit', name) * tables
    else:
        postfix = UNPROXIED_PROCESSES * tables
    db_hosts = _hosts_count(hvars, db_hosts)
    dovecot = (_int(get('dovecot_auth_worker_process_limit'), 'dovecot_auth_worker_process_limit', name)
               + _int(get('dovecot_dict_process_limit'), 'dovecot_dict_process_limit', name)) * db_hosts
    return {'host': name, 'postfix': postfix, 'dovecot': dovecot, 'total': postfix + dovecot}


def db_connections(hostvars, hosts, db_hosts=1, detail=False):
    """The filter: sum (or per-host list) of host_budget over the mail hosts."""
    if not isinstance(hosts, (list, tuple)):
        raise AnsibleFilterError('db_connections: hosts must be a list of inventory names, got %r' % (hosts,))
    rows = []
    for name in hosts:
        try:
            hvars = hostvars[name]
        except KeyError:
            raise AnsibleFilterError('db_connections: no variables for host %r' % (name,))
        rows.append(host_budget(name, hvars, _int(db_hosts, 'db_hosts', 'the filter')))
    if detail:
        return rows
    return sum(row['total'] for row in rows)


class FilterModule(object):
    def filters(self):
        return {'db_connections': db_connections}
