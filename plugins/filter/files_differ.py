# -*- coding: utf-8 -*-
# Copyright: vmail.mailserver developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
---
name: files_differ
short_description: Which managed files differ from what a role would write (content, mode, owner, group)
version_added: "0.5.0"
description:
  - The roles' "one round trip" check (postfix, dovecot, rspamd). One C(ansible.builtin.find) with
    C(get_checksum=true) reads the SHA-1 checksum, mode, owner and group of every file a role manages; the
    templates are rendered on the controller (C(ansible.builtin.template) lookup); this filter compares them
    and returns the paths of the files that are missing or differ, so that only those go through the
    C(template) tasks, their validation and their handlers. A run that changes nothing skips them all.
  - The checksum is SHA-1 of the UTF-8 text, the one Ansible's own modules report (C(checksum) of
    C(ansible.builtin.stat), C(ansible.builtin.find) and C(ansible.builtin.template)).
  - Should the controller's rendering ever differ from the template module's, the template task for that
    file runs and reports C(ok), so the check can cost time, never hide a change.
options:
  _input:
    description: The C(files) list of an C(ansible.builtin.find) result run with C(get_checksum=true).
    type: list
    elements: dict
    required: true
  wanted:
    description:
      - One entry a managed file, with C(path) (absolute), C(mode) (a string such as V(0640)), C(group), and
        optionally C(owner) (default V(root)), C(content) (the rendered text) and C(key) (what to return for
        this entry instead of its C(path), for example a name relative to the role's directory).
      - An entry without C(content) takes the element of O(contents) at the same position.
    type: list
    elements: dict
    required: true
  contents:
    description:
      - The rendered texts of O(wanted), in the same order, for example
        C(query('ansible.builtin.template', *sources)). Needed when the entries have no C(content).
    type: list
    elements: str
    default: []
'''

EXAMPLES = r'''
- name: Read checksum, owner and mode of the configuration files
  ansible.builtin.find:
    paths: /etc/rspamd
    recurse: true
    patterns: "{{ files | map(attribute='name') | list }}"
    get_checksum: true
  register: found

- name: Decide which files differ from their templates
  ansible.builtin.set_fact:
    differ: >-
      {{ found.files | vmail.mailserver.files_differ(files, query('ansible.builtin.template', *(files | map(attribute='src')))) }}
  no_log: true  # the rendered files may hold passwords
'''

RETURN = r'''
_value:
  description: The C(path) (or C(key)) of each entry of O(wanted) that is missing, or whose checksum, mode, owner
    or group differs, in the order of O(wanted).
  type: list
  elements: str
'''

import hashlib

from ansible.errors import AnsibleFilterError
from ansible.module_utils.common.text.converters import to_bytes
from ansible.module_utils.six import string_types


def _checksum(text):
    """SHA-1 hex digest of ``text`` as UTF-8: the ``checksum`` Ansible's file modules report."""
    return hashlib.sha1(to_bytes(text, errors='surrogate_or_strict')).hexdigest()


def files_differ(found, wanted, contents=None):
    """Return the paths of ``wanted`` whose file in ``found`` is missing or differs (see DOCUMENTATION).

    :param found: ``find``'s ``files`` (dicts with ``path``, ``checksum``, ``mode``, ``pw_name``, ``gr_name``).
    :param wanted: dicts with ``path``, ``mode``, ``group``, optional ``owner`` (``root``), ``content`` and ``key``
        (returned instead of ``path``).
    :param contents: rendered texts for the entries of ``wanted`` without ``content``, same order.
    :raises AnsibleFilterError: on an entry without ``path``, ``mode`` or ``group``, on a ``contents`` list of
        another length than ``wanted``, or an entry with neither ``content`` nor a text in ``contents``.
    """
    if not isinstance(found, list) or not isinstance(wanted, list):
        raise AnsibleFilterError('files_differ: the input (find.files) and wanted must be lists')
    contents = list(contents or [])
    if contents and len(contents) != len(wanted):
        raise AnsibleFilterError('files_differ: %d contents for %d wanted files' % (len(contents), len(wanted)))
    current = dict((f.get('path'), f) for f in found if isinstance(f, dict))
    differ = []
    for index, want in enumerate(wanted):
        if not isinstance(want, dict) or not all(want.get(key) for key in ('path', 'mode', 'group')):
            raise AnsibleFilterError('files_differ: wanted[%d] needs path, mode and group' % index)
        content = want.get('content', contents[index] if contents else None)
        if not isinstance(content, string_types):
            raise AnsibleFilterError('files_differ: no content for %s' % want['path'])
        cur = current.get(want['path'], {})
        if (cur.get('checksum') != _checksum(content) or cur.get('mode') != want['mode']
                or cur.get('pw_name') != want.get('owner', 'root') or cur.get('gr_name') != want['group']):
            differ.append(want.get('key', want['path']))
    return differ


class FilterModule(object):
    """The files_differ filter."""

    def filters(self):
        return {'files_differ': files_differ}
