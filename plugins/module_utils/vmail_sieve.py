# -*- coding: utf-8 -*-
# Copyright: vmail.mailserver developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Out-of-office replies as Sieve scripts for Dovecot's Pigeonhole, behind M(vmail.mailserver.mail_vacation).

Design (docs/modules.md, "mail_vacation"): each mailbox with a reply has one
script file ``<vacation_dir>/<domain>/<local part>.sieve`` that Dovecot runs
*before* the user's own active script (Pigeonhole 0.5 ``sieve_before``,
Pigeonhole 2.4 a ``sieve_script`` block with ``type = before``). The user's
ManageSieve scripts live elsewhere (``~/sieve``) and are never read or
written here, and Pigeonhole discards a second vacation action of the same
delivery, so a reply the user set up himself and this one do not both go out.

Pure parts, unit-tested directly:

* :func:`quote`, :func:`string_list`, :func:`multiline` write Sieve strings
  (RFC 5228 section 2.4.2: quoted strings escape only ``\\`` and ``"``;
  ``text:`` literals dot-stuff lines that start with ``.``). Raw input is
  never pasted into script text any other way.
* :func:`normalize` validates the module options and returns the spec;
  :func:`build_script` turns a spec into the script text (RFC 5230 vacation,
  RFC 5260 ``currentdate`` for the optional dates);
* :func:`script_path` and :func:`plan` decide what has to change on disk.

:func:`read_state` and :func:`apply` are the only functions that touch the disk.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import datetime
import errno
import os
import re
import stat
import tempfile

from ansible_collections.vmail.mailserver.plugins.module_utils import vmail_address

MARKER = '# vmail.mailserver.mail_vacation: managed file, local changes are overwritten.'
DEFAULT_DIR = '/var/lib/vmail/vacation'
SCRIPT_SUFFIX = '.sieve'
BINARY_SUFFIX = '.svbin'  # Pigeonhole's compiled form, written next to the script
DIR_MODE = 0o750
FILE_MODE = 0o640

# RFC 5230 :days. Pigeonhole raises shorter periods to sieve_vacation_min_period (1d) and 2.4 cuts
# longer ones to sieve_vacation_max_period (60d; 0.5 has no cap), so both are refused, not changed.
MIN_DAYS = 1
MAX_DAYS = 60
DEFAULT_DAYS = 7
MAX_SUBJECT_CHARS = 256
MAX_BODY_OCTETS = 64 * 1024

# Mailing-list header fields (RFC 2369, RFC 2919): a message carrying any of them gets no reply.
LIST_HEADERS = ('list-id', 'list-owner', 'list-subscribe', 'list-post', 'list-unsubscribe', 'list-help',
                'list-archive')
# Precedence values of bulk mail (non-standard but universal, RFC 3834 section 2).
BULK_PRECEDENCE = ('list', 'bulk', 'junk')

_DATE_RE = re.compile(r'^[0-9]{4}-[0-9]{2}-[0-9]{2}$')
# C0 controls and DEL; TAB is allowed everywhere, LF only in the body.
_CONTROL_RE = re.compile(u'[\x00-\x08\x0a-\x1f\x7f]')
_BODY_CONTROL_RE = re.compile(u'[\x00-\x08\x0b-\x1f\x7f]')


class SieveError(ValueError):
    """Raised with a message fit for the user when an option is invalid or a file cannot be managed."""


# --- Sieve strings (RFC 5228 section 2.4.2) ---------------------------------------------------------


def _check_encodable(value, what):
    if not isinstance(value, str):
        raise SieveError('%s must be a string' % what)
    try:
        value.encode('utf-8')
    except UnicodeEncodeError:
        raise SieveError('%s is not valid Unicode text (lone surrogate)' % what)
    if u'\x00' in value:
        raise SieveError('%s contains a NUL character, which a Sieve script cannot carry' % what)


def quote(value):
    """Return ``value`` as a Sieve quoted string (RFC 5228 section 2.4.2).

    Only ``\\`` and ``"`` are escaped (with a backslash), which is all the
    grammar needs; every other character stands for itself. Raises
    :class:`SieveError` for a NUL character or text that is not valid Unicode.
    """
    _check_encodable(value, 'text')
    return '"%s"' % value.replace('\\', '\\\\').replace('"', '\\"')


def string_list(values):
    """Return ``values`` as a Sieve string list ``["a", "b"]`` (each element quoted by :func:`quote`)."""
    return '[%s]' % ', '.join(quote(v) for v in values)


def multiline(value):
    """Return ``value`` as a Sieve multi-line string (``text:`` ... ``.``, RFC 5228 section 2.4.2).

    Line ends are normalized to LF; a line starting with ``.`` gets a second
    ``.`` (dot-stuffing), so no line of the text can end the literal early.
    The result ends with the terminating ``.`` line and a newline.
    """
    _check_encodable(value, 'text')
    text = value.replace('\r\n', '\n').replace('\r', '\n')
    lines = text.split('\n')
    if lines and lines[-1] == '':
        lines.pop()  # text that ends with a newline: no extra empty line
    stuffed = ['.' + line if line.startswith('.') else line for line in lines]
    return 'text:\n%s.\n' % ''.join(line + '\n' for line in stuffed)


# --- Options -----------------------------------------------------------------------------------------


def _date(value, what):
    if value is None or value == '':
        return None
    if isinstance(value, (datetime.date, datetime.datetime)):
        value = value.strftime('%Y-%m-%d')
    if not isinstance(value, str) or not _DATE_RE.match(value.strip()):
        raise SieveError('%s must be an ISO date YYYY-MM-DD, got %r' % (what, value))
    try:
        datetime.datetime.strptime(value.strip(), '%Y-%m-%d')
    except ValueError:
        raise SieveError('%s %r is not a calendar date' % (what, value))
    return value.strip()


def _subject(value):
    if value is None or value == '':
        return None
    _check_encodable(value, 'subject')
    if _CONTROL_RE.search(value):
        raise SieveError('subject must be a single line without control characters')
    if value != value.strip():
        raise SieveError('subject has leading or trailing white space')
    if len(value) > MAX_SUBJECT_CHARS:
        raise SieveError('subject is %d characters long; at most %d are allowed' % (len(value), MAX_SUBJECT_CHARS))
    return value


def _body(value):
    if value is None or not isinstance(value, str) or not value.strip():
        raise SieveError('body is required with state=present (the text of the reply)')
    _check_encodable(value, 'body')
    text = value.replace('\r\n', '\n').replace('\r', '\n')
    if _BODY_CONTROL_RE.search(text):
        raise SieveError('body contains control characters (only tabs and line breaks are allowed)')
    size = len(text.encode('utf-8'))
    if size > MAX_BODY_OCTETS:
        raise SieveError('body is %d octets long; at most %d are allowed' % (size, MAX_BODY_OCTETS))
    return text


def _address(value, what):
    try:
        address = vmail_address.normalize_address(value)
    except vmail_address.AddressError as exc:
        raise SieveError('%s: %s' % (what, exc))
    if '/' in address.split('@')[0]:
        # Dovecot would look for a script in a subdirectory; refuse the odd but legal character.
        raise SieveError('%s %r: a "/" in the local part is not supported for vacation scripts' % (what, value))
    return address


def normalize(email, state='present', subject=None, body=None, active=True, start_date=None, end_date=None,
              days=DEFAULT_DAYS, addresses=None):
    """Validate the options of one out-of-office reply and return its spec (a dict).

    ``email`` is normalized like every address in this collection (lowercase,
    A-label domain); ``addresses`` are further addresses of the same mailbox
    (aliases) that count as "addressed to me" (RFC 5230 ``:addresses``).
    With ``state='absent'`` only ``email`` is checked. Raises
    :class:`SieveError` naming the first bad option.
    """
    spec = dict(email=_address(email, 'email'), state=state)
    if state == 'absent':
        return spec
    if state != 'present':
        raise SieveError('state must be present or absent, got %r' % (state,))
    if isinstance(days, bool) or not isinstance(days, int) or not MIN_DAYS <= days <= MAX_DAYS:
        raise SieveError('days must be a whole number from %d to %d (RFC 5230 :days; Pigeonhole 2.4 would cut '
                         'longer periods to 60 days), got %r' % (MIN_DAYS, MAX_DAYS, days))
    start = _date(start_date, 'start_date')
    end = _date(end_date, 'end_date')
    if start and end and end < start:
        raise SieveError('end_date %s is before start_date %s' % (end, start))
    extra = []
    for index, value in enumerate(addresses or []):
        address = _address(value, 'addresses[%d]' % index)
        if address != spec['email'] and address not in extra:
            extra.append(address)
    spec.update(subject=_subject(subject), body=_body(body), active=bool(active), start_date=start,
                end_date=end, days=days, addresses=extra)
    return spec


def expired(spec, today):
    """True when the reply has an end_date before ``today`` (a ``datetime.date``): it will not be sent again."""
    return bool(spec.get('end_date')) and spec['end_date'] < today.strftime('%Y-%m-%d')


# --- The script ----------------------------------------------------------------------------------------


def _conditions(spec):
    tests = ['not exists %s' % quote(name) for name in LIST_HEADERS]
    tests.append('not header :is "precedence" %s' % string_list(BULK_PRECEDENCE))
    tests.append('anyof (not exists "auto-submitted", header :is "auto-submitted" "no")')
    if spec['start_date']:
        tests.append('currentdate :value "ge" "date" %s' % quote(spec['start_date']))
    if spec['end_date']:
        tests.append('currentdate :value "le" "date" %s' % quote(spec['end_date']))
    return tests


def build_script(spec):
    """Return the Sieve script text for a spec from :func:`normalize` (state present).

    The reply is sent at most once per sender every ``days`` days (RFC 5230
    ``:days``, tracked by Pigeonhole per sender in the user's home), never to
    messages with a mailing-list header, a bulk/list/junk ``Precedence`` or an
    ``Auto-Submitted`` other than ``no``, and only between ``start_date`` and
    ``end_date`` (inclusive, the mail host's local time) when given. An
    inactive reply keeps its text under ``if false`` and sends nothing.
    """
    dated = bool(spec['start_date'] or spec['end_date'])
    require = ['date', 'relational', 'vacation'] if dated else ['vacation']
    lines = [
        MARKER,
        '# Out-of-office reply of %s (vmail.mailserver.mail_vacation). Dovecot runs this script' % spec['email'],
        "# before the user's own Sieve script, which it does not replace.",
        'require %s;' % string_list(require),
        '',
    ]
    if spec['active']:
        conditions = _conditions(spec)
        lines.append('# No reply to mailing lists, bulk or automatic mail (Pigeonhole checks these too).')
        lines.append('if allof (%s)' % (',\n          '.join(conditions)))
    else:
        lines.append('# Inactive (active: false): the reply is kept but not sent.')
        lines.append('if false')
    action = ['vacation', ':days %d' % spec['days']]
    if spec['subject']:
        action.append(':subject %s' % quote(spec['subject']))
    if spec['addresses']:
        action.append(':addresses %s' % string_list(spec['addresses']))
    lines.append('{')
    lines.append('  %s %s;' % (' '.join(action), multiline(spec['body'])))
    lines.append('}')
    return '\n'.join(lines) + '\n'


def script_path(directory, email):
    """Return (domain directory, script path) of ``email``'s reply under ``directory``.

    The layout ``<directory>/<domain>/<local part>.sieve`` is what the dovecot
    role configures (2.3 ``%d/%n.sieve``, 2.4 ``%{user | domain}/%{user | username}.sieve``).
    """
    if not directory or not os.path.isabs(directory):
        raise SieveError('vacation_dir must be an absolute path, got %r' % (directory,))
    local, domain = email.rsplit('@', 1)
    domain_dir = os.path.join(os.path.normpath(directory), domain)
    return domain_dir, os.path.join(domain_dir, local + SCRIPT_SUFFIX)


# --- Reading and planning --------------------------------------------------------------------------------


def _node(path):
    try:
        st = os.lstat(path)
    except OSError as exc:
        if exc.errno in (errno.ENOENT, errno.ENOTDIR):
            return None
        raise SieveError('cannot read %s: %s' % (path, exc.strerror))
    return dict(path=path, uid=st.st_uid, gid=st.st_gid, mode=stat.S_IMODE(st.st_mode),
                kind='link' if stat.S_ISLNK(st.st_mode) else 'dir' if stat.S_ISDIR(st.st_mode)
                else 'file' if stat.S_ISREG(st.st_mode) else 'other')


def read_state(directory, email):
    """Read what exists on disk for ``email``'s reply: the two directories and the script (no changes)."""
    domain_dir, path = script_path(directory, email)
    nodes = dict(base=_node(os.path.normpath(directory)), domain=_node(domain_dir), script=_node(path))
    content = None
    if nodes['script'] and nodes['script']['kind'] == 'file':
        try:
            with open(path, 'rb') as handle:
                content = handle.read().decode('utf-8', 'replace')
        except (IOError, OSError) as exc:
            raise SieveError('cannot read %s: %s' % (path, exc.strerror))
    binary = path[:-len(SCRIPT_SUFFIX)] + BINARY_SUFFIX
    return dict(nodes, content=content, path=path, domain_dir=domain_dir, base_dir=os.path.normpath(directory),
                binary=binary, binary_exists=os.path.lexists(binary))


def _fix_node(kind, node, path, uid, gid, mode):
    """Changes that make ``path`` a ``kind`` owned by uid:gid with ``mode`` (node: what exists, or None)."""
    if node is None:
        return [dict(op='mkdir' if kind == 'dir' else 'write', path=path, detail='create')]
    if node['kind'] != kind:
        raise SieveError('%s is a %s, not a %s; it was left as it is (remove it or choose another vacation_dir)'
                         % (path, node['kind'] if node['kind'] != 'link' else 'symbolic link',
                            'directory' if kind == 'dir' else 'regular file'))
    changes = []
    if (node['uid'], node['gid']) != (uid, gid):
        changes.append(dict(op='chown', path=path, detail='owner %d:%d -> %d:%d' % (node['uid'], node['gid'], uid, gid)))
    if node['mode'] != mode:
        changes.append(dict(op='chmod', path=path, mode=mode, detail='mode %04o -> %04o' % (node['mode'], mode)))
    return changes


def plan(state, content, uid, gid):
    """Decide the changes that make the disk match (pure).

    ``state`` comes from :func:`read_state`; ``content`` is the wanted script
    text, or None to remove the reply. Returns a list of change dicts
    (``op`` in mkdir, chown, chmod, write, unlink; ``path``; ``detail``), empty
    when nothing is to do. Raises :class:`SieveError`, before anything is
    changed, when the script path holds something this module did not write.
    """
    script = state['script']
    if script is not None and (script['kind'] != 'file' or not (state['content'] or '').startswith(MARKER)):
        what = 'a symbolic link' if script['kind'] == 'link' else (
            'not a regular file' if script['kind'] != 'file' else 'not written by vmail.mailserver.mail_vacation')
        raise SieveError('%s is %s; it was left as it is. Move it away to let mail_vacation manage this reply.'
                         % (state['path'], what))
    if content is None:
        changes = []
        if script is not None:
            changes.append(dict(op='unlink', path=state['path'], detail='remove the reply'))
        if state['binary_exists']:
            changes.append(dict(op='unlink', path=state['binary'], detail='remove the compiled script'))
        return changes
    changes = _fix_node('dir', state['base'], state['base_dir'], uid, gid, DIR_MODE)
    changes += _fix_node('dir', state['domain'], state['domain_dir'], uid, gid, DIR_MODE)
    if script is None or state['content'] != content:
        changes.append(dict(op='write', path=state['path'], detail='create' if script is None else 'update'))
        if state['binary_exists']:
            # Pigeonhole recompiles a changed script anyway; removing the old binary leaves no doubt.
            changes.append(dict(op='unlink', path=state['binary'], detail='remove the outdated compiled script'))
    else:
        changes += _fix_node('file', script, state['path'], uid, gid, FILE_MODE)
    return changes


def describe(changes):
    """One line per change, for the module's ``changes`` result."""
    return ['%s %s (%s)' % (c['op'], c['path'], c['detail']) for c in changes]


# --- Applying -----------------------------------------------------------------------------------------------


def _write(path, content, uid, gid):
    """Write ``content`` to ``path`` atomically (temp file in the same directory, then rename)."""
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), prefix='.vacation-', suffix='.tmp')
    try:
        os.fchmod(fd, FILE_MODE)
        os.fchown(fd, uid, gid)
        with os.fdopen(fd, 'wb') as handle:
            fd = None
            handle.write(content.encode('utf-8'))
            handle.flush()
            os.fsync(handle.fileno())
        os.rename(tmp, path)
        tmp = None
    finally:
        if fd is not None:
            os.close(fd)
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)


def apply(changes, content, uid, gid):
    """Carry out the changes from :func:`plan` in order (directories first, then the script)."""
    for change in changes:
        path = change['path']
        try:
            if change['op'] == 'mkdir':
                parent = os.path.dirname(path)
                if not os.path.isdir(parent):
                    os.makedirs(parent, 0o755)  # e.g. /var/lib/vmail: root's, like /var/lib
                os.mkdir(path, DIR_MODE)
                os.chown(path, uid, gid)
                os.chmod(path, DIR_MODE)  # mkdir's mode is filtered by the umask
            elif change['op'] == 'chown':
                os.lchown(path, uid, gid)
            elif change['op'] == 'chmod':
                os.chmod(path, change['mode'])
            elif change['op'] == 'write':
                _write(path, content, uid, gid)
            elif change['op'] == 'unlink':
                os.unlink(path)
        except (IOError, OSError) as exc:
            raise SieveError('%s %s failed: %s' % (change['op'], path, exc.strerror or exc))
