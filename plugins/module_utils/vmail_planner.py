# -*- coding: utf-8 -*-
# Copyright: vmail.mailserver developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Desired-versus-current comparison shared by all vmail.mailserver modules.

The planner is pure: it takes plain dicts/lists read from the database and
the normalized desired state, and returns a :class:`Change` that says what
to do and what ``--diff`` should show. Modules (and a future bulk module)
execute the change themselves, so planning can be reused and unit tested.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

HIDDEN = '(hidden)'

NONE = 'none'
CREATE = 'create'
UPDATE = 'update'
DELETE = 'delete'


class Change(object):
    """The planned change of one object.

    Attributes: ``action`` (none/create/update/delete), ``key`` (the
    object's identifier), ``before``/``after`` (dicts for ``--diff``, empty
    when the object does not exist), ``fields`` (names of updated fields),
    ``add``/``remove`` (members to add/remove for set-valued objects).
    """

    def __init__(self, action, key, before=None, after=None, fields=None, add=None, remove=None):
        self.action = action
        self.key = key
        self.before = before or {}
        self.after = after or {}
        self.fields = list(fields or [])
        self.add = list(add or [])
        self.remove = list(remove or [])

    @property
    def changed(self):
        """True when the change writes anything."""
        return self.action != NONE

    def diff(self):
        """Return the ``diff`` dict Ansible shows with ``--diff``."""
        return {'before': self.before, 'after': self.after}

    def __repr__(self):
        return 'Change(%r, %r, fields=%r, add=%r, remove=%r)' % (self.action, self.key, self.fields, self.add, self.remove)


def plan_record(key, current, desired, state, force_fields=None):
    """Plan one record.

    ``current`` is the record as read (dict) or None when absent;
    ``desired`` holds the wanted values of the managed fields. A field is
    updated when its desired value is not None and differs from the current
    one; names in ``force_fields`` are updated regardless (for example a
    password that no longer verifies). Returns a :class:`Change`.
    """
    force_fields = list(force_fields or [])
    if state == 'absent':
        if current is None:
            return Change(NONE, key)
        return Change(DELETE, key, before=dict(current))
    if current is None:
        after = dict((k, v) for k, v in desired.items() if v is not None)
        return Change(CREATE, key, after=after, fields=sorted(after))
    fields = [k for k, v in desired.items() if v is not None and (k in force_fields or current.get(k) != v)]
    fields.extend(k for k in force_fields if k not in fields)
    after = dict(current)
    for name in fields:
        if desired.get(name) is not None:
            after[name] = desired[name]
    return Change(UPDATE if fields else NONE, key, before=dict(current), after=after, fields=sorted(fields))


def plan_members(key, current, desired, state, exclusive=False, member_name='members'):
    """Plan a set-valued object such as the destinations of an alias source.

    ``current`` and ``desired`` are lists of members. With ``state=present``
    missing members are added and, when ``exclusive``, the others removed.
    With ``state=absent`` the desired members are removed, or all of them
    when ``desired`` is empty. Order is kept; duplicates are ignored.
    """
    cur = _unique(current)
    want = _unique(desired)
    if state == 'absent':
        remove = [m for m in cur if m in want] if want else list(cur)
        add = []
    else:
        add = [m for m in want if m not in cur]
        remove = [m for m in cur if m not in want] if exclusive else []
    result = [m for m in cur if m not in remove] + add
    before = {'source': key, member_name: cur} if cur else {}
    after = {'source': key, member_name: result} if result else {}
    if not add and not remove:
        action = NONE
    elif not cur:
        action = CREATE
    elif not result:
        action = DELETE
    else:
        action = UPDATE
    return Change(action, key, before=before, after=after, add=add, remove=remove)


def _unique(items):
    seen = []
    for item in items or []:
        if item not in seen:
            seen.append(item)
    return seen
