# -*- coding: utf-8 -*-
# Copyright: vmail.mailserver developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
---
name: line_breaks
short_description: Name the role variables whose strings hold a line break or another control character
version_added: "0.5.0"
description:
  - Takes a mapping of variable names to values (as C(dict(names | zip(query('ansible.builtin.vars', *names))))) and
    returns the sorted list of the places where a string holds a line feed, a carriage return or another
    control character (U+0000 to U+001F except the tab, and U+007F), for example C(dovecot_hostname) or
    C(dovecot_special_use_mailboxes[2].name). Strings inside lists and mappings (keys included) are searched.
  - The roles of the collection assert that this list is empty before they change anything, since a line break in a
    value that is written into a configuration file would add a line of the caller's choosing to it (a
    setting, a header, a shell command).
options:
  _input:
    description: Mapping of variable names to their values.
    type: dict
    required: true
  allow:
    description: Names of variables that may hold several lines (PEM certificates, raw configuration text).
    type: list
    elements: str
    default: []
'''

EXAMPLES = r'''
- name: Refuse line breaks in the role variables
  ansible.builtin.assert:
    that: __names_with_breaks | length == 0
    fail_msg: "{{ __names_with_breaks | join(', ') }} must be one line"
  vars:
    __names: "{{ query('ansible.builtin.varnames', '^dovecot_') }}"
    __names_with_breaks: >-
      {{ dict(__names | zip(query('ansible.builtin.vars', *__names)))
         | vmail.mailserver.line_breaks(allow=['dovecot_extra_config']) }}
'''

RETURN = r'''
_value:
  description: The variables (with the path inside lists and mappings) whose strings hold a control character.
  type: list
  elements: str
'''

import re

from ansible.module_utils.common.text.converters import to_text
from ansible.module_utils.six import binary_type, string_types

CONTROL = re.compile(u'[\x00-\x08\x0a-\x1f\x7f]')


def _walk(value, path, found, depth=0):
    if depth > 50:
        return
    if isinstance(value, binary_type):
        value = to_text(value, errors='surrogate_or_replace')
    if isinstance(value, string_types):
        if CONTROL.search(value):
            found.append(path)
    elif isinstance(value, dict):
        for key, item in value.items():
            if isinstance(key, string_types) and CONTROL.search(key):
                found.append('%s (key %r)' % (path, key))
            _walk(item, '%s.%s' % (path, key) if isinstance(key, string_types) else '%s[%r]' % (path, key),
                  found, depth + 1)
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            _walk(item, '%s[%d]' % (path, index), found, depth + 1)


def line_breaks(variables, allow=None):
    """Return the sorted places (``name``, ``name[1].key``) whose strings hold a control character."""
    allowed = set(allow or [])
    found = []
    for name in sorted(variables or {}):
        if name not in allowed:
            _walk(variables[name], name, found)
    return found


class FilterModule(object):
    """vmail.mailserver filters."""

    def filters(self):
        return {'line_breaks': line_breaks}
