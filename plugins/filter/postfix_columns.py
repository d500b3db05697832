# -*- coding: utf-8 -*-
# Copyright: vmail.mailserver developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
---
name: postfix_columns
short_description: The columns Postfix's lookup queries read, per table, for a schema version
version_added: "0.5.0"
description:
  - Returns the tables and columns that the Postfix C(mysql:) lookup queries of
    M(vmail.mailserver.lookup_queries#filter) (O(server=postfix)) read, derived from those queries and the
    collection's description of the schema (C(plugins/module_utils/vmail_lookups.py), C(vmail_schema.py)).
  - The union over every schema version from 1 to the one given (the postfix role may be configured for an
    older version than the database has), with the C(transport) table of schema version 5 included.
  - The mailsql role grants the Postfix DB account column-level SELECT on exactly these columns; the
    C(password) column of C(virtual_users) is never among them.
options:
  _input:
    description: The schema version of the database (the C(version) returned by M(vmail.mailserver.mail_schema)).
    type: int
    required: true
'''

EXAMPLES = r'''
- name: Show the columns Postfix reads at schema version 5
  ansible.builtin.debug:
    msg: "{{ 5 | vmail.mailserver.postfix_columns }}"
'''

RETURN = r'''
_value:
  description:
    - A dictionary of table name to the sorted list of its column names that Postfix's queries read. For schema
      versions 1 to 3 C(virtual_domains) maps to C([name]), C(virtual_users) to C([email]) and C(virtual_aliases)
      to C([destination, source]).
    - A schema version below 1 fails.
  type: dict
'''

from ansible.errors import AnsibleFilterError

from ansible_collections.vmail.mailserver.plugins.module_utils import vmail_lookups


def postfix_columns(schema_version):
    """Filter entry point: see :func:`vmail_lookups.postfix_columns`."""
    try:
        return vmail_lookups.postfix_columns(int(schema_version))
    except (TypeError, ValueError) as exc:
        raise AnsibleFilterError('postfix_columns: %s' % exc)


class FilterModule(object):
    """vmail.mailserver Postfix column filter."""

    def filters(self):
        return {'postfix_columns': postfix_columns}
